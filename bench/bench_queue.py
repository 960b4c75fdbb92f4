"""Queue benchmarks with the real `dagu.pyz scheduler`: how soon a queued run starts after the
previous one finished (maxActiveRuns 1), and 100 enqueued 1-step runs drained end to end."""
from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "queue"
DESCRIPTION = "slot hand-over latency (finish -> next start) and 100 queued 1-step runs drained"
TARGET_HANDOVER_MS = 100.0


def _t(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _drain(cmd: list[str], home: str, dag: str, runs: int, max_active: int, step: str) -> dict:
    dags = os.path.join(home, "dags")
    os.makedirs(dags, exist_ok=True)
    with open(os.path.join(dags, f"{dag}.yaml"), "w") as fh:
        fh.write(f"maxActiveRuns: {max_active}\nsteps:\n  - name: s\n    command: {step}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
    env["DAGU_HOME"] = home
    for _ in range(runs):
        subprocess.run(cmd + ["enqueue", "-q", dag], env=env, check=True, capture_output=True)
    t0 = time.perf_counter()
    sched = subprocess.Popen(cmd + ["scheduler"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        while True:
            out = subprocess.run(cmd + ["history", "--json", "--limit", str(runs + 5), dag], env=env,
                                 capture_output=True, text=True, check=True).stdout
            history = json.loads(out)
            if sum(r["statusLabel"] == "finished" for r in history) >= runs:
                break
            if time.perf_counter() - t0 > 300:
                raise RuntimeError("queue did not drain in 300 s")
            time.sleep(0.2)
        elapsed = time.perf_counter() - t0
    finally:
        sched.send_signal(signal.SIGTERM)
        sched.wait(timeout=30)
    ordered = sorted(history, key=lambda r: _t(r["startedAt"]))
    handovers = [(_t(b["startedAt"]) - _t(a["finishedAt"])) * 1000
                 for a, b in zip(ordered, ordered[1:])] if max_active == 1 else []
    return {"elapsed_s": elapsed, "handovers_ms": handovers}


def run() -> dict:
    subprocess.run(["bash", os.path.join(ROOT, "build_zipapp.sh")], check=True, capture_output=True)
    cmd = [sys.executable, "-I", "-S", os.path.join(ROOT, "dagu.pyz")]
    work = tempfile.mkdtemp(prefix="bench-queue-")
    try:
        serial = _drain(cmd, os.path.join(work, "a"), "serial", 20, 1, "'true'")
        drained = _drain(cmd, os.path.join(work, "b"), "drain", 100, 5, "echo hi")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    hand = serial["handovers_ms"]
    return {
        "handover_ms.median": round(statistics.median(hand), 1),
        "handover_ms.p95": round(sorted(hand)[int(len(hand) * 0.95) - 1], 1),
        "handover_ms.max": round(max(hand), 1),
        "drain_100_runs.seconds": round(drained["elapsed_s"], 2),
        "drain_100_runs.runs_per_s": round(100 / drained["elapsed_s"], 1),
        "target_handover_ms": TARGET_HANDOVER_MS,
        "target_met": statistics.median(hand) < TARGET_HANDOVER_MS,
    }
