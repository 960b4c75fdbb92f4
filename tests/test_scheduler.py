"""Tests for dagu.scheduler: cron fires, exactly-once claims, catch-up, DST, the queue dispatcher,
sleeping and housekeeping. A FakeClock drives time, a real RunStore and real DAG files live in
tmp_path, and `launch` only records the argv the scheduler would start (no processes)."""
from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dagu.clock import FakeClock
from dagu.config import Config, load_config
from dagu.dags import load_dag_file
from dagu.launcher import ORPHAN_ERROR, RunLock, lock_path
from dagu.logs import run_log_dir, run_log_path
from dagu.runrecord import new_record, new_run_id, rfc3339
from dagu.scheduler import (DISPATCH_GRACE_SEC, HOUSEKEEPING_SEC, RESCAN_SEC, SAFETY_POLL_SEC,
                            Scheduler)
from dagu.status import RunStatus
from dagu.store import RunStore

UTC = timezone.utc
STEPS = "steps:\n  - name: s\n    command: echo hi\n"


def utc(text: str) -> datetime:
    """'2025-01-06 12:00:30' -> an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Rig:
    """One data directory: config, store, fake clock and the recorded launches."""

    home: Path
    config: Config
    store: RunStore
    clock: FakeClock
    launches: list[list[str]] = field(default_factory=list)
    launch_times: list[datetime] = field(default_factory=list)
    stores: list[RunStore] = field(default_factory=list)

    def launch(self, args: list[str]) -> None:
        self.launches.append(list(args))
        self.launch_times.append(self.clock.now())

    def dag(self, stem: str, text: str) -> str:
        path = Path(self.config.dags_dir) / f"{stem}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return str(path)

    def scheduler(self, store: RunStore | None = None) -> Scheduler:
        return Scheduler(self.config, store or self.store, self.launch, self.clock)

    def other_store(self) -> RunStore:
        """A second connection to the same database (another scheduler process, say)."""
        s = RunStore(self.config.db_path)
        self.stores.append(s)
        return s

    def goto(self, when: datetime) -> None:
        """Move the fake clock forward to `when` (monotonic time moves with it)."""
        delta = (when - self.clock.now()).total_seconds()
        assert delta >= 0, f"the clock only moves forward ({self.clock.now()} -> {when})"
        self.clock.advance(delta)

    def starts(self) -> list[list[str]]:
        return [a for a in self.launches if a[0] == "start"]

    def add_run(self, dag_path: str, status: RunStatus, *, created: datetime,
                started: datetime | None = None, finished: datetime | None = None,
                lock: str = "", pid: int = 0, run_id: str | None = None) -> dict:
        """Insert a run record as a runner would leave it (insert, then update)."""
        dag = load_dag_file(dag_path, self.config)
        run_id = run_id or new_run_id(int(created.timestamp() * 1000))
        log = run_log_path(run_log_dir(self.config.log_dir, dag.name, run_id))
        record = new_record(dag, run_id, status=RunStatus.NOT_STARTED, now=created, log_path=log,
                            lock=lock, source="")
        self.store.insert_run(record)
        record.update(status=int(status), statusLabel=status.label, pid=pid,
                      startedAt=rfc3339(started), finishedAt=rfc3339(finished))
        self.store.update_run(record)
        return record

    def add_queued(self, dag_path: str, created: datetime, run_id: str) -> dict:
        """What `dagu enqueue` writes: a queued record and its queue item, atomically."""
        dag = load_dag_file(dag_path, self.config)
        log = run_log_path(run_log_dir(self.config.log_dir, dag.name, run_id))
        record = new_record(dag, run_id, status=RunStatus.QUEUED, now=created, log_path=log,
                            lock="", source="")
        self.store.insert_queued_run(record, dag.queue_name)
        return record

    def set_status(self, name: str, run_id: str, status: RunStatus) -> None:
        record = self.store.get_run(name, run_id)
        record.update(status=int(status), statusLabel=status.label)
        if status == RunStatus.RUNNING:
            record["startedAt"] = rfc3339(self.clock.now())
        elif status.is_terminal:
            record["finishedAt"] = rfc3339(self.clock.now())
        self.store.update_run(record)


@pytest.fixture
def make_rig(tmp_path: Path):
    """make_rig(tz=..., start=..., config_yaml=...) -> Rig; every store is closed afterwards."""
    rigs: list[Rig] = []

    def make(tz: str = "UTC", start: datetime = utc("2025-01-06 05:00:00"),
             config_yaml: str = "") -> Rig:
        home = tmp_path / f"home{len(rigs)}"
        home.mkdir()
        if config_yaml:
            (home / "config.yaml").write_text(textwrap.dedent(config_yaml))
        config = load_config({"DAGU_HOME": str(home), "HOME": str(home), "DAGU_TZ": tz})
        rig = Rig(home, config, RunStore(config.db_path), FakeClock(start))
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        for s in [rig.store] + rig.stores:
            s.close()


@pytest.fixture
def rig(make_rig) -> Rig:
    return make_rig()


def sweep(rig: Rig, sched: Scheduler, until: datetime, step: float = 30.0) -> None:
    """run_once() every `step` seconds up to and including `until`."""
    while True:
        sched.run_once()
        if rig.clock.now() >= until:
            return
        rig.clock.advance(min(step, (until - rig.clock.now()).total_seconds()))


def minutes(times: list[datetime]) -> list[str]:
    return [t.astimezone(UTC).strftime("%H:%M") for t in times]


# -- cron fires -------------------------------------------------------------------------------

@pytest.mark.parametrize("schedule, start, until, expected", [
    ("*/5 * * * *", "2025-01-06 12:00:00", "2025-01-06 12:17:00",
     ["12:00", "12:05", "12:10", "12:15"]),
    ("*/5 * * * *", "2025-01-06 12:01:10", "2025-01-06 12:11:00", ["12:05", "12:10"]),
    ("0 * * * *", "2025-01-06 11:58:00", "2025-01-06 14:00:30", ["12:00", "13:00", "14:00"]),
    ("15,45 12 * * *", "2025-01-06 11:50:00", "2025-01-06 13:20:00", ["12:15", "12:45"]),
    ("* * * * *", "2025-01-06 12:00:40", "2025-01-06 12:03:10",
     ["12:00", "12:01", "12:02", "12:03"]),
    ("0 12 * * 0", "2025-01-06 11:50:00", "2025-01-06 12:10:00", []),   # a Monday: not Sunday
], ids=["every-5-min", "every-5-min-late-start", "hourly", "list", "every-minute", "wrong-weekday"])
def test_cron_fires_at_matching_minutes_only(make_rig, schedule, start, until, expected):
    rig = make_rig(start=utc(start))
    path = rig.dag("tick", f'schedule: "{schedule}"\n' + STEPS)
    sweep(rig, rig.scheduler(), utc(until))
    assert rig.launches == [["start", "-q", path]] * len(expected)
    assert minutes(rig.launch_times) == expected


def test_first_pass_fires_current_minute_once(rig):
    path = rig.dag("tick", 'schedule: "*/5 * * * *"\n' + STEPS)
    rig.goto(utc("2025-01-06 12:05:40"))
    sched = rig.scheduler()
    sched.run_once()
    assert rig.launches == [["start", "-q", path]]
    for _ in range(3):   # later passes within the same minute
        rig.clock.advance(5)
        sched.run_once()
    assert rig.launches == [["start", "-q", path]]


def test_first_pass_off_schedule_fires_nothing(rig):
    rig.dag("tick", 'schedule: "*/5 * * * *"\n' + STEPS)
    rig.goto(utc("2025-01-06 12:03:00"))
    rig.scheduler().run_once()
    assert rig.launches == []


def test_restart_in_same_minute_does_not_fire_again(rig):
    path = rig.dag("tick", 'schedule: "*/5 * * * *"\n' + STEPS)
    rig.goto(utc("2025-01-06 12:05:10"))
    rig.scheduler().run_once()
    assert len(rig.launches) == 1
    rig.store.close()   # the first scheduler is gone
    rig.store = rig.other_store()
    rig.clock.advance(20)
    again = rig.scheduler()
    again.rescan()
    fires = again.due_fires(rig.clock.now())
    assert [f.at for f in fires] == [utc("2025-01-06 12:05:00")]
    assert again.handle(fires[0]) == "already fired"
    assert rig.launches == [["start", "-q", path]]
    rig.goto(utc("2025-01-06 12:10:01"))
    again.run_once()
    assert rig.launches == [["start", "-q", path]] * 2


def test_two_schedulers_racing_launch_each_minute_once(rig):
    rig.dag("tick", 'schedule: "* * * * *"\n' + STEPS)
    rig.dag("tock", 'schedule: "*/2 * * * *"\n' + STEPS)
    scheds = [rig.scheduler(rig.other_store()), rig.scheduler(rig.other_store())]
    errors: list[BaseException] = []
    rig.goto(utc("2025-01-06 12:00:01"))
    for _ in range(6):   # 12:00 .. 12:05
        barrier = threading.Barrier(len(scheds))

        def one_pass(s: Scheduler) -> None:
            try:
                barrier.wait()
                s.run_once()
            except BaseException as exc:   # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=one_pass, args=(s,)) for s in scheds]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        rig.clock.advance(60)
    assert errors == []
    ticks = [a for a in rig.launches if a[2].endswith("tick.yaml")]
    tocks = [a for a in rig.launches if a[2].endswith("tock.yaml")]
    assert (len(ticks), len(tocks)) == (6, 3)


def test_suspended_dag_does_not_fire_until_resumed(rig):
    # suspension is keyed by the file name, even when the DAG's `name:` differs
    path = rig.dag("nightly", 'name: nightly-job\nschedule: "*/5 * * * *"\n' + STEPS)
    sched = rig.scheduler()
    rig.goto(utc("2025-01-06 11:59:00"))
    rig.store.set_suspended("nightly", True)
    sweep(rig, sched, utc("2025-01-06 12:06:00"))
    assert rig.launches == []
    rig.store.set_suspended("nightly", False)
    sweep(rig, sched, utc("2025-01-06 12:11:00"))
    assert rig.launches == [["start", "-q", path]]
    assert minutes(rig.launch_times) == ["12:10"]


# -- what a start fire does with the latest run -----------------------------------------------

HOURLY_SKIP = 'schedule: "0 * * * *"\nskipIfSuccessful: true\n' + STEPS
HOURLY = 'schedule: "0 * * * *"\n' + STEPS


@pytest.mark.parametrize("text, status, started, launched", [
    (HOURLY_SKIP, RunStatus.SUCCESS, "11:30:00", False),   # succeeded since 11:00: skip
    (HOURLY_SKIP, RunStatus.SUCCESS, "11:00:00", False),   # the previous fire itself counts
    (HOURLY_SKIP, RunStatus.SUCCESS, "10:59:59", True),    # before the previous fire
    (HOURLY_SKIP, RunStatus.FAILED, "11:30:00", True),
    (HOURLY_SKIP, RunStatus.PARTIAL_SUCCESS, "11:30:00", True),
    (HOURLY, RunStatus.SUCCESS, "11:30:00", True),         # no skipIfSuccessful
], ids=["success-since-prev", "success-at-prev", "success-before-prev", "failed",
        "partial", "flag-off"])
def test_skip_if_successful(rig, text, status, started, launched):
    path = rig.dag("hourly", text)
    t = utc(f"2025-01-06 {started}")
    rig.add_run(path, status, created=t, started=t, finished=t + timedelta(seconds=5))
    rig.goto(utc("2025-01-06 12:00:10"))
    sched = rig.scheduler()
    sched.rescan()
    fires = sched.due_fires(rig.clock.now())
    outcome = sched.handle(fires[0])
    assert rig.launches == ([["start", "-q", path]] if launched else [])
    assert outcome.startswith("started" if launched else "skipped")


def test_skip_if_successful_with_two_schedules_uses_the_previous_fire(rig):
    path = rig.dag("multi", """\
        schedule: ["*/5 * * * *", "0 0 * * *"]
        skipIfSuccessful: true
        steps:
          - name: s
            command: echo hi
        """)
    t = utc("2025-01-06 03:00:00")   # long before the previous scheduled time (10:00)
    rig.add_run(path, RunStatus.SUCCESS, created=t, started=t, finished=t + timedelta(seconds=1))
    rig.goto(utc("2025-01-06 10:05:05"))
    rig.scheduler().run_once()
    assert rig.launches == [["start", "-q", path]]


@pytest.mark.parametrize("lock_held, outcome, status_after", [
    (True, "already running", RunStatus.RUNNING),
    (False, "started", RunStatus.FAILED),     # orphan: reconciled, then the fire launches
], ids=["runner-alive", "orphan"])
def test_running_latest_run(rig, lock_held, outcome, status_after):
    path = rig.dag("hourly", HOURLY)
    t = utc("2025-01-06 11:30:00")
    lock = RunLock(lock_path(rig.config.data_dir, "hourly", "r1"))
    assert lock.acquire()
    if not lock_held:
        lock.release()   # the file stays; nobody holds it
    try:
        rig.add_run(path, RunStatus.RUNNING, created=t, started=t, lock=lock.path,
                    pid=os.getpid(), run_id="r1")
        rig.goto(utc("2025-01-06 12:00:10"))
        sched = rig.scheduler()
        sched.rescan()
        [fire] = sched.due_fires(rig.clock.now())
        assert sched.handle(fire) == outcome
        assert rig.launches == ([] if lock_held else [["start", "-q", path]])
        record = rig.store.get_run("hourly", "r1")
        assert record["status"] == status_after
        if not lock_held:
            assert record["error"] == ORPHAN_ERROR
            assert record["finishedAt"] == rfc3339(utc("2025-01-06 12:00:10"))
    finally:
        lock.release()


STOP_RESTART = """\
    schedule:
      stop: "0 18 * * *"
      restart: "0 6 * * *"
    steps:
      - name: s
        command: sleep 100
    """


@pytest.mark.parametrize("lock_held", [True, False], ids=["runner-alive", "lock-free"])
def test_stop_schedule_signals_the_runner(rig, lock_held):
    path = rig.dag("svc", STOP_RESTART)
    runner = subprocess.Popen(["sleep", "30"])
    lock = RunLock(lock_path(rig.config.data_dir, "svc", "r1"))
    assert lock.acquire()
    if not lock_held:
        lock.release()
    try:
        t = utc("2025-01-06 17:00:00")
        rig.add_run(path, RunStatus.RUNNING, created=t, started=t, lock=lock.path,
                    pid=runner.pid, run_id="r1")
        rig.goto(utc("2025-01-06 18:00:02"))
        sched = rig.scheduler()
        sched.rescan()
        fires = sched.due_fires(rig.clock.now())
        assert [(f.kind, f.at) for f in fires] == [("stop", utc("2025-01-06 18:00:00"))]
        outcome = sched.handle(fires[0])
        if lock_held:
            assert outcome == "stopped"
            assert runner.wait(timeout=5) == -signal.SIGTERM
        else:
            # never signal a pid whose lock is free: it may belong to someone else by now
            assert outcome == "not running"
            with pytest.raises(subprocess.TimeoutExpired):
                runner.wait(timeout=0.3)
        assert rig.launches == []
    finally:
        lock.release()
        runner.kill()
        runner.wait()


def test_stop_schedule_with_nothing_running(rig):
    rig.dag("svc", STOP_RESTART)
    rig.goto(utc("2025-01-06 18:00:02"))
    sched = rig.scheduler()
    sched.rescan()
    [fire] = sched.due_fires(rig.clock.now())
    assert sched.handle(fire) == "not running"
    assert rig.launches == []


def test_restart_schedule_launches_restart(rig):
    path = rig.dag("svc", STOP_RESTART)
    rig.goto(utc("2025-01-06 05:59:30"))
    sweep(rig, rig.scheduler(), utc("2025-01-06 06:01:00"))
    assert rig.launches == [["restart", "-q", path]]
    assert minutes(rig.launch_times) == ["06:00"]


# -- catch-up -----------------------------------------------------------------------------------

def minute_of(t: datetime) -> int:
    return int(t.timestamp()) // 60


@pytest.mark.parametrize("window, last_fire, now, expected", [
    ("2h", "07:00", "12:00:30", ["11:00", "12:00"]),
    ("2h", "07:00", "12:20:00", ["11:00", "12:00"]),
    ("2h", "11:00", "12:20:00", ["12:00"]),            # only since the last recorded fire
    ("2h", "12:00", "12:20:00", []),                   # nothing missed
    ("6h", "09:00", "12:00:30", ["10:00", "11:00", "12:00"]),
    (None, "07:00", "12:00:30", ["12:00"]),            # no window: the current minute only
    (None, "07:00", "12:20:00", []),
    ("2h", None, "12:20:00", []),                      # never fired: nothing to catch up
    ("2h", None, "12:00:30", ["12:00"]),
], ids=["2h-on-the-hour", "2h-mid-hour", "since-last-fire", "up-to-date", "6h-window",
        "no-window", "no-window-off-minute", "never-fired", "never-fired-on-the-hour"])
def test_catchup_window(rig, window, last_fire, now, expected):
    extra = f"catchupWindow: {window}\n" if window else ""
    path = rig.dag("hourly", f'schedule: "0 * * * *"\n{extra}' + STEPS)
    if last_fire:
        assert rig.store.claim_fire("hourly", "start", minute_of(utc(f"2025-01-06 {last_fire}")))
    rig.goto(utc(f"2025-01-06 {now}"))
    sched = rig.scheduler()
    sched.rescan()
    fires = sched.due_fires(rig.clock.now())
    assert minutes([f.at for f in fires]) == expected   # oldest first
    assert [sched.handle(f) for f in fires] == ["started"] * len(expected)
    assert rig.launches == [["start", "-q", path]] * len(expected)
    # each once: a later pass (or a restarted scheduler) does not repeat them
    rig.clock.advance(10)
    sched.run_once()
    fresh = rig.scheduler(rig.other_store())
    fresh.run_once()
    assert len(rig.launches) == len(expected)


def test_short_catchup_window_still_fires_current_minute(rig):
    path = rig.dag("hourly", 'schedule: "0 * * * *"\ncatchupWindow: 10s\n' + STEPS)
    assert rig.store.claim_fire("hourly", "start", minute_of(utc("2025-01-06 11:00")))
    rig.goto(utc("2025-01-06 12:00:30"))
    rig.scheduler().run_once()
    assert rig.launches == [["start", "-q", path]]   # as without any catchupWindow


def test_gap_between_passes_fires_each_missed_minute_once(rig):
    """A stalled loop (a slow pass, a suspended host) fires the minutes it slept through, like
    Dagu's ticker, which runs every missed tick in turn."""
    path = rig.dag("q5", 'schedule: "*/5 * * * *"\n' + STEPS)
    rig.goto(utc("2025-01-06 12:00:05"))
    sched = rig.scheduler()
    sched.run_once()
    rig.goto(utc("2025-01-06 12:16:00"))
    sched.rescan()
    fires = sched.due_fires(rig.clock.now())
    assert minutes([f.at for f in fires]) == ["12:05", "12:10", "12:15"]
    for fire in fires:
        sched.handle(fire)
    assert rig.launches == [["start", "-q", path]] * 4


def test_catchup_of_a_monthly_schedule_survives_fire_pruning(make_rig):
    rig = make_rig(start=utc("2024-12-31 23:59:30"))
    path = rig.dag("monthly", 'schedule: "0 0 1 * *"\ncatchupWindow: 2d\n' + STEPS)
    first = rig.scheduler()
    sweep(rig, first, utc("2025-01-01 00:00:30"))
    assert minutes(rig.launch_times) == ["00:00"]
    rig.goto(utc("2025-01-20 00:00:00"))
    first.run_once()   # housekeeping as usual, weeks later
    # the scheduler is down over 2025-02-01 00:00 and comes back six hours later
    rig.goto(utc("2025-02-01 06:00:00"))
    again = rig.scheduler(rig.other_store())
    again.run_once()
    assert rig.launches == [["start", "-q", path]] * 2   # the missed fire is inside the window


def serve_pass(sched: Scheduler) -> None:
    """One pass as serve() makes it: an exception is logged and the loop carries on."""
    try:
        sched.run_once()
    except Exception:
        pass


def test_one_failing_launch_does_not_lose_other_fires(rig):
    a = rig.dag("a", 'schedule: "*/5 * * * *"\n' + STEPS)
    b = rig.dag("b", 'schedule: "*/5 * * * *"\n' + STEPS)

    def launch(args: list[str]) -> None:
        if args[2] == a:
            raise OSError(11, "Resource temporarily unavailable")   # fork: EAGAIN, say
        rig.launch(args)

    rig.goto(utc("2025-01-06 12:05:00"))
    sched = Scheduler(rig.config, rig.store, launch, rig.clock)
    serve_pass(sched)
    rig.clock.advance(2)
    serve_pass(sched)
    assert rig.launches == [["start", "-q", b]]


def test_run_started_since_the_scheduled_minute_skips_the_fire(rig):
    path = rig.dag("hourly", HOURLY)
    t = utc("2025-01-06 12:00:03")   # started by hand just after the minute began
    rig.add_run(path, RunStatus.SUCCESS, created=t, started=t, finished=t + timedelta(seconds=2))
    rig.goto(utc("2025-01-06 12:00:30"))   # the scheduler comes up late in that minute
    rig.scheduler().run_once()
    assert rig.launches == []


# -- the DAGs directory changing under a running scheduler ------------------------------------

def test_added_file_fires_at_its_next_minute(rig):
    rig.goto(utc("2025-01-06 12:00:10"))
    sched = rig.scheduler()
    sched.run_once()
    rig.clock.advance(20)
    path = rig.dag("late", 'schedule: "2 * * * *"\n' + STEPS)
    rig.clock.advance(RESCAN_SEC + 1)
    sched.run_once()
    assert [f.file_name for f in sched.files] == ["late"]
    assert rig.launches == []
    sweep(rig, sched, utc("2025-01-06 12:03:00"))
    assert rig.launches == [["start", "-q", path]]
    assert minutes(rig.launch_times) == ["12:02"]


def test_deleted_file_stops_firing(rig):
    keep = rig.dag("keep", 'schedule: "*/5 * * * *"\n' + STEPS)
    gone = rig.dag("gone", 'schedule: "*/5 * * * *"\n' + STEPS)
    rig.goto(utc("2025-01-06 12:00:10"))
    sched = rig.scheduler()
    sched.run_once()
    assert sorted(a[2] for a in rig.launches) == sorted([keep, gone])
    os.unlink(gone)
    rig.clock.advance(RESCAN_SEC + 1)
    sweep(rig, sched, utc("2025-01-06 12:11:00"))
    assert [a[2] for a in rig.launches[2:]] == [keep, keep]


def test_changed_schedule_is_picked_up(rig):
    path = rig.dag("tick", 'schedule: "*/5 * * * *"\n' + STEPS)
    rig.goto(utc("2025-01-06 12:00:10"))
    sched = rig.scheduler()
    sweep(rig, sched, utc("2025-01-06 12:01:00"))
    rig.dag("tick", 'schedule: "7 * * * *"\n' + STEPS)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))   # surely newer
    sweep(rig, sched, utc("2025-01-06 12:20:00"))
    assert minutes(rig.launch_times) == ["12:00", "12:07"]


def test_invalid_file_is_ignored_and_others_fire(rig):
    rig.dag("broken", 'schedule: "not a cron"\n' + STEPS)
    ok = rig.dag("ok", 'schedule: "*/5 * * * *"\n' + STEPS)
    rig.goto(utc("2025-01-06 12:05:01"))
    rig.scheduler().run_once()
    assert rig.launches == [["start", "-q", ok]]


# -- DST ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("schedule, day, expected_utc", [
    ("30 2 * * *", "2025-03-09", ["07:30"]),        # 02:30 does not exist: fires at 03:30 EDT
    ("30 2 * * *", "2025-11-02", ["07:30"]),        # 02:30 EST, once
    ("30 1 * * *", "2025-11-02", ["05:30"]),        # 01:30 happens twice: first occurrence only
    ("30 1 * * *", "2025-03-09", ["06:30"]),        # 01:30 EST, an ordinary time
    ("0 * * * *", "2025-03-09",                     # 02:00 EST is skipped: 03:00 EDT fires once
     ["04:00", "05:00", "06:00", "07:00", "08:00", "09:00", "10:00"]),
    ("0 * * * *", "2025-11-02",                     # 01:00 fires once (EDT), not again (EST)
     ["04:00", "05:00", "07:00", "08:00", "09:00", "10:00"]),
], ids=["spring-0230", "fall-0230", "fall-0130", "spring-0130", "spring-hourly", "fall-hourly"])
def test_dst_new_york(make_rig, schedule, day, expected_utc):
    start = datetime.fromisoformat(f"{day} 04:00").replace(tzinfo=UTC) - timedelta(seconds=30)
    rig = make_rig(tz="America/New_York", start=start)
    path = rig.dag("dst", f'schedule: "{schedule}"\n' + STEPS)
    sched = rig.scheduler()
    sched.run_once()
    rig.launches.clear()
    rig.launch_times.clear()
    sweep(rig, sched, start + timedelta(hours=6, seconds=40), step=60)
    assert minutes(rig.launch_times) == expected_utc
    assert rig.launches == [["start", "-q", path]] * len(expected_utc)


def test_dst_spring_forward_sleeps_until_the_shifted_fire(make_rig):
    rig = make_rig(tz="America/New_York", start=utc("2025-03-09 07:29:50"))   # 03:29:50 EDT
    rig.dag("dst", 'schedule: "30 2 * * *"\n' + STEPS)
    sched = rig.scheduler()
    sched.run_once()
    assert 0 < sched.sleep_seconds() <= 10


# -- sleeping -----------------------------------------------------------------------------------

def test_sleep_seconds_bounds(rig):
    rig.dag("hourly", HOURLY)
    rig.dag("rare", 'schedule: "0 0 1 1 *"\n' + STEPS)
    sched = rig.scheduler()
    for now in ("12:00:00", "12:00:00.5", "12:30:00", "12:59:57", "12:59:59.9"):
        rig.goto(utc(f"2025-01-06 {now}"))
        sched.run_once()
        wait = sched.sleep_seconds()
        upcoming = (utc("2025-01-06 13:00:00") - rig.clock.now()).total_seconds()
        assert 0 <= wait <= SAFETY_POLL_SEC
        assert wait <= upcoming   # never sleeps past a fire


def test_sleep_seconds_without_dags(rig):
    sched = rig.scheduler()
    assert sched.sleep_seconds() >= 0
    sched.run_once()
    assert 0 < sched.sleep_seconds() <= SAFETY_POLL_SEC


def test_loop_wakes_exactly_at_each_fire_and_never_spins(rig):
    """Simulate serve(): pass, sleep(sleep_seconds()), pass... with no wake-ups."""
    path = rig.dag("q5", 'schedule: "*/5 * * * *"\n' + STEPS)
    rig.goto(utc("2025-01-06 11:58:17.300"))
    sched = rig.scheduler()
    passes = 0
    while rig.clock.now() < utc("2025-01-06 12:21:00"):
        sched.run_once()
        wait = sched.sleep_seconds()
        assert 0 < wait <= SAFETY_POLL_SEC
        rig.clock.sleep(wait)
        passes += 1
    assert rig.launches == [["start", "-q", path]] * 5
    assert rig.launch_times == [utc(f"2025-01-06 12:{m:02d}:00") for m in (0, 5, 10, 15, 20)]
    # about one pass per SAFETY_POLL_SEC, plus a short one before each of the 5 fires
    span = (utc("2025-01-06 12:21:00") - utc("2025-01-06 11:58:17.300")).total_seconds()
    assert span / SAFETY_POLL_SEC <= passes <= span / SAFETY_POLL_SEC + 2 * 5 + 2


# -- queue dispatch -----------------------------------------------------------------------------

def dispatch_args(name: str, run_id: str) -> list[str]:
    return ["dispatch", "--dag-run", f"{name}:{run_id}"]


def enqueue_all(rig: Rig, paths_and_ids: list[tuple[str, str]]) -> None:
    t = rig.clock.now() - timedelta(minutes=10)
    for i, (path, run_id) in enumerate(paths_and_ids):
        rig.add_queued(path, t + timedelta(seconds=i), run_id)


def test_queue_fifo_within_max_active_runs(rig):
    path = rig.dag("q", "maxActiveRuns: 2\n" + STEPS)
    ids = [f"r{i}" for i in range(1, 7)]
    enqueue_all(rig, [(path, i) for i in ids])
    sched = rig.scheduler()
    sched.rescan()
    assert sched.dispatch() == [("q", "r1"), ("q", "r2")]
    assert rig.launches == [dispatch_args("q", "r1"), dispatch_args("q", "r2")]
    assert sched.dispatch() == []                        # both slots taken (not yet running)
    rig.set_status("q", "r1", RunStatus.RUNNING)
    assert sched.dispatch() == []                        # r1 running, r2 dispatched
    rig.set_status("q", "r2", RunStatus.RUNNING)
    assert sched.dispatch() == []
    rig.set_status("q", "r1", RunStatus.SUCCESS)
    assert sched.dispatch() == [("q", "r3")]
    rig.set_status("q", "r2", RunStatus.FAILED)
    rig.set_status("q", "r3", RunStatus.RUNNING)
    assert sched.dispatch() == [("q", "r4")]
    rig.set_status("q", "r3", RunStatus.SUCCESS)
    rig.set_status("q", "r4", RunStatus.SUCCESS)
    assert sched.dispatch() == [("q", "r5"), ("q", "r6")]
    assert [a[2] for a in rig.launches] == [f"q:{i}" for i in ids]
    assert rig.store.queue_length() == 0


def test_queue_counts_runs_started_outside_the_queue(rig):
    path = rig.dag("q", "maxActiveRuns: 2\n" + STEPS)
    t = rig.clock.now()
    rig.add_run(path, RunStatus.RUNNING, created=t, started=t, run_id="direct")
    enqueue_all(rig, [(path, "r1"), (path, "r2")])
    sched = rig.scheduler()
    sched.rescan()
    assert sched.dispatch() == [("q", "r1")]
    assert sched.dispatch() == []


def test_queue_default_limit_is_one(rig):
    path = rig.dag("q", STEPS)
    enqueue_all(rig, [(path, "r1"), (path, "r2")])
    sched = rig.scheduler()
    sched.rescan()
    assert sched.dispatch() == [("q", "r1")]
    assert sched.dispatch() == []


def test_global_queue_limits_two_dags_sharing_it(make_rig):
    rig = make_rig(config_yaml="""\
        queues:
          config:
            - name: shared
              maxActiveRuns: 2
        """)
    a = rig.dag("a", "queue: shared\nmaxActiveRuns: 5\n" + STEPS)
    b = rig.dag("b", "queue: shared\n" + STEPS)
    enqueue_all(rig, [(a, "a1"), (b, "b1"), (a, "a2"), (b, "b2"), (a, "a3")])
    sched = rig.scheduler()
    sched.rescan()
    assert rig.store.queue_names() == ["shared"]
    assert sched.dispatch() == [("a", "a1"), ("b", "b1")]
    assert sched.dispatch() == []
    rig.set_status("a", "a1", RunStatus.RUNNING)
    rig.set_status("b", "b1", RunStatus.RUNNING)
    assert sched.dispatch() == []
    rig.set_status("b", "b1", RunStatus.SUCCESS)
    assert sched.dispatch() == [("a", "a2")]
    rig.set_status("a", "a1", RunStatus.SUCCESS)
    rig.set_status("a", "a2", RunStatus.SUCCESS)
    assert sched.dispatch() == [("b", "b2"), ("a", "a3")]
    assert [x[2] for x in rig.launches] == ["a:a1", "b:b1", "a:a2", "b:b2", "a:a3"]


def test_queues_are_independent(rig):
    a = rig.dag("a", STEPS)
    b = rig.dag("b", STEPS)
    enqueue_all(rig, [(a, "a1"), (a, "a2"), (b, "b1"), (b, "b2")])
    sched = rig.scheduler()
    sched.rescan()
    assert sched.dispatch() == [("a", "a1"), ("b", "b1")]   # a full queue does not block another


def test_cancelled_or_missing_items_are_dropped(rig):
    path = rig.dag("q", STEPS)
    enqueue_all(rig, [(path, "cancelled"), (path, "ok1"), (path, "ok2")])
    rig.set_status("q", "cancelled", RunStatus.CANCELLED)   # dequeued, item not yet removed
    t = int(rig.clock.now().timestamp() * 1000)
    rig.store.enqueue("q", "q", "ghost", t)                 # an item without a record
    sched = rig.scheduler()
    sched.rescan()
    assert sched.dispatch() == [("q", "ok1")]
    assert [i["dagRunId"] for i in rig.store.queue_items("q")] == ["ok2", "ghost"]
    rig.set_status("q", "ok1", RunStatus.SUCCESS)
    assert sched.dispatch() == [("q", "ok2")]
    rig.set_status("q", "ok2", RunStatus.SUCCESS)
    assert sched.dispatch() == []
    assert rig.store.queue_length() == 0
    assert rig.launches == [dispatch_args("q", "ok1"), dispatch_args("q", "ok2")]


def test_dequeued_run_is_never_dispatched(rig):
    path = rig.dag("q", STEPS)
    enqueue_all(rig, [(path, "r1"), (path, "r2")])
    rig.set_status("q", "r1", RunStatus.CANCELLED)   # what `dagu dequeue` does
    rig.store.dequeue("q", "r1")
    sched = rig.scheduler()
    sched.run_once()
    assert rig.launches == [dispatch_args("q", "r2")]


def test_dispatched_run_that_never_starts_frees_its_slot_after_grace(rig):
    path = rig.dag("q", STEPS)
    enqueue_all(rig, [(path, "r1"), (path, "r2")])
    sched = rig.scheduler()
    sched.rescan()
    assert sched.dispatch() == [("q", "r1")]
    rig.clock.advance(DISPATCH_GRACE_SEC - 1)
    assert sched.dispatch() == []
    rig.clock.advance(2)
    assert sched.dispatch() == [("q", "r2")]


def test_dispatched_run_that_never_starts_is_marked_failed(rig):
    path = rig.dag("q", STEPS)
    enqueue_all(rig, [(path, "r1")])
    sched = rig.scheduler()
    sched.run_once()
    assert rig.launches == [dispatch_args("q", "r1")]   # ...and that runner dies at once
    rig.clock.advance(DISPATCH_GRACE_SEC + HOUSEKEEPING_SEC + 1)
    sched.run_once()
    record = rig.store.get_run("q", "r1")
    assert rig.store.queue_length() == 0
    assert record["status"] == RunStatus.FAILED   # DESIGN: queued-dispatched + free lock = orphan


def test_queues_disabled(make_rig):
    rig = make_rig(config_yaml="queues:\n  enabled: false\n")
    path = rig.dag("q", STEPS)
    enqueue_all(rig, [(path, "r1")])
    sched = rig.scheduler()
    sched.run_once()
    assert sched.dispatch() == []
    assert rig.launches == []


def test_run_once_dispatches_and_fires(rig):
    path = rig.dag("both", 'schedule: "*/5 * * * *"\nmaxActiveRuns: 3\n' + STEPS)
    enqueue_all(rig, [(path, "r1")])
    rig.goto(utc("2025-01-06 12:05:00"))
    rig.scheduler().run_once()
    assert rig.launches == [["start", "-q", path], dispatch_args("both", "r1")]


# -- housekeeping -------------------------------------------------------------------------------

@pytest.mark.parametrize("retention, age_days, status, deleted", [
    (None, 40, RunStatus.SUCCESS, True),      # default 30 days
    (None, 29, RunStatus.SUCCESS, False),
    (5, 6, RunStatus.FAILED, True),
    (5, 4, RunStatus.FAILED, False),
    (5, 6, RunStatus.QUEUED, False),          # still waiting in the queue: kept
], ids=["default-old", "default-recent", "5d-old", "5d-recent", "queued-kept"])
def test_history_retention(rig, retention, age_days, status, deleted):
    extra = f"histRetentionDays: {retention}\n" if retention is not None else ""
    path = rig.dag("kept", extra + STEPS)
    rig.goto(utc("2025-03-01 12:00:00"))
    created = rig.clock.now() - timedelta(days=age_days)
    record = rig.add_run(path, status, created=created, started=created,
                         finished=created + timedelta(seconds=1), run_id="old")
    log_dir = Path(record["log"]).parent
    log_dir.mkdir(parents=True)
    Path(record["log"]).write_text("log\n")
    (log_dir / "step.out").write_text("out\n")
    rig.scheduler().run_once()
    assert (rig.store.get_run("kept", "old") is None) == deleted
    assert log_dir.exists() != deleted


def test_retention_keeps_a_live_old_run(rig):
    path = rig.dag("kept", "histRetentionDays: 1\n" + STEPS)
    rig.goto(utc("2025-03-01 12:00:00"))
    lock = RunLock(lock_path(rig.config.data_dir, "kept", "long"))
    assert lock.acquire()
    try:
        created = rig.clock.now() - timedelta(days=3)
        rig.add_run(path, RunStatus.RUNNING, created=created, started=created, lock=lock.path,
                    pid=os.getpid(), run_id="long")
        rig.scheduler().run_once()
        assert rig.store.get_run("kept", "long")["status"] == RunStatus.RUNNING
    finally:
        lock.release()


def test_housekeeping_marks_orphans_failed(rig):
    path = rig.dag("job", STEPS)
    rig.goto(utc("2025-03-01 12:00:00"))
    held = RunLock(lock_path(rig.config.data_dir, "job", "alive"))
    assert held.acquire()
    try:
        t = rig.clock.now() - timedelta(minutes=5)
        rig.add_run(path, RunStatus.RUNNING, created=t, started=t, run_id="dead",
                    lock=lock_path(rig.config.data_dir, "job", "dead"), pid=999_999)
        rig.add_run(path, RunStatus.RUNNING, created=t, started=t, run_id="alive",
                    lock=held.path, pid=os.getpid())
        rig.scheduler().run_once()
        dead = rig.store.get_run("job", "dead")
        assert dead["status"] == RunStatus.FAILED
        assert dead["error"] == ORPHAN_ERROR
        assert dead["finishedAt"] == rfc3339(rig.clock.now())
        assert rig.store.get_run("job", "alive")["status"] == RunStatus.RUNNING
    finally:
        held.release()


def test_housekeeping_runs_on_a_timer(rig):
    path = rig.dag("job", STEPS)
    rig.goto(utc("2025-03-01 12:00:00"))
    sched = rig.scheduler()
    sched.run_once()   # first pass: housekeeping
    t = rig.clock.now()
    rig.add_run(path, RunStatus.RUNNING, created=t, started=t, run_id="dead",
                lock=lock_path(rig.config.data_dir, "job", "dead"))
    rig.clock.advance(HOUSEKEEPING_SEC - 5)
    sched.run_once()
    assert rig.store.get_run("job", "dead")["status"] == RunStatus.RUNNING   # not yet swept
    rig.clock.advance(10)
    sched.run_once()
    assert rig.store.get_run("job", "dead")["status"] == RunStatus.FAILED


def test_old_fire_claims_are_pruned(rig):
    rig.dag("job", STEPS)
    rig.goto(utc("2025-03-01 12:00:00"))
    old = minute_of(rig.clock.now() - timedelta(days=8))
    recent = minute_of(rig.clock.now() - timedelta(days=1))
    assert rig.store.claim_fire("job", "start", old)
    assert rig.store.claim_fire("job", "start", recent)
    rig.scheduler().run_once()
    assert rig.store.claim_fire("job", "start", old)          # forgotten: claimable again
    assert not rig.store.claim_fire("job", "start", recent)   # still remembered
