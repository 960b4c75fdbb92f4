"""/api/v2/dags... handlers: list, create, read, delete, start, enqueue, history, spec, suspend,
rename, search and tags.

A `fileName` may carry `.yaml`/`.yml`; it is checked by dags.check_file_name (400 otherwise), so
nothing outside the DAGs directory is ever read or written. Files are written atomically (temp
file + fsync + link/replace); a new or renamed file never overwrites an existing one."""
from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import threading

from dagu import params as P, spec
from dagu.api import dagviews as V
from dagu.api.runviews import current, initial_details, run_details, run_summary
from dagu.api.server import Request, Response, json_response
from dagu.clock import wait_until
from dagu.dags import DagFile, YAML_SUFFIXES, check_file_name, load_dag_file, read_text
from dagu.errors import AlreadyExists, BadRequest, DaguError, LoadError, NotFound, NotRunning
from dagu.launcher import notify_scheduler
from dagu.logs import run_log_dir, run_log_path
from dagu.model import DAG
from dagu.runner import load_for_run, log_root
from dagu.runrecord import check_run_id, new_record, new_run_id
from dagu.status import RunStatus

NEW_DAG_TEMPLATE = "steps:\n  - name: step1\n    command: echo hello\n"
HISTORY_LIMIT = 30
START_WAIT_SEC = 3.0
START_POLL_SEC = 0.003   # the runner usually inserts its record within 20-30 ms
SEARCH_CONTEXT = 2
SEARCH_MAX_QUERY = 1000
_HANDLER_ROWS = ("onSuccess", "onFailure", "onCancel", "onExit")

# Run ids being started by this server: a second request for the same id answers 409 at once
# instead of both passing the existence check and racing to insert.
_starting: set[tuple[str, str]] = set()
_starting_lock = threading.Lock()


def register(router) -> None:
    """Add the DAG routes."""
    router.add("GET", "/dags", list_dags)
    router.add("POST", "/dags", create_dag, permission="writeDAGs")
    router.add("GET", "/dags/search", search_dags)
    router.add("GET", "/dags/tags", list_tags)
    router.add("GET", "/dags/{fileName}", get_dag)
    router.add("DELETE", "/dags/{fileName}", delete_dag, permission="writeDAGs")
    router.add("POST", "/dags/{fileName}/start", start_dag, permission="runDAGs")
    router.add("POST", "/dags/{fileName}/enqueue", enqueue_dag, permission="runDAGs")
    router.add("GET", "/dags/{fileName}/dag-runs", dag_run_history)
    router.add("GET", "/dags/{fileName}/dag-runs/{dagRunId}", get_dag_run)
    router.add("GET", "/dags/{fileName}/spec", get_spec)
    router.add("PUT", "/dags/{fileName}/spec", put_spec, permission="writeDAGs")
    router.add("POST", "/dags/{fileName}/suspend", suspend_dag, permission="runDAGs")
    router.add("POST", "/dags/{fileName}/rename", rename_dag, permission="writeDAGs")


# -- lookups ---------------------------------------------------------------------------------------

def _dag_file(req: Request) -> DagFile:
    """The DAG file named by the path (400 bad name, 404 missing)."""
    name = req.params["fileName"]
    found = req.app.registry.get(name)
    if found is None or not _is_file(found.path):
        raise NotFound(f"DAG {check_file_name(name)} not found")
    return found


def _is_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _dag_of(df: DagFile) -> DAG:
    """The loaded DAG, or a stand-in carrying just the name when the file does not load."""
    return df.dag if df.dag is not None else DAG(name=df.file_name, location=df.path)


def _load_errors(df: DagFile) -> list[str]:
    """Every load problem of a broken file (one message per problem)."""
    if df.dag is not None:
        return []
    text = read_text(df.path)
    if text is None:
        return [df.error or f"cannot read {os.path.basename(df.path)}"]
    try:
        spec.load(text, spec.LoadOptions(location=df.path))
    except LoadError as exc:
        return list(exc.errors)
    return []


def _existing_path(dags_dir: str, stem: str) -> str | None:
    for suffix in YAML_SUFFIXES:
        path = os.path.join(dags_dir, stem + suffix)
        if os.path.lexists(path):
            return path
    return None


def _latest(app, name: str, slim: bool) -> dict | None:
    """A DAG's newest root run as it really is; slim leaves out the DAG snapshot and steps."""
    if slim:
        runs = app.store.list_runs(name=name, limit=1)
        record = runs[0] if runs else None
    else:
        record = app.store.latest_run(name)
    if record is None or record.get("status") != RunStatus.RUNNING:
        return record   # only a running record can be an orphan to reconcile
    return current(app, record)


def _body_str(body: dict, key: str, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise BadRequest(f"field {key!r} is required")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"field {key!r} must be a string")
    return value


# -- atomic files ----------------------------------------------------------------------------------

def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_file(directory: str, text: str, mode: int) -> str:
    """A fully written, fsynced hidden temp file in directory (the registry ignores it)."""
    fd, tmp = tempfile.mkstemp(prefix=".dagu-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return tmp


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _link_new(src: str, dst: str) -> None:
    """Give src the name dst without ever replacing an existing dst (AlreadyExists then)."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise AlreadyExists(f"DAG {os.path.basename(dst)} already exists") from None
    except OSError:
        # A file system without hard links: check, then rename (a narrow race, no half file).
        if os.path.lexists(dst):
            raise AlreadyExists(f"DAG {os.path.basename(dst)} already exists") from None
        os.rename(src, dst)
        return
    os.unlink(src)


def write_new_file(path: str, text: str) -> None:
    """Create path with text atomically; AlreadyExists if it exists."""
    directory = os.path.dirname(path)
    tmp = _temp_file(directory, text, 0o600)
    try:
        _link_new(tmp, path)
    finally:
        _unlink_quietly(tmp)
    _fsync_dir(directory)


def replace_file(path: str, text: str) -> None:
    """Overwrite path with text atomically, keeping its permission bits."""
    directory = os.path.dirname(path)
    try:
        old = os.stat(path)
    except OSError:
        old = None
    tmp = _temp_file(directory, text, stat.S_IMODE(old.st_mode) if old else 0o600)
    try:
        if old is not None:
            # The parse cache keys on (mtime, size); a same-size rewrite within one timestamp
            # tick must still look changed.
            st = os.stat(tmp)
            if st.st_mtime_ns <= old.st_mtime_ns:
                os.utime(tmp, ns=(st.st_atime_ns, old.st_mtime_ns + 1))
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(directory)


# -- list, create, read, delete --------------------------------------------------------------------

def list_dags(req: Request) -> dict:
    """GET /dags: one page of DAG files with their latest run; broken files go to errors."""
    app = req.app
    page, per_page = V.page_args(req.int_arg("page"), req.int_arg("perPage"))
    name = (req.arg("name") or "").lower()
    tag = (req.arg("tag") or "").lower()
    errors: list[str] = []
    matched: list[DagFile] = []
    for df in app.registry.scan():
        if df.dag is None:
            errors.append(df.error)
            continue
        if name and name not in df.file_name.lower():
            continue
        if tag and tag not in (t.lower() for t in df.dag.tags):
            continue
        matched.append(df)
    offset = (page - 1) * per_page
    suspended = app.store.suspended_files() if matched[offset:offset + per_page] else set()
    items = []
    for df in matched[offset:offset + per_page]:
        record = _latest(app, df.dag.name, slim=True)
        # a never-run DAG's summary is all empty: no need to build its initial nodes
        latest = run_summary(record or {"name": df.dag.name})
        items.append(V.dag_file_json(df.file_name, df.dag, latest, df.file_name in suspended))
    return {"dags": items, "errors": errors,
            "pagination": V.pagination(len(matched), page, per_page)}


def create_dag(req: Request) -> Response:
    """POST /dags {name}: a new `{name}.yaml` with a one-step DAG; 409 if it exists."""
    body = req.json(required=True)
    stem = check_file_name(_body_str(body, "name", required=True))
    dags_dir = req.app.config.dags_dir
    os.makedirs(dags_dir, exist_ok=True)
    if _existing_path(dags_dir, stem):
        raise AlreadyExists(f"DAG {stem} already exists")
    write_new_file(os.path.join(dags_dir, stem + ".yaml"), NEW_DAG_TEMPLATE)
    return json_response({"name": stem}, 201)


def get_dag(req: Request) -> dict:
    """GET /dags/{fileName}: details, local DAGs, latest run, suspension and load errors."""
    app = req.app
    df = _dag_file(req)
    dag = _dag_of(df)
    record = _latest(app, dag.name, slim=False)
    return {
        "dag": V.dag_details(dag) if df.dag is not None else {"name": dag.name},
        "localDags": V.local_dags_json(df.dag),
        "latestDAGRun": run_details(record) if record else initial_details(dag),
        "suspended": app.store.is_suspended(df.file_name),
        "errors": _load_errors(df),
    }


def delete_dag(req: Request) -> Response:
    """DELETE /dags/{fileName}: remove the file (its run history and suspension stay)."""
    df = _dag_file(req)
    try:
        os.unlink(df.path)
    except FileNotFoundError:
        raise NotFound(f"DAG {df.file_name} not found") from None
    _fsync_dir(os.path.dirname(df.path))
    return Response(204)


# -- start and enqueue -----------------------------------------------------------------------------

def _run_request(req: Request) -> tuple[object, list[P.ParamToken], str | None]:
    """The body of start/enqueue: (raw params, their tokens, the requested run id)."""
    body = req.json()
    raw = body.get("params")
    if raw is not None and not isinstance(raw, (str, dict)):
        raise BadRequest("params must be a parameter string or a JSON object")
    try:
        tokens = P.parse_api_params(raw)
    except P.ParamError as exc:
        raise BadRequest(f"invalid params: {exc}") from None
    run_id = _body_str(body, "dagRunId")
    if run_id is not None and run_id != "":
        problem = check_run_id(run_id)
        if problem:
            raise BadRequest(problem)
    return raw, tokens, run_id or None


def _params_flag(raw: object) -> str:
    """The -p value that makes the CLI's parse_api_params see what we saw."""
    flag = json.dumps(raw) if isinstance(raw, dict) else raw or ""
    if "\x00" in flag:   # cannot travel in argv
        raise BadRequest("params must not contain NUL characters")
    return flag


def start_dag(req: Request) -> dict:
    """POST /dags/{fileName}/start: launch a runner, answer once its record exists."""
    app = req.app
    df = _dag_file(req)
    raw, _tokens, run_id = _run_request(req)
    flag = _params_flag(raw)
    dag = df.dag
    if dag is None:
        # The registry loads without the base config; the run loads with it: ask that load.
        try:
            dag = load_dag_file(df.path, app.config)
        except LoadError as exc:
            raise BadRequest(f"DAG {df.file_name} does not load: " + "; ".join(exc.errors),
                             {"errors": exc.errors}) from None
    run_id = run_id or new_run_id()
    key = (dag.name, run_id)
    with _starting_lock:
        if key in _starting or app.store.get_run(dag.name, run_id) is not None:
            raise AlreadyExists(f"dag-run ID {run_id} already exists for DAG {dag.name}")
        _starting.add(key)
    try:
        args = ["start", "--run-id", run_id, "-q"]
        if flag:
            args.append("--params=" + flag)   # `=`: a value starting with '-' stays a value
        if app.config.config_file:
            args += ["--config", app.config.config_file]
        app.launch(args + [df.path])
        if not wait_until(lambda: app.store.get_run(dag.name, run_id) is not None,
                          START_WAIT_SEC, START_POLL_SEC):
            raise DaguError(f"dag-run {run_id} of DAG {dag.name} did not start within "
                            f"{START_WAIT_SEC:g} s; see the server log")
    finally:
        with _starting_lock:
            _starting.discard(key)
    return {"dagRunId": run_id}


def enqueue_dag(req: Request) -> dict:
    """POST /dags/{fileName}/enqueue: record a queued run (as `dagu enqueue` does) and wake
    the scheduler."""
    app = req.app
    config = app.config
    df = _dag_file(req)
    _raw, tokens, run_id = _run_request(req)
    if not config.queues_enabled:
        raise BadRequest("queues are disabled in configuration")
    text = read_text(df.path)
    if text is None:
        raise NotFound(f"DAG {df.file_name} not found")
    try:
        dag, _env, source = load_for_run(text, df.path, config, tokens)
    except LoadError as exc:
        raise BadRequest(f"DAG {df.file_name} does not load: " + "; ".join(exc.errors),
                         {"errors": exc.errors}) from None
    run_id = run_id or new_run_id()
    record = new_record(dag, run_id, status=RunStatus.QUEUED, now=app.clock.now(),
                        log_path=run_log_path(run_log_dir(log_root(config, dag), dag.name, run_id)),
                        lock="", source=source)
    app.store.insert_queued_run(record, dag.queue_name)   # AlreadyExists -> 409
    notify_scheduler(config.data_dir)
    return {"dagRunId": run_id}


# -- run history -----------------------------------------------------------------------------------

def dag_run_history(req: Request) -> dict:
    """GET /dags/{fileName}/dag-runs: the latest 30 runs and the step status grid."""
    app = req.app
    df = _dag_file(req)
    name = _dag_of(df).name
    records = app.store.list_runs(name=name, limit=HISTORY_LIMIT, with_static=True)
    runs = [run_details(current(app, r)) for r in records]
    per_run = [{node["step"]["name"]: node.get("status", 0) for node in run["nodes"]}
               for run in runs]
    grid = [{"name": step, "history": [statuses.get(step, 0) for statuses in per_run]}
            for step in sorted({step for statuses in per_run for step in statuses})]
    for handler in _HANDLER_ROWS:
        if any(run.get(handler) for run in runs):
            grid.append({"name": handler,
                         "history": [(run.get(handler) or {}).get("status", 0) for run in runs]})
    return {"dagRuns": runs, "gridData": grid}


def get_dag_run(req: Request) -> dict:
    """GET /dags/{fileName}/dag-runs/{dagRunId} (`latest` = the newest run)."""
    app = req.app
    df = _dag_file(req)
    name = _dag_of(df).name
    run_id = req.params["dagRunId"]
    if run_id == "latest":
        record = current(app, app.store.latest_run(name))
        if record is None:   # as Dagu: a DAG that never ran shows its initial status
            return {"dagRun": initial_details(_dag_of(df))}
    else:
        record = current(app, app.store.get_run(name, run_id))
        if record is None:
            raise NotFound(f"dag-run ID {run_id} not found for DAG {name}")
    return {"dagRun": run_details(record)}


# -- spec ------------------------------------------------------------------------------------------

def get_spec(req: Request) -> dict:
    """GET /dags/{fileName}/spec: the YAML text, its DAG when it loads, else its errors."""
    df = _dag_file(req)
    text = read_text(df.path)
    if text is None:
        raise NotFound(f"DAG {df.file_name} not found")
    out: dict = {"spec": text}
    try:
        dag = spec.load(text, spec.LoadOptions(location=df.path))
    except LoadError as exc:
        out["errors"] = list(exc.errors)
        return out
    out["dag"] = V.dag_details(dag)
    out["errors"] = []
    return out


def put_spec(req: Request) -> dict:
    """PUT /dags/{fileName}/spec {spec}: save if it loads (200 {errors: []}); otherwise
    200 {errors: [...]} and nothing is written."""
    df = _dag_file(req)
    text = _body_str(req.json(required=True), "spec", required=True)
    try:
        spec.load(text, spec.LoadOptions(location=df.path))
    except LoadError as exc:
        return {"errors": list(exc.errors)}
    replace_file(df.path, text)
    return {"errors": []}


# -- suspend and rename ----------------------------------------------------------------------------

def suspend_dag(req: Request) -> Response:
    """POST /dags/{fileName}/suspend {suspend}: stop or resume its schedule."""
    df = _dag_file(req)
    value = req.json(required=True).get("suspend")
    if not isinstance(value, bool):
        raise BadRequest("field 'suspend' must be true or false")
    req.app.store.set_suspended(df.file_name, value)
    return Response(200)


def rename_dag(req: Request) -> Response:
    """POST /dags/{fileName}/rename {newFileName}: move the file, never over another one."""
    app = req.app
    df = _dag_file(req)
    new_name = _body_str(req.json(required=True), "newFileName", required=True)
    new_stem = check_file_name(new_name)
    dags_dir = os.path.dirname(df.path)
    if _existing_path(dags_dir, new_stem):
        raise AlreadyExists(f"DAG {new_stem} already exists")
    latest = _latest(app, _dag_of(df).name, slim=True)
    if latest and latest.get("status") == RunStatus.RUNNING:
        raise NotRunning("DAG is running")
    suffix = next((s for s in YAML_SUFFIXES if new_name.endswith(s)), ".yaml")
    _link_new(df.path, os.path.join(dags_dir, new_stem + suffix))
    _fsync_dir(dags_dir)
    if app.store.is_suspended(df.file_name):   # the suspension follows the file
        app.store.set_suspended(new_stem, True)
        app.store.set_suspended(df.file_name, False)
    return Response(200)


# -- search and tags -------------------------------------------------------------------------------

def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def search_dags(req: Request) -> dict:
    """GET /dags/search?q=: case-insensitive regex over every DAG file, with 2 lines of context."""
    query = req.arg("q")
    if query is None:
        raise BadRequest("query parameter q is required")
    if len(query) > SEARCH_MAX_QUERY:
        raise BadRequest(f"query parameter q is longer than {SEARCH_MAX_QUERY} characters")
    if query == "":
        return {"results": [], "errors": []}
    try:
        pattern = re.compile(query, re.IGNORECASE)
    except re.error as exc:
        raise BadRequest(f"invalid search pattern {query!r}: {exc}") from None
    results, errors = [], []
    for df in req.app.registry.scan():
        text = read_text(df.path)
        if text is None:
            errors.append(f"grep {os.path.basename(df.path)} failed: cannot read the file")
            continue
        lines = _lines(text)
        matches = []
        for index, line in enumerate(lines):
            if pattern.search(line):
                start = max(0, index - SEARCH_CONTEXT)
                matches.append({"line": "\n".join(lines[start:index + SEARCH_CONTEXT + 1]),
                                "lineNumber": index + 1, "startLine": start + 1})
        if matches:
            results.append({"name": df.file_name, "dag": V.dag_json(_dag_of(df)),
                            "matches": matches})
    return {"results": results, "errors": errors}


def list_tags(req: Request) -> dict:
    """GET /dags/tags: every tag of every loadable DAG, lower-cased, sorted, unique."""
    tags: set[str] = set()
    errors: list[str] = []
    for df in req.app.registry.scan():
        if df.dag is None:
            errors.append(df.error)
        else:
            tags.update(t.lower() for t in df.dag.tags)
    return {"tags": sorted(tags), "errors": errors}

