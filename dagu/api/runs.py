"""/api/v2/dag-runs... handlers: lists, details, logs, retry, stop, dequeue, step status, and the
same for child runs. They act like the CLI verbs (commands.py) on the shared run store; anything
that runs a DAG is handed to a detached runner through the app's launcher."""
from __future__ import annotations

import json
import os
from collections.abc import Callable

from dagu import logs
from dagu.api.runviews import current, run_details, run_summary
from dagu.api.server import Request
from dagu.clock import wait_until
from dagu.errors import AlreadyExists, AlreadyRunning, BadRequest, NotFound, NotRunning
from dagu.launcher import runner_alive, stop_runner
from dagu.runrecord import check_run_id, rfc3339
from dagu.status import NodeStatus, RunStatus

DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 1000
MAX_PAGE = 1 << 40                  # page * perPage stays a SQLite integer
MAX_UNIX_SECONDS = 1 << 40          # ~35,000 years: times in ms stay SQLite integers
PICKUP_WAIT_SEC = 3.0     # retry: wait this long for the runner to take the run over
STOP_WAIT_SEC = 2.0       # stop: wait this long for the runner to end (cleanup may take longer)
POLL_SEC = 0.05
HANDLER_KEYS = ("onSuccess", "onFailure", "onCancel", "onExit")

_RUN = "/dag-runs/{name}/{dagRunId}"
_CHILD = _RUN + "/children/{childDAGRunId}"


def register(router) -> None:
    """Add the run routes."""
    add = router.add
    add("GET", "/dag-runs", list_runs)
    add("GET", "/dag-runs/{name}", list_runs)
    add("GET", _RUN, lambda req: {"dagRunDetails": run_details(_root_run(req))})
    add("GET", _RUN + "/dequeue", dequeue, permission="runDAGs")
    add("GET", _RUN + "/log", lambda req: _log(req, _root_run(req).get("log", "")))
    add("POST", _RUN + "/retry", retry, permission="runDAGs")
    add("POST", _RUN + "/stop", stop, permission="runDAGs")
    add("GET", _RUN + "/steps/{stepName}/log", lambda req: _step_log(req, _root_run))
    add("PATCH", _RUN + "/steps/{stepName}/status",
        lambda req: _set_step_status(req, _root_run), permission="runDAGs")
    add("GET", _CHILD, lambda req: {"dagRunDetails": run_details(_child_run(req))})
    add("GET", _CHILD + "/log", lambda req: _log(req, _child_run(req).get("log", "")))
    add("GET", _CHILD + "/steps/{stepName}/log", lambda req: _step_log(req, _child_run))
    add("PATCH", _CHILD + "/steps/{stepName}/status",
        lambda req: _set_step_status(req, _child_run), permission="runDAGs")


# -- finding runs ---------------------------------------------------------------------------------

def _root_run(req: Request) -> dict:
    """The root run named by the path (`latest` = the DAG's newest), orphans reconciled; 404."""
    name, run_id = req.params["name"], req.params["dagRunId"]
    store = req.app.store
    record = store.get_run(name, run_id)
    if record is not None and record.get("parentDAGRunId"):
        record = None            # a child is reached through its root (.../children/{id})
    if record is None and run_id == "latest":
        record = store.latest_run(name)
    if record is None:
        raise NotFound(f"dag-run ID {run_id} not found for DAG {name}")
    return current(req.app, record)


def _child_run(req: Request) -> dict:
    """A descendant (child, grandchild...) of the root run named by the path; 404."""
    root = _root_run(req)
    child_id = req.params["childDAGRunId"]
    child = req.app.store.child_run(root["dagRunId"], child_id)
    if child is None or child.get("rootDAGRunName", root["name"]) != root["name"]:
        raise NotFound(f"child dag-run ID {child_id} not found for DAG {req.params['name']}")
    return current(req.app, child)


def _find_node(record: dict, step: str, handlers: bool) -> tuple[int, dict] | None:
    """(index in nodes, node) of the step (last match wins, as Dagu); handler nodes (index -1)
    by their names onSuccess/onFailure/onCancel/onExit when `handlers`."""
    found = None
    for i, node in enumerate(record.get("nodes") or []):
        if (node.get("step") or {}).get("name") == step:
            found = (i, node)
    if found is None and handlers:
        for key in HANDLER_KEYS:
            node = record.get(key)
            if node and ((node.get("step") or {}).get("name") or key) == step:
                found = (-1, node)
    return found


# -- lists ----------------------------------------------------------------------------------------

def list_runs(req: Request) -> dict:
    """Root runs newest first, filtered (DAG name, status, created window, run id), one page."""
    status = req.int_arg("status")
    if status is not None and status not in set(RunStatus):
        raise BadRequest(f"invalid status {status}: use 0..6")
    from_s, to_s = _unix_seconds(req, "fromDate"), _unix_seconds(req, "toDate")
    per_page = req.int_arg("perPage", DEFAULT_PER_PAGE) or 0
    per_page = min(per_page if per_page > 0 else DEFAULT_PER_PAGE, MAX_PER_PAGE)
    page = min(max(1, req.int_arg("page", 1) or 1), MAX_PAGE)
    exact = req.params.get("name")
    filters = dict(
        name=exact, name_contains=None if exact is not None else (req.arg("name") or None),
        status=status, run_id_contains=req.arg("dagRunId") or None,
        from_ms=None if from_s is None else from_s * 1000,
        to_ms=None if to_s is None else to_s * 1000 - 1)      # [fromDate, toDate)
    store = req.app.store
    records = store.list_runs(**filters, limit=per_page, offset=(page - 1) * per_page)
    total = store.count_runs(**filters)
    pages = max(1, (total + per_page - 1) // per_page)
    runs = [run_summary(current(req.app, r)) for r in records]
    return {"dagRuns": runs,
            "pagination": {"totalRecords": total, "currentPage": page, "totalPages": pages,
                           "nextPage": min(page + 1, pages), "prevPage": max(page - 1, 1)}}


def _unix_seconds(req: Request, name: str) -> int | None:
    value = req.int_arg(name)
    if value is not None and abs(value) > MAX_UNIX_SECONDS:
        raise BadRequest(f"query parameter {name} is out of range: {value}")
    return value


# -- logs -----------------------------------------------------------------------------------------

def _log(req: Request, path: str) -> dict:
    """A Log object for a file; 404 when there is no such file (yet)."""
    options = {k: max(0, req.int_arg(k, 0) or 0) for k in ("tail", "head", "offset", "limit")}
    if not path:
        raise NotFound("log file not found")
    try:
        page = logs.read_log(path, **options)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise NotFound(f"log file not found: {os.path.basename(path)}") from None
    return page.to_api()


def _step_log(req: Request, find: Callable[[Request], dict]) -> dict:
    stream = req.arg("stream") or "stdout"
    if stream not in ("stdout", "stderr"):
        raise BadRequest(f"invalid stream {stream!r}: use stdout or stderr")
    record = find(req)
    step = req.params["stepName"]
    found = _find_node(record, step, handlers=True)
    if found is None:
        raise NotFound(f"step {step} not found in DAG {req.params['name']}")
    return _log(req, found[1].get(stream) or "")


# -- step status ----------------------------------------------------------------------------------

def _set_step_status(req: Request, find: Callable[[Request], dict]) -> None:
    """Set one node's status (e.g. mark a failed step finished before a retry). The run's own
    status is not recomputed (Dagu). Compare-and-set on the run status, so a runner that has just
    started is never overwritten."""
    value = req.json(required=True).get("status")
    if isinstance(value, bool) or not isinstance(value, int) or value not in set(NodeStatus):
        raise BadRequest("status must be a node status: 0..5")
    status = NodeStatus(value)
    step = req.params["stepName"]
    for _ in range(5):
        record = find(req)
        if record["status"] == RunStatus.RUNNING:
            raise BadRequest(f"dag-run ID {record['dagRunId']} for DAG {record['name']} "
                             "is still running")
        found = _find_node(record, step, handlers=False)
        if found is None:
            raise NotFound(f"step {step} not found in DAG {req.params['name']}")
        nodes = list(record["nodes"])
        nodes[found[0]] = dict(found[1], status=int(status), statusLabel=status.label)
        if req.app.store.update_run_if(dict(record, nodes=nodes), int(record["status"])):
            return None
    raise AlreadyRunning(f"dag-run ID {record['dagRunId']} for DAG {record['name']} "
                         "keeps changing; try again")


# -- dequeue / stop -------------------------------------------------------------------------------

def dequeue(req: Request) -> None:
    """Cancel a queued run and take it off its queue (`dagu dequeue`)."""
    record = _root_run(req)
    if record["status"] != RunStatus.QUEUED:
        raise BadRequest(f"DAGRun status is not queued: {RunStatus(record['status']).label}")
    if req.method == "HEAD":     # routed like GET, but must not change anything
        return None
    cancelled = dict(record, status=int(RunStatus.CANCELLED),
                     statusLabel=RunStatus.CANCELLED.label,
                     finishedAt=rfc3339(req.app.clock.now()))
    store = req.app.store
    if not store.update_run_if(cancelled, int(RunStatus.QUEUED)):
        now = store.get_run(record["name"], record["dagRunId"]) or record
        raise BadRequest(f"DAGRun status is not queued: {RunStatus(now['status']).label}")
    store.dequeue(record["name"], record["dagRunId"])
    return None


def stop(req: Request) -> None:
    """Signal a running run's runner; wait briefly for it to end (it records `cancelled`)."""
    record = _root_run(req)
    if record["status"] != RunStatus.RUNNING:
        raise NotRunning("DAG is not running")
    if stop_runner(record):
        lock = record.get("lockPath", "")
        wait_until(lambda: not runner_alive(lock), STOP_WAIT_SEC, POLL_SEC)
    return None


# -- retry ----------------------------------------------------------------------------------------

def retry(req: Request) -> dict:
    """No body / the same id: retry in place (failed+cancelled steps and descendants, or
    `stepName`). Another id: a new run with that id from the original's DAG and params."""
    record = _root_run(req)
    body = req.json()
    new_id, step = body.get("dagRunId"), body.get("stepName")
    for key, value in (("dagRunId", new_id), ("stepName", step)):
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"{key} must be a string")
    name, run_id = record["name"], record["dagRunId"]
    if RunStatus(record["status"]).is_active:
        raise AlreadyRunning(f"dag-run ID {run_id} for DAG {name} is "
                             f"{RunStatus(record['status']).label}")
    if not new_id or new_id == run_id:
        return _retry_in_place(req, record, step or "")
    if step:
        raise BadRequest("stepName can only be given when retrying the same dag-run")
    return _rerun_as(req, record, new_id)


def _retry_in_place(req: Request, record: dict, step: str) -> dict:
    name, run_id = record["name"], record["dagRunId"]
    if step and _find_node(record, step, handlers=False) is None:
        raise NotFound(f"step {step} not found in DAG {name}")
    dag_file = record.get("dagFile") or ""
    target = dag_file if dag_file and os.path.isfile(dag_file) else name
    args = ["retry", "--run-id", run_id, "-q"] + (["--step", step] if step else [])
    before = _progress(record)
    req.app.launch(args + _config_args(req) + [target])
    # the launch happened either way: a slow pick-up is not an error
    wait_until(lambda: _progress(req.app.store.get_run(name, run_id)) != before, PICKUP_WAIT_SEC, POLL_SEC)
    return {"dagRunId": run_id}


def _rerun_as(req: Request, record: dict, new_id: str) -> dict:
    name = record["name"]
    problem = check_run_id(new_id)
    if problem:
        raise BadRequest(problem)
    store = req.app.store
    if store.get_run(name, new_id) is not None:
        raise AlreadyExists(f"dag-run ID {new_id} already exists for DAG {name}")
    dag_file = record.get("dagFile") or ""
    if not dag_file or not os.path.isfile(dag_file):
        raise NotFound(f"the DAG file of {name} is gone: {dag_file or '(unknown)'}")
    params = param_string(record.get("paramsList") or [])
    args = ["start", "--run-id", new_id] + (["-p", params] if params else []) + ["-q"]
    req.app.launch(args + _config_args(req) + [dag_file])
    wait_until(lambda: store.get_run(name, new_id) is not None, PICKUP_WAIT_SEC, POLL_SEC)
    return {"dagRunId": new_id}


def param_string(params_list: list[str]) -> str:
    """A run's resolved params (`["1=a", "K=v"]`) as a param string giving the same params:
    positional ones stay positional (so `$1` keeps its meaning), values are quoted."""
    pairs = [item.split("=", 1) for item in params_list if "=" in item]
    words = []
    for index, (key, value) in enumerate(pairs, start=1):
        quoted = json.dumps(value, ensure_ascii=False)
        positional = key == str(index)
        if positional and len(pairs) == 1 and (value == "" or any(c.isspace() or c in '="'
                                                                  for c in value)):
            # `-p "a b"` alone would lose its quotes in the CLI; name it instead
            positional = False
        words.append(quoted if positional else f"{key}={quoted}")
    return " ".join(words)


def _config_args(req: Request) -> list[str]:
    config_file = req.app.config.config_file
    return ["--config", config_file] if config_file else []


def _progress(record: dict | None) -> tuple:
    if record is None:
        return ()
    return record.get("attempt"), record.get("startedAt"), record.get("status")
