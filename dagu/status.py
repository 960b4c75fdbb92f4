"""Run and node status codes, with Dagu's numbers and the API's labels."""
from __future__ import annotations

from enum import IntEnum


class RunStatus(IntEnum):
    """Status of a whole DAG run (Dagu's codes)."""

    NOT_STARTED = 0
    RUNNING = 1
    FAILED = 2
    CANCELLED = 3
    SUCCESS = 4
    QUEUED = 5
    PARTIAL_SUCCESS = 6

    @property
    def label(self) -> str:
        """The API's `statusLabel` (reference enum spelling)."""
        return _RUN_LABELS[self]

    @property
    def metric_label(self) -> str:
        """The `status` label value used by `dagu_dag_runs_total`."""
        return _RUN_METRIC_LABELS[self]

    @property
    def is_active(self) -> bool:
        """True while the run is running or waiting in a queue."""
        return self in (RunStatus.RUNNING, RunStatus.QUEUED)

    @property
    def is_terminal(self) -> bool:
        """True once the run can no longer change by itself."""
        return self in (RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.SUCCESS,
                        RunStatus.PARTIAL_SUCCESS)


class NodeStatus(IntEnum):
    """Status of one step within a run (Dagu's codes)."""

    NOT_STARTED = 0
    RUNNING = 1
    FAILED = 2
    CANCELLED = 3
    SUCCESS = 4
    SKIPPED = 5

    @property
    def label(self) -> str:
        """The API's node `statusLabel`."""
        return _NODE_LABELS[self]


_RUN_LABELS = {
    RunStatus.NOT_STARTED: "not started",
    RunStatus.RUNNING: "running",
    RunStatus.FAILED: "failed",
    RunStatus.CANCELLED: "cancelled",
    RunStatus.SUCCESS: "finished",
    RunStatus.QUEUED: "queued",
    RunStatus.PARTIAL_SUCCESS: "partial success",
}
_RUN_METRIC_LABELS = {
    RunStatus.NOT_STARTED: "none",
    RunStatus.RUNNING: "running",
    RunStatus.FAILED: "error",
    RunStatus.CANCELLED: "cancelled",
    RunStatus.SUCCESS: "success",
    RunStatus.QUEUED: "queued",
    RunStatus.PARTIAL_SUCCESS: "partial_success",
}
_NODE_LABELS = {
    NodeStatus.NOT_STARTED: "not started",
    NodeStatus.RUNNING: "running",
    NodeStatus.FAILED: "failed",
    NodeStatus.CANCELLED: "canceled",
    NodeStatus.SUCCESS: "finished",
    NodeStatus.SKIPPED: "skipped",
}
