"""/api/v2/dag-runs... against a real `dagu start-all` (one server for the module: every test
uses its own DAG names, so the tests do not see each other's runs)."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.apiclient import ROOT, Server, start_server

PROCS: list[subprocess.Popen] = []

SUMMARY_REQUIRED = {"rootDAGRunName": str, "rootDAGRunId": str, "dagRunId": str, "name": str,
                    "status": int, "statusLabel": str, "startedAt": str, "finishedAt": str,
                    "log": str}
SUMMARY_OPTIONAL = {"parentDAGRunName": str, "parentDAGRunId": str, "queuedAt": str,
                    "params": str}
NODE_REQUIRED = {"step": dict, "stdout": str, "stderr": str, "startedAt": str,
                 "finishedAt": str, "status": int, "statusLabel": str, "retryCount": int,
                 "doneCount": int}
RUN_LABELS = {0: "not started", 1: "running", 2: "failed", 3: "cancelled", 4: "finished",
              5: "queued", 6: "partial success"}
NODE_LABELS = {0: "not started", 1: "running", 2: "failed", 3: "canceled", 4: "finished",
               5: "skipped"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """One real `dagu start-all` (like the `api` fixture) shared by this module's tests."""
    server = start_server(tmp_path_factory.mktemp("runs") / "home")
    try:
        yield server
    finally:
        for proc in PROCS:
            if proc.poll() is None:
                proc.terminate()
        for proc in PROCS:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        server.stop()


# -- helpers ----------------------------------------------------------------------------------

def write_dag(srv: Server, name: str, text: str) -> str:
    (srv.dags / f"{name}.yaml").write_text(text)
    return name


def dagu(srv: Server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "dagu.py"), *args], env=srv.env,
                          cwd=srv.home, capture_output=True, text=True, timeout=60)


def wait_for(check, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def start_run(srv: Server, file: str, run_id: str, params: str | None = None,
              wait: bool = True) -> dict:
    """Start a run through POST /dags/{file}/start, or the CLI while that route is missing."""
    body = {"dagRunId": run_id}
    if params:
        body["params"] = params
    r = srv.post(f"/dags/{file}/start", body)
    if r.status in (404, 405) and "no such endpoint" in (r.json or {}).get("message", ""):
        cmd = [sys.executable, str(ROOT / "dagu.py"), "start", "--run-id", run_id, "-q"]
        PROCS.append(subprocess.Popen(cmd + (["-p", params] if params else []) + [file],
                                      env=srv.env, cwd=srv.home, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    else:
        assert r.status == 200, r.body
    wait_for(lambda: srv.get(f"/dag-runs/{file}/{run_id}").status == 200, what=f"run {run_id}")
    return srv.wait_run(file, run_id) if wait else details(srv, file, run_id)


def details(srv: Server, name: str, run_id: str) -> dict:
    r = srv.get(f"/dag-runs/{name}/{run_id}")
    assert r.status == 200, r.body
    assert set(r.json) == {"dagRunDetails"}
    return check_details(r.json["dagRunDetails"])


def wait_status(srv: Server, name: str, run_id: str, label: str, timeout: float = 15.0) -> dict:
    return wait_for(lambda: (d := details(srv, name, run_id))["statusLabel"] == label and d,
                    timeout, f"{name}/{run_id} to be {label}")


def check_error(r, status: int, code: str, message: str | None = None) -> dict:
    assert r.status == status, (r.status, r.body)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json
    assert isinstance(body, dict) and body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    if message is not None:
        assert body["message"] == message, body
    return body


def check_fields(obj: dict, required: dict, optional: dict | None = None) -> None:
    for key, kind in required.items():
        assert key in obj, f"missing {key} in {obj}"
        assert is_a(obj[key], kind), f"{key}: {obj[key]!r} is not {kind.__name__}"
    for key, kind in (optional or {}).items():
        if key in obj:
            assert is_a(obj[key], kind), f"{key}: {obj[key]!r} is not {kind.__name__}"


def is_a(value, kind: type) -> bool:
    """JSON type check: booleans are not integers."""
    if kind is bool or isinstance(value, bool):
        return kind is bool and isinstance(value, bool)
    return isinstance(value, kind)


def check_summary(run: dict) -> dict:
    check_fields(run, SUMMARY_REQUIRED, SUMMARY_OPTIONAL)
    assert run["statusLabel"] == RUN_LABELS[run["status"]]
    for key in ("startedAt", "finishedAt", "queuedAt"):
        value = run.get(key, "")
        assert value == "" or (value.endswith("Z") and "T" in value), (key, value)
    return run


def check_details(run: dict) -> dict:
    check_summary(run)
    assert isinstance(run["nodes"], list)
    for node in run["nodes"] + [run[k] for k in ("onExit", "onSuccess", "onFailure", "onCancel")
                                if k in run]:
        check_fields(node, NODE_REQUIRED, {"children": list, "error": str})
        assert isinstance(node["step"]["name"], str)
        assert node["statusLabel"] == NODE_LABELS[node["status"]]
        for child in node.get("children", []):
            check_fields(child, {"dagRunId": str, "params": str})
    assert isinstance(run.get("preconditions", []), list)
    return run


def check_log(body: dict) -> dict:
    check_fields(body, {"content": str, "lineCount": int, "totalLines": int,
                        "hasMore": bool, "isEstimate": bool})
    return body


def node(run: dict, step: str) -> dict:
    return next(n for n in run["nodes"] if n["step"]["name"] == step)


def listing(srv: Server, path: str) -> tuple[list[dict], dict]:
    r = srv.get(path)
    assert r.status == 200, r.body
    runs = r.json["dagRuns"]
    assert isinstance(runs, list)
    for run in runs:
        check_summary(run)
    pagination = r.json["pagination"]
    check_fields(pagination, dict.fromkeys(
        ("totalRecords", "currentPage", "totalPages", "nextPage", "prevPage"), int))
    return runs, pagination


def ids(runs: list[dict]) -> list[str]:
    return [r["dagRunId"] for r in runs]


# -- lists ------------------------------------------------------------------------------------

def test_list_filters_and_pagination(srv):
    write_dag(srv, "lst_ok", "steps:\n  - name: s\n    command: echo ok\n")
    write_dag(srv, "lst_bad", "steps:\n  - name: s\n    command: exit 3\n")
    start_run(srv, "lst_ok", "lst-a1")
    start_run(srv, "lst_ok", "lst-a2")
    time.sleep(1.05 - time.time() % 1)          # the next run is created in a later second
    mid = int(time.time())
    bad = start_run(srv, "lst_bad", "lst-b1")
    assert bad["statusLabel"] == "failed"
    end = int(time.time()) + 1

    runs, page = listing(srv, "/dag-runs?name=lst_")
    assert ids(runs) == ["lst-b1", "lst-a2", "lst-a1"]          # newest first
    assert page == {"totalRecords": 3, "currentPage": 1, "totalPages": 1, "nextPage": 1,
                    "prevPage": 1}
    first = runs[-1]
    assert first["name"] == "lst_ok" and first["rootDAGRunName"] == "lst_ok"
    assert first["rootDAGRunId"] == "lst-a1" and first["parentDAGRunId"] == ""
    assert first["status"] == 4 and first["statusLabel"] == "finished"
    assert first["log"].endswith("run.log") and first["startedAt"] and first["finishedAt"]

    assert ids(listing(srv, "/dag-runs/lst_ok")[0]) == ["lst-a2", "lst-a1"]   # exact name
    assert listing(srv, "/dag-runs/lst_o")[0] == []
    assert ids(listing(srv, "/dag-runs?name=lst_&status=2")[0]) == ["lst-b1"]
    assert ids(listing(srv, "/dag-runs?name=lst_&status=4")[0]) == ["lst-a2", "lst-a1"]
    assert listing(srv, "/dag-runs?name=lst_&status=1")[0] == []
    assert ids(listing(srv, "/dag-runs?dagRunId=st-a")[0]) == ["lst-a2", "lst-a1"]
    assert ids(listing(srv, "/dag-runs/lst_ok?dagRunId=a2")[0]) == ["lst-a2"]
    # created time in [fromDate, toDate)
    assert ids(listing(srv, f"/dag-runs?name=lst_&fromDate={mid}")[0]) == ["lst-b1"]
    assert ids(listing(srv, f"/dag-runs?name=lst_&toDate={mid}")[0]) == ["lst-a2", "lst-a1"]
    assert len(listing(srv, f"/dag-runs?name=lst_&fromDate={mid - 60}&toDate={end}")[0]) == 3
    assert listing(srv, f"/dag-runs?name=lst_&fromDate={end + 60}")[0] == []
    # pagination
    runs, page = listing(srv, "/dag-runs?name=lst_&perPage=2")
    assert ids(runs) == ["lst-b1", "lst-a2"]
    assert page == {"totalRecords": 3, "currentPage": 1, "totalPages": 2, "nextPage": 2,
                    "prevPage": 1}
    runs, page = listing(srv, "/dag-runs?name=lst_&perPage=2&page=2")
    assert ids(runs) == ["lst-a1"] and page["currentPage"] == 2 and page["prevPage"] == 1
    assert listing(srv, "/dag-runs?name=lst_&perPage=2&page=3")[0] == []
    assert listing(srv, f"/dag-runs?name=lst_&perPage=1000&page={10**30}")[0] == []
    runs, page = listing(srv, "/dag-runs?name=lst_&perPage=0&page=0")     # defaults
    assert len(runs) == 3 and page["currentPage"] == 1
    # the unfiltered list holds the newest runs of every DAG (not only today's), newest first
    runs, _ = listing(srv, "/dag-runs")
    assert ids(runs)[:1] != [] and "lst-b1" in ids(runs)
    mine = [r for r in ids(runs) if r.startswith("lst-")]
    assert mine == ["lst-b1", "lst-a2", "lst-a1"]


@pytest.mark.parametrize("query", ["status=abc", "status=7", "status=-1", "fromDate=1.5",
                                   "toDate=tomorrow", "page=x", "perPage=1e3",
                                   f"fromDate={10**30}", f"toDate=-{10**20}"])
def test_list_rejects_bad_query_values(srv, query):
    check_error(srv.get(f"/dag-runs?{query}"), 400, "bad_request")
    check_error(srv.get(f"/dag-runs/somedag?{query}"), 400, "bad_request")


def test_list_of_unknown_dag_is_empty_list_and_remote_node_is_checked(srv):
    r = srv.get("/dag-runs/no_such_dag")
    assert r.status == 200 and r.json["dagRuns"] == []
    assert srv.get("/dag-runs?remoteNode=local").status == 200
    check_error(srv.get("/dag-runs?remoteNode=elsewhere"), 400, "bad_request",
                "remote node elsewhere not found")


def test_list_stays_fast_with_50000_runs(srv):
    """Lists and counts come from indexes: a page costs O(page), not O(history)."""
    from dagu.store import RunStore
    store = RunStore(str(srv.home / "data" / "dagu.db"))
    old = 1_500_000_000_000           # 2017: old history must still be listed without dates
    try:
        with store._write() as conn:   # seeding in one transaction (50,000 commits would be slow)
            for i in range(50_000):
                store._insert(conn, {"name": f"bulk{i % 20}", "dagRunId": f"bulk-{i:05d}",
                                     "createdAt": old + i * 1000, "status": 4 if i % 9 else 2,
                                     "statusLabel": "finished", "nodes": []})
    finally:
        store.close()
    for path in ("/dag-runs?name=bulk", "/dag-runs?name=bulk&perPage=1000&page=40",
                 "/dag-runs/bulk7?status=2", "/dag-runs?dagRunId=bulk-4999",
                 f"/dag-runs?name=bulk&fromDate={old // 1000}&toDate={old // 1000 + 3600}"):
        started = time.perf_counter()
        runs, page = listing(srv, path)
        elapsed = time.perf_counter() - started
        assert elapsed < 1.0, (path, elapsed)
        assert runs, path
    runs, page = listing(srv, "/dag-runs?name=bulk")
    assert len(runs) == 100 and page["totalRecords"] == 50_000 and page["totalPages"] == 500
    assert runs[0]["dagRunId"] == "bulk-49999"
    runs, _ = listing(srv, "/dag-runs?name=bulk&perPage=5000")     # capped at 1000
    assert len(runs) == 1000
    runs, page = listing(srv, "/dag-runs?dagRunId=bulk-4999")
    assert ids(runs) == [f"bulk-4999{d}" for d in range(9, -1, -1)]      # substring match
    assert page["totalRecords"] == 10
    runs, _ = listing(srv, f"/dag-runs?name=bulk&fromDate={old // 1000}&toDate={old // 1000 + 3}")
    assert ids(runs) == ["bulk-00002", "bulk-00001", "bulk-00000"]


# -- details ----------------------------------------------------------------------------------

def test_details_latest_and_not_found(srv):
    write_dag(srv, "det", "params: P=1\nsteps:\n  - name: one\n    command: echo one\n"
                          "  - name: two\n    command: echo two\n"
                          "handlerOn:\n  exit:\n    command: echo bye\n")
    start_run(srv, "det", "det-1")
    second = start_run(srv, "det", "det-2", params="P=2")
    assert second["dagRunId"] == "det-2" and second["name"] == "det"
    assert second["params"] == "P=2" and second["status"] == 4
    assert [n["step"]["name"] for n in second["nodes"]] == ["one", "two"]
    one = node(second, "one")
    assert one["status"] == 4 and one["statusLabel"] == "finished"
    assert one["stdout"].endswith(".out") and one["stderr"].endswith(".err")
    assert one["startedAt"] and one["finishedAt"] and one["retryCount"] == 0
    assert second["onExit"]["step"]["name"] == "onExit" and second["onExit"]["status"] == 4
    assert details(srv, "det", "latest")["dagRunId"] == "det-2"
    assert details(srv, "det", "det-1")["params"] == "P=1"
    check_error(srv.get("/dag-runs/det/det-"), 404, "not_found",
                "dag-run ID det- not found for DAG det")            # ids match exactly
    check_error(srv.get("/dag-runs/det/nope"), 404, "not_found",
                "dag-run ID nope not found for DAG det")
    check_error(srv.get("/dag-runs/nodag/latest"), 404, "not_found",
                "dag-run ID latest not found for DAG nodag")
    check_error(srv.get("/dag-runs/det/det-1?remoteNode=x"), 400, "bad_request")


# -- logs -------------------------------------------------------------------------------------

def test_run_and_step_logs(srv):
    write_dag(srv, "logs", "steps:\n  - name: count\n    command: seq 1 20\n"
                           "  - name: noisy\n    command: sh -c 'echo to-out; echo to-err >&2'\n"
                           "handlerOn:\n  exit:\n    command: echo bye\n")
    run = start_run(srv, "logs", "logs-1")
    base = "/dag-runs/logs/logs-1/steps/count/log"
    full = check_log(srv.get(base).json)
    assert full == {"content": "\n".join(str(i) for i in range(1, 21)), "lineCount": 20,
                    "totalLines": 20, "hasMore": False, "isEstimate": False}
    cases = {"?tail=3": ("18\n19\n20", True), "?head=2": ("1\n2", True),
             "?offset=5&limit=3": ("5\n6\n7", True), "?offset=19": ("19\n20", False),
             "?offset=30": ("", False), "?limit=4": ("1\n2\n3\n4", True),
             "?tail=50": (full["content"], False), "?tail=2&head=5": ("19\n20", True),
             "?head=3&offset=10": ("1\n2\n3", True)}
    for query, (content, more) in cases.items():
        body = check_log(srv.get(base + query).json)
        assert (body["content"], body["hasMore"]) == (content, more), query
        assert body["lineCount"] == (len(content.split("\n")) if content else 0), query
        assert body["totalLines"] == 20 and body["isEstimate"] is False
    noisy = "/dag-runs/logs/logs-1/steps/noisy/log"
    assert srv.get(noisy).json["content"] == "to-out"                      # stdout by default
    assert srv.get(noisy + "?stream=stdout").json["content"] == "to-out"
    assert srv.get(noisy + "?stream=stderr").json["content"] == "to-err"
    check_error(srv.get(noisy + "?stream=both"), 400, "bad_request")
    check_error(srv.get(base + "?tail=x"), 400, "bad_request")
    assert srv.get("/dag-runs/logs/logs-1/steps/onExit/log").json["content"] == "bye"
    check_error(srv.get("/dag-runs/logs/logs-1/steps/nope/log"), 404, "not_found",
                "step nope not found in DAG logs")
    check_error(srv.get("/dag-runs/logs/nope/steps/count/log"), 404, "not_found")
    # the run's own log
    body = check_log(srv.get("/dag-runs/logs/logs-1/log").json)
    assert "logs-1" in body["content"] and body["lineCount"] == body["totalLines"] >= 2
    assert check_log(srv.get("/dag-runs/logs/logs-1/log?head=1").json)["lineCount"] == 1
    assert check_log(srv.get("/dag-runs/logs/latest/log?tail=1").json)["lineCount"] == 1
    check_error(srv.get("/dag-runs/logs/nope/log"), 404, "not_found",
                "dag-run ID nope not found for DAG logs")
    # a log file that is gone is 404, never 500
    Path(node(run, "noisy")["stderr"]).unlink()
    check_error(srv.get(noisy + "?stream=stderr"), 404, "not_found")
    Path(run["log"]).unlink()
    check_error(srv.get("/dag-runs/logs/logs-1/log"), 404, "not_found")


def test_big_step_log_is_read_in_bounded_pieces(srv):
    write_dag(srv, "biglog", "steps:\n  - name: big\n    command: seq 1 800000\n")
    run = start_run(srv, "biglog", "big-1")
    assert Path(node(run, "big")["stdout"]).stat().st_size > 5_000_000
    base = "/dag-runs/biglog/big-1/steps/big/log"
    started = time.perf_counter()
    tail = check_log(srv.get(base + "?tail=2").json)
    assert time.perf_counter() - started < 1.0
    assert tail["content"] == "799999\n800000" and tail["lineCount"] == 2
    assert tail["hasMore"] is True and tail["isEstimate"] is True
    assert 700_000 <= tail["totalLines"] <= 900_000
    head = check_log(srv.get(base + "?head=1").json)
    assert head["content"] == "1" and head["hasMore"] is True and head["isEstimate"] is True
    middle = check_log(srv.get(base + "?offset=400000&limit=2").json)
    assert middle["content"] == "400000\n400001" and middle["hasMore"] is True
    default = check_log(srv.get(base).json)
    assert default["lineCount"] == 1000 and default["content"].endswith("\n1000")


# -- retry ------------------------------------------------------------------------------------

def test_retry_in_place_after_failure(srv):
    marker = srv.home / "retry-fix"
    write_dag(srv, "rtry", f"steps:\n  - name: check\n    command: test -f {marker}\n"
                           "  - name: after\n    command: echo after\n")
    run = start_run(srv, "rtry", "rtry-1")
    assert run["statusLabel"] == "failed" and run.get("attempt", 1) == 1
    assert node(run, "check")["status"] == 2
    assert node(run, "after")["status"] in (0, 3)
    marker.write_text("fixed")                          # fix the cause
    r = srv.post("/dag-runs/rtry/rtry-1/retry")        # no body: retry in place
    assert r.status == 200 and r.json == {"dagRunId": "rtry-1"}
    done = srv.wait_run("rtry", "rtry-1")
    assert done["statusLabel"] == "finished" and done["dagRunId"] == "rtry-1"
    assert done["attempt"] == 2
    assert node(done, "check")["status"] == 4 and node(done, "after")["status"] == 4
    # the same id in the body is also a retry in place; nothing new was created
    r = srv.post("/dag-runs/rtry/rtry-1/retry", {"dagRunId": "rtry-1"})
    assert r.status == 200 and r.json == {"dagRunId": "rtry-1"}
    wait_for(lambda: details(srv, "rtry", "rtry-1").get("attempt") == 3, what="attempt 3")
    assert srv.wait_run("rtry", "rtry-1")["statusLabel"] == "finished"
    assert ids(listing(srv, "/dag-runs/rtry")[0]) == ["rtry-1"]


def test_retry_one_step(srv):
    counts = srv.home / "counts"
    counts.mkdir()
    write_dag(srv, "rstep", "steps:\n"
              f"  - name: first\n    command: sh -c 'echo x >> {counts}/first'\n"
              f"  - name: second\n    command: sh -c 'echo x >> {counts}/second'\n")
    start_run(srv, "rstep", "rstep-1")
    r = srv.post("/dag-runs/rstep/rstep-1/retry", {"stepName": "first"})
    assert r.status == 200 and r.json == {"dagRunId": "rstep-1"}
    done = wait_for(lambda: (d := srv.wait_run("rstep", "rstep-1")).get("attempt") == 2 and d,
                    what="attempt 2")
    assert done["statusLabel"] == "finished"
    assert (counts / "first").read_text() == "x\nx\n"       # re-run
    assert (counts / "second").read_text() == "x\n"         # kept as it was
    check_error(srv.post("/dag-runs/rstep/rstep-1/retry", {"stepName": "nope"}), 404,
                "not_found", "step nope not found in DAG rstep")
    check_error(srv.post("/dag-runs/rstep/rstep-1/retry",
                         {"dagRunId": "other", "stepName": "first"}), 400, "bad_request")
    check_error(srv.post("/dag-runs/rstep/rstep-1/retry", {"stepName": 3}), 400, "bad_request")
    check_error(srv.post("/dag-runs/rstep/rstep-1/retry", raw=b"{oops"), 400, "bad_request")


def test_retry_with_new_id_is_a_new_run(srv):
    write_dag(srv, "rnew", 'params: "first NAME=dflt"\nsteps:\n'
                           '  - name: s\n    command: echo "$1/$NAME"\n')
    original = start_run(srv, "rnew", "rnew-1", params='"one two" NAME="v w"')
    assert original["params"] == "1=one two NAME=v w"
    r = srv.post("/dag-runs/rnew/rnew-1/retry", {"dagRunId": "rnew-2"})
    assert r.status == 200 and r.json == {"dagRunId": "rnew-2"}
    new = srv.wait_run("rnew", "rnew-2")
    assert new["statusLabel"] == "finished" and new["params"] == original["params"]
    assert new.get("attempt", 1) == 1
    assert srv.get("/dag-runs/rnew/rnew-2/steps/s/log").json["content"] == "one two/v w"
    assert details(srv, "rnew", "rnew-1") == original             # untouched
    check_error(srv.post("/dag-runs/rnew/rnew-1/retry", {"dagRunId": "rnew-2"}), 409,
                "already_exists", "dag-run ID rnew-2 already exists for DAG rnew")
    check_error(srv.post("/dag-runs/rnew/rnew-1/retry", {"dagRunId": "bad id!"}), 400,
                "bad_request")
    check_error(srv.post("/dag-runs/rnew/nope/retry"), 404, "not_found",
                "dag-run ID nope not found for DAG rnew")
    check_error(srv.post("/dag-runs/nodag/x/retry", {"dagRunId": "y"}), 404, "not_found")


# -- stop, dequeue, and what a running run refuses --------------------------------------------

def test_stop_running_run(srv):
    write_dag(srv, "stopme", "steps:\n  - name: nap\n    command: sleep 30\n"
                             "  - name: never\n    command: echo never\n")
    start_run(srv, "stopme", "stop-1", wait=False)
    wait_status(srv, "stopme", "stop-1", "running")
    wait_for(lambda: node(details(srv, "stopme", "stop-1"), "nap")["status"] == 1,
             what="step running")
    # a running run refuses retry, step status changes and dequeue
    check_error(srv.post("/dag-runs/stopme/stop-1/retry"), 409, "already_running")
    check_error(srv.request("PATCH", "/dag-runs/stopme/stop-1/steps/nap/status", {"status": 4}),
                400, "bad_request", "dag-run ID stop-1 for DAG stopme is still running")
    check_error(srv.get("/dag-runs/stopme/stop-1/dequeue"), 400, "bad_request",
                "DAGRun status is not queued: running")
    started = time.monotonic()
    r = srv.post("/dag-runs/stopme/stop-1/stop")
    assert r.status == 200 and time.monotonic() - started < 5
    run = srv.wait_run("stopme", "stop-1", timeout=10)
    assert run["status"] == 3 and run["statusLabel"] == "cancelled" and run["finishedAt"]
    assert node(run, "nap")["status"] == 3 and node(run, "never")["status"] == 0
    check_error(srv.post("/dag-runs/stopme/stop-1/stop"), 400, "not_running",
                "DAG is not running")
    check_error(srv.post("/dag-runs/stopme/nope/stop"), 404, "not_found",
                "dag-run ID nope not found for DAG stopme")


def test_dequeue_queued_run(srv):
    write_dag(srv, "qd", "maxActiveRuns: 1\nsteps:\n  - name: nap\n    command: sleep 30\n")
    start_run(srv, "qd", "qd-1", wait=False)
    wait_status(srv, "qd", "qd-1", "running")
    out = dagu(srv, "enqueue", "--run-id", "qd-2", "qd")
    assert out.returncode == 0, out.stderr
    queued = details(srv, "qd", "qd-2")
    assert queued["status"] == 5 and queued["statusLabel"] == "queued" and queued["queuedAt"]
    # a queued run is neither stopped nor retried; HEAD (routed like GET) changes nothing
    check_error(srv.post("/dag-runs/qd/qd-2/stop"), 400, "not_running", "DAG is not running")
    check_error(srv.post("/dag-runs/qd/qd-2/retry"), 409, "already_running")
    assert srv.request("HEAD", "/dag-runs/qd/qd-2/dequeue").status == 200
    assert details(srv, "qd", "qd-2")["statusLabel"] == "queued"
    r = srv.get("/dag-runs/qd/qd-2/dequeue")
    assert r.status == 200 and r.body == b""
    run = details(srv, "qd", "qd-2")
    assert run["status"] == 3 and run["statusLabel"] == "cancelled" and run["finishedAt"]
    check_error(srv.get("/dag-runs/qd/qd-2/dequeue"), 400, "bad_request",
                "DAGRun status is not queued: cancelled")
    check_error(srv.get("/dag-runs/qd/nope/dequeue"), 404, "not_found",
                "dag-run ID nope not found for DAG qd")
    assert srv.post("/dag-runs/qd/qd-1/stop").status == 200
    assert srv.wait_run("qd", "qd-1", timeout=10)["statusLabel"] == "cancelled"
    time.sleep(0.5)                  # the freed slot must not start the dequeued run
    assert details(srv, "qd", "qd-2")["statusLabel"] == "cancelled"


# -- step status ------------------------------------------------------------------------------

def test_patch_step_status_then_retry_skips_it(srv):
    counts = srv.home / "patch-counts"
    counts.mkdir()
    write_dag(srv, "patch", "steps:\n"
              f"  - name: flaky\n    command: sh -c 'echo x >> {counts}/flaky; exit 1'\n"
              f"  - name: next\n    command: sh -c 'echo x >> {counts}/next'\n")
    run = start_run(srv, "patch", "patch-1")
    assert run["statusLabel"] == "failed"
    path = "/dag-runs/patch/patch-1/steps/flaky/status"
    r = srv.request("PATCH", path, {"status": 4})
    assert r.status == 200
    patched = details(srv, "patch", "patch-1")
    assert node(patched, "flaky")["status"] == 4
    assert node(patched, "flaky")["statusLabel"] == "finished"
    assert patched["status"] == 2                       # the run status is not recomputed
    for bad in ({"status": 9}, {"status": -1}, {"status": "4"}, {"status": True}, {}, None):
        check_error(srv.request("PATCH", path, bad), 400, "bad_request")
    check_error(srv.request("PATCH", path, raw=b"[1]"), 400, "bad_request")
    check_error(srv.request("PATCH", "/dag-runs/patch/patch-1/steps/nope/status", {"status": 4}),
                404, "not_found", "step nope not found in DAG patch")
    check_error(srv.request("PATCH", "/dag-runs/patch/nope/steps/flaky/status", {"status": 4}),
                404, "not_found", "dag-run ID nope not found for DAG patch")
    assert srv.post("/dag-runs/patch/patch-1/retry").status == 200
    done = wait_for(lambda: (d := srv.wait_run("patch", "patch-1")).get("attempt") == 2 and d,
                    what="attempt 2")
    assert done["statusLabel"] == "finished"
    assert (counts / "flaky").read_text() == "x\n"       # skipped: it was marked finished
    assert (counts / "next").read_text() == "x\n"


# -- children ---------------------------------------------------------------------------------

def test_child_run_endpoints(srv):
    write_dag(srv, "parent", "steps:\n  - name: call\n    run: kid\n    params: \"X=7\"\n"
                             "---\nname: kid\nparams: X=0\nsteps:\n"
                             "  - name: k1\n    command: sh -c 'echo kid-$X; echo kid-err >&2'\n"
                             "  - name: k2\n    command: echo two\n")
    run = start_run(srv, "parent", "par-1")
    assert run["statusLabel"] == "finished"
    children = node(run, "call")["children"]
    assert len(children) == 1 and children[0]["params"]
    cid = children[0]["dagRunId"]
    base = f"/dag-runs/parent/par-1/children/{cid}"
    r = srv.get(base)
    assert r.status == 200 and set(r.json) == {"dagRunDetails"}
    child = check_details(r.json["dagRunDetails"])
    assert child["dagRunId"] == cid and child["name"] == "kid" and child["params"] == "X=7"
    assert child["rootDAGRunName"] == "parent" and child["rootDAGRunId"] == "par-1"
    assert child["parentDAGRunName"] == "parent" and child["parentDAGRunId"] == "par-1"
    assert child["statusLabel"] == "finished"
    assert "kid" in check_log(srv.get(base + "/log").json)["content"]
    assert srv.get(base + "/steps/k1/log").json["content"] == "kid-7"
    assert srv.get(base + "/steps/k1/log?stream=stderr").json["content"] == "kid-err"
    check_error(srv.get(base + "/steps/k1/log?stream=x"), 400, "bad_request")
    check_error(srv.get(base + "/steps/nope/log"), 404, "not_found",
                "step nope not found in DAG parent")
    r = srv.request("PATCH", base + "/steps/k2/status", {"status": 5})
    assert r.status == 200
    assert node(srv.get(base).json["dagRunDetails"], "k2")["statusLabel"] == "skipped"
    check_error(srv.request("PATCH", base + "/steps/k2/status", {"status": 6}), 400, "bad_request")
    check_error(srv.request("PATCH", base + "/steps/nope/status", {"status": 4}), 404, "not_found")
    missing = "/dag-runs/parent/par-1/children/nokid"
    message = "child dag-run ID nokid not found for DAG parent"
    check_error(srv.get(missing), 404, "not_found", message)
    check_error(srv.get(missing + "/log"), 404, "not_found", message)
    check_error(srv.get(missing + "/steps/k1/log"), 404, "not_found", message)
    check_error(srv.request("PATCH", missing + "/steps/k1/status", {"status": 4}), 404,
                "not_found", message)
    check_error(srv.get(f"/dag-runs/parent/nope/children/{cid}"), 404, "not_found")
    # children are reached through their root only, and never listed
    check_error(srv.get(f"/dag-runs/kid/{cid}"), 404, "not_found")
    assert cid not in ids(listing(srv, "/dag-runs?perPage=1000")[0])
    assert listing(srv, "/dag-runs/kid")[0] == []


def test_run_routes_need_run_permission(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "config.yaml").write_text("permissions:\n  runDAGs: false\n")
    server = start_server(tmp_path / "home")
    try:
        for method, path in (("GET", "/dag-runs/d/r/dequeue"), ("POST", "/dag-runs/d/r/retry"),
                             ("POST", "/dag-runs/d/r/stop"),
                             ("PATCH", "/dag-runs/d/r/steps/s/status"),
                             ("PATCH", "/dag-runs/d/r/children/c/steps/s/status")):
            check_error(server.request(method, path, {"status": 4}), 403, "forbidden")
        assert server.get("/dag-runs").status == 200
        check_error(server.get("/dag-runs/d/r"), 404, "not_found")
    finally:
        server.stop()


# -- the bounded reads behind the log endpoints (dagu/logs.py) --------------------------------

@pytest.mark.parametrize("data, options, content, count, total, more", [
    (b"", {}, "", 0, 0, False),
    (b"\n", {}, "", 1, 1, False),
    (b"a\nb", {"tail": 1}, "b", 1, 2, True),                    # no final newline
    (b"a\r\nb\r\n", {}, "a\nb", 2, 2, False),                   # CRLF
    (b"a\n\nc\n", {"tail": 2}, "\nc", 2, 3, True),               # empty lines count
    (b"1\n2\n3\n", {"offset": 2, "limit": 5}, "2\n3", 2, 3, False),
    (b"1\n2\n3\n", {"offset": 4}, "", 0, 3, False),
    (b"1\n2\n3\n", {"head": 3}, "1\n2\n3", 3, 3, False),
    (b"1\n2\n3\n", {"limit": 2}, "1\n2", 2, 3, True),
    (b"\xff\xfe\n", {}, "\ufffd\ufffd", 1, 1, False),            # bytes kept, never an error
])
def test_read_log_pieces(tmp_path, data, options, content, count, total, more):
    from dagu.logs import read_log
    path = tmp_path / "log"
    path.write_bytes(data)
    assert read_log(str(path), **options).to_api() == {
        "content": content, "lineCount": count, "totalLines": total, "hasMore": more,
        "isEstimate": False}


def test_read_log_cuts_overlong_lines_and_estimates_big_files(tmp_path):
    from dagu.logs import MAX_LINE_BYTES, read_log
    path = tmp_path / "log"
    path.write_bytes(b"x" * (MAX_LINE_BYTES * 3) + b"\nend\n")
    for options in ({}, {"tail": 2}):
        page = read_log(str(path), **options)
        assert [len(line) for line in page.lines] == [MAX_LINE_BYTES, 3], options
        assert page.is_estimate and page.total_lines >= 2 and not page.has_more
    with pytest.raises(FileNotFoundError):
        read_log(str(tmp_path / "missing"))
