"""The run verbs of the CLI: start, enqueue, dequeue, stop, restart, retry, status, history."""
from __future__ import annotations

import json
import os
import time

from dagu import params as P
from dagu.clock import Clock, wait_until
from dagu.config import Config
from dagu.dags import load_dag_file, read_text, resolve_dag_path, strip_suffix
from dagu.errors import AlreadyExists, BadRequest, DaguError, NotFound
from dagu.launcher import notify_scheduler, runner_alive, stop_runner
from dagu.logs import run_log_dir, run_log_path
from dagu.launcher import reconcile_record
from dagu.runner import (RunRequest, execute, load_for_run, log_root,
                         reload_record_dag)
from dagu.runrecord import check_run_id, new_record, new_run_id, public_view, rfc3339
from dagu.status import RunStatus
from dagu.store import RunStore

STOP_POLL_SEC = 0.05


def exit_code(status: RunStatus, req: RunRequest | None = None) -> int:
    """0 for success (and for a run that was queued instead, or one whose DAG preconditions
    were not met: nothing failed, as in Dagu), 1 for anything else."""
    if status in (RunStatus.SUCCESS, RunStatus.QUEUED):
        return 0
    return 0 if req is not None and not req.preconditions_met else 1


def _ref(value: str | None, flag: str) -> tuple[str, str] | None:
    if not value:
        return None
    name, sep, run_id = value.partition(":")
    if not sep or not name or not run_id:
        raise BadRequest(f"{flag} must look like NAME:RUN_ID, got {value!r}")
    return name, run_id


def _run_id(given: str | None) -> str:
    if not given:
        return new_run_id()
    given = given.strip('"')
    problem = check_run_id(given)
    if problem:
        raise BadRequest(problem)
    return given


def _load(config: Config, file_arg: str, params, local: str = ""):
    path = resolve_dag_path(file_arg, config.dags_dir)
    text = read_text(path)
    if text is None:
        raise NotFound(f"cannot read {path}")
    return load_for_run(text, path, config, params, local)


def cmd_start(config: Config, args, params: list[P.ParamToken] | None) -> int:
    """Run a DAG in the foreground (or queue it when another run of it is active)."""
    root, parent = _ref(args.root, "--root"), _ref(args.parent, "--parent")
    if (root or parent) and not args.run_id:
        raise BadRequest("--root and --parent need --run-id")
    dag, env, source = _load(config, args.file, params, args.local_dag or "")
    run_id = _run_id(args.run_id)
    store = RunStore(config.db_path)
    try:
        existing = store.get_run(dag.name, run_id)
        if existing is not None and not parent:
            raise AlreadyExists(f"dag-run ID {run_id} already exists for DAG {dag.name}")
        if not parent and _should_queue(store, dag, args):
            return _enqueue(config, store, dag, run_id, source, args.quiet, "queued: another run is active")
    finally:
        store.close()
    req = RunRequest(dag=dag, run_id=run_id, environ=env, source=source, root=root, parent=parent,
                     quiet=args.quiet, existing=existing)
    return exit_code(execute(config, req), req)


def _should_queue(store: RunStore, dag, args) -> bool:
    if args.no_queue or os.environ.get("DISABLE_DAG_RUN_QUEUE") or dag.max_active_runs < 0:
        return False
    active = [reconcile_record(store, r) for r in store.active_runs(dag.name)]
    return any(r and r["status"] == RunStatus.RUNNING for r in active)


def cmd_enqueue(config: Config, args, params) -> int:
    """Record a queued run; the scheduler's dispatcher starts it when a slot is free."""
    if not config.queues_enabled:
        raise BadRequest("queues are disabled in configuration")
    dag, _env, source = _load(config, args.file, params)
    store = RunStore(config.db_path)
    try:
        return _enqueue(config, store, dag, _run_id(args.run_id), source, args.quiet, "")
    finally:
        store.close()


def _enqueue(config: Config, store: RunStore, dag, run_id: str, source: str, quiet: bool,
             why: str) -> int:
    now = Clock().now()
    record = new_record(dag, run_id, status=RunStatus.QUEUED, now=now,
                        log_path=run_log_path(run_log_dir(log_root(config, dag), dag.name, run_id)),
                        lock="", source=source)
    store.insert_queued_run(record, dag.queue_name)
    notify_scheduler(config.data_dir)
    print(f'Enqueued dag-run name={dag.name} dagRunId={run_id} '
          f'params="[{" ".join(dag.params_list)}]"' + (f" ({why})" if why else ""))
    return 0


def cmd_dequeue(config: Config, args) -> int:
    """Cancel a queued run."""
    name, run_id = _ref(args.dag_run, "--dag-run")
    store = RunStore(config.db_path)
    try:
        record = store.get_run(name, run_id)
        if record is None:
            raise NotFound(f"dag-run ID {run_id} not found for DAG {name}")
        if record["status"] != RunStatus.QUEUED:
            raise BadRequest(f"DAGRun status is not queued: {RunStatus(record['status']).label}")
        cancelled = dict(record, status=int(RunStatus.CANCELLED), statusLabel=RunStatus.CANCELLED.label,
                         finishedAt=rfc3339(Clock().now()))
        if not store.update_run_if(cancelled, int(RunStatus.QUEUED)):
            raise BadRequest("the run left the queue before it could be dequeued")
        store.dequeue(name, run_id)
    finally:
        store.close()
    print(f"Dequeued dag-run name={name} dagRunId={run_id}")
    return 0


def dag_name_of(config: Config, arg: str) -> str:
    """A DAG name from a file path or a name (files are read for their `name:`)."""
    try:
        path = resolve_dag_path(arg, config.dags_dir)
    except DaguError:
        return strip_suffix(os.path.basename(arg))
    try:
        return load_dag_file(path, config).name
    except DaguError:
        return strip_suffix(os.path.basename(path))


def find_record(config: Config, store: RunStore, arg: str, run_id: str | None) -> dict:
    """The given run of a DAG, or its latest; orphans reconciled."""
    name = dag_name_of(config, arg)
    record = store.get_run(name, run_id.strip('"')) if run_id else store.latest_run(name)
    if record is None:
        what = f"dag-run ID {run_id} not found for DAG {name}" if run_id else f"no runs of DAG {name}"
        raise NotFound(what)
    return reconcile_record(store, record)


def read_record(config: Config, arg: str, run_id: str | None) -> dict:
    """find_record with a store opened just for it."""
    store = RunStore(config.db_path)
    try:
        return find_record(config, store, arg, run_id)
    finally:
        store.close()


def cmd_status(config: Config, args) -> int:
    """Show a run (latest by default)."""
    record = read_record(config, args.file, args.run_id)
    if args.json:
        print(json.dumps(public_view(record), indent=2))
    else:
        print(describe_run(record))
    return 0


def describe_run(record: dict) -> str:
    """A human summary of a run."""
    lines = [f"DAG: {record['name']}", f"Run ID: {record['dagRunId']} (attempt {record.get('attempt', 1)})",
             f"Status: {record['statusLabel']}", f"Params: {record.get('params', '')}",
             f"Started: {record.get('startedAt') or '-'}  Finished: {record.get('finishedAt') or '-'}",
             f"PID: {record.get('pid') or '-'}  Log: {record.get('log', '')}"]
    if record.get("error"):
        lines.append(f"Error: {record['error']}")
    lines.append("Steps:")
    for node in record.get("nodes", []):
        extra = f" - {node['error']}" if node.get("error") else ""
        lines.append(f"  {node['step']['name']}: {node['statusLabel']}{extra}")
    for key in ("onSuccess", "onFailure", "onCancel", "onExit"):
        if record.get(key):
            lines.append(f"  {key}: {record[key]['statusLabel']}")
    return "\n".join(lines)


def cmd_history(config: Config, args) -> int:
    """List a DAG's runs, newest first."""
    name = dag_name_of(config, args.file)
    store = RunStore(config.db_path)
    try:
        runs = [reconcile_record(store, r) for r in store.list_runs(name=name, limit=args.limit)]
    finally:
        store.close()
    if args.json:
        print(json.dumps([public_view(r) for r in runs], indent=2))
    else:
        for r in runs:
            print(f"{r['dagRunId']}  {r['statusLabel']:<16} {r.get('startedAt') or '-'}  {r.get('params', '')}")
    return 0


def cmd_stop(config: Config, args) -> int:
    """Stop a running run and wait until it has stopped."""
    store = RunStore(config.db_path)
    try:
        record = find_record(config, store, args.file, args.run_id)
        if record["status"] != RunStatus.RUNNING:
            print(f"dag-run {record['dagRunId']} is not running ({record['statusLabel']})")
            return 0
        stop_and_wait(store, record)
    finally:
        store.close()
    print(f"dag-run {record['dagRunId']} of DAG {record['name']} stopped")
    return 0


def stop_and_wait(store: RunStore, record: dict) -> dict:
    """SIGTERM the runner, then wait for it to finish its cleanup (grace time + a margin)."""
    grace = (record.get("dag") or {}).get("maxCleanUpTimeSec", 60)
    stop_runner(record)
    wait_until(lambda: not runner_alive(record.get("lockPath", "")), grace + 10, STOP_POLL_SEC)
    return reconcile_record(store, store.get_run(record["name"], record["dagRunId"]))


def cmd_restart(config: Config, args) -> int:
    """Stop a running run and start the DAG again with the same params (new run id)."""
    store = RunStore(config.db_path)
    try:
        record = find_record(config, store, args.file, args.run_id)
        if record["status"] != RunStatus.RUNNING:
            raise BadRequest(f"DAG {record['name']} is not running")
        stop_and_wait(store, record)
    finally:
        store.close()
    dag, env, source = reload_record_dag(record, config)
    time.sleep(dag.restart_wait_sec)
    req = RunRequest(dag=dag, run_id=new_run_id(), environ=env, source=source, quiet=args.quiet,
                     trigger="restart")
    return exit_code(execute(config, req), req)


def cmd_retry(config: Config, args) -> int:
    """Run an existing run again: failed/cancelled steps and their descendants (or one step)."""
    record = read_record(config, args.file, args.run_id)
    if record["status"] == RunStatus.RUNNING:
        raise BadRequest(f"dag-run {record['dagRunId']} is still running")
    dag, env, source = reload_record_dag(record, config)
    if args.step and dag.step(args.step) is None:
        raise NotFound(f"step {args.step} not found in DAG {dag.name}")
    req = RunRequest(dag=dag, run_id=record["dagRunId"], environ=env, source=source,
                     quiet=args.quiet, existing=record, retry_step=args.step or "", trigger="retry",
                     root=(record["rootDAGRunName"], record["rootDAGRunId"]),
                     parent=(record["parentDAGRunName"], record["parentDAGRunId"])
                     if record.get("parentDAGRunId") else None)
    return exit_code(execute(config, req), req)


def cmd_dispatch(config: Config, args) -> int:
    """Run a queued run now (the scheduler's dispatcher calls this)."""
    name, run_id = _ref(args.dag_run, "--dag-run")
    store = RunStore(config.db_path)
    try:
        record = store.get_run(name, run_id)
    finally:
        store.close()
    if record is None:
        raise NotFound(f"dag-run ID {run_id} not found for DAG {name}")
    if record["status"] != RunStatus.QUEUED:
        raise BadRequest(f"dag-run {run_id} is not queued ({RunStatus(record['status']).label})")
    dag, env, source = reload_record_dag(record, config)
    req = RunRequest(dag=dag, run_id=run_id, environ=env, source=source, quiet=args.quiet,
                     existing=record, trigger="queue")
    return exit_code(execute(config, req), req)
