"""The JSON shapes of a run: the stored record (= the API's DAGRunDetails plus a few fields),
its nodes and steps, and the DAG snapshot (Dagu's dag.json field names and units)."""
from __future__ import annotations

import os
import secrets
import time
import uuid
from datetime import datetime, timezone

from dagu.model import DAG, HANDLER_NAMES, Step
from dagu.status import NodeStatus, RunStatus

NS = 1_000_000_000
RUN_ID_MAX = 64


def rfc3339(dt: datetime | None) -> str:
    """UTC timestamp with milliseconds and Z, or "" for unset."""
    if dt is None:
        return ""
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime | None:
    """Inverse of rfc3339 (accepts any ISO 8601 with an offset)."""
    if not text or text == "-":
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def new_run_id(now_ms: int | None = None) -> str:
    """A UUIDv7 (time-ordered), as Dagu generates."""
    ms = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    rand = int.from_bytes(secrets.token_bytes(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64 | 0b10 << 62 | (
        rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def check_run_id(run_id: str) -> str | None:
    """Why a user-given run id is not acceptable, or None."""
    if not run_id or len(run_id) > RUN_ID_MAX:
        return f"run id must be 1 to {RUN_ID_MAX} characters"
    if not all(c.isascii() and (c.isalnum() or c in "-_") for c in run_id):
        return f"invalid run id {run_id!r}: use letters, digits, '-' and '_'"
    return None


def step_json(step: Step) -> dict:
    """The API's Step object (plus the fields the engine needs to show)."""
    out = {"name": step.name, "id": step.id, "description": step.description, "dir": step.dir,
           "cmdWithArgs": step.cmd_with_args, "command": step.command, "args": list(step.args),
           "script": step.script, "stdout": step.stdout, "stderr": step.stderr,
           "output": step.output, "run": step.run, "params": step.params,
           "depends": list(step.depends), "mailOnError": step.mail_on_error,
           "preconditions": [{"condition": c.condition, "expected": c.expected}
                             for c in step.preconditions],
           "repeatPolicy": {"repeat": step.repeat_policy.enabled,
                            "interval": step.repeat_policy.interval_sec}}
    if step.executor.type:
        out["executor"] = {"type": step.executor.type, "config": step.executor.config}
    return out


def node_json(step: Step, status: NodeStatus = NodeStatus.NOT_STARTED) -> dict:
    """A node never started yet."""
    return {"step": step_json(step), "stdout": "", "stderr": "", "startedAt": "", "finishedAt": "",
            "status": int(status), "statusLabel": status.label, "retryCount": 0, "doneCount": 0,
            "error": "", "children": [], "outputVariables": {}}


def _step_snapshot(step: Step) -> dict:
    r, p, c = step.retry_policy, step.repeat_policy, step.continue_on
    return {
        "name": step.name, "id": step.id, "description": step.description, "dir": step.dir,
        "command": step.command, "args": list(step.args), "cmdWithArgs": step.cmd_with_args,
        "shell": step.shell, "script": step.script, "stdout": step.stdout, "stderr": step.stderr,
        "output": step.output, "depends": list(step.depends), "signalOnStop": step.signal_on_stop,
        "mailOnError": step.mail_on_error,
        "executorConfig": {"type": step.executor.type, "config": step.executor.config},
        "continueOn": {"failure": c.failure, "skipped": c.skipped, "exitCode": list(c.exit_codes),
                       "output": list(c.output), "markSuccess": c.mark_success},
        "retryPolicy": {"limit": r.limit, "intervalSec": r.interval_sec,
                        "interval": r.interval_sec * NS if isinstance(r.interval_sec, int) else 0,
                        "exitCode": list(r.exit_codes), "backoff": r.backoff,
                        "maxIntervalSec": r.max_interval_sec},
        "repeatPolicy": {"repeat": p.repeat, "mode": p.mode, "intervalSec": p.interval_sec,
                         "interval": p.interval_sec * NS, "limit": p.limit,
                         "condition": p.condition, "expected": p.expected,
                         "exitCode": list(p.exit_codes)},
        "preconditions": [{"condition": x.condition, "expected": x.expected}
                          for x in step.preconditions],
        "childDag": {"name": step.run, "params": step.params} if step.run else None,
        "env": [f"{k}={v}" for k, v in step.env],
    }


def dag_snapshot(dag: DAG) -> dict:
    """The loaded DAG as JSON: Dagu's dag.json names; durations in ns plus the YAML's seconds."""
    return {
        "location": dag.location, "name": dag.name, "group": dag.group,
        "description": dag.description, "type": dag.type, "tags": list(dag.tags),
        "schedule": [{"expression": s.expression} for s in dag.schedule],
        "stopSchedule": [{"expression": s.expression} for s in dag.stop_schedule],
        "restartSchedule": [{"expression": s.expression} for s in dag.restart_schedule],
        "skipIfSuccessful": dag.skip_if_successful, "env": [f"{k}={v}" for k, v in dag.env],
        "dotenv": list(dag.dotenv), "logDir": dag.log_dir, "defaultParams": dag.default_params,
        "params": dag.params_list, "steps": [_step_snapshot(s) for s in dag.steps],
        "handlerOn": {k: _step_snapshot(s) for k, s in dag.handlers},
        "preconditions": [{"condition": c.condition, "expected": c.expected}
                          for c in dag.preconditions],
        "timeout": dag.timeout_sec * NS, "timeoutSec": dag.timeout_sec,
        "delay": dag.delay_sec * NS, "delaySec": dag.delay_sec,
        "restartWait": dag.restart_wait_sec * NS, "restartWaitSec": dag.restart_wait_sec,
        "maxCleanUpTime": dag.max_clean_up_time_sec * NS,
        "maxCleanUpTimeSec": dag.max_clean_up_time_sec,
        "maxActiveSteps": dag.max_active_steps, "maxActiveRuns": dag.max_active_runs,
        "histRetentionDays": dag.hist_retention_days, "queue": dag.queue,
        "mailOn": {"failure": dag.mail_on_failure, "success": dag.mail_on_success},
        "localDAGs": [d.name for d in dag.local_dags],
    }


def new_record(dag: DAG, run_id: str, *, status: RunStatus, now: datetime, log_path: str,
               lock: str, source: str, root: tuple[str, str] | None = None,
               parent: tuple[str, str] | None = None, trigger: str = "cli") -> dict:
    """The first record of a run (queued or about to start)."""
    root = root or (dag.name, run_id)
    parent = parent or ("", "")
    handlers = {HANDLER_NAMES[k]: node_json(s) for k, s in dag.handlers}
    record = {
        "name": dag.name, "dagRunId": run_id, "attempt": 1, "attemptId": secrets.token_hex(3),
        "rootDAGRunName": root[0], "rootDAGRunId": root[1],
        "parentDAGRunName": parent[0], "parentDAGRunId": parent[1],
        "status": int(status), "statusLabel": status.label, "pid": 0,
        "createdAt": int(now.timestamp() * 1000),
        "queuedAt": rfc3339(now) if status == RunStatus.QUEUED else "",
        "startedAt": "", "finishedAt": "", "log": log_path,
        "params": " ".join(dag.params_list), "paramsList": dag.params_list,
        "nodes": [node_json(s) for s in dag.steps], "preconditions": [], "error": "",
        "trigger": trigger, "lockPath": lock, "dag": dag_snapshot(dag),
        "dagFile": dag.location, "dagSource": source, "localDag": "",
        "workDir": os.getcwd(),
    }
    record.update(handlers)
    # handler steps are named onSuccess/onFailure/onCancel/onExit by the loader
    record["nodeSteps"] = {s.name: step_json(s) for s in list(dag.steps) + [h for _, h in dag.handlers]}
    return record


def public_view(record: dict) -> dict:
    """The record as the CLI/API show it (internal bookkeeping removed)."""
    return {k: v for k, v in record.items()
            if k not in ("dagSource", "lockPath", "workDir", "nodeSteps")}
