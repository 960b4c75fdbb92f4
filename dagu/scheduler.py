"""The scheduler: cron fires (each (DAG, minute) at most once), the queue dispatcher, and
housekeeping (orphan sweep, history retention). It sleeps until something is due or it is
woken (a run finished, a run was queued); a slow re-check is only a safety net.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from dagu import cron
from dagu.clock import Clock
from dagu.config import Config
from dagu.dags import DagFile, DagRegistry
from dagu.errors import DaguError
from dagu.launcher import RunLock, WakeSocket, reconcile_record, stop_runner
from dagu.logs import delete_run_logs
from dagu.model import DAG
from dagu.runrecord import parse_time, rfc3339
from dagu.status import RunStatus
from dagu.store import RunStore

log = logging.getLogger("dagu.scheduler")

SAFETY_POLL_SEC = 5.0          # re-check the queue even if a wake-up was lost
RESCAN_SEC = 5.0               # re-read the DAGs directory at least this often
HOUSEKEEPING_SEC = 60.0        # orphan sweep and retention
DISPATCH_GRACE_SEC = 30.0      # a dispatched run must have started by then (else: orphan)
KINDS = ("start", "stop", "restart")


@dataclass(frozen=True)
class Fire:
    """One cron fire that is due: what to do with which DAG, for which scheduled minute."""

    kind: str
    dag_file: DagFile
    at: datetime
    expression: str = ""
    catching_up: bool = False


class SchedulerLock:
    """Only one scheduler per data directory: an exclusive flock on DATA/scheduler.lock."""

    def __init__(self, data_dir: str):
        self.lock = RunLock(os.path.join(data_dir, "scheduler.lock"))

    def acquire(self) -> None:
        """Take the lock and write our pid into it; DaguError naming the holder if taken."""
        if not self.lock.acquire():
            try:
                with open(self.lock.path) as fh:
                    holder = fh.read(32).strip() or "?"
            except OSError:
                holder = "?"
            raise DaguError(f"another scheduler (pid {holder}) is already running for "
                            f"{os.path.dirname(self.lock.path)}")
        os.ftruncate(self.lock.fd, 0)
        os.pwrite(self.lock.fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        self.lock.release()


class Scheduler:
    """Decides what is due; `launch` starts runs (a runner process, or a fake in tests)."""

    def __init__(self, config: Config, store: RunStore, launch, clock: Clock | None = None):
        self.config = config
        self.store = store
        self.launch = launch
        self.clock = clock or Clock()
        self.registry = DagRegistry(config.dags_dir)
        self.tz = config.tzinfo() or cron.local_zone()
        self.files: list[DagFile] = []
        self.checked_until: datetime | None = None
        self.last_scan = -1e9
        self.last_housekeeping = -1e9
        self.dispatched: dict[tuple[str, str], float] = {}   # started by us, not yet running
        self._crons: dict[str, cron.CronSchedule] = {}

    # -- cron -----------------------------------------------------------------------------------
    def rescan(self) -> None:
        """Pick up added, changed and deleted DAG files."""
        self.files = [f for f in self.registry.scan() if f.dag is not None]
        self.last_scan = self.clock.monotonic()

    def _cron(self, expression: str) -> cron.CronSchedule:
        found = self._crons.get(expression)
        if found is None:
            found = self._crons[expression] = cron.parse(expression, self.tz)
        return found

    def due_fires(self, now: datetime) -> list[Fire]:
        """Fires in (last check, now], oldest first; the first check also looks back over each
        DAG's catchupWindow (only to its last recorded fire) and at the current minute."""
        first = self.checked_until is None
        since_default = (self.checked_until if not first else
                         now.replace(second=0, microsecond=0) - timedelta(seconds=1))
        suspended = self.store.suspended_files()
        fires: list[Fire] = []
        for f in self.files:
            if f.file_name in suspended:
                continue
            for kind, schedules in zip(KINDS, (f.dag.schedule, f.dag.stop_schedule,
                                               f.dag.restart_schedule)):
                since = since_default
                if first and kind == "start" and f.dag.catchup_window_sec:
                    since = self._catchup_start(f.dag, now, since)
                for sched in schedules:
                    fires += [Fire(kind, f, t, sched.expression, t <= since_default)
                              for t in self._times(sched.expression, since, now)]
        self.checked_until = now
        fires.sort(key=lambda fire: (fire.at, fire.dag_file.file_name))
        return fires

    def _catchup_start(self, dag: DAG, now: datetime, default: datetime) -> datetime:
        last = self.store.last_fire(dag.name, "start")
        if last is None:
            return default   # nothing was missed: this DAG never fired before
        window_start = now - timedelta(seconds=dag.catchup_window_sec)
        return min(default, max(window_start, datetime.fromtimestamp(last * 60, timezone.utc)))

    def _times(self, expression: str, since: datetime, now: datetime) -> list[datetime]:
        schedule = self._cron(expression)
        out = []
        t = schedule.next_fire(since)
        while t <= now:
            out.append(t.astimezone(timezone.utc))
            t = schedule.next_fire(t)
        return out

    def next_fire_time(self, after: datetime) -> datetime | None:
        """The earliest upcoming fire of any known DAG (for sleeping until then)."""
        best = None
        suspended = self.store.suspended_files()
        for f in self.files:
            if f.file_name in suspended:
                continue
            for sched in f.dag.schedule + f.dag.stop_schedule + f.dag.restart_schedule:
                t = self._cron(sched.expression).next_fire(after).astimezone(timezone.utc)
                best = t if best is None or t < best else best
        return best

    def handle(self, fire: Fire) -> str:
        """Claim the fire (exactly once across schedulers and restarts) and act on it."""
        dag = fire.dag_file.dag
        minute = int(fire.at.timestamp()) // 60
        if not self.store.claim_fire(dag.name, fire.kind, minute):
            return "already fired"
        latest = reconcile_record(self.store, self.store.latest_run(dag.name), self.clock)
        running = latest is not None and latest["status"] == RunStatus.RUNNING
        if fire.kind == "stop":
            if running:
                stop_runner(latest)
                return "stopped"
            return "not running"
        if fire.kind == "restart":
            self.launch(["restart", "-q", fire.dag_file.path])
            return "restarted"
        if running:
            return "already running"
        if latest and not fire.catching_up and _started_since(latest, fire.at):
            return "skipped: a run already started at or after the scheduled minute"
        if dag.skip_if_successful and latest and self._succeeded_since_previous(fire, latest):
            return "skipped: succeeded since the previous scheduled time"
        self.launch(["start", "-q", fire.dag_file.path])
        return "started"

    def _succeeded_since_previous(self, fire: Fire, latest: dict) -> bool:
        if latest["status"] != RunStatus.SUCCESS:
            return False
        started = parse_time(latest.get("startedAt", ""))
        if started is None:
            return False
        previous = self._cron(fire.expression).prev_fire(fire.at)
        return previous <= started < fire.at

    # -- queue ----------------------------------------------------------------------------------
    def queue_limit(self, queue_name: str, dag: DAG | None) -> int:
        """Global `queues.config` wins; else the DAG's maxActiveRuns (at least 1)."""
        for name, limit in self.config.queues:
            if name == queue_name:
                return max(1, limit)
        return max(1, dag.max_active_runs) if dag else 1

    def dispatch(self) -> list[tuple[str, str]]:
        """Start queued runs in strict FIFO order per queue while each has a free slot."""
        if not self.config.queues_enabled:
            return []
        started = []
        by_name = {f.dag.name: f.dag for f in self.files}
        for queue_name in self.store.queue_names():
            members = [n for n, d in by_name.items() if d.queue_name == queue_name]
            items = self.store.queue_items(queue_name, limit=1000)
            names = sorted(set(members) | {i["dagName"] for i in items})
            active = self.store.count_running(names) + self._pending(names)
            for item in items:
                dag = by_name.get(item["dagName"])
                if active >= self.queue_limit(queue_name, dag):
                    break   # strict FIFO: the head waits, nothing overtakes it
                if self._start_queued(item):
                    started.append((item["dagName"], item["dagRunId"]))
                    active += 1
        return started

    def _pending(self, names: list[str]) -> int:
        """Runs we started that have not reported `running` yet (they hold a slot)."""
        now = self.clock.monotonic()
        count = 0
        for key, at in list(self.dispatched.items()):
            record = self.store.get_run(*key)
            if record is None or record["status"] != RunStatus.QUEUED or now - at > DISPATCH_GRACE_SEC:
                del self.dispatched[key]
            elif key[0] in names:
                count += 1
        return count

    def _start_queued(self, item: dict) -> bool:
        key = (item["dagName"], item["dagRunId"])
        record = self.store.get_run(*key)
        self.store.dequeue(*key)   # taken off the queue first: it can never start twice
        if record is None or record["status"] != RunStatus.QUEUED:
            return False
        record["dispatchedAt"] = rfc3339(self.clock.now())
        if not self.store.update_run_if(record, int(RunStatus.QUEUED)):
            return False
        self.dispatched[key] = self.clock.monotonic()
        try:
            self.launch(["dispatch", "--dag-run", f"{key[0]}:{key[1]}"])
        except Exception as exc:
            log.exception("could not start queued run %s:%s", *key)
            self._fail_dispatched(record, f"the runner could not be started: {exc}")
            return False
        return True

    def _fail_dispatched(self, record: dict, why: str) -> None:
        failed = dict(record, status=int(RunStatus.FAILED), statusLabel=RunStatus.FAILED.label,
                      finishedAt=rfc3339(self.clock.now()), error=why)
        self.store.update_run_if(failed, int(RunStatus.QUEUED))
        self.dispatched.pop((record["name"], record["dagRunId"]), None)

    def sweep_dispatched(self) -> None:
        """Runs handed to a runner that never started (it died first) become failed."""
        now = self.clock.now()
        for record in self.store.dispatched_runs():
            at = parse_time(record.get("dispatchedAt", ""))
            if at is not None and (now - at).total_seconds() > DISPATCH_GRACE_SEC:
                self._fail_dispatched(record, "the run was dispatched but its runner never started")

    # -- housekeeping ---------------------------------------------------------------------------
    def housekeeping(self) -> None:
        """Mark runs whose runner died as failed; delete history past each DAG's retention."""
        for record in self.store.active_runs():
            reconcile_record(self.store, record, self.clock)
        self.sweep_dispatched()
        now_ms = int(self.clock.now().timestamp() * 1000)
        for f in self.files:
            days = f.dag.hist_retention_days
            if days >= 0:
                for old in self.store.delete_old_runs(f.dag.name, now_ms - days * 86_400_000):
                    delete_run_logs(old)
        self.store.prune_fires(int(self.clock.now().timestamp()) // 60 - 7 * 24 * 60)
        self.last_housekeeping = self.clock.monotonic()

    # -- the loop -------------------------------------------------------------------------------
    def run_once(self) -> None:
        """One pass: rescan if due, fire what is due, dispatch the queue, housekeeping if due."""
        mono = self.clock.monotonic()
        if mono - self.last_scan >= RESCAN_SEC:
            self.rescan()
        for fire in self.due_fires(self.clock.now()):
            try:
                outcome = self.handle(fire)
            except DaguError as exc:
                outcome = f"failed: {exc.message}"
            except Exception as exc:   # one failed launch must not cost the other fires
                log.exception("fire %s of %s failed", fire.kind, fire.dag_file.file_name)
                outcome = f"failed: {exc}"
            log.info("%s %s at %s: %s", fire.kind, fire.dag_file.file_name, rfc3339(fire.at), outcome)
        self.dispatch()
        if mono - self.last_housekeeping >= HOUSEKEEPING_SEC:
            self.housekeeping()

    def sleep_seconds(self) -> float:
        """How long nothing is due: until the next fire, a rescan, or the safety poll."""
        now = self.clock.now()
        wait = min(SAFETY_POLL_SEC, RESCAN_SEC - (self.clock.monotonic() - self.last_scan))
        upcoming = self.next_fire_time(now)
        if upcoming is not None:
            wait = min(wait, (upcoming - now).total_seconds())
        return max(0.0, wait)

    def serve(self, stop: threading.Event, wake: WakeSocket) -> None:
        """Run until stop is set."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:   # keep scheduling; the next pass retries
                log.exception("scheduler pass failed")
            wake.wait(self.sleep_seconds())



def _started_since(record: dict, scheduled: datetime) -> bool:
    """Dagu's "job already finished": the latest run started in or after the scheduled minute."""
    started = parse_time(record.get("startedAt", ""))
    return started is not None and started.replace(second=0, microsecond=0) >= scheduled
