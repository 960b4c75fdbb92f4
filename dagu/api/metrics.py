"""Prometheus text exposition (format 0.0.4) of the dagu_* metrics (reference §2.11).

Scrapes are cheap and bounded: the whole text is cached for RENDER_TTL_SEC; counts come from
indexed COUNT(*) queries; the duration histogram looks at the newest WINDOW root runs only, at
most every HISTOGRAM_TTL_SEC. Counters never go down within a process, even when retention
deletes history (see RunCounters)."""
from __future__ import annotations

import platform
import threading
import time
from collections.abc import Iterable

from dagu import __version__
from dagu.runrecord import parse_time
from dagu.status import RunStatus

RENDER_TTL_SEC = 1.0
HISTOGRAM_TTL_SEC = 2.0
WINDOW = 1000
BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
FINISHED = (RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.PARTIAL_SUCCESS)

_state_lock = threading.Lock()


def render(app) -> str:
    """The metrics text of this process, at most RENDER_TTL_SEC old."""
    with _state_lock:
        if not isinstance(app.metrics, MetricsState):
            app.metrics = MetricsState()
        state = app.metrics
    return state.text(app)


class MetricsState:
    """Per-process metric state: the cached text, run counters and the duration histogram."""

    def __init__(self) -> None:
        self.lock = threading.Lock()    # one scrape computes; concurrent ones get its text
        self.cached = ""
        self.cached_at = float("-inf")
        self.counters = RunCounters()
        self.durations = DurationHistogram()

    def text(self, app) -> str:
        with self.lock:
            now = time.monotonic()
            if now - self.cached_at >= RENDER_TTL_SEC:
                self.cached = self._render(app, now)
                self.cached_at = now
            return self.cached

    def _render(self, app, now: float) -> str:
        store = app.store
        totals = self.counters.update({s: store.count_runs(status=int(s)) for s in FINISHED})
        dags = sum(1 for f in app.registry.scan() if f.dag is not None)
        if now - self.durations.refreshed_at >= HISTOGRAM_TTL_SEC:
            self.durations.observe_window(store.list_runs(limit=WINDOW))
            self.durations.refreshed_at = now
        out: list[str] = []
        _family(out, "dagu_info", "gauge", "Dagu build information",
                [({"version": __version__, "build_date": "",
                   "python_version": platform.python_version()}, 1)])
        _family(out, "dagu_uptime_seconds", "gauge", "Time since server start",
                [({}, round(now - app.started, 3))])
        _family(out, "dagu_dag_runs_currently_running", "gauge",
                "Number of currently running DAG runs",
                [({}, store.count_runs(status=int(RunStatus.RUNNING)))])
        _family(out, "dagu_dag_runs_queued_total", "gauge", "Total number of DAG runs in queue",
                [({}, store.queue_length())])
        _family(out, "dagu_dag_runs_total", "counter", "Total number of finished DAG runs by status",
                [({"status": s.metric_label}, totals[s]) for s in FINISHED])
        _family(out, "dagu_dags_total", "gauge", "Total number of DAGs", [({}, dags)])
        _family(out, "dagu_scheduler_running", "gauge", "Whether the scheduler is running",
                [({}, 1 if app.scheduler_running else 0)])
        _family(out, "dagu_dag_run_duration_seconds", "histogram",
                "Duration of finished DAG runs by DAG", self.durations.samples())
        return "\n".join(out) + "\n"


class RunCounters:
    """dagu_dag_runs_total: monotonic per process.

    The first scrape starts from the stored counts. Later, each status grows by how much its
    stored count grew since the previous scrape; a drop (retention deleted rows, or a failed run
    was retried in place) adds nothing and lowers the reference point, so runs finishing after a
    deletion are still counted."""

    def __init__(self) -> None:
        self.exposed: dict[RunStatus, int] | None = None
        self.last: dict[RunStatus, int] = {}

    def update(self, counts: dict[RunStatus, int]) -> dict[RunStatus, int]:
        if self.exposed is None:
            self.exposed = dict(counts)
        else:
            for status, count in counts.items():
                self.exposed[status] += max(0, count - self.last.get(status, 0))
        self.last = dict(counts)
        return dict(self.exposed)


class DurationHistogram:
    """dagu_dag_run_duration_seconds by DAG: a cumulative histogram of finished root runs.

    Each refresh looks at the newest WINDOW root runs and observes every finished one not seen
    before (a run retried in place and finished again counts again: it ran again)."""

    def __init__(self) -> None:
        self.refreshed_at = float("-inf")
        self.seen: set[tuple[str, str, str]] = set()
        self.by_dag: dict[str, list] = {}   # dag -> [bucket counts..., sum, count]

    def observe_window(self, records: Iterable[dict]) -> None:
        window: set[tuple[str, str, str]] = set()
        for record in records:
            if record.get("status") not in FINISHED:
                continue
            started = parse_time(record.get("startedAt") or "")
            finished = parse_time(record.get("finishedAt") or "")
            if started is None or finished is None:
                continue        # never started (e.g. dequeued): no duration
            key = (record["name"], record["dagRunId"], record["finishedAt"])
            window.add(key)
            if key not in self.seen:
                self.observe(record["name"], max(0.0, (finished - started).total_seconds()))
        self.seen = window      # bounded by WINDOW; older keys cannot come back into it

    def observe(self, dag: str, seconds: float) -> None:
        row = self.by_dag.setdefault(dag, [0] * len(BUCKETS) + [0.0, 0])
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                row[i] += 1
        row[-2] += seconds
        row[-1] += 1

    def samples(self) -> list[tuple[dict, float, str]]:
        out: list[tuple[dict, float, str]] = []
        for dag in sorted(self.by_dag):
            row = self.by_dag[dag]
            for i, bound in enumerate(BUCKETS):
                out.append(({"dag": dag, "le": _number(bound)}, row[i], "_bucket"))
            out.append(({"dag": dag, "le": "+Inf"}, row[-1], "_bucket"))
            out.append(({"dag": dag}, round(row[-2], 3), "_sum"))
            out.append(({"dag": dag}, row[-1], "_count"))
        return out


def _family(out: list[str], name: str, kind: str, help_text: str, samples: list) -> None:
    out.append(f"# HELP {name} {_escape_help(help_text)}")
    out.append(f"# TYPE {name} {kind}")
    for sample in samples:
        labels, value = sample[0], sample[1]
        suffix = sample[2] if len(sample) > 2 else ""
        text = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels.items())
        out.append(f"{name}{suffix}{{{text}}} {_number(value)}" if text
                   else f"{name}{suffix} {_number(value)}")


def _number(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(int(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")
