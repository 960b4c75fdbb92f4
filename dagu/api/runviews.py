"""Run records as the API shows them: DAGRunSummary, DAGRunDetails, and a never-run DAG's
initial status. Records are stored in (nearly) this shape already; these pick and fill."""
from __future__ import annotations

from dagu.model import DAG, HANDLER_NAMES
from dagu.launcher import reconcile_record
from dagu.runrecord import node_json
from dagu.status import RunStatus

SUMMARY_KEYS = ("rootDAGRunName", "rootDAGRunId", "parentDAGRunName", "parentDAGRunId",
                "dagRunId", "name", "status", "statusLabel", "queuedAt", "startedAt",
                "finishedAt", "log", "params")
DETAIL_EXTRAS = ("nodes", "onExit", "onSuccess", "onFailure", "onCancel", "preconditions",
                 "paramsList", "error", "attempt", "attemptId")


def run_summary(record: dict) -> dict:
    """DAGRunSummary: strings for every field ("" when unset), never null."""
    out = {k: record.get(k, "") for k in SUMMARY_KEYS}
    out["status"] = int(record.get("status", 0))
    out["statusLabel"] = RunStatus(out["status"]).label
    return out


def run_details(record: dict) -> dict:
    """DAGRunDetails: the summary plus nodes (always a list), handlers and preconditions."""
    out = run_summary(record)
    for key in DETAIL_EXTRAS:
        if key in record and record[key] is not None:
            out[key] = record[key]
    out["nodes"] = list(record.get("nodes") or [])
    out["preconditions"] = list(record.get("preconditions") or [])
    for node in out["nodes"]:
        node.setdefault("children", [])
        node.pop("pid", None)
        node.pop("pidStart", None)
    return out


def initial_details(dag: DAG) -> dict:
    """What a DAG that never ran shows: status 0, empty ids and times, steps not started."""
    out = {k: "" for k in SUMMARY_KEYS}
    out.update(name=dag.name, status=0, statusLabel=RunStatus.NOT_STARTED.label,
               nodes=[node_json(s) for s in dag.steps], preconditions=[])
    for kind, step in dag.handlers:
        out[HANDLER_NAMES[kind]] = node_json(step)
    return out


def current(app, record: dict | None) -> dict | None:
    """A stored record as it really is: a run whose runner died reads as failed."""
    return reconcile_record(app.store, record, app.clock)
