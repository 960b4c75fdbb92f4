"""`dagu scheduler` as a real process: one scheduler per data directory, the queue honouring
maxActiveRuns and FIFO order with real runners, a cron minute firing once, and a clean SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGU = [sys.executable, str(ROOT / "dagu.py")]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("DAGU_", "XDG_")) and k != "DISABLE_DAG_RUN_QUEUE"}
    e.update(DAGU_HOME=str(tmp_path), HOME=str(tmp_path), LC_ALL="C.UTF-8")
    return e


def write_dag(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / "dags" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def dagu(env, *args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(DAGU + list(args), env=env, capture_output=True, text=True,
                          timeout=timeout)


class Scheduler:
    """A background `dagu scheduler`, its output in files; always stopped by the test."""

    def __init__(self, env: dict[str, str], tmp_path: Path, tag: str = "scheduler"):
        self.out = tmp_path / f"{tag}.out"
        self.err = tmp_path / f"{tag}.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(DAGU + ["scheduler"], env=env, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL)
        self.data = Path(env["DAGU_HOME"]) / "data"

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Until it holds the lock (its pid written) and its wake socket exists."""
        lock, sock = self.data / "scheduler.lock", self.data / "scheduler.sock"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"scheduler exited: {self.err.read_text()}"
            if sock.exists() and lock.exists() and lock.read_text().strip() == str(self.proc.pid):
                return
            time.sleep(0.05)
        raise AssertionError(f"scheduler not ready: {self.err.read_text()}")

    def terminate(self, timeout: float = 10.0) -> tuple[int, float]:
        """SIGTERM; (exit status, seconds it took)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def history(env, dag: str) -> list[dict]:
    proc = dagu(env, "history", "--json", "--limit", "1000", dag)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals],
                    key=lambda x: (x[0], x[1]))   # an end before a start at the same instant
    now = peak = 0
    for _, delta in events:
        now += delta
        peak = max(peak, now)
    return peak


def test_second_scheduler_on_same_data_dir_exits_at_once(tmp_path, env):
    first = Scheduler(env, tmp_path, "first")
    try:
        first.wait_ready()
        started = time.monotonic()
        second = dagu(env, "scheduler", timeout=20)
        elapsed = time.monotonic() - started
        assert second.returncode != 0
        assert "another scheduler" in second.stderr
        assert f"pid {first.proc.pid}" in second.stderr
        assert elapsed < 5, f"the second scheduler took {elapsed:.1f}s to give up"
        assert first.proc.poll() is None            # the first one is unharmed
        # ...and its wake socket still works (the loser must not have replaced it)
        assert (first.data / "scheduler.sock").exists()
        code, took = first.terminate()
        assert (code, took < 5) == (0, True)
    finally:
        first.kill()


def test_queue_of_30_respects_max_active_runs_and_fifo(tmp_path, env):
    marks = tmp_path / "marks.txt"
    write_dag(tmp_path, "q", f"""\
        maxActiveRuns: 3
        steps:
          - name: work
            script: |
              echo "$DAG_RUN_ID start $(date +%s.%N)" >> {marks}
              sleep 0.3
              echo "$DAG_RUN_ID end $(date +%s.%N)" >> {marks}
        """)
    ids = [f"run{i:02d}" for i in range(30)]
    for run_id in ids:
        proc = dagu(env, "enqueue", "--run-id", run_id, "q")
        assert proc.returncode == 0, proc.stderr
    queued = history(env, "q")
    assert len(queued) == 30 and {r["status"] for r in queued} == {5}

    sched = Scheduler(env, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            runs = history(env, "q")
            if all(r["status"] not in (0, 1, 5) for r in runs):
                break
            assert sched.proc.poll() is None, f"scheduler exited: {sched.err.read_text()}"
            assert time.monotonic() < deadline, (
                f"not finished in 60 s: {sorted((r['dagRunId'], r['statusLabel']) for r in runs)}")
            time.sleep(0.3)
        code, took = sched.terminate()
        assert code == 0, sched.err.read_text()
        assert took < 5
    finally:
        sched.kill()

    assert sorted(r["dagRunId"] for r in runs) == ids
    assert {r["dagRunId"]: r["statusLabel"] for r in runs} == {i: "finished" for i in ids}

    # never more than maxActiveRuns at once, by the steps' own start/end times
    spans: dict[str, list[float]] = {}
    for line in marks.read_text().splitlines():
        run_id, what, when = line.split()
        spans.setdefault(run_id, [0.0, 0.0])[0 if what == "start" else 1] = float(when)
    assert sorted(spans) == ids
    assert max_overlap([(s, e) for s, e in spans.values()]) <= 3

    # strict FIFO: started in the order they were queued. Runs dispatched in the same pass
    # (the first three, when the scheduler comes up with a full queue) are separate processes
    # racing to write startedAt, a few ms apart; a run overtaking one from an earlier slot would
    # be at least one step (0.3 s) early, so inversions must stay well below that.
    by_queued = [r["dagRunId"] for r in sorted(runs, key=lambda r: stamp(r["queuedAt"]))]
    assert by_queued == ids
    started = {r["dagRunId"]: stamp(r["startedAt"]).timestamp() for r in runs}
    inversions = [(a, b, round(started[a] - started[b], 3))
                  for i, a in enumerate(ids) for b in ids[i + 1:] if started[b] < started[a]]
    assert all(gap < 0.15 for _, _, gap in inversions), inversions


@pytest.mark.slow
def test_every_minute_schedule_fires_once_at_the_minute(tmp_path, env):
    sched = Scheduler(env, tmp_path)
    try:
        sched.wait_ready()
        # Add the DAG while the scheduler runs (so the start-up pass does not fire it), and not
        # within a few seconds of a minute boundary: a rescan (every 5 s) must see it before
        # the next boundary, and after the last one (whose fire it would still pick up).
        while not 7 <= datetime.now(timezone.utc).second < 57:
            time.sleep(0.2)
        write_dag(tmp_path, "tick", """\
            schedule: "* * * * *"
            steps:
              - name: hello
                command: echo tick
            """)
        now = datetime.now(timezone.utc)
        boundary = now.replace(second=0, microsecond=0).timestamp() + 60
        deadline = boundary + 10
        runs: list[dict] = []
        while time.time() < deadline:
            runs = history(env, "tick")
            if runs and runs[0]["status"] == 4:
                break
            time.sleep(0.5)
        assert len(runs) == 1, f"expected one run by the boundary + 10 s, got {runs}"
        assert runs[0]["statusLabel"] == "finished"
        started = stamp(runs[0]["startedAt"]).timestamp()
        assert boundary <= started < boundary + 10
        time.sleep(max(0.0, deadline - time.time()) + 3)   # nothing more until the next minute
        again = history(env, "tick")
        assert [r["dagRunId"] for r in again] == [runs[0]["dagRunId"]]
        code, took = sched.terminate()
        assert code == 0 and took < 5, sched.err.read_text()
    finally:
        sched.kill()
