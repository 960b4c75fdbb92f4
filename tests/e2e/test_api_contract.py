"""Contract tests: every one of the 29 operations of the reference OpenAPI document
(/work/shared/reference/dagu-api-v2.yaml, Dagu v1.17), driven into its success state on the real
dagu.pyz (`start-all`), its body validated against the reference schema and its status compared
with the one the reference declares; then the main error responses (404 unknown DAG/run, 400 bad
input, 409 conflicts) validated against the reference's Error schema.

One module-scoped server; every operation that changes something has DAGs and runs of its own, so
the tests do not depend on their order. Deliberate differences from the reference are listed in
/work/shared/DESIGN.md § "API decisions"; real mismatches are strict xfails with their reason."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import pytest

from tests import apischema
from tests.apiclient import Reply, Server, start_server

pytestmark = pytest.mark.skipif(not apischema.spec_available(),
                                reason=f"no reference document at {apischema.SPEC_PATH}")

ERROR_CODES = ["forbidden", "bad_request", "not_found", "internal_error", "unauthorized",
               "bad_gateway", "remote_node_error", "already_running", "not_running",
               "already_exists"]

# -- the DAGs ---------------------------------------------------------------------------------

ALPHA = """\
description: the contract DAG
tags: [contract, Demo]
schedule: "0 0 1 1 *"
params: X=1
handlerOn:
  exit:
    command: echo bye
steps:
  - name: s1
    command: sh -c 'echo out-$X; echo err-$X >&2'
  - name: s2
    command: echo two
    depends: [s1]
"""
PARENT = """\
steps:
  - name: call
    run: kid
    params: "X=7"
---
name: kid
params: X=0
steps:
  - name: k1
    command: sh -c 'echo kid-$X; echo kid-err >&2'
  - name: k2
    command: echo two
"""
ECHO = "steps:\n  - name: hello\n    command: echo hello\n"
FAIL = "steps:\n  - name: boom\n    command: sh -c 'echo boom; exit 1'\n"
SLEEP = "steps:\n  - name: nap\n    command: sleep 30\n"
QUEUED = "maxActiveRuns: 1\nsteps:\n  - name: nap\n    command: sleep 30\n"
BROKEN = "steps:\n  - name: a\n    depends: [nowhere]\n    command: echo a\n  - nonsense: [\n"

DAGS = {"alpha": ALPHA, "parent": PARENT, "failer": FAIL, "patchme": ECHO, "sleeper": SLEEP,
        "qd": QUEUED, "starter": ECHO, "enq": ECHO, "deleteme": ECHO, "specme": ECHO,
        "suspendme": ECHO, "renameme": ECHO, "taken": ECHO, "neverrun": ECHO, "broken": BROKEN}


@dataclass
class World:
    srv: Server
    child_id: str = ""
    runs: dict = field(default_factory=dict)


def _start(srv: Server, dag: str, run_id: str) -> None:
    r = srv.post(f"/dags/{dag}/start", {"dagRunId": run_id})
    assert r.status == 200, (dag, r.status, r.body)


@pytest.fixture(scope="module")
def world(tmp_path_factory, zipapp) -> World:
    srv = start_server(tmp_path_factory.mktemp("contract") / "home", command="start-all",
                       entry=[sys.executable, "-I", "-S", str(zipapp)])
    w = World(srv)
    try:
        for name, text in DAGS.items():
            (srv.dags / f"{name}.yaml").write_text(text)
        for dag, run_id in (("alpha", "a-1"), ("parent", "p-1"), ("failer", "f-1"),
                            ("patchme", "pm-1"), ("sleeper", "s-1"), ("qd", "qd-1")):
            _start(srv, dag, run_id)
        for dag, run_id in (("alpha", "a-1"), ("parent", "p-1"), ("failer", "f-1"),
                            ("patchme", "pm-1")):
            w.runs[dag] = srv.wait_run(dag, run_id)
        srv.wait_run("sleeper", "s-1", done=("running",))
        srv.wait_run("qd", "qd-1", done=("running",))
        r = srv.post("/dags/qd/enqueue", {"dagRunId": "qd-2"})
        assert r.status == 200, r.body
        srv.wait_run("qd", "qd-2", done=("queued",))
        call = next(n for n in w.runs["parent"]["nodes"] if n["step"]["name"] == "call")
        w.child_id = call["children"][0]["dagRunId"]
        yield w
    finally:
        for dag, run_id in (("sleeper", "s-1"), ("qd", "qd-1"), ("qd", "qd-2")):
            try:
                srv.post(f"/dag-runs/{dag}/{run_id}/stop")
            except OSError:
                pass
        srv.stop()


# -- the reference's operations -----------------------------------------------------------------

def reference_operations() -> list[tuple[str, str, str]]:
    """(operationId, METHOD, path template) of every operation in the reference."""
    ops = []
    for template, item in (apischema.load_spec().get("paths") or {}).items():
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch", "head", "options"):
                ops.append((op["operationId"], method.upper(), template))
    return ops


def operation(template: str, method: str) -> dict:
    return apischema.load_spec()["paths"][template][method.lower()]


def declared_success(template: str, method: str) -> int:
    codes = [c for c in operation(template, method)["responses"] if str(c).startswith("2")]
    assert len(codes) == 1, f"{method} {template}: success codes {codes}"
    return int(codes[0])


def declares_body(template: str, method: str, status: int) -> bool:
    response = operation(template, method)["responses"][str(status)]
    return bool(response.get("content"))


def check_error(reply: Reply, template: str, method: str, status: int, code: str) -> None:
    """An error reply: the status, the reference's Error schema, the ErrorCode, the code."""
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers.get("content-type", "").startswith("application/json")
    body = reply.json
    apischema.assert_response(body, template, method, status)
    assert apischema.check(body, "Error") == []
    assert body["code"] in ERROR_CODES and body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"], body


# -- success cases ----------------------------------------------------------------------------

@dataclass
class Case:
    op: str                          # operationId
    method: str
    template: str
    call: Callable[[World], Reply]
    after: Callable[[World, Reply], None] | None = None
    label: str = ""
    patterns: bool = True            # also the reference's DAGName/DAGRunId patterns
    marks: tuple = ()


def _patch(path: str, body) -> Callable[[World], Reply]:
    return lambda w: w.srv.request("PATCH", path, body)


def _child(w: World, rest: str = "") -> str:
    return f"/dag-runs/parent/p-1/children/{w.child_id}{rest}"


def _after_create(w: World, r: Reply) -> None:
    assert r.json == {"name": "created"}
    assert (w.srv.dags / "created.yaml").is_file()


def _after_delete(w: World, r: Reply) -> None:
    assert not (w.srv.dags / "deleteme.yaml").exists()
    assert w.srv.get("/dags/deleteme").status == 404


def _after_start(w: World, r: Reply) -> None:
    assert r.json == {"dagRunId": "st-1"}
    run = w.srv.wait_run("starter", "st-1")
    apischema.assert_response({"dagRunDetails": run}, "/dag-runs/{name}/{dagRunId}", "get", 200)


def _after_enqueue(w: World, r: Reply) -> None:
    assert r.json == {"dagRunId": "enq-1"}
    run = w.srv.wait_run("enq", "enq-1", done=("queued", "running", "finished"))
    apischema.assert_response({"dagRunDetails": run}, "/dag-runs/{name}/{dagRunId}", "get", 200)
    w.srv.wait_run("enq", "enq-1")        # do not leave a runner behind


def _after_put_spec(w: World, r: Reply) -> None:
    assert r.json == {"errors": []}       # DESIGN: PUT spec answers {errors: []} when saved
    assert "again" in (w.srv.dags / "specme.yaml").read_text()


def _after_put_bad_spec(w: World, r: Reply) -> None:
    assert r.json["errors"], r.json       # invalid: 200 {errors: [...]}, nothing written
    assert "nosuchstep" not in (w.srv.dags / "specme.yaml").read_text()


def _after_suspend(w: World, r: Reply) -> None:
    assert w.srv.get("/dags/suspendme").json["suspended"] is True


def _after_rename(w: World, r: Reply) -> None:
    assert not (w.srv.dags / "renameme.yaml").exists()
    assert w.srv.get("/dags/renamed").status == 200


def _after_dequeue(w: World, r: Reply) -> None:
    run = w.srv.wait_run("qd", "qd-2", done=("cancelled",), timeout=5)
    apischema.assert_response({"dagRunDetails": run}, "/dag-runs/{name}/{dagRunId}", "get", 200)
    assert w.srv.post("/dag-runs/qd/qd-1/stop").status == 200


def _retry(w: World) -> Reply:
    return w.srv.post("/dag-runs/failer/f-1/retry", {"dagRunId": "f-1"})


def _after_retry(w: World, r: Reply) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        run = w.srv.wait_run("failer", "f-1")
        if run.get("attempt", 1) >= 2:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the retry never ran")
    apischema.assert_response({"dagRunDetails": run}, "/dag-runs/{name}/{dagRunId}", "get", 200)


def _after_stop(w: World, r: Reply) -> None:
    run = w.srv.wait_run("sleeper", "s-1", timeout=10)
    assert run["statusLabel"] == "cancelled"
    apischema.assert_response({"dagRunDetails": run}, "/dag-runs/{name}/{dagRunId}", "get", 200)


def _after_patch(name: str, run_id: str, step: str, label: str, child: bool = False):
    def after(w: World, r: Reply) -> None:
        path = _child(w) if child else f"/dag-runs/{name}/{run_id}"
        run = w.srv.get(path).json["dagRunDetails"]
        node = next(n for n in run["nodes"] if n["step"]["name"] == step)
        assert node["statusLabel"] == label
        apischema.assert_response({"dagRunDetails": run}, "/dag-runs/{name}/{dagRunId}", "get",
                                  200)
    return after


def _log_has(text: str):
    def after(w: World, r: Reply) -> None:
        assert text in r.json["content"], r.json
    return after


RUN = "/dag-runs/{name}/{dagRunId}"
CHILD = RUN + "/children/{childDAGRunId}"

SUCCESS = [
    Case("getHealthStatus", "GET", "/health", lambda w: w.srv.get("/health")),
    # a DAG that never ran has latestDAGRun.dagRunId "" (as Dagu), outside the DAGRunId pattern
    Case("listDAGs", "GET", "/dags", lambda w: w.srv.get("/dags?perPage=100"), patterns=False),
    Case("listDAGs", "GET", "/dags", lambda w: w.srv.get("/dags?tag=contract&page=1&perPage=1"),
         label="filtered"),
    Case("createNewDAG", "POST", "/dags", lambda w: w.srv.post("/dags", {"name": "created"}),
         _after_create),
    Case("getDAGDetails", "GET", "/dags/{fileName}", lambda w: w.srv.get("/dags/alpha")),
    Case("getDAGDetails", "GET", "/dags/{fileName}", lambda w: w.srv.get("/dags/parent.yaml"),
         label="localDags"),
    Case("getDAGDetails", "GET", "/dags/{fileName}", lambda w: w.srv.get("/dags/neverrun"),
         label="never-run", patterns=False),
    Case("getDAGDetails", "GET", "/dags/{fileName}", lambda w: w.srv.get("/dags/broken"),
         label="broken", patterns=False),
    Case("getDAGDetails", "GET", "/dags/{fileName}", lambda w: w.srv.get("/dags/sleeper"),
         label="running"),
    Case("deleteDAG", "DELETE", "/dags/{fileName}",
         lambda w: w.srv.request("DELETE", "/dags/deleteme"), _after_delete),
    Case("executeDAG", "POST", "/dags/{fileName}/start",
         lambda w: w.srv.post("/dags/starter/start", {"dagRunId": "st-1", "params": ""}),
         _after_start),
    Case("enqueueDAGDAGRun", "POST", "/dags/{fileName}/enqueue",
         lambda w: w.srv.post("/dags/enq/enqueue", {"dagRunId": "enq-1"}), _after_enqueue),
    Case("getDAGDAGRunHistory", "GET", "/dags/{fileName}/dag-runs",
         lambda w: w.srv.get("/dags/alpha/dag-runs")),
    Case("getDAGDAGRunHistory", "GET", "/dags/{fileName}/dag-runs",
         lambda w: w.srv.get("/dags/neverrun/dag-runs"), label="never-run"),
    Case("getDAGDAGRunDetails", "GET", "/dags/{fileName}/dag-runs/{dagRunId}",
         lambda w: w.srv.get("/dags/alpha/dag-runs/a-1")),
    Case("getDAGDAGRunDetails", "GET", "/dags/{fileName}/dag-runs/{dagRunId}",
         lambda w: w.srv.get("/dags/neverrun/dag-runs/latest"), label="latest-never-run",
         patterns=False),
    Case("getDAGSpec", "GET", "/dags/{fileName}/spec", lambda w: w.srv.get("/dags/alpha/spec")),
    Case("getDAGSpec", "GET", "/dags/{fileName}/spec", lambda w: w.srv.get("/dags/broken/spec"),
         label="broken"),
    Case("updateDAGSpec", "PUT", "/dags/{fileName}/spec",
         lambda w: w.srv.request("PUT", "/dags/specme/spec",
                                 {"spec": ECHO.replace("hello", "again")}), _after_put_spec),
    Case("updateDAGSpec", "PUT", "/dags/{fileName}/spec",
         lambda w: w.srv.request("PUT", "/dags/specme/spec", {
             "spec": "steps:\n  - name: a\n    command: echo\n    depends: [nosuchstep]\n"}),
         _after_put_bad_spec, label="invalid"),
    Case("updateDAGSuspensionState", "POST", "/dags/{fileName}/suspend",
         lambda w: w.srv.post("/dags/suspendme/suspend", {"suspend": True}), _after_suspend),
    Case("renameDAG", "POST", "/dags/{fileName}/rename",
         lambda w: w.srv.post("/dags/renameme/rename", {"newFileName": "renamed"}),
         _after_rename),
    Case("searchDAGs", "GET", "/dags/search", lambda w: w.srv.get("/dags/search?q=echo")),
    Case("getAllDAGTags", "GET", "/dags/tags", lambda w: w.srv.get("/dags/tags")),
    Case("listDAGRuns", "GET", "/dag-runs", lambda w: w.srv.get("/dag-runs")),
    Case("listDAGRuns", "GET", "/dag-runs",
         lambda w: w.srv.get("/dag-runs?status=4&name=alpha&dagRunId=a-&fromDate=0"
                             "&toDate=99999999999"), label="filtered"),
    Case("listDAGRunsByName", "GET", "/dag-runs/{name}", lambda w: w.srv.get("/dag-runs/alpha")),
    Case("listDAGRunsByName", "GET", "/dag-runs/{name}", lambda w: w.srv.get("/dag-runs/qd"),
         label="running-and-queued"),
    Case("getDAGRunDetails", "GET", RUN, lambda w: w.srv.get("/dag-runs/alpha/a-1")),
    Case("getDAGRunDetails", "GET", RUN, lambda w: w.srv.get("/dag-runs/parent/latest"),
         label="latest-with-children"),
    Case("getDAGRunDetails", "GET", RUN, lambda w: w.srv.get("/dag-runs/qd/qd-2"),
         label="queued"),
    Case("getDAGRunDetails", "GET", RUN, lambda w: w.srv.get("/dag-runs/patchme/pm-1"),
         label="finished"),
    Case("dequeueDAGRun", "GET", RUN + "/dequeue", lambda w: w.srv.get("/dag-runs/qd/qd-2/dequeue"),
         _after_dequeue),
    Case("getDAGRunLog", "GET", RUN + "/log", lambda w: w.srv.get("/dag-runs/alpha/a-1/log")),
    Case("getDAGRunLog", "GET", RUN + "/log",
         lambda w: w.srv.get("/dag-runs/alpha/a-1/log?tail=2"), label="tail"),
    Case("retryDAGRun", "POST", RUN + "/retry", _retry, _after_retry),
    Case("terminateDAGRun", "POST", RUN + "/stop",
         lambda w: w.srv.post("/dag-runs/sleeper/s-1/stop"), _after_stop),
    Case("getDAGRunStepLog", "GET", RUN + "/steps/{stepName}/log",
         lambda w: w.srv.get("/dag-runs/alpha/a-1/steps/s1/log"), _log_has("out-1")),
    Case("getDAGRunStepLog", "GET", RUN + "/steps/{stepName}/log",
         lambda w: w.srv.get("/dag-runs/alpha/a-1/steps/s1/log?stream=stderr&head=1"),
         _log_has("err-1"), label="stderr"),
    Case("getDAGRunStepLog", "GET", RUN + "/steps/{stepName}/log",
         lambda w: w.srv.get("/dag-runs/alpha/a-1/steps/onExit/log"), _log_has("bye"),
         label="handler"),
    Case("updateDAGRunStepStatus", "PATCH", RUN + "/steps/{stepName}/status",
         _patch("/dag-runs/patchme/pm-1/steps/hello/status", {"status": 5}),
         _after_patch("patchme", "pm-1", "hello", "skipped")),
    Case("getChildDAGRunDetails", "GET", CHILD, lambda w: w.srv.get(_child(w))),
    Case("getChildDAGRunLog", "GET", CHILD + "/log", lambda w: w.srv.get(_child(w, "/log")),
         _log_has("kid")),
    Case("getChildDAGRunStepLog", "GET", CHILD + "/steps/{stepName}/log",
         lambda w: w.srv.get(_child(w, "/steps/k1/log")), _log_has("kid-7")),
    Case("updateChildDAGRunStepStatus", "PATCH", CHILD + "/steps/{stepName}/status",
         lambda w: w.srv.request("PATCH", _child(w, "/steps/k2/status"), {"status": 4}),
         _after_patch("parent", "p-1", "k2", "finished", child=True)),
    Case("getMetrics", "GET", "/metrics", lambda w: w.srv.get("/metrics")),
]


def test_the_table_covers_all_29_reference_operations():
    ops = reference_operations()
    assert len(ops) == 29
    covered = {(c.op, c.method, c.template) for c in SUCCESS}
    assert covered == set(ops), set(ops) ^ covered


def _case_id(case: Case) -> str:
    return case.op + (f"[{case.label}]" if case.label else "")


@pytest.mark.parametrize("case", [pytest.param(c, id=_case_id(c), marks=c.marks)
                                  for c in SUCCESS])
def test_success_matches_reference(world: World, case: Case):
    status = declared_success(case.template, case.method)
    reply = case.call(world)
    assert reply.status == status, (reply.status, reply.body[:500])
    if case.template == "/metrics":
        assert reply.headers["content-type"].startswith("text/plain")
        schema = apischema.response_schema(case.template, case.method, status)
        text = reply.body.decode("utf-8")
        assert apischema.check(text, schema) == []
        assert "dagu_uptime_seconds" in text and "dagu_dag_runs_total" in text
    elif declares_body(case.template, case.method, status):
        assert reply.headers.get("content-type", "").startswith("application/json")
        apischema.assert_response(reply.json, case.template, case.method, status,
                                  patterns=case.patterns)
    elif case.op == "retryDAGRun":
        # The reference declares no body; we answer {dagRunId} (an addition clients ignore,
        # asserted by tests/test_api_runs.py).
        assert reply.json == {"dagRunId": "f-1"}
    else:
        assert reply.body == b"", reply.body     # 200/204 without content
    if case.after:
        case.after(world, reply)


# -- error cases ------------------------------------------------------------------------------

@dataclass
class Err:
    template: str
    method: str
    path: str
    status: int
    code: str
    body: object = None
    label: str = ""
    marks: tuple = ()


ERRORS = [
    Err("/dags", "GET", "/dags?page=x", 400, "bad_request", label="page-not-int"),
    Err("/dags", "POST", "/dags", 400, "bad_request", {"name": "bad name!"}, "bad-name"),
    Err("/dags", "POST", "/dags", 400, "bad_request", {}, "no-name"),
    Err("/dags", "POST", "/dags", 409, "already_exists", {"name": "taken"}, "exists"),
    Err("/dags/{fileName}", "GET", "/dags/nope", 404, "not_found"),
    Err("/dags/{fileName}", "DELETE", "/dags/nope", 404, "not_found"),
    Err("/dags/{fileName}/start", "POST", "/dags/nope/start", 404, "not_found", {}),
    Err("/dags/{fileName}/start", "POST", "/dags/taken/start", 400, "bad_request",
        {"dagRunId": "bad id!"}, "bad-run-id"),
    Err("/dags/{fileName}/start", "POST", "/dags/alpha/start", 409, "already_exists",
        {"dagRunId": "a-1"}, "run-id-exists"),
    Err("/dags/{fileName}/enqueue", "POST", "/dags/nope/enqueue", 404, "not_found", {}),
    Err("/dags/{fileName}/enqueue", "POST", "/dags/taken/enqueue", 400, "bad_request",
        {"dagRunId": "bad id!"}, "bad-run-id"),
    Err("/dags/{fileName}/dag-runs", "GET", "/dags/nope/dag-runs", 404, "not_found"),
    Err("/dags/{fileName}/dag-runs/{dagRunId}", "GET", "/dags/nope/dag-runs/latest", 404,
        "not_found", label="unknown-dag"),
    Err("/dags/{fileName}/dag-runs/{dagRunId}", "GET", "/dags/alpha/dag-runs/nope", 404,
        "not_found", label="unknown-run"),
    Err("/dags/{fileName}/spec", "GET", "/dags/nope/spec", 404, "not_found"),
    Err("/dags/{fileName}/spec", "PUT", "/dags/nope/spec", 404, "not_found", {"spec": ECHO}),
    Err("/dags/{fileName}/spec", "PUT", "/dags/taken/spec", 400, "bad_request", {},
        "no-spec"),
    Err("/dags/{fileName}/suspend", "POST", "/dags/nope/suspend", 404, "not_found",
        {"suspend": True}),
    Err("/dags/{fileName}/suspend", "POST", "/dags/taken/suspend", 400, "bad_request",
        {"suspend": "yes"}, "not-bool"),
    Err("/dags/{fileName}/rename", "POST", "/dags/nope/rename", 404, "not_found",
        {"newFileName": "x"}),
    Err("/dags/{fileName}/rename", "POST", "/dags/taken/rename", 400, "bad_request",
        {"newFileName": "../escape"}, "bad-name"),
    Err("/dags/{fileName}/rename", "POST", "/dags/taken/rename", 400, "bad_request", {},
        "no-name"),
    Err("/dags/{fileName}/rename", "POST", "/dags/taken/rename", 409, "already_exists",
        {"newFileName": "alpha"}, "target-exists"),
    Err("/dags/search", "GET", "/dags/search", 400, "bad_request", label="no-q"),
    Err("/dags/search", "GET", "/dags/search?q=(", 400, "bad_request", label="bad-regex"),
    Err("/dag-runs", "GET", "/dag-runs?status=9", 400, "bad_request", label="bad-status"),
    Err("/dag-runs", "GET", "/dag-runs?fromDate=yesterday", 400, "bad_request",
        label="bad-date"),
    Err("/dag-runs/{name}", "GET", "/dag-runs/alpha?status=x", 400, "bad_request"),
    Err(RUN, "GET", "/dag-runs/alpha/nope", 404, "not_found"),
    Err(RUN, "GET", "/dag-runs/nope/nope", 404, "not_found", label="unknown-dag"),
    Err(RUN + "/dequeue", "GET", "/dag-runs/alpha/nope/dequeue", 404, "not_found"),
    Err(RUN + "/dequeue", "GET", "/dag-runs/alpha/a-1/dequeue", 400, "bad_request",
        label="not-queued"),
    Err(RUN + "/log", "GET", "/dag-runs/alpha/nope/log", 404, "not_found"),
    Err(RUN + "/retry", "POST", "/dag-runs/alpha/nope/retry", 404, "not_found",
        {"dagRunId": "nope"}),
    Err(RUN + "/retry", "POST", "/dag-runs/alpha/a-1/retry", 400, "bad_request",
        {"dagRunId": "bad id!"}, "bad-run-id"),
    Err(RUN + "/stop", "POST", "/dag-runs/alpha/nope/stop", 404, "not_found"),
    Err(RUN + "/stop", "POST", "/dag-runs/alpha/a-1/stop", 400, "not_running",
        label="not-running"),
    Err(RUN + "/steps/{stepName}/log", "GET", "/dag-runs/alpha/nope/steps/s1/log", 404,
        "not_found", label="unknown-run"),
    Err(RUN + "/steps/{stepName}/log", "GET", "/dag-runs/alpha/a-1/steps/nope/log", 404,
        "not_found", label="unknown-step"),
    Err(RUN + "/steps/{stepName}/log", "GET", "/dag-runs/alpha/a-1/steps/s1/log?stream=x", 400,
        "bad_request", label="bad-stream"),
    Err(RUN + "/steps/{stepName}/status", "PATCH", "/dag-runs/alpha/nope/steps/s1/status", 404,
        "not_found", {"status": 4}, "unknown-run"),
    Err(RUN + "/steps/{stepName}/status", "PATCH", "/dag-runs/alpha/a-1/steps/nope/status", 404,
        "not_found", {"status": 4}, "unknown-step"),
    Err(RUN + "/steps/{stepName}/status", "PATCH", "/dag-runs/alpha/a-1/steps/s1/status", 400,
        "bad_request", {"status": 9}, "bad-status"),
    Err(CHILD, "GET", "/dag-runs/parent/p-1/children/nokid", 404, "not_found"),
    Err(CHILD, "GET", "/dag-runs/parent/nope/children/nokid", 404, "not_found",
        label="unknown-root"),
    Err(CHILD + "/log", "GET", "/dag-runs/parent/p-1/children/nokid/log", 404, "not_found"),
    Err(CHILD + "/steps/{stepName}/log", "GET",
        "/dag-runs/parent/p-1/children/nokid/steps/k1/log", 404, "not_found"),
    Err(CHILD + "/steps/{stepName}/status", "PATCH",
        "/dag-runs/parent/p-1/children/nokid/steps/k1/status", 404, "not_found", {"status": 4}),
]

# child-run variants that need the real child id
CHILD_ERRORS = [
    Err(CHILD + "/steps/{stepName}/log", "GET", "/steps/nope/log", 404, "not_found",
        label="unknown-step"),
    Err(CHILD + "/steps/{stepName}/log", "GET", "/steps/k1/log?stream=x", 400, "bad_request",
        label="bad-stream"),
    Err(CHILD + "/steps/{stepName}/status", "PATCH", "/steps/nope/status", 404, "not_found",
        {"status": 4}, "unknown-step"),
    Err(CHILD + "/steps/{stepName}/status", "PATCH", "/steps/k1/status", 400, "bad_request",
        {"status": 6}, "bad-status"),
]


def _err_id(e: Err) -> str:
    op = operation(e.template, e.method)["operationId"]
    return f"{op}-{e.status}" + (f"-{e.label}" if e.label else "")


@pytest.mark.parametrize("err", [pytest.param(e, id=_err_id(e), marks=e.marks)
                                 for e in ERRORS])
def test_error_matches_reference(world: World, err: Err):
    check_error(world.srv.request(err.method, err.path, err.body), err.template, err.method,
                err.status, err.code)


@pytest.mark.parametrize("err", [pytest.param(e, id=_err_id(e)) for e in CHILD_ERRORS])
def test_child_error_matches_reference(world: World, err: Err):
    check_error(world.srv.request(err.method, _child(world, err.path), err.body), err.template,
                err.method, err.status, err.code)


# -- remoteNode -------------------------------------------------------------------------------

REMOTE_NODE = "#/components/parameters/RemoteNode"


def _remote_probe(template: str) -> str:
    """A concrete path naming nothing that exists, so a server ignoring remoteNode changes
    nothing (a 404/400 for the missing target instead of the reference's 400)."""
    return (template.replace("{fileName}", "rn-nope").replace("{name}", "rn-nope")
            .replace("{dagRunId}", "rn-nope").replace("{childDAGRunId}", "rn-nope")
            .replace("{stepName}", "rn-nope"))


REMOTE_BODIES = {("/dags", "POST"): {"name": "rn-probe"}, ("/dags/search", "GET"): None}

def _remote_params():
    out = []
    for op_id, method, template in reference_operations():
        params = operation(template, method).get("parameters") or []
        if not any(p.get("$ref") == REMOTE_NODE for p in params):
            continue
        out.append(pytest.param(method, template, id=op_id))
    return out


@pytest.mark.parametrize("method,template", _remote_params())
def test_unknown_remote_node_is_400(world: World, method: str, template: str):
    path = _remote_probe(template) + ("?q=x&" if template == "/dags/search" else "?")
    body = REMOTE_BODIES.get((template, method), {} if method in ("POST", "PUT", "PATCH")
                             else None)
    if method == "PATCH":
        body = {"status": 4}
    reply = world.srv.request(method, path + "remoteNode=elsewhere", body)
    check_error(reply, template, method, 400, "bad_request")
    assert "remote node elsewhere not found" in reply.json["message"]
