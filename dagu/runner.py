"""The runner process's side of a run: lock, record, logs, signals, engine, final status."""
from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass

from dagu import params as P, spec
from dagu.clock import Clock
from dagu.config import Config
from dagu.dags import load_options, read_text
from dagu.errors import AlreadyRunning, BadRequest, NotFound
from dagu.launcher import RunLock, lock_path, notify_scheduler
from dagu.logs import delete_run_logs, run_log_dir, run_log_path
from dagu.model import DAG
from dagu.runrecord import new_record, rfc3339
from dagu.shell import command_runner
from dagu.status import RunStatus
from dagu.store import RunStore


@dataclass
class RunRequest:
    """What to run: a loaded DAG and the identity of the run."""

    dag: DAG
    run_id: str
    environ: dict
    source: str = ""
    root: tuple[str, str] | None = None
    parent: tuple[str, str] | None = None
    trigger: str = "cli"
    quiet: bool = False
    existing: dict | None = None     # retry / queued dispatch: the record to continue
    retry_step: str = ""
    preconditions_met: bool = True   # set by execute(): False when the DAG's were not met


class RunLog:
    """The run's own log: a file, echoed to stderr unless quiet."""

    def __init__(self, path: str, clock: Clock, quiet: bool):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.fh = open(path, "a", encoding="utf-8", buffering=1)
        self.clock = clock
        self.quiet = quiet
        self.lock = threading.Lock()

    def __call__(self, message: str) -> None:
        line = f"{rfc3339(self.clock.now())} INFO {message}\n"
        with self.lock:
            self.fh.write(line)
            if not self.quiet:
                sys.stderr.write(line)
                sys.stderr.flush()

    def close(self) -> None:
        self.fh.close()


def log_root(config: Config, dag: DAG) -> str:
    """Where a DAG's logs go: its logDir, else the configured log directory."""
    return os.path.abspath(os.path.expanduser(dag.log_dir)) if dag.log_dir else config.log_dir


def execute(config: Config, req: RunRequest, clock: Clock | None = None) -> RunStatus:
    """Run (or continue) a run in this process to its end; returns the final status."""
    clock = clock or Clock()
    dag = req.dag
    store = RunStore(config.db_path)
    lock = RunLock(lock_path(config.data_dir, dag.name, req.run_id))
    if not lock.acquire():
        raise AlreadyRunning(f"dag-run {req.run_id} of DAG {dag.name} is already running")
    try:
        record = _start_record(store, config, req, lock.path, clock)
        run_dir = os.path.dirname(record["log"])
        log = RunLog(record["log"], clock, req.quiet)
        try:
            return _run(store, config, req, record, run_dir, log, clock)
        finally:
            log.close()
    finally:
        lock.release()
        store.close()
        notify_scheduler(config.data_dir)   # a slot is free: the queue can move now


def _start_record(store: RunStore, config: Config, req: RunRequest, lock: str, clock: Clock) -> dict:
    now = clock.now()
    if req.existing is None:
        run_dir = run_log_dir(log_root(config, req.dag), req.dag.name, req.run_id)
        record = new_record(req.dag, req.run_id, status=RunStatus.RUNNING, now=now,
                            log_path=run_log_path(run_dir), lock=lock, source=req.source,
                            root=req.root, parent=req.parent, trigger=req.trigger)
        _mark_started(record, now)
        store.insert_run(record)
        return record
    record = dict(req.existing)
    before = record.get("status")
    if before == RunStatus.RUNNING:
        raise AlreadyRunning(f"dag-run {req.run_id} of DAG {req.dag.name} is already running")
    if before != RunStatus.QUEUED:
        record["attempt"] = int(record.get("attempt", 1)) + 1
    record["lockPath"] = lock
    _mark_started(record, now)
    # compare-and-set: a dequeue (or another retry) that got there first wins
    if not store.update_run_if(record, int(before)):
        raise BadRequest(f"dag-run {req.run_id} of DAG {req.dag.name} changed while starting "
                         "(dequeued or started elsewhere)")
    return record


def _mark_started(record: dict, now) -> None:
    record.update(status=int(RunStatus.RUNNING), statusLabel=RunStatus.RUNNING.label,
                  pid=os.getpid(), startedAt=rfc3339(now), finishedAt="", error="")


def _run(store: RunStore, config: Config, req: RunRequest, record: dict, run_dir: str, log,
         clock: Clock) -> RunStatus:
    from dagu.engine import Engine   # here: the API imports this module without running anything
    dag = req.dag
    log(f'Run started dag={dag.name} dagRunId={req.run_id} attempt={record["attempt"]} '
        f'params="[{" ".join(dag.params_list)}]"')
    engine = Engine(dag, record, save=store.update_progress, environ=req.environ, clock=clock, log=log,
                    run_dir=run_dir, previous=req.existing if req.existing and
                    req.existing.get("status") != RunStatus.QUEUED else None,
                    retry_step=req.retry_step,
                    child_args={"dags_dir": config.dags_dir, "config": config.config_file or ""})
    engine.store = store
    restore = _install_signal_handlers(engine)
    try:
        if not req.parent:
            _apply_retention(store, dag, clock)
        status = engine.run()
    finally:
        restore()
        engine.close()
    with engine.cond:
        final = engine.snapshot()
    final.update(status=int(status), statusLabel=status.label,
                 finishedAt=rfc3339(clock.now()), error=engine.last_error)
    store.update_run(final)
    req.preconditions_met = engine.preconditions_met
    log(f"Run finished dag={dag.name} dagRunId={req.run_id} status={status.label}")
    return status


def _install_signal_handlers(engine):
    """SIGTERM/SIGINT cancel the run (in a thread: the handler must not take the engine's lock)."""
    def handler(signum, _frame):
        threading.Thread(target=engine.cancel, args=(signum, True), daemon=True).start()

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}

    def restore():
        for s, h in previous.items():
            signal.signal(s, h)
    return restore


def _apply_retention(store: RunStore, dag: DAG, clock: Clock) -> None:
    """Delete this DAG's runs (and their logs) older than histRetentionDays."""
    if dag.hist_retention_days < 0:
        return
    cutoff = int(clock.now().timestamp() * 1000) - dag.hist_retention_days * 86_400_000
    for old in store.delete_old_runs(dag.name, cutoff):
        delete_run_logs(old)


# -- loading DAGs for runs ------------------------------------------------------------------------

def load_for_run(text: str, location: str, config: Config, params: list[P.ParamToken] | None,
                 local_name: str = "") -> tuple[DAG, dict, str]:
    """Load and evaluate a DAG for a run (and for `dry`): (dag, its environment, its YAML text)."""
    if local_name:
        local = spec.load(text, load_options(location, config)).local_dag(local_name)
        if local is None:
            raise NotFound(f"local DAG {local_name!r} not found in {location}")
        text = local.source
    env = dict(os.environ)
    runner = command_runner(env, os.path.dirname(location) or None)
    dag = spec.load(text, load_options(location, config, evaluate=True, environ=env,
                                       run_command=runner, params=params))
    return dag, env, text


def reload_record_dag(record: dict, config: Config) -> tuple[DAG, dict, str]:
    """The DAG of an existing run, from the YAML stored with it, with the run's params."""
    tokens = [P.ParamToken(k, v) for k, v in (item.split("=", 1) for item in
                                              record.get("paramsList") or [] if "=" in item)]
    source = record.get("dagSource") or read_text(record.get("dagFile", "")) or ""
    return load_for_run(source, record.get("dagFile", ""), config, tokens)
