"""/api/v2/dags... against a real `dagu start-all`: every operation, its success shape field by
field, and each error path (status code and `{code, message}` body)."""
from __future__ import annotations

import itertools
import os
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.apiclient import start_server

TERMINAL = ("finished", "failed", "cancelled", "partial success")
ECHO_DAG = "steps:\n  - name: s1\n    command: echo hello\n"
_names = itertools.count(1)


# -- fixtures and helpers --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """One server for the tests that only touch DAGs of their own (unique file names)."""
    server = start_server(tmp_path_factory.mktemp("dags-api") / "home")
    try:
        yield server
    finally:
        server.stop()


def add_dag(server, text: str = ECHO_DAG, stem: str | None = None, suffix: str = ".yaml") -> str:
    """Write a DAG file and return its fileName (unique unless given)."""
    stem = stem or f"t{next(_names):03d}"
    (server.dags / (stem + suffix)).write_text(text)
    return stem


def enc(name: str) -> str:
    """A fileName as one URL path segment."""
    return quote(name, safe="")


def wait_dag_run(server, file_name: str, run_id: str, timeout: float = 20.0) -> dict:
    """Poll GET /dags/{f}/dag-runs/{id} until the run has a terminal status."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        r = server.get(f"/dags/{file_name}/dag-runs/{run_id}")
        if r.status == 200:
            last = r.json["dagRun"]
            if last["statusLabel"] in TERMINAL:
                return last
        time.sleep(0.05)
    raise AssertionError(f"run {file_name}/{run_id} did not finish: {last}")


def assert_error(reply, status: int, code: str, message_part: str = "") -> None:
    assert reply.status == status, reply.body
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert message_part in body["message"]


def assert_dag_shape(dag: dict) -> None:
    """The DAG schema: name required; arrays are lists (never null)."""
    assert isinstance(dag["name"], str) and dag["name"]
    for key in ("group", "description", "defaultParams"):
        assert isinstance(dag[key], str)
    for key in ("params", "tags", "schedule"):
        assert isinstance(dag[key], list)
    for item in dag["schedule"]:
        assert set(item) == {"expression"}


def assert_details_shape(dag: dict) -> None:
    assert_dag_shape(dag)
    for key in ("env", "steps", "preconditions"):
        assert isinstance(dag[key], list)
    for key in ("delay", "histRetentionDays", "maxActiveDAGRuns", "maxActiveSteps"):
        assert isinstance(dag[key], int)
    assert isinstance(dag["logDir"], str)
    assert isinstance(dag["handlerOn"], dict)
    for step in dag["steps"]:
        assert_step_shape(step)


def assert_step_shape(step: dict) -> None:
    assert isinstance(step["name"], str) and step["name"]
    for key in ("id", "description", "dir", "cmdWithArgs", "command", "script", "output",
                "run", "params"):
        assert isinstance(step[key], str)
    for key in ("args", "depends", "preconditions"):
        assert isinstance(step[key], list)
    assert isinstance(step["mailOnError"], bool)
    assert set(step["repeatPolicy"]) >= {"repeat", "interval"}


SUMMARY_STRINGS = ("rootDAGRunName", "rootDAGRunId", "dagRunId", "name", "statusLabel",
                   "startedAt", "finishedAt", "log")


def assert_summary_shape(run: dict) -> None:
    for key in SUMMARY_STRINGS:
        assert isinstance(run[key], str), key
    assert isinstance(run["status"], int) and 0 <= run["status"] <= 6


def assert_details_run_shape(run: dict) -> None:
    assert_summary_shape(run)
    assert isinstance(run["nodes"], list)
    assert isinstance(run["preconditions"], list)
    for node in run["nodes"]:
        assert_step_shape(node["step"])
        for key in ("stdout", "stderr", "startedAt", "finishedAt", "statusLabel"):
            assert isinstance(node[key], str)
        for key in ("status", "retryCount", "doneCount"):
            assert isinstance(node[key], int)
        assert isinstance(node["children"], list)


def assert_initial_summary(run: dict, name: str) -> None:
    assert_summary_shape(run)
    assert run["name"] == name
    assert run["status"] == 0 and run["statusLabel"] == "not started"
    for key in ("dagRunId", "rootDAGRunId", "rootDAGRunName", "startedAt", "finishedAt", "log"):
        assert run[key] == ""


# -- GET /dags -------------------------------------------------------------------------------------

def test_list_empty_dir_gives_empty_lists_and_one_page(api):
    r = api.get("/dags")
    assert r.status == 200
    assert r.json == {"dags": [], "errors": [],
                      "pagination": {"totalRecords": 0, "currentPage": 1, "totalPages": 1,
                                     "nextPage": 1, "prevPage": 1}}


def test_list_items_sorted_with_fields_and_broken_files_in_errors(api):
    add_dag(api, "description: second\ngroup: g1\ntags: [Prod, ETL]\nparams: first P1=foo\n"
                 "schedule: '5 * * * *'\n" + ECHO_DAG, "b-dag")
    add_dag(api, "name: custom\n" + ECHO_DAG, "a-dag", ".yml")
    add_dag(api, "steps:\n  - name: x\nbogus: 1\n", "broken")
    (api.dags / "notes.txt").write_text("not a dag")
    (api.dags / ".hidden.yaml").write_text(ECHO_DAG)
    (api.dags / "subdir.yaml").mkdir()
    api.post("/dags/b-dag/suspend", {"suspend": True})

    r = api.get("/dags")
    assert r.status == 200
    body = r.json
    assert [d["fileName"] for d in body["dags"]] == ["a-dag", "b-dag"]
    assert len(body["errors"]) == 1 and body["errors"][0].startswith("reading broken.yaml failed:")
    assert "bogus" in body["errors"][0]
    assert body["pagination"]["totalRecords"] == 2
    a, b = body["dags"]
    for item in (a, b):
        assert set(item) == {"fileName", "dag", "latestDAGRun", "suspended", "errors"}
        assert item["errors"] == []
        assert_dag_shape(item["dag"])
    assert a["dag"]["name"] == "custom" and a["suspended"] is False
    assert_initial_summary(a["latestDAGRun"], "custom")
    assert b["suspended"] is True
    assert b["dag"] == {"name": "b-dag", "group": "g1", "description": "second",
                        "params": ["1=first", "P1=foo"], "defaultParams": '"first" P1="foo"',
                        "tags": ["prod", "etl"], "schedule": [{"expression": "5 * * * *"}]}


def test_list_latest_run_is_the_newest(api):
    stem = add_dag(api)
    for run_id in ("first-run", "second-run"):
        assert api.post(f"/dags/{stem}/start", {"dagRunId": run_id}).status == 200
        wait_dag_run(api, stem, run_id)
    latest = api.get("/dags").json["dags"][0]["latestDAGRun"]
    assert_summary_shape(latest)
    assert latest["dagRunId"] == "second-run" and latest["rootDAGRunId"] == "second-run"
    assert latest["name"] == stem and latest["status"] == 4 and latest["statusLabel"] == "finished"
    assert latest["startedAt"].endswith("Z") and latest["finishedAt"].endswith("Z")
    assert latest["log"].endswith("run.log")


def test_list_filters_by_name_substring_and_exact_tag_case_insensitively(api):
    add_dag(api, "tags: [Daily, ops]\n" + ECHO_DAG, "Report-Daily")
    add_dag(api, "tags: [weekly]\n" + ECHO_DAG, "report-weekly")
    add_dag(api, "tags: [dailyish]\n" + ECHO_DAG, "cleanup")

    def names(query: str) -> list[str]:
        r = api.get("/dags" + query)
        assert r.status == 200
        assert r.json["pagination"]["totalRecords"] == len(r.json["dags"])
        return [d["fileName"] for d in r.json["dags"]]

    assert names("?name=REPORT") == ["Report-Daily", "report-weekly"]
    assert names("?name=daily") == ["Report-Daily"]
    assert names("?tag=DAILY") == ["Report-Daily"]          # exact: not "dailyish"
    assert names("?tag=dail") == []
    assert names("?name=report&tag=weekly") == ["report-weekly"]
    assert names("?name=nothing") == []


@pytest.fixture(scope="module")
def seven(tmp_path_factory):
    """A server with 7 DAG files (p1..p7) and one broken file."""
    server = start_server(tmp_path_factory.mktemp("pages") / "home")
    for i in range(1, 8):
        add_dag(server, ECHO_DAG, f"p{i}")
    add_dag(server, "steps: 5\n", "zz-broken")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("query, names, current, total_pages, next_page, prev_page", [
    ("", ["p1", "p2", "p3", "p4", "p5", "p6", "p7"], 1, 1, 1, 1),
    ("?page=1&perPage=3", ["p1", "p2", "p3"], 1, 3, 2, 1),
    ("?page=2&perPage=3", ["p4", "p5", "p6"], 2, 3, 3, 1),
    ("?page=3&perPage=3", ["p7"], 3, 3, 3, 2),
    ("?page=4&perPage=3", [], 4, 3, 3, 3),
    ("?page=0&perPage=3", ["p1", "p2", "p3"], 1, 3, 2, 1),
    ("?page=-5&perPage=7", ["p1", "p2", "p3", "p4", "p5", "p6", "p7"], 1, 1, 1, 1),
    ("?perPage=0", ["p1", "p2", "p3", "p4", "p5", "p6", "p7"], 1, 1, 1, 1),
    ("?page=2&perPage=6", ["p7"], 2, 2, 2, 1),
    ("?perPage=", ["p1", "p2", "p3", "p4", "p5", "p6", "p7"], 1, 1, 1, 1),
])
def test_list_pagination_math(seven, query, names, current, total_pages, next_page, prev_page):
    r = seven.get("/dags" + query)
    assert r.status == 200
    assert [d["fileName"] for d in r.json["dags"]] == names
    assert r.json["pagination"] == {"totalRecords": 7, "currentPage": current,
                                    "totalPages": total_pages, "nextPage": next_page,
                                    "prevPage": prev_page}
    assert len(r.json["errors"]) == 1   # the broken file: reported, not counted


@pytest.mark.parametrize("query", ["?page=abc", "?perPage=1.5"])
def test_list_bad_integer_query_is_400_json(seven, query):
    assert_error(seven.get("/dags" + query), 400, "bad_request")


def test_list_500_files(api):
    for i in range(500):
        tag = "even" if i % 2 == 0 else "odd"
        (api.dags / f"d{i:03d}.yaml").write_text(f"tags: [{tag}]\n" + ECHO_DAG)
    for _ in range(2):   # the second request is served from the parse cache
        r = api.get("/dags")
        assert r.status == 200
        body = r.json
        assert body["errors"] == []
        assert [d["fileName"] for d in body["dags"]] == [f"d{i:03d}" for i in range(50)]
        assert body["pagination"] == {"totalRecords": 500, "currentPage": 1, "totalPages": 10,
                                      "nextPage": 2, "prevPage": 1}
    last = api.get("/dags?page=10").json
    assert [d["fileName"] for d in last["dags"]] == [f"d{i:03d}" for i in range(450, 500)]
    assert last["pagination"]["nextPage"] == 10 and last["pagination"]["prevPage"] == 9
    capped = api.get("/dags?perPage=1000&page=3").json      # perPage > 200 -> 200
    assert len(capped["dags"]) == 100
    assert capped["pagination"]["totalPages"] == 3
    odd = api.get("/dags?tag=ODD&perPage=200").json
    assert odd["pagination"]["totalRecords"] == 250
    assert all(int(d["fileName"][1:]) % 2 == 1 for d in odd["dags"])
    assert api.get("/dags?name=D01").json["pagination"]["totalRecords"] == 10


# -- POST /dags ------------------------------------------------------------------------------------

def test_create_writes_the_template_and_answers_201(srv):
    r = srv.post("/dags", {"name": "created-one"})
    assert r.status == 201
    assert r.json == {"name": "created-one"}
    path = srv.dags / "created-one.yaml"
    assert path.read_text() == "steps:\n  - name: step1\n    command: echo hello\n"
    assert [p.name for p in srv.dags.iterdir() if p.name.startswith(".")] == []   # no temp left
    details = srv.get("/dags/created-one").json
    assert details["errors"] == []
    assert [s["name"] for s in details["dag"]["steps"]] == ["step1"]


def test_create_with_suffix_names_the_same_file(srv):
    r = srv.post("/dags", {"name": "created-two.yaml"})
    assert r.status == 201 and r.json == {"name": "created-two"}
    assert (srv.dags / "created-two.yaml").is_file()


@pytest.mark.parametrize("existing", ["dup-a.yaml", "dup-b.yml"])
def test_create_existing_is_409_and_keeps_the_file(srv, existing):
    (srv.dags / existing).write_text("# mine\n" + ECHO_DAG)
    stem = existing.rsplit(".", 1)[0]
    assert_error(srv.post("/dags", {"name": stem}), 409, "already_exists", stem)
    assert (srv.dags / existing).read_text() == "# mine\n" + ECHO_DAG
    assert not (existing.endswith(".yml") and (srv.dags / f"{stem}.yaml").exists())


@pytest.mark.parametrize("name", ["", ".", "..", "../escape", ".hidden", "a/b", "/etc/passwd",
                                  "with space", "x" * 201, "semi;colon", "ünïcode"])
def test_create_bad_name_is_400_and_writes_nothing(srv, name):
    before = sorted(os.listdir(srv.home))
    before_dags = sorted(os.listdir(srv.dags))
    assert_error(srv.post("/dags", {"name": name}), 400, "bad_request")
    assert sorted(os.listdir(srv.home)) == before
    assert sorted(os.listdir(srv.dags)) == before_dags


@pytest.mark.parametrize("body, raw", [(None, b""), (None, b"{not json"), ([1, 2], None),
                                       ({"name": 5}, None), ({}, None)])
def test_create_bad_body_is_400(srv, body, raw):
    assert_error(srv.request("POST", "/dags", body, raw=raw), 400, "bad_request")


# -- GET /dags/{fileName} --------------------------------------------------------------------------

def test_get_details_fields(srv):
    text = ("description: full\ngroup: grp\ntags: [A, b]\nparams: P1=foo\nenv:\n  - K1: v1\n"
            "schedule: '0 1 * * *'\ndelaySec: 2\nhistRetentionDays: 7\nmaxActiveSteps: 3\n"
            "maxActiveRuns: 2\nlogDir: /tmp/some-logs\npreconditions:\n  - condition: '1'\n"
            "    expected: '1'\nhandlerOn:\n  exit:\n    command: echo bye\n  failure:\n"
            "    command: echo failed\n"
            "steps:\n  - name: first\n    command: echo one two\n"
            "  - name: second\n    description: two\n    command: echo 2\n    depends: [first]\n")
    stem = add_dag(srv, text)
    r = srv.get(f"/dags/{stem}")
    assert r.status == 200
    body = r.json
    assert set(body) == {"dag", "localDags", "latestDAGRun", "suspended", "errors"}
    assert body["localDags"] == [] and body["errors"] == [] and body["suspended"] is False
    dag = body["dag"]
    assert_details_shape(dag)
    assert (dag["name"], dag["group"], dag["description"]) == (stem, "grp", "full")
    assert dag["tags"] == ["a", "b"]
    assert dag["params"] == ["P1=foo"] and dag["defaultParams"] == 'P1="foo"'
    assert dag["env"] == ["K1=v1"]
    assert dag["schedule"] == [{"expression": "0 1 * * *"}]
    assert (dag["delay"], dag["histRetentionDays"], dag["maxActiveSteps"],
            dag["maxActiveDAGRuns"]) == (2, 7, 3, 2)
    assert dag["logDir"] == "/tmp/some-logs"
    assert dag["preconditions"] == [{"condition": "1", "expected": "1"}]
    assert sorted(dag["handlerOn"]) == ["exit", "failure"]
    assert dag["handlerOn"]["exit"]["name"] == "onExit"
    assert dag["handlerOn"]["exit"]["cmdWithArgs"] == "echo bye"
    first, second = dag["steps"]
    assert (first["name"], first["command"], first["args"]) == ("first", "echo", ["one", "two"])
    assert first["cmdWithArgs"] == "echo one two"
    assert (second["description"], second["depends"]) == ("two", ["first"])
    latest = body["latestDAGRun"]
    assert_details_run_shape(latest)
    assert_initial_summary(latest, stem)
    assert [n["step"]["name"] for n in latest["nodes"]] == ["first", "second"]
    assert all(n["status"] == 0 and n["statusLabel"] == "not started" for n in latest["nodes"])
    assert latest["onExit"]["step"]["name"] == "onExit"


@pytest.mark.parametrize("suffix, asked", [(".yaml", ".yaml"), (".yml", ".yml"), (".yml", "")])
def test_get_accepts_the_file_suffix(srv, suffix, asked):
    stem = add_dag(srv, suffix=suffix)
    r = srv.get(f"/dags/{stem}{asked}")
    assert r.status == 200 and r.json["dag"]["name"] == stem


def test_get_missing_is_404(srv):
    assert_error(srv.get("/dags/no-such-dag"), 404, "not_found", "no-such-dag")
    assert_error(srv.get("/dags/no-such-dag.yaml"), 404, "not_found")


def test_get_broken_file_lists_every_load_error(srv):
    stem = add_dag(srv, "unknownKey: 1\nsteps:\n  - name: a\n")
    r = srv.get(f"/dags/{stem}")
    assert r.status == 200
    body = r.json
    assert body["dag"] == {"name": stem}
    assert len(body["errors"]) == 2
    assert any("unknownKey" in e for e in body["errors"])
    assert any("command is required" in e for e in body["errors"])
    assert body["localDags"] == []
    assert_initial_summary(body["latestDAGRun"], stem)
    assert body["latestDAGRun"]["nodes"] == []


def test_get_local_dags_sorted_by_name(srv):
    stem = add_dag(srv, "steps:\n  - name: main\n    command: echo\n---\nname: sub-b\n" + ECHO_DAG
                   + "---\nname: sub-a\n" + ECHO_DAG)
    local = srv.get(f"/dags/{stem}").json["localDags"]
    assert [d["name"] for d in local] == ["sub-a", "sub-b"]
    for item in local:
        assert set(item) == {"name", "dag", "errors"} and item["errors"] == []
        assert_details_shape(item["dag"])
        assert item["dag"]["name"] == item["name"]


# -- DELETE /dags/{fileName} -----------------------------------------------------------------------

@pytest.mark.parametrize("suffix, asked", [(".yaml", ""), (".yml", ".yml"), (".yaml", ".yaml")])
def test_delete_removes_the_file_with_204(srv, suffix, asked):
    stem = add_dag(srv, suffix=suffix)
    r = srv.request("DELETE", f"/dags/{stem}{asked}")
    assert r.status == 204 and r.body == b""
    assert not (srv.dags / (stem + suffix)).exists()
    assert_error(srv.get(f"/dags/{stem}"), 404, "not_found")
    assert_error(srv.request("DELETE", f"/dags/{stem}"), 404, "not_found")


def test_delete_a_directory_named_like_a_dag_is_404(srv):
    (srv.dags / "a-directory.yaml").mkdir()
    assert_error(srv.request("DELETE", "/dags/a-directory"), 404, "not_found")
    assert (srv.dags / "a-directory.yaml").is_dir()


# -- POST /dags/{fileName}/start -------------------------------------------------------------------

PARAMS_DAG = ('params: P1=default P2=two\nsteps:\n  - name: show\n'
              '    command: echo "[$P1|$P2]"\n')


@pytest.mark.parametrize("params, expected", [
    ('P1="hello world" P2=x', ["P1=hello world", "P2=x"]),                 # Dagu's param string
    ('{"P1": "from json", "P2": 7}', ["P1=from json", "P2=7"]),            # JSON in a string
    ({"P1": "an object", "P2": True}, ["P1=an object", "P2=true"]),        # a JSON object
    ("-dash", ["P1=default", "P2=two", "1=-dash"]),   # positional: named "1" (Dagu's code)
])
def test_start_runs_with_params_and_custom_run_id(srv, params, expected):
    stem = add_dag(srv, PARAMS_DAG)
    run_id = f"custom-{stem}"
    r = srv.post(f"/dags/{stem}/start", {"params": params, "dagRunId": run_id})
    assert r.status == 200, r.body
    assert r.json == {"dagRunId": run_id}
    run = wait_dag_run(srv, stem, run_id)
    assert run["statusLabel"] == "finished" and run["status"] == 4
    assert run["dagRunId"] == run_id and run["name"] == stem
    assert run["paramsList"] == expected
    assert run["params"] == " ".join(expected)
    out = Path(run["nodes"][0]["stdout"]).read_text()
    values = dict(item.split("=", 1) for item in expected)
    assert out.strip() == f"[{values['P1']}|{values['P2']}]"


@pytest.mark.parametrize("body, raw", [(None, b""), ({}, None), ({"params": ""}, None),
                                       ({"params": None, "dagRunId": ""}, None)])
def test_start_without_params_uses_defaults_and_a_uuid7(srv, body, raw):
    stem = add_dag(srv, PARAMS_DAG)
    r = srv.request("POST", f"/dags/{stem}/start", body, raw=raw)
    assert r.status == 200, r.body
    run_id = r.json["dagRunId"]
    assert len(run_id) == 36 and run_id[14] == "7"
    run = wait_dag_run(srv, stem, run_id)
    assert run["paramsList"] == ["P1=default", "P2=two"]


def test_start_duplicate_run_id_is_409(srv):
    stem = add_dag(srv)
    assert srv.post(f"/dags/{stem}/start", {"dagRunId": "same-id"}).status == 200
    wait_dag_run(srv, stem, "same-id")
    assert_error(srv.post(f"/dags/{stem}/start", {"dagRunId": "same-id"}), 409, "already_exists",
                 "same-id")
    assert len(srv.get(f"/dags/{stem}/dag-runs").json["dagRuns"]) == 1


def test_start_run_id_is_per_dag_name(srv):
    a, b = add_dag(srv), add_dag(srv)
    for stem in (a, b):
        assert srv.post(f"/dags/{stem}/start", {"dagRunId": "shared-id"}).status == 200
        wait_dag_run(srv, stem, "shared-id")


@pytest.mark.parametrize("body", [{"dagRunId": "bad id"}, {"dagRunId": "x" * 65},
                                  {"dagRunId": "../x"}, {"dagRunId": 12},
                                  {"params": ["a", "b"]}, {"params": 3},
                                  {"params": "P1=nul\x00byte"}])
def test_start_bad_body_is_400(srv, body):
    stem = add_dag(srv)
    assert_error(srv.post(f"/dags/{stem}/start", body), 400, "bad_request")
    assert srv.get(f"/dags/{stem}/dag-runs").json["dagRuns"] == []


def test_start_invalid_json_is_400(srv):
    stem = add_dag(srv)
    r = srv.request("POST", f"/dags/{stem}/start", raw=b'{"params": ')
    assert_error(r, 400, "bad_request")


def test_start_missing_dag_is_404(srv):
    assert_error(srv.post("/dags/never-there/start", {}), 404, "not_found", "never-there")


def test_start_broken_dag_is_400_with_the_errors(srv):
    stem = add_dag(srv, "steps:\n  - name: a\n    depends: [ghost]\n    command: echo\n")
    r = srv.post(f"/dags/{stem}/start", {})
    assert_error(r, 400, "bad_request")
    assert any("ghost" in e for e in r.json["details"]["errors"])


def test_start_a_named_dag_keys_the_run_by_its_name(srv):
    stem = add_dag(srv, "name: proper-name\n" + ECHO_DAG)
    assert srv.post(f"/dags/{stem}/start", {"dagRunId": "n1"}).status == 200
    run = wait_dag_run(srv, stem, "n1")
    assert run["name"] == "proper-name" and run["rootDAGRunName"] == "proper-name"


# -- POST /dags/{fileName}/enqueue -----------------------------------------------------------------

def test_enqueue_records_a_queued_run_that_the_scheduler_runs(srv):
    stem = add_dag(srv, PARAMS_DAG)
    r = srv.post(f"/dags/{stem}/enqueue", {"params": {"P1": "queued"}, "dagRunId": "q-1"})
    assert r.status == 200, r.body
    assert r.json == {"dagRunId": "q-1"}
    first = srv.get(f"/dags/{stem}/dag-runs/q-1")
    assert first.status == 200
    assert first.json["dagRun"]["statusLabel"] in ("queued", "running", "finished")
    run = wait_dag_run(srv, stem, "q-1")
    assert run["statusLabel"] == "finished"
    assert run["paramsList"] == ["P1=queued", "P2=two"]
    assert run["queuedAt"].endswith("Z")
    assert_error(srv.post(f"/dags/{stem}/enqueue", {"dagRunId": "q-1"}), 409, "already_exists")


def test_enqueue_without_body_generates_an_id(srv):
    stem = add_dag(srv)
    r = srv.request("POST", f"/dags/{stem}/enqueue")
    assert r.status == 200
    wait_dag_run(srv, stem, r.json["dagRunId"])


@pytest.mark.parametrize("path, body, status, code", [
    ("/dags/not-a-dag/enqueue", {}, 404, "not_found"),
    ("/dags/{stem}/enqueue", {"dagRunId": "sp ace"}, 400, "bad_request"),
    ("/dags/{stem}/enqueue", {"params": 1}, 400, "bad_request"),
])
def test_enqueue_errors(srv, path, body, status, code):
    stem = add_dag(srv)
    assert_error(srv.post(path.format(stem=stem), body), status, code)


# -- GET /dags/{fileName}/dag-runs -----------------------------------------------------------------

def test_history_runs_newest_first_and_grid(srv):
    stem = add_dag(srv, "params: CODE=0\nhandlerOn:\n  exit:\n    command: echo bye\nsteps:\n"
                        "  - name: b-step\n    command: sh -c \"exit $CODE\"\n"
                        "  - name: a-step\n    command: echo a\n")
    assert srv.post(f"/dags/{stem}/start", {"dagRunId": "ok-run"}).status == 200
    wait_dag_run(srv, stem, "ok-run")
    bad = srv.post(f"/dags/{stem}/start", {"dagRunId": "bad-run", "params": "CODE=3"})
    assert bad.status == 200
    assert wait_dag_run(srv, stem, "bad-run")["statusLabel"] == "failed"
    r = srv.get(f"/dags/{stem}/dag-runs")
    assert r.status == 200
    body = r.json
    assert set(body) == {"dagRuns", "gridData"}
    assert [run["dagRunId"] for run in body["dagRuns"]] == ["bad-run", "ok-run"]
    for run in body["dagRuns"]:
        assert_details_run_shape(run)
    grid = {row["name"]: row["history"] for row in body["gridData"]}
    assert [row["name"] for row in body["gridData"]] == ["a-step", "b-step", "onExit"]
    assert grid["b-step"] == [2, 4]
    assert grid["a-step"][1] == 4 and grid["a-step"][0] != 4
    assert grid["onExit"] == [4, 4]


def test_history_of_a_dag_that_never_ran_is_empty(srv):
    stem = add_dag(srv)
    assert srv.get(f"/dags/{stem}/dag-runs").json == {"dagRuns": [], "gridData": []}


def test_history_keeps_the_latest_30(srv):
    stem = add_dag(srv)
    ids = [f"r{i:02d}" for i in range(32)]
    for run_id in ids:   # enqueued: 32 records without 32 processes competing
        assert srv.post(f"/dags/{stem}/enqueue", {"dagRunId": run_id}).status == 200
    runs = srv.get(f"/dags/{stem}/dag-runs").json["dagRuns"]
    assert [run["dagRunId"] for run in runs] == ids[::-1][:30]
    for run_id in ids:
        wait_dag_run(srv, stem, run_id)


def test_history_missing_dag_is_404(srv):
    assert_error(srv.get("/dags/ghost-dag/dag-runs"), 404, "not_found")


# -- GET /dags/{fileName}/dag-runs/{dagRunId} ------------------------------------------------------

def test_get_run_by_id_and_latest(srv):
    stem = add_dag(srv)
    never = srv.get(f"/dags/{stem}/dag-runs/latest")
    assert never.status == 200
    assert_initial_summary(never.json["dagRun"], stem)
    for run_id in ("one", "two"):
        srv.post(f"/dags/{stem}/start", {"dagRunId": run_id})
        wait_dag_run(srv, stem, run_id)
    one = srv.get(f"/dags/{stem}/dag-runs/one").json["dagRun"]
    assert_details_run_shape(one)
    assert one["dagRunId"] == "one" and one["nodes"][0]["status"] == 4
    assert one["nodes"][0]["statusLabel"] == "finished"
    assert srv.get(f"/dags/{stem}/dag-runs/latest").json["dagRun"]["dagRunId"] == "two"
    assert_error(srv.get(f"/dags/{stem}/dag-runs/on"), 404, "not_found", "on")   # exact ids only
    assert_error(srv.get("/dags/ghost-dag/dag-runs/one"), 404, "not_found")


# -- GET and PUT /dags/{fileName}/spec -------------------------------------------------------------

def test_get_spec_of_a_valid_dag(srv):
    text = "description: spec me\n" + ECHO_DAG
    stem = add_dag(srv, text)
    r = srv.get(f"/dags/{stem}/spec")
    assert r.status == 200
    assert set(r.json) == {"dag", "spec", "errors"}
    assert r.json["spec"] == text and r.json["errors"] == []
    assert_details_shape(r.json["dag"])
    assert r.json["dag"]["description"] == "spec me"


def test_get_spec_of_a_broken_dag_has_errors_and_no_dag(srv):
    text = "steps:\n  - name: a\n    command: echo\n    depends: [nope]\n"
    stem = add_dag(srv, text)
    r = srv.get(f"/dags/{stem}/spec")
    assert r.status == 200
    assert r.json["spec"] == text and "dag" not in r.json
    assert len(r.json["errors"]) == 1 and "non-existent step" in r.json["errors"][0]


def test_get_spec_missing_is_404(srv):
    assert_error(srv.get("/dags/ghost-spec/spec"), 404, "not_found")


def test_put_spec_valid_saves_atomically(srv):
    stem = add_dag(srv)
    path = srv.dags / f"{stem}.yaml"
    os.chmod(path, 0o640)
    new_text = "description: updated\n" + ECHO_DAG
    r = srv.request("PUT", f"/dags/{stem}/spec", {"spec": new_text})
    assert r.status == 200 and r.json == {"errors": []}
    assert path.read_text() == new_text
    assert (path.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in srv.dags.iterdir() if p.name.startswith(".")] == []
    assert srv.get(f"/dags/{stem}").json["dag"]["description"] == "updated"


def test_put_spec_same_size_rewrite_is_seen(srv):
    stem = add_dag(srv, "description: aaaa\n" + ECHO_DAG)
    assert srv.get(f"/dags/{stem}").json["dag"]["description"] == "aaaa"   # now cached
    srv.request("PUT", f"/dags/{stem}/spec", {"spec": "description: bbbb\n" + ECHO_DAG})
    assert srv.get(f"/dags/{stem}").json["dag"]["description"] == "bbbb"


@pytest.mark.parametrize("bad_spec, expect", [
    ("steps:\n  - name: a\n    command: echo\n    depends: [zzz]\n", "non-existent step"),
    ("steps: [\n", ""),
    ("steps:\n  - name: a\nextra: 1\n", "extra"),
])
def test_put_spec_invalid_returns_errors_and_saves_nothing(srv, bad_spec, expect):
    stem = add_dag(srv)
    path = srv.dags / f"{stem}.yaml"
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    r = srv.request("PUT", f"/dags/{stem}/spec", {"spec": bad_spec})
    assert r.status == 200
    assert set(r.json) == {"errors"} and r.json["errors"]
    assert all(isinstance(e, str) for e in r.json["errors"])
    assert any(expect in e for e in r.json["errors"])
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert [p.name for p in srv.dags.iterdir() if p.name.startswith(".")] == []


def test_put_spec_missing_file_is_404_and_creates_nothing(srv):
    r = srv.request("PUT", "/dags/ghost-put/spec", {"spec": ECHO_DAG})
    assert_error(r, 404, "not_found")
    assert not (srv.dags / "ghost-put.yaml").exists()


@pytest.mark.parametrize("body, raw", [(None, b""), ({}, None), ({"spec": 3}, None),
                                       (None, b"[1")])
def test_put_spec_bad_body_is_400(srv, body, raw):
    stem = add_dag(srv)
    assert_error(srv.request("PUT", f"/dags/{stem}/spec", body, raw=raw), 400, "bad_request")
    assert (srv.dags / f"{stem}.yaml").read_text() == ECHO_DAG


# -- POST /dags/{fileName}/suspend -----------------------------------------------------------------

def test_suspend_and_resume(srv):
    stem = add_dag(srv)
    r = srv.post(f"/dags/{stem}/suspend", {"suspend": True})
    assert r.status == 200 and r.body == b""
    assert srv.get(f"/dags/{stem}").json["suspended"] is True
    assert srv.get(f"/dags/{stem}.yaml").json["suspended"] is True
    listed = srv.get(f"/dags?name={stem}").json["dags"]
    assert [d["suspended"] for d in listed if d["fileName"] == stem] == [True]
    assert srv.post(f"/dags/{stem}.yaml/suspend", {"suspend": False}).status == 200
    assert srv.get(f"/dags/{stem}").json["suspended"] is False
    assert srv.post(f"/dags/{stem}/suspend", {"suspend": False}).status == 200   # idempotent


@pytest.mark.parametrize("body", [{}, {"suspend": "yes"}, {"suspend": 1}])
def test_suspend_bad_body_is_400(srv, body):
    stem = add_dag(srv)
    assert_error(srv.post(f"/dags/{stem}/suspend", body), 400, "bad_request")


def test_suspend_missing_is_404(srv):
    assert_error(srv.post("/dags/ghost-s/suspend", {"suspend": True}), 404, "not_found")


# -- POST /dags/{fileName}/rename ------------------------------------------------------------------

def test_rename_moves_the_file_and_its_suspension(srv):
    stem = add_dag(srv, "description: move me\n" + ECHO_DAG)
    srv.post(f"/dags/{stem}/suspend", {"suspend": True})
    r = srv.post(f"/dags/{stem}/rename", {"newFileName": f"{stem}-renamed"})
    assert r.status == 200 and r.body == b""
    assert not (srv.dags / f"{stem}.yaml").exists()
    assert (srv.dags / f"{stem}-renamed.yaml").read_text() == "description: move me\n" + ECHO_DAG
    assert_error(srv.get(f"/dags/{stem}"), 404, "not_found")
    moved = srv.get(f"/dags/{stem}-renamed").json
    assert moved["dag"]["name"] == f"{stem}-renamed" and moved["suspended"] is True


def test_rename_keeps_history_of_a_dag_with_an_explicit_name(srv):
    stem = add_dag(srv, "name: keeps-history\n" + ECHO_DAG)
    unnamed = add_dag(srv)
    for s in (stem, unnamed):
        srv.post(f"/dags/{s}/start", {"dagRunId": "before-rename"})
        wait_dag_run(srv, s, "before-rename")
    assert srv.post(f"/dags/{stem}/rename", {"newFileName": f"{stem}-new.yaml"}).status == 200
    assert (srv.dags / f"{stem}-new.yaml").is_file()
    runs = srv.get(f"/dags/{stem}-new/dag-runs").json["dagRuns"]
    assert [run["dagRunId"] for run in runs] == ["before-rename"]
    # a DAG named by its file gets a new name, hence a fresh history
    assert srv.post(f"/dags/{unnamed}/rename", {"newFileName": f"{unnamed}-new"}).status == 200
    assert srv.get(f"/dags/{unnamed}-new/dag-runs").json["dagRuns"] == []


@pytest.mark.parametrize("existing_suffix", [".yaml", ".yml"])
def test_rename_onto_an_existing_file_is_409(srv, existing_suffix):
    stem, other = add_dag(srv), add_dag(srv, "# other\n" + ECHO_DAG, suffix=existing_suffix)
    assert_error(srv.post(f"/dags/{stem}/rename", {"newFileName": other}), 409, "already_exists")
    assert (srv.dags / f"{stem}.yaml").read_text() == ECHO_DAG
    assert (srv.dags / f"{other}{existing_suffix}").read_text() == "# other\n" + ECHO_DAG


@pytest.mark.parametrize("body", [{}, {"newFileName": ""}, {"newFileName": "../up"},
                                  {"newFileName": ".dot"}, {"newFileName": "a/b"},
                                  {"newFileName": 7}])
def test_rename_bad_new_name_is_400(srv, body):
    stem = add_dag(srv)
    before = sorted(os.listdir(srv.home))
    assert_error(srv.post(f"/dags/{stem}/rename", body), 400, "bad_request")
    assert (srv.dags / f"{stem}.yaml").is_file()
    assert sorted(os.listdir(srv.home)) == before


def test_rename_missing_is_404(srv):
    assert_error(srv.post("/dags/ghost-r/rename", {"newFileName": "whatever"}), 404, "not_found")
    assert not (srv.dags / "whatever.yaml").exists()


def test_rename_while_running_is_400_not_running(srv):
    stem = add_dag(srv, "steps:\n  - name: wait\n    command: sleep 1.5\n")
    assert srv.post(f"/dags/{stem}/start", {"dagRunId": "busy"}).status == 200
    r = srv.post(f"/dags/{stem}/rename", {"newFileName": f"{stem}-x"})
    assert_error(r, 400, "not_running")
    assert r.json["message"] == "DAG is running"
    assert (srv.dags / f"{stem}.yaml").is_file() and not (srv.dags / f"{stem}-x.yaml").exists()
    wait_dag_run(srv, stem, "busy")
    assert srv.post(f"/dags/{stem}/rename", {"newFileName": f"{stem}-x"}).status == 200


# -- GET /dags/search and /dags/tags ---------------------------------------------------------------

SEARCH_A = "description: alpha\nsteps:\n  - name: one\n    command: echo NEEDLE\n  - name: two\n" \
           "    command: echo x\n  - name: three\n    command: echo y\n"


def test_search_matches_with_context(api):
    add_dag(api, SEARCH_A, "search-a")
    add_dag(api, "# needle on the first line\n" + ECHO_DAG, "search-b")
    add_dag(api, ECHO_DAG, "search-c")
    r = api.get("/dags/search?q=needle")
    assert r.status == 200
    body = r.json
    assert body["errors"] == []
    assert [item["name"] for item in body["results"]] == ["search-a", "search-b"]
    a, b = body["results"]
    assert_dag_shape(a["dag"])
    assert a["dag"]["description"] == "alpha"
    assert a["matches"] == [{"line": "steps:\n  - name: one\n    command: echo NEEDLE\n"
                                     "  - name: two\n    command: echo x",
                             "lineNumber": 4, "startLine": 2}]
    assert b["matches"] == [{"line": "# needle on the first line\nsteps:\n  - name: s1",
                             "lineNumber": 1, "startLine": 1}]
    regex = api.get("/dags/search?" + "q=" + quote("echo (x|y)$")).json["results"]
    assert [m["lineNumber"] for m in regex[0]["matches"]] == [6, 8]
    assert regex[0]["matches"][1]["line"] == ("    command: echo x\n  - name: three\n"
                                              "    command: echo y")
    assert api.get("/dags/search?q=nothing-matches-this").json == {"results": [], "errors": []}
    assert api.get("/dags/search?q=").json == {"results": [], "errors": []}


def test_search_without_q_or_with_a_bad_regex_is_400_json(api):
    assert_error(api.get("/dags/search"), 400, "bad_request", "q")
    assert_error(api.get("/dags/search?q=" + quote("(unclosed")), 400, "bad_request")


def test_tags_sorted_unique_lowercase(api):
    assert api.get("/dags/tags").json == {"tags": [], "errors": []}
    add_dag(api, "tags: [Zeta, alpha]\n" + ECHO_DAG)
    add_dag(api, "tags: ALPHA, beta\n" + ECHO_DAG)
    add_dag(api, "tags: [x]\nsteps: nope\n", "tag-broken")
    r = api.get("/dags/tags")
    assert r.status == 200
    assert r.json["tags"] == ["alpha", "beta", "zeta"]
    assert len(r.json["errors"]) == 1 and "tag-broken.yaml" in r.json["errors"][0]


# -- fileName safety, methods, permissions ---------------------------------------------------------

TRAVERSAL = ["../secret", "..%2Fsecret", "../../etc/passwd", "/etc/passwd", ".hidden", "..",
             "a/../secret", "sub/dag", "secret\x00", "~root"]


@pytest.mark.parametrize("name", TRAVERSAL)
def test_path_traversal_is_400_and_touches_nothing_outside(srv, name):
    secret = srv.home / "secret.yaml"
    secret.write_text(ECHO_DAG)
    mtime = secret.stat().st_mtime_ns
    before = sorted(os.listdir(srv.home))
    f = enc(name)
    for reply in (srv.get(f"/dags/{f}"), srv.get(f"/dags/{f}/spec"),
                  srv.get(f"/dags/{f}/dag-runs"), srv.get(f"/dags/{f}/dag-runs/latest"),
                  srv.request("DELETE", f"/dags/{f}"),
                  srv.request("PUT", f"/dags/{f}/spec", {"spec": "steps: []\n"}),
                  srv.post(f"/dags/{f}/start", {}), srv.post(f"/dags/{f}/enqueue", {}),
                  srv.post(f"/dags/{f}/suspend", {"suspend": True}),
                  srv.post(f"/dags/{f}/rename", {"newFileName": "stolen"})):
        assert_error(reply, 400, "bad_request")
    assert secret.read_text() == ECHO_DAG and secret.stat().st_mtime_ns == mtime
    assert sorted(os.listdir(srv.home)) == before
    assert not (srv.dags / "stolen.yaml").exists()


def test_literal_dot_dot_segment_never_reaches_outside(srv):
    secret = srv.home / "secret2.yaml"
    secret.write_text(ECHO_DAG)
    r = srv.request("DELETE", "/api/v2/dags/../secret2")
    assert r.status in (400, 404) and r.json["code"] in ("bad_request", "not_found")
    assert secret.exists()


@pytest.mark.parametrize("method, path, allow", [
    ("PATCH", "/dags", {"GET", "HEAD", "POST"}),
    ("PUT", "/dags/x", {"GET", "HEAD", "DELETE"}),
    ("GET", "/dags/x/start", {"POST"}),
    ("DELETE", "/dags/x/spec", {"GET", "HEAD", "PUT"}),
    ("POST", "/dags/tags", {"GET", "HEAD", "DELETE"}),   # also /dags/{fileName}
    ("PUT", "/dags/x/dag-runs/latest", {"GET", "HEAD"}),
])
def test_wrong_method_is_405_with_allow(srv, method, path, allow):
    r = srv.request(method, path, {})
    assert_error(r, 405, "bad_request")
    assert {m.strip() for m in r.headers["allow"].split(",")} == allow


def test_write_permission_denied_and_queues_disabled(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text(
        "permissions:\n  writeDAGs: false\nqueues:\n  enabled: false\n")
    server = start_server(home)
    try:
        add_dag(server, ECHO_DAG, "ro")
        for reply in (server.post("/dags", {"name": "new-one"}),
                      server.request("DELETE", "/dags/ro"),
                      server.request("PUT", "/dags/ro/spec", {"spec": ECHO_DAG}),
                      server.post("/dags/ro/rename", {"newFileName": "ro2"})):
            assert reply.status == 403
            assert reply.json == {"code": "forbidden", "message": "Permission denied"}
        assert sorted(os.listdir(server.dags)) == ["ro.yaml"]
        assert server.get("/dags/ro").status == 200
        assert_error(server.post("/dags/ro/enqueue", {}), 400, "bad_request", "queue")
        assert server.post("/dags/ro/suspend", {"suspend": True}).status == 200
    finally:
        server.stop()


def test_run_permission_denied(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text("permissions:\n  runDAGs: false\n")
    server = start_server(home)
    try:
        add_dag(server, ECHO_DAG, "norun")
        for reply in (server.post("/dags/norun/start", {}),
                      server.post("/dags/norun/enqueue", {}),
                      server.post("/dags/norun/suspend", {"suspend": True})):
            assert reply.status == 403
            assert reply.json == {"code": "forbidden", "message": "Permission denied"}
        assert server.get("/dags/norun/dag-runs").json["dagRuns"] == []
        assert server.post("/dags", {"name": "allowed"}).status == 201
    finally:
        server.stop()
