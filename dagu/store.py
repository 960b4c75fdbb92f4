"""SQLite run store: run records, the queue, DAG state and scheduler fires, shared by processes."""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from dagu.errors import AlreadyExists, BadRequest, DaguError, NotFound

# Each entry migrates the schema from version i to i + 1; append, never edit.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL, run_id TEXT NOT NULL,
            root_name TEXT NOT NULL, root_run_id TEXT NOT NULL,
            parent_name TEXT NOT NULL, parent_run_id TEXT NOT NULL,
            status INTEGER NOT NULL, params TEXT NOT NULL,
            queued_at INTEGER, started_at INTEGER, finished_at INTEGER,
            created_at INTEGER NOT NULL, pid INTEGER NOT NULL, attempt INTEGER NOT NULL,
            run_trigger TEXT NOT NULL, record TEXT NOT NULL,
            UNIQUE (name, run_id))""",
        "CREATE INDEX runs_name_created ON runs (name, created_at)",
        "CREATE INDEX runs_created ON runs (created_at)",
        "CREATE INDEX runs_status_created ON runs (status, created_at)",
        # Root runs are what lists and counts show; partial indexes let COUNT(*) read the
        # index alone instead of every (large) row.
        "CREATE INDEX roots_created ON runs (created_at) WHERE parent_run_id = ''",
        "CREATE INDEX roots_name_created ON runs (name, created_at) WHERE parent_run_id = ''",
        "CREATE INDEX roots_status_created ON runs (status, created_at) WHERE parent_run_id = ''",
        "CREATE INDEX runs_root ON runs (root_run_id, created_at)",
        "CREATE INDEX runs_run_id ON runs (run_id, created_at)",
        """CREATE TABLE queue (
            id INTEGER PRIMARY KEY AUTOINCREMENT, queue_name TEXT NOT NULL,
            dag_name TEXT NOT NULL, run_id TEXT NOT NULL, enqueued_at INTEGER NOT NULL,
            UNIQUE (dag_name, run_id))""",
        "CREATE INDEX queue_by_name ON queue (queue_name, id)",
        """CREATE TABLE dag_state (
            file_name TEXT PRIMARY KEY, suspended INTEGER NOT NULL) WITHOUT ROWID""",
        """CREATE TABLE schedule_fires (
            dag_name TEXT NOT NULL, kind TEXT NOT NULL, minute INTEGER NOT NULL,
            PRIMARY KEY (dag_name, kind, minute)) WITHOUT ROWID""",
    ],
    # The big parts of a record that never change during a run (DAG snapshot, YAML source) live
    # in their own column, so the frequent progress updates of a running run stay small.
    ["ALTER TABLE runs ADD COLUMN static TEXT NOT NULL DEFAULT ''"],
]
STATIC_KEYS = ("dag", "dagSource", "nodeSteps")
SCHEMA_VERSION = len(MIGRATIONS)

_RUN_COLUMNS = ("root_name, root_run_id, parent_name, parent_run_id, status, params, queued_at,"
                " started_at, finished_at, created_at, pid, attempt, run_trigger, record")
_ORDER_NEWEST = " ORDER BY created_at DESC, id DESC"
_ACTIVE = (1, 5)  # running, queued
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)


def epoch_ms(text: str) -> int | None:
    """RFC 3339 text to unix milliseconds; '' or '-' means unset (None); no offset means UTC."""
    if not text or text == "-":
        return None
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise BadRequest(f"invalid timestamp {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // _MS


def _run_key(record: dict) -> tuple[str, str]:
    name, run_id = record.get("name"), record.get("dagRunId")
    if not name or not run_id:
        raise BadRequest("a run record needs 'name' and 'dagRunId'")
    return str(name), str(run_id)


def _run_columns(record: dict) -> tuple[Any, ...]:
    """The indexed column values of a record, in _RUN_COLUMNS order (key columns excluded)."""
    name, run_id = _run_key(record)
    if not isinstance(record.get("createdAt"), int):
        raise BadRequest(f"run record {run_id} needs an integer 'createdAt' (unix ms)")
    return (
        record.get("rootDAGRunName") or name,
        record.get("rootDAGRunId") or run_id,
        record.get("parentDAGRunName") or "",
        record.get("parentDAGRunId") or "",
        int(record.get("status") or 0),
        str(record.get("params") or ""),
        epoch_ms(record.get("queuedAt") or ""),
        epoch_ms(record.get("startedAt") or ""),
        epoch_ms(record.get("finishedAt") or ""),
        record["createdAt"],
        int(record.get("pid") or 0),
        int(record.get("attempt") or 0),
        str(record.get("trigger") or ""),
        json.dumps({k: v for k, v in record.items() if k not in STATIC_KEYS},
                   separators=(",", ":")),
    )


def _static_json(record: dict) -> str:
    return json.dumps({k: record[k] for k in STATIC_KEYS if k in record}, separators=(",", ":"))


def _merge(row: tuple) -> dict:
    record = json.loads(row[0])
    if len(row) > 1 and row[1]:
        record.update(json.loads(row[1]))
        _hydrate_steps(record)
    return record


def _hydrate_steps(record: dict) -> None:
    """Progress saves store each node's step by name only; put the full step back."""
    steps = record.get("nodeSteps")
    if not steps:
        return
    nodes = list(record.get("nodes") or [])
    nodes += [record[k] for k in ("onSuccess", "onFailure", "onCancel", "onExit") if record.get(k)]
    for node in nodes:
        step = node.get("step") or {}
        if len(step) == 1 and step.get("name") in steps:
            node["step"] = steps[step["name"]]


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, with its wildcards escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _run_filter(filters: dict[str, Any], names: list[str] | None = None) -> tuple[str, list]:
    """WHERE clause and arguments for the list filters; `names` replaces name_contains."""
    terms: list[str] = []
    args: list[Any] = []
    for term, key in (("name = ?", "name"), ("status = ?", "status"),
                      ("created_at >= ?", "from_ms"), ("created_at <= ?", "to_ms")):
        if filters.get(key) is not None:
            terms.append(term)
            args.append(filters[key])
    if names is not None:
        terms.append(f"name IN ({', '.join('?' * len(names))})")
        args += names
    elif filters.get("name_contains"):
        terms.append("name LIKE ? ESCAPE '\\'")
        args.append(_like(filters["name_contains"]))
    if filters.get("run_id_contains"):
        terms.append("run_id LIKE ? ESCAPE '\\'")
        args.append(_like(filters["run_id_contains"]))
    if filters.get("roots_only", True):
        terms.append("parent_run_id = ''")
    return (" WHERE " + " AND ".join(terms)) if terms else "", args


class RunStore:
    """The run store at one SQLite file; safe to share between the threads of a process."""

    def __init__(self, path: str):
        """Open (creating directories and schema as needed) the store at `path`."""
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, timeout=10, isolation_level=None,
                                     check_same_thread=False)
        try:
            self._conn.execute("PRAGMA busy_timeout=10000")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            if self._version() != SCHEMA_VERSION:
                self._migrate()
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ plumbing

    def _version(self) -> int:
        return self._conn.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        # journal_mode persists in the file and cannot change inside a transaction; switching
        # needs a moment alone with the file and does not wait on busy_timeout, so retry
        # while another process is creating the same database.
        deadline = time.monotonic() + 10
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        with self._write() as conn:
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = self._version()
            if version > SCHEMA_VERSION:
                raise DaguError(f"{self.path}: schema version {version} is newer than this "
                                f"dagu understands ({SCHEMA_VERSION})")
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, taken with the write lock up front (no upgrade races)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:  # SQLite may already have rolled back
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _rows(self, sql: str, args: tuple | list = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def _records(self, where: str, args: tuple | list = (), static: bool = True) -> list[dict]:
        columns = "record, static" if static else "record"
        return [_merge(row) for row in self._rows(f"SELECT {columns} FROM runs" + where, args)]

    def _first(self, where: str, args: tuple | list = ()) -> dict | None:
        records = self._records(where + " LIMIT 1", args)
        return records[0] if records else None

    @staticmethod
    def _insert(conn: sqlite3.Connection, record: dict) -> None:
        name, run_id = _run_key(record)
        values = (name, run_id) + _run_columns(record) + (_static_json(record),)
        try:
            conn.execute(f"INSERT INTO runs (name, run_id, {_RUN_COLUMNS}, static)"
                         f" VALUES ({', '.join('?' * len(values))})", values)
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"dag-run ID {run_id} already exists for DAG {name}") from None

    # ------------------------------------------------------------ runs

    def insert_run(self, record: dict) -> None:
        """Insert a new run; AlreadyExists when (name, dagRunId) is taken."""
        with self._write() as conn:
            self._insert(conn, record)

    def update_run(self, record: dict) -> None:
        """Replace the stored run with the same (name, dagRunId); NotFound if there is none."""
        name, run_id = _run_key(record)
        if not self._update(record, ""):
            raise NotFound(f"dag-run {run_id} not found for DAG {name}")

    def update_progress(self, record: dict) -> None:
        """Save a running run's progress; its DAG snapshot and source (STATIC_KEYS) stay as stored."""
        name, run_id = _run_key(record)
        if not self._update(record, "", with_static=False):
            raise NotFound(f"dag-run {run_id} not found for DAG {name}")

    def update_run_if(self, record: dict, expected_status: int) -> bool:
        """Replace the stored run only if its status is still `expected_status`."""
        return self._update(record, " AND status = ?", (expected_status,))

    def _update(self, record: dict, condition: str, extra: tuple = (),
                with_static: bool = True) -> bool:
        columns = [column.strip() for column in _RUN_COLUMNS.split(",")]
        values = _run_columns(record)
        if with_static and any(k in record for k in STATIC_KEYS):
            columns.append("static")
            values += (_static_json(record),)
        assignments = ", ".join(f"{column} = ?" for column in columns)
        args = values + _run_key(record) + extra
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE runs SET {assignments} WHERE name = ? AND run_id = ?{condition}", args)
            return cursor.rowcount == 1

    def get_run(self, name: str, run_id: str) -> dict | None:
        """The run with this DAG name and id."""
        return self._first(" WHERE name = ? AND run_id = ?", (name, run_id))

    def find_run(self, run_id: str) -> dict | None:
        """The newest run with this id, of any DAG."""
        return self._first(" WHERE run_id = ?" + _ORDER_NEWEST, (run_id,))

    def latest_run(self, name: str) -> dict | None:
        """The newest root run of a DAG."""
        return self._first(" WHERE name = ? AND parent_run_id = ''" + _ORDER_NEWEST, (name,))

    def list_runs(self, *, name: str | None = None, name_contains: str | None = None,
                  status: int | None = None, from_ms: int | None = None,
                  to_ms: int | None = None, run_id_contains: str | None = None,
                  roots_only: bool = True, limit: int | None = 100,
                  offset: int = 0, with_static: bool = False) -> list[dict]:
        """Runs matching every given filter, newest first; limit None means all. The DAG
        snapshot and source (STATIC_KEYS) are left out unless with_static."""
        where, args = _run_filter(dict(
            name=name, name_contains=name_contains, status=status, from_ms=from_ms,
            to_ms=to_ms, run_id_contains=run_id_contains, roots_only=roots_only))
        limit_args = [-1 if limit is None else limit, offset]
        return self._records(where + _ORDER_NEWEST + " LIMIT ? OFFSET ?", args + limit_args,
                             static=with_static)

    def count_runs(self, *, name: str | None = None, name_contains: str | None = None,
                   status: int | None = None, from_ms: int | None = None,
                   to_ms: int | None = None, run_id_contains: str | None = None,
                   roots_only: bool = True) -> int:
        """How many runs match the list_runs filters."""
        filters = dict(name=name, name_contains=name_contains, status=status, from_ms=from_ms,
                       to_ms=to_ms, run_id_contains=run_id_contains, roots_only=roots_only)
        # LIKE would read every row; matching the few distinct names first keeps the count
        # on the name index. (Lists keep LIKE: their ordered scan stops after one page.)
        names = None
        if name_contains:
            needle = name_contains.lower()
            names = [n for n in self._names(roots_only) if needle in n.lower()]
            if not names:
                return 0
        where, args = _run_filter(filters, names)
        return self._rows("SELECT COUNT(*) FROM runs" + where, args)[0][0]

    def children(self, root_run_id: str) -> list[dict]:
        """Every descendant run stored under this root run id, oldest first."""
        return self._records(" WHERE root_run_id = ? AND parent_run_id != ''"
                             " ORDER BY created_at, id", (root_run_id,))

    def child_run(self, root_run_id: str, child_run_id: str) -> dict | None:
        """One descendant of a root run."""
        return self._first(" WHERE root_run_id = ? AND run_id = ? AND parent_run_id != ''",
                           (root_run_id, child_run_id))

    def active_runs(self, name: str | None = None) -> list[dict]:
        """Running runs (roots and children, so the sweeper sees all), newest first."""
        if name is None:
            return self._records(" WHERE status = 1" + _ORDER_NEWEST)
        return self._records(" WHERE status = 1 AND name = ?" + _ORDER_NEWEST, (name,))

    def count_running(self, names: list[str]) -> int:
        """How many root runs of these DAGs are running (queue and maxActiveRuns limits)."""
        if not names:
            return 0
        marks = ", ".join("?" * len(names))
        sql = ("SELECT COUNT(*) FROM runs WHERE status = 1 AND parent_run_id = ''"
               f" AND name IN ({marks})")
        return self._rows(sql, list(names))[0][0]

    def delete_old_runs(self, name: str, before_ms: int, batch: int = 200) -> list[dict]:
        """Delete a DAG's inactive root runs created before the cutoff, with their children."""
        deleted: list[dict] = []
        while True:
            # Batches keep each write transaction short while other processes wait on it.
            with self._write() as conn:
                roots = conn.execute(
                    "SELECT id, run_id, record, static FROM runs WHERE name = ? AND created_at < ?"
                    f" AND parent_run_id = '' AND status NOT IN {_ACTIVE} LIMIT ?",
                    (name, before_ms, batch)).fetchall()
                doomed = list(roots)
                for _, run_id, _, _ in roots:
                    doomed += conn.execute(
                        "SELECT id, run_id, record, static FROM runs WHERE root_run_id = ?"
                        " AND root_name = ? AND parent_run_id != ''", (run_id, name)).fetchall()
                conn.executemany("DELETE FROM runs WHERE id = ?", [(row[0],) for row in doomed])
            deleted += [_merge(row[2:]) for row in doomed]
            if len(roots) < batch:
                return deleted

    def dag_names_with_runs(self) -> list[str]:
        """Distinct DAG names that have root runs, sorted."""
        return self._names(roots_only=True)

    def _names(self, roots_only: bool) -> list[str]:
        # A skip-scan over a name index: O(names * log rows) instead of reading every row.
        roots = " AND parent_run_id = ''" if roots_only else ""
        sql = f"""WITH RECURSIVE names(name) AS (
                   SELECT MIN(name) FROM runs WHERE name IS NOT NULL{roots}
                   UNION ALL
                   SELECT (SELECT MIN(name) FROM runs WHERE name > names.name{roots})
                   FROM names WHERE names.name IS NOT NULL)
                 SELECT name FROM names WHERE name IS NOT NULL"""
        return [row[0] for row in self._rows(sql)]

    # ------------------------------------------------------------ queue

    def enqueue(self, queue_name: str, dag_name: str, run_id: str, enqueued_ms: int) -> int:
        """Append a run to a queue; returns its FIFO id. AlreadyExists if already queued."""
        with self._write() as conn:
            return self._enqueue(conn, queue_name, dag_name, run_id, enqueued_ms)

    @staticmethod
    def _enqueue(conn: sqlite3.Connection, queue_name: str, dag_name: str, run_id: str,
                 enqueued_ms: int) -> int:
        try:
            cursor = conn.execute(
                "INSERT INTO queue (queue_name, dag_name, run_id, enqueued_at) VALUES (?, ?, ?, ?)",
                (queue_name, dag_name, run_id, enqueued_ms))
        except sqlite3.IntegrityError:
            raise AlreadyExists(
                f"dag-run ID {run_id} of DAG {dag_name} is already queued") from None
        return int(cursor.lastrowid or 0)

    def insert_queued_run(self, record: dict, queue_name: str) -> None:
        """Insert a run and its queue item atomically (both or neither)."""
        name, run_id = _run_key(record)
        enqueued = epoch_ms(record.get("queuedAt") or "") or record.get("createdAt") or 0
        with self._write() as conn:
            self._insert(conn, record)
            self._enqueue(conn, queue_name, name, run_id, enqueued)

    def dequeue(self, dag_name: str, run_id: str) -> bool:
        """Remove a run's queue item; False if it was not queued."""
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM queue WHERE dag_name = ? AND run_id = ?",
                                  (dag_name, run_id))
            return cursor.rowcount > 0

    def queue_items(self, queue_name: str | None = None, limit: int = 100) -> list[dict]:
        """Queue items oldest first, of one queue or all."""
        where, args = ("", []) if queue_name is None else (" WHERE queue_name = ?", [queue_name])
        rows = self._rows("SELECT id, queue_name, dag_name, run_id, enqueued_at FROM queue"
                          + where + " ORDER BY id LIMIT ?", args + [limit])
        keys = ("id", "queueName", "dagName", "dagRunId", "enqueuedAt")
        return [dict(zip(keys, row)) for row in rows]

    def queue_names(self) -> list[str]:
        """Names of queues that hold items, sorted."""
        return [row[0] for row in self._rows("SELECT DISTINCT queue_name FROM queue ORDER BY 1")]

    def queue_length(self, queue_name: str | None = None) -> int:
        """Items in one queue, or in all."""
        if queue_name is None:
            return self._rows("SELECT COUNT(*) FROM queue")[0][0]
        return self._rows("SELECT COUNT(*) FROM queue WHERE queue_name = ?", (queue_name,))[0][0]

    # ------------------------------------------------------------ DAG state

    def set_suspended(self, file_name: str, suspended: bool) -> None:
        """Suspend or resume a DAG's schedule."""
        with self._write() as conn:
            if suspended:
                conn.execute("INSERT OR REPLACE INTO dag_state (file_name, suspended)"
                             " VALUES (?, 1)", (file_name,))
            else:
                conn.execute("DELETE FROM dag_state WHERE file_name = ?", (file_name,))

    def is_suspended(self, file_name: str) -> bool:
        """Whether a DAG is suspended."""
        return bool(self._rows("SELECT 1 FROM dag_state WHERE file_name = ? AND suspended = 1",
                               (file_name,)))

    def suspended_files(self) -> set[str]:
        """File names of every suspended DAG."""
        rows = self._rows("SELECT file_name FROM dag_state WHERE suspended = 1")
        return {row[0] for row in rows}

    # ------------------------------------------------------------ scheduler fires

    def claim_fire(self, dag_name: str, kind: str, minute_epoch: int) -> bool:
        """Claim a scheduled minute; True only for the first claimer across all processes."""
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO schedule_fires (dag_name, kind, minute) VALUES (?, ?, ?)",
                (dag_name, kind, minute_epoch))
            return cursor.rowcount == 1

    def last_fire(self, dag_name: str, kind: str) -> int | None:
        """The latest claimed minute of a DAG's schedule kind."""
        sql = "SELECT MAX(minute) FROM schedule_fires WHERE dag_name = ? AND kind = ?"
        return self._rows(sql, (dag_name, kind))[0][0]

    def prune_fires(self, before_epoch: int) -> None:
        """Forget claimed minutes older than the cutoff, except each (DAG, kind)'s latest one
        (catch-up needs to know when a rarely firing DAG last fired)."""
        with self._write() as conn:
            conn.execute("DELETE FROM schedule_fires WHERE minute < ? AND (dag_name, kind, minute)"
                         " NOT IN (SELECT dag_name, kind, MAX(minute) FROM schedule_fires"
                         " GROUP BY dag_name, kind)", (before_epoch,))

    def dispatched_runs(self) -> list[dict]:
        """Queued runs no longer in the queue: handed to a runner that has not started yet."""
        return self._records(" WHERE status = 5 AND NOT EXISTS (SELECT 1 FROM queue q"
                             " WHERE q.dag_name = runs.name AND q.run_id = runs.run_id)")
