"""Tests for dagu.store: the SQLite run store, on real database files, threads and processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import statistics
import threading
import time

import pytest

from dagu.errors import AlreadyExists, BadRequest, DaguError, NotFound
from dagu.store import SCHEMA_VERSION, RunStore, epoch_ms

RUNNING, FAILED, CANCELLED, SUCCESS, QUEUED = 1, 2, 3, 4, 5


def run(name: str, run_id: str, created: int, status: int = SUCCESS, *,
        parent: tuple[str, str] = ("", ""), root: tuple[str, str] | None = None,
        **extra) -> dict:
    """A minimal run record as the engine writes it."""
    root = root or (parent[0] and parent) or (name, run_id)
    record = {"name": name, "dagRunId": run_id, "rootDAGRunName": root[0],
              "rootDAGRunId": root[1], "parentDAGRunName": parent[0],
              "parentDAGRunId": parent[1], "status": status, "params": "",
              "queuedAt": "", "startedAt": "", "finishedAt": "", "createdAt": created,
              "pid": 0, "attempt": 1, "trigger": "cli"}
    record.update(extra)
    return record


def ids(records: list[dict]) -> list[str]:
    return [r["dagRunId"] for r in records]


def trace_sql(monkeypatch) -> list[str]:
    """Record every SQL statement (values inlined) run on connections opened from now on."""
    statements: list[str] = []
    real_connect = sqlite3.connect

    def traced_connect(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    return statements


@pytest.fixture
def store(tmp_path):
    with RunStore(str(tmp_path / "data" / "dagu.db")) as s:
        yield s


@pytest.fixture
def traced(tmp_path, monkeypatch):
    """A store whose executed SQL is recorded in `store.statements`."""
    statements = trace_sql(monkeypatch)
    with RunStore(str(tmp_path / "dagu.db")) as s:
        monkeypatch.undo()
        s.statements = statements
        yield s


# ---------------------------------------------------------------- schema


def test_schema_version_set_and_wal_mode(tmp_path):
    path = str(tmp_path / "a" / "b" / "dagu.db")
    RunStore(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_reopen_runs_no_ddl_and_is_cheap(tmp_path, monkeypatch):
    path = str(tmp_path / "dagu.db")
    with RunStore(path) as s:
        s.insert_run(run("a", "r1", 1))
    statements = trace_sql(monkeypatch)
    with RunStore(path) as s:
        assert s.get_run("a", "r1")["dagRunId"] == "r1"
    assert statements and not [t for t in statements if "CREATE" in t or "BEGIN" in t]
    monkeypatch.undo()
    # As in production, where the server keeps a connection: the last close removes the
    # -wal/-shm files and recreating them costs a few ms on slow disks.
    with RunStore(path):
        durations = []
        for _ in range(20):
            start = time.perf_counter()
            RunStore(path).close()
            durations.append(time.perf_counter() - start)
    assert statistics.median(durations) < 0.005


def test_newer_schema_version_refuses_to_open(tmp_path):
    path = str(tmp_path / "dagu.db")
    RunStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(DaguError, match="newer"):
        RunStore(path)


@pytest.mark.parametrize("text, expected", [
    ("2025-01-02T03:04:05.678Z", 1735787045678),
    ("2025-01-02T04:04:05.678+01:00", 1735787045678),
    ("2025-01-02T03:04:05Z", 1735787045000),
    ("2025-01-02T03:04:05.678", 1735787045678),
    ("1969-12-31T23:59:59.999Z", -1),
    ("", None),
    ("-", None),
])
def test_epoch_ms_parses_rfc3339(text, expected):
    assert epoch_ms(text) == expected


@pytest.mark.parametrize("record, message", [
    ({"dagRunId": "r", "createdAt": 1}, "name"),
    ({"name": "a", "createdAt": 1}, "dagRunId"),
    ({"name": "a", "dagRunId": "r"}, "createdAt"),
    ({"name": "a", "dagRunId": "r", "createdAt": 1, "startedAt": "yesterday"}, "timestamp"),
])
def test_bad_record_raises_bad_request(store, record, message):
    with pytest.raises(BadRequest, match=message):
        store.insert_run(record)
    assert store.count_runs(roots_only=False) == 0


def test_time_columns_hold_epoch_ms_or_null(store):
    store.insert_run(run("a", "r1", 5, startedAt="2025-01-02T03:04:05.678Z"))
    row = sqlite3.connect(store.path).execute(
        "SELECT queued_at, started_at, finished_at, created_at FROM runs").fetchone()
    assert row == (None, 1735787045678, None, 5)


# ---------------------------------------------------------------- runs


def test_insert_get_update_round_trip(store):
    record = run("a", "r1", 100, RUNNING, params="x=1", nodes=[{"step": {"name": "s"}}])
    store.insert_run(record)
    assert store.get_run("a", "r1") == record
    assert store.get_run("a", "nope") is None
    assert store.get_run("b", "r1") is None
    record.update(status=SUCCESS, finishedAt="2025-01-02T03:04:05.678Z")
    store.update_run(record)
    assert store.get_run("a", "r1") == record
    assert store.list_runs(status=SUCCESS) == [record]


def test_duplicate_insert_raises_already_exists(store):
    store.insert_run(run("a", "r1", 1))
    with pytest.raises(AlreadyExists, match="dag-run ID r1 already exists for DAG a"):
        store.insert_run(run("a", "r1", 2, FAILED))
    assert store.get_run("a", "r1")["status"] == SUCCESS
    store.insert_run(run("b", "r1", 3))  # same id, other DAG: allowed


def test_update_missing_run_raises_not_found(store):
    with pytest.raises(NotFound):
        store.update_run(run("a", "r1", 1))


@pytest.mark.parametrize("stored, expected, updated", [
    (QUEUED, QUEUED, True),
    (RUNNING, QUEUED, False),
    (SUCCESS, RUNNING, False),
])
def test_update_run_if_is_compare_and_set(store, stored, expected, updated):
    store.insert_run(run("a", "r1", 1, stored))
    assert store.update_run_if(run("a", "r1", 1, FAILED), expected) is updated
    assert store.get_run("a", "r1")["status"] == (FAILED if updated else stored)


def test_update_run_if_missing_run_is_false(store):
    assert store.update_run_if(run("a", "r1", 1), QUEUED) is False


def test_update_run_if_claims_exactly_once_across_threads(tmp_path):
    path = str(tmp_path / "dagu.db")
    with RunStore(path) as s:
        s.insert_run(run("a", "r1", 1, QUEUED))
    wins = _race(8, lambda s: s.update_run_if(run("a", "r1", 1, RUNNING), QUEUED), path)
    assert sum(wins) == 1


def test_latest_run_is_newest_root_by_created_then_rowid(store):
    assert store.latest_run("a") is None
    store.insert_run(run("a", "old", 1))
    store.insert_run(run("a", "tie1", 5))
    store.insert_run(run("a", "tie2", 5))
    store.insert_run(run("a", "earlier", 3))
    store.insert_run(run("a", "child", 9, parent=("a", "tie1")))
    store.insert_run(run("b", "other", 9))
    assert store.latest_run("a")["dagRunId"] == "tie2"


def test_find_run_any_dag_newest(store):
    store.insert_run(run("a", "r1", 1))
    store.insert_run(run("b", "r1", 2))
    assert store.find_run("r1")["name"] == "b"
    assert store.find_run("r2") is None


@pytest.fixture
def history(store):
    """Six root runs of three DAGs plus a child; ids sort newest-last by createdAt."""
    for record in [run("alpha", "a1", 100, SUCCESS), run("alpha", "a2", 200, FAILED),
                   run("beta", "b1", 300, SUCCESS), run("alpha", "a3", 400, RUNNING),
                   run("gamma_x", "g1", 500, SUCCESS), run("beta", "b2", 600, QUEUED),
                   run("sub", "c1", 450, SUCCESS, parent=("alpha", "a3"))]:
        store.insert_run(record)
    return store


@pytest.mark.parametrize("filters, expected", [
    ({}, ["b2", "g1", "a3", "b1", "a2", "a1"]),
    ({"roots_only": False}, ["b2", "g1", "c1", "a3", "b1", "a2", "a1"]),
    ({"name": "alpha"}, ["a3", "a2", "a1"]),
    ({"name": "sub"}, []),
    ({"name": "sub", "roots_only": False}, ["c1"]),
    ({"name_contains": "ALP"}, ["a3", "a2", "a1"]),
    ({"name_contains": "a_x"}, ["g1"]),
    ({"name_contains": "%"}, []),
    ({"status": SUCCESS}, ["g1", "b1", "a1"]),
    ({"status": SUCCESS, "name": "beta"}, ["b1"]),
    ({"from_ms": 200, "to_ms": 400}, ["a3", "b1", "a2"]),
    ({"from_ms": 401}, ["b2", "g1"]),
    ({"to_ms": 199}, ["a1"]),
    ({"run_id_contains": "b"}, ["b2", "b1"]),
    ({"run_id_contains": "1", "name": "alpha"}, ["a1"]),
    ({"limit": 2}, ["b2", "g1"]),
    ({"limit": 2, "offset": 2}, ["a3", "b1"]),
    ({"limit": 2, "offset": 10}, []),
    ({"limit": None, "offset": 4}, ["a2", "a1"]),
])
def test_list_runs_filters_and_pages(history, filters, expected):
    assert ids(history.list_runs(**filters)) == expected
    counted = {k: v for k, v in filters.items() if k not in ("limit", "offset")}
    total = len(history.list_runs(**counted, limit=None))
    assert history.count_runs(**counted) == total


def test_children_and_child_run(history):
    history.insert_run(run("sub", "c2", 460, FAILED, parent=("sub", "c1"), root=("alpha", "a3")))
    history.insert_run(run("sub", "c0", 440, SUCCESS, parent=("alpha", "a3")))
    assert ids(history.children("a3")) == ["c0", "c1", "c2"]
    assert history.children("a1") == []
    assert history.child_run("a3", "c2")["parentDAGRunId"] == "c1"
    assert history.child_run("a3", "a3") is None
    assert history.child_run("a1", "c2") is None


def test_active_runs_and_count_running(history):
    history.insert_run(run("sub", "c9", 700, RUNNING, parent=("alpha", "a3")))
    assert ids(history.active_runs()) == ["c9", "a3"]
    assert ids(history.active_runs("alpha")) == ["a3"]
    assert history.active_runs("beta") == []
    assert history.count_running(["alpha", "beta", "sub"]) == 1
    assert history.count_running(["beta"]) == 0
    assert history.count_running([]) == 0


def test_delete_old_runs_keeps_active_and_removes_children(store):
    for record in [run("a", "old", 10, SUCCESS), run("a", "old-running", 20, RUNNING),
                   run("a", "old-queued", 30, QUEUED), run("a", "new", 500, FAILED),
                   run("b", "other", 10, SUCCESS),
                   run("sub", "kid", 11, SUCCESS, parent=("a", "old")),
                   run("sub", "grandkid", 12, SUCCESS, parent=("sub", "kid"), root=("a", "old")),
                   run("sub", "kid2", 21, RUNNING, parent=("a", "old-running"))]:
        store.insert_run(record)
    deleted = store.delete_old_runs("a", 100)
    assert sorted(ids(deleted)) == ["grandkid", "kid", "old"]
    assert deleted[0]["name"] in ("a", "sub")
    remaining = store.list_runs(roots_only=False, limit=None)
    assert sorted(ids(remaining)) == ["kid2", "new", "old-queued", "old-running", "other"]
    assert store.delete_old_runs("a", 100) == []


def test_dag_names_with_runs(store):
    assert store.dag_names_with_runs() == []
    for name in ["zeta", "alpha", "mid", "alpha"]:
        store.insert_run(run(name, f"{name}-{len(store.list_runs(limit=None))}", 1))
    assert store.dag_names_with_runs() == ["alpha", "mid", "zeta"]


def query_plan(store: RunStore, sql: str) -> str:
    conn = sqlite3.connect(store.path)
    try:
        return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
    finally:
        conn.close()


@pytest.mark.parametrize("method, kwargs, index", [
    ("list_runs", {}, "roots_created"),
    ("count_runs", {}, "roots_"),    # any root-only index covers a plain count
    ("list_runs", {"name": "alpha"}, "roots_name_created"),
    ("count_runs", {"name": "alpha"}, "roots_name_created"),
    ("list_runs", {"status": RUNNING}, "roots_status_created"),
    ("count_runs", {"status": RUNNING}, "roots_status_created"),
    ("list_runs", {"from_ms": 1, "to_ms": 2}, "roots_created"),
    ("count_runs", {"from_ms": 1, "to_ms": 2}, "roots_created"),
    ("list_runs", {"roots_only": False}, "runs_created"),
    ("list_runs", {"name": "alpha", "roots_only": False}, "runs_name_created"),
    ("list_runs", {"status": RUNNING, "roots_only": False}, "runs_status_created"),
    ("list_runs", {"name_contains": "x", "roots_only": False}, "runs_created"),
    ("count_runs", {"name_contains": "x"}, "roots_name_created"),
    ("count_runs", {"name_contains": "x", "roots_only": False}, "runs_name_created"),
    ("latest_run", {"name": "alpha"}, "roots_name_created"),
    ("find_run", {"run_id": "r1"}, "runs_run_id"),
    ("children", {"root_run_id": "r1"}, "runs_root"),
    ("active_runs", {}, "runs_status_created"),
    ("count_running", {"names": ["a", "b"]}, "roots_"),
    ("dag_names_with_runs", {}, "roots_name_created"),
    ("queue_items", {"queue_name": "q"}, "queue_by_name"),
])
def test_queries_use_an_index_and_never_sort_history(traced, method, kwargs, index):
    traced.statements.clear()
    getattr(traced, method)(**kwargs)
    plan = query_plan(traced, traced.statements[-1])
    assert f"INDEX {index}" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_delete_old_runs_in_batches(store):
    for i in range(7):
        store.insert_run(run("a", f"r{i}", i))
        store.insert_run(run("sub", f"c{i}", i, parent=("a", f"r{i}")))
    assert len(store.delete_old_runs("a", 5, batch=2)) == 10
    assert sorted(ids(store.list_runs(roots_only=False))) == ["c5", "c6", "r5", "r6"]


# ---------------------------------------------------------------- queue


def test_queue_is_fifo_per_queue(store):
    order = [("q1", "a", "r1"), ("q2", "b", "r2"), ("q1", "c", "r3"), ("q2", "a", "r4"),
             ("q1", "a", "r5")]
    item_ids = [store.enqueue(q, d, r, 1000 - i) for i, (q, d, r) in enumerate(order)]
    assert item_ids == sorted(item_ids)
    assert ids_of(store.queue_items("q1")) == ["r1", "r3", "r5"]
    assert ids_of(store.queue_items("q2")) == ["r2", "r4"]
    assert ids_of(store.queue_items()) == ["r1", "r2", "r3", "r4", "r5"]
    assert ids_of(store.queue_items("q1", limit=2)) == ["r1", "r3"]
    assert store.queue_items("q1")[0] == {"id": item_ids[0], "queueName": "q1", "dagName": "a",
                                          "dagRunId": "r1", "enqueuedAt": 1000}
    assert store.queue_names() == ["q1", "q2"]
    assert (store.queue_length(), store.queue_length("q1"), store.queue_length("nope")) == (5, 3, 0)
    assert store.dequeue("c", "r3") is True
    assert store.dequeue("c", "r3") is False
    assert ids_of(store.queue_items("q1")) == ["r1", "r5"]
    assert store.enqueue("q1", "c", "r3", 1) > item_ids[-1]  # re-enqueued goes to the back
    assert ids_of(store.queue_items("q1")) == ["r1", "r5", "r3"]
    with pytest.raises(AlreadyExists):
        store.enqueue("q2", "a", "r1", 1)


def ids_of(items: list[dict]) -> list[str]:
    return [item["dagRunId"] for item in items]


def test_insert_queued_run_writes_run_and_item(store):
    record = run("a", "r1", 1, QUEUED, queuedAt="2025-01-02T03:04:05.678Z")
    store.insert_queued_run(record, "q")
    assert store.get_run("a", "r1") == record
    assert store.queue_items("q")[0]["enqueuedAt"] == 1735787045678


@pytest.mark.parametrize("existing", ["run", "queue item"])
def test_insert_queued_run_duplicate_writes_nothing(store, existing):
    if existing == "run":
        store.insert_run(run("a", "r1", 1, SUCCESS))
    else:
        store.enqueue("q", "a", "r1", 1)
    with pytest.raises(AlreadyExists):
        store.insert_queued_run(run("a", "r1", 2, QUEUED), "other")
    assert store.queue_length("other") == 0
    assert store.queue_length() == (0 if existing == "run" else 1)
    stored = store.get_run("a", "r1")
    assert stored is None if existing == "queue item" else stored["status"] == SUCCESS


# ---------------------------------------------------------------- DAG state


def test_suspend_flags(store):
    assert not store.is_suspended("a")
    store.set_suspended("a", True)
    store.set_suspended("a", True)
    store.set_suspended("b", True)
    assert store.is_suspended("a") and store.suspended_files() == {"a", "b"}
    store.set_suspended("a", False)
    store.set_suspended("c", False)
    assert not store.is_suspended("a") and store.suspended_files() == {"b"}


# ---------------------------------------------------------------- scheduler fires


def test_claim_fire_once_across_two_stores(tmp_path):
    path = str(tmp_path / "dagu.db")
    with RunStore(path) as one, RunStore(path) as two:
        assert one.claim_fire("a", "start", 100) is True
        assert two.claim_fire("a", "start", 100) is False
        assert one.claim_fire("a", "start", 100) is False
        assert two.claim_fire("a", "stop", 100) is True
        assert two.claim_fire("b", "start", 100) is True
        assert one.claim_fire("a", "start", 160) is True
        assert two.last_fire("a", "start") == 160
        assert one.last_fire("a", "restart") is None
        two.prune_fires(150)
        # old claims go, but each (DAG, kind) keeps its latest: catch-up needs it
        assert one.last_fire("a", "stop") == 100
        assert one.last_fire("a", "start") == 160
        assert one.claim_fire("a", "start", 100) is True   # the older (a, start) claim was pruned


def _race(threads: int, action, path: str, shared: bool = False) -> list:
    """Run `action(store)` in threads released together; each its own store unless shared."""
    barrier = threading.Barrier(threads)
    results: list = []
    common = RunStore(path) if shared else None

    def worker():
        s = common or RunStore(path)
        barrier.wait()
        results.append(action(s))
        if not shared:
            s.close()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if common:
        common.close()
    return results


@pytest.mark.parametrize("shared", [False, True])
def test_claim_fire_exactly_once_from_racing_threads(tmp_path, shared):
    path = str(tmp_path / "dagu.db")
    RunStore(path).close()
    for minute in range(5):
        wins = _race(8, lambda s: s.claim_fire("a", "start", minute), path, shared)
        assert sum(wins) == 1


def test_threads_sharing_one_store_lose_nothing(store):
    def insert_many(s):
        name = threading.current_thread().name
        for i in range(25):
            s.insert_run(run(name, str(i), i))
            s.update_run(run(name, str(i), i, FAILED))
        return True

    _race(8, insert_many, store.path, shared=True)
    assert store.count_runs(status=FAILED) == 200


def _insert_from_process(path: str, worker: int) -> None:
    with RunStore(path) as s:
        for i in range(50):
            s.insert_run(run(f"dag{worker}", f"run{i}", i, RUNNING))
            s.claim_fire("shared", "start", i)


def test_concurrent_writer_processes_lose_nothing(tmp_path):
    path = str(tmp_path / "dagu.db")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_insert_from_process, args=(path, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with RunStore(path) as s:
        assert s.count_runs() == 200
        assert s.count_running([f"dag{w}" for w in range(4)]) == 200
        assert s.dag_names_with_runs() == ["dag0", "dag1", "dag2", "dag3"]
        assert s.last_fire("shared", "start") == 49
