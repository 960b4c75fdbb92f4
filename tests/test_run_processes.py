"""Runs as real processes: stopping, signalOnStop escalation, a killed runner, memory under a
flood of output, and two starts racing for one run id."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DAGU = [sys.executable, str(ROOT / "dagu.py")]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
    e.update(DAGU_HOME=str(tmp_path / "home"), HOME=str(tmp_path), DISABLE_DAG_RUN_QUEUE="1")
    return e


def write_dag(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def dagu(env, *args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(DAGU + list(args), env=env, capture_output=True, text=True, timeout=timeout)


def status(env, dag: Path) -> dict | None:
    proc = dagu(env, "status", "--json", str(dag))
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def step_running(env, dag: Path, step: str):
    def check():
        st = status(env, dag)
        if st and st["status"] == 1:
            node = next(n for n in st["nodes"] if n["step"]["name"] == step)
            return st if node["status"] == 1 and node.get("pid") else None
        return None
    return wait_for(check, what=f"step {step} running")


def _ts(text: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def live_processes_with(marker: str) -> list[int]:
    """Pids (not zombies) whose environment holds marker (every step of a run gets DAG_RUN_ID)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if marker.encode() not in fh.read().split(b"\0"):
                    continue
            with open(f"/proc/{pid}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z":
            found.append(int(pid))
    return found


@pytest.mark.parametrize("command, signal_on_stop", [
    ("sleep 100", ""),
    # ignores SIGTERM: only SIGINT (signalOnStop) ends it before the SIGKILL escalation
    ("trap '' TERM; trap 'exit 0' INT; while true; do sleep 0.05; done", "SIGINT"),
    # ignores both: escalation to SIGKILL after maxCleanUpTimeSec
    ("trap '' TERM INT; while true; do sleep 0.05; done", ""),
], ids=["sleep", "trap-term-needs-sigint", "ignores-all-until-sigkill"])
def test_stop_ends_within_cleanup_time_and_leaves_no_process(tmp_path, env, command, signal_on_stop):
    dag = write_dag(tmp_path, "stoppable", f"""
        maxCleanUpTimeSec: 2
        steps:
          - name: work
            command: "{command}"
            {"signalOnStop: " + signal_on_stop if signal_on_stop else ""}
          - name: after
            command: echo never
    """)
    runner = subprocess.Popen(DAGU + ["start", str(dag)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        st = step_running(env, dag, "work")
        started = time.monotonic()
        stop = dagu(env, "stop", str(dag))
        assert stop.returncode == 0 and "stopped" in stop.stdout
        runner.wait(timeout=10)
        elapsed = time.monotonic() - started
    finally:
        if runner.poll() is None:
            runner.kill()
    final = status(env, dag)
    # the run ends within maxCleanUpTimeSec + 1 s of the runner being asked to stop
    log_text = Path(final["log"]).read_text()
    asked = next(line.split()[0] for line in log_text.splitlines() if "Run cancel requested" in line)
    span = _ts(final["finishedAt"]) - _ts(asked)
    assert span <= 2 + 1, f"the run ended {span:.2f}s after the stop request"
    assert elapsed <= 2 + 4, f"the whole stop command took {elapsed:.1f}s"
    assert final["statusLabel"] == "cancelled"
    assert [n["statusLabel"] for n in final["nodes"]] == ["canceled", "not started"]
    assert live_processes_with(f"DAG_RUN_ID={st['dagRunId']}") == []


def test_killed_runner_reads_as_failed_and_its_step_is_killed(tmp_path, env):
    dag = write_dag(tmp_path, "orphan", """
        steps:
          - name: work
            command: sleep 100
    """)
    runner = subprocess.Popen(DAGU + ["start", str(dag)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    st = step_running(env, dag, "work")
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait(timeout=5)
    final = status(env, dag)
    assert final["statusLabel"] == "failed"
    assert final["error"] == "runner process exited unexpectedly"
    assert final["nodes"][0]["statusLabel"] == "failed"
    assert final["finishedAt"]
    wait_for(lambda: not live_processes_with(f"DAG_RUN_ID={st['dagRunId']}"), timeout=5,
             what="the orphaned step to be killed")


def test_huge_step_output_keeps_the_runner_small(tmp_path, env):
    dag = write_dag(tmp_path, "flood", """
        steps:
          - name: flood
            command: head -c 200000000 /dev/zero | tr '\\0' 'x'
            stdout: copy.txt
          - name: capture
            command: head -c 3000000 /dev/zero | tr '\\0' 'y'
            output: BIG
            continueOn:
              failure: true
    """)
    runner = subprocess.Popen(DAGU + ["start", str(dag)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    peak_kb = 0
    while runner.poll() is None:
        try:
            with open(f"/proc/{runner.pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        peak_kb = max(peak_kb, int(line.split()[1]))
        except OSError:
            break
        time.sleep(0.02)
    assert peak_kb and peak_kb < 60 * 1024, f"runner peak RSS {peak_kb} KiB"
    final = status(env, dag)
    flood, capture = final["nodes"]
    assert flood["statusLabel"] == "finished"
    assert os.path.getsize(flood["stdout"]) == 200_000_000
    assert (tmp_path / "copy.txt").stat().st_size == 200_000_000
    assert capture["statusLabel"] == "failed"
    assert "output exceeded maximum size limit of 1048576 bytes" in capture["error"]


def test_two_starts_with_one_run_id_make_one_run(tmp_path, env):
    dag = write_dag(tmp_path, "racer", """
        steps:
          - name: s
            command: sleep 0.5
    """)
    procs = [subprocess.Popen(DAGU + ["start", "--run-id", "same-id", str(dag)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate(timeout=30) + (p.returncode,) for p in procs]
    codes = sorted(r[2] for r in results)
    assert codes == [0, 1], results
    loser = next(r for r in results if r[2] == 1)
    assert "same-id" in loser[1] and ("already exists" in loser[1] or "already running" in loser[1])
    history = json.loads(dagu(env, "history", "--json", str(dag)).stdout)
    assert [r["dagRunId"] for r in history] == ["same-id"]
    assert history[0]["statusLabel"] == "finished"
