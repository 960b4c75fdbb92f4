"""Run benchmarks: wall time of `start` for a 1-step DAG, per-step overhead of a 100-step chain,
and 200 `sleep 0.1` steps with maxActiveSteps 10 — ours (the built dagu.pyz) and, when it is
installed, the real Dagu side by side (DAGU_PEER=/path/to/dagu, or /tmp/dagu-peer/package/bin/dagu
as ../shared/peer/install-dagu.sh leaves it)."""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "runs"
DESCRIPTION = "dagu start: 1-step echo, 100-step chain of true, 200 sleep-0.1 steps (maxActiveSteps 10)"
REPEATS = 5

DAGS = {
    "echo_1": "steps:\n  - name: s\n    command: echo hello\n",
    "chain_100": "steps:\n" + "".join(f"  - name: s{i}\n    command: 'true'\n" for i in range(100)),
    "sleep_200x10": "type: graph\nmaxActiveSteps: 10\nsteps:\n" + "".join(
        f"  - name: s{i}\n    command: sleep 0.1\n" for i in range(200)),
}


def _zipapp() -> str:
    path = os.path.join(ROOT, "dagu.pyz")
    subprocess.run(["bash", os.path.join(ROOT, "build_zipapp.sh")], check=True,
                   capture_output=True, timeout=120)
    return path


def _peer() -> str | None:
    for path in (os.environ.get("DAGU_PEER"), "/tmp/dagu-peer/package/bin/dagu"):
        if path and os.access(path, os.X_OK):
            return path
    return None


def _time_start(cmd: list[str], dag_file: str, home: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
    env.update(DAGU_HOME=home, DISABLE_DAG_RUN_QUEUE="1", DAGU_SKIP_EXAMPLES="true",
               DISABLE_PROGRESS="1")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd + ["start", dag_file], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=600)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} start {dag_file} failed: {proc.stderr.decode()[-500:]}")
    return elapsed


def _measure(label: str, cmd: list[str], workdir: str) -> dict:
    out = {}
    for name, text in DAGS.items():
        dag_file = os.path.join(workdir, f"{name}.yaml")
        with open(dag_file, "w") as fh:
            fh.write(text)
        home = tempfile.mkdtemp(prefix=f"bench-{label}-", dir=workdir)
        repeats = REPEATS if name != "sleep_200x10" else 2
        times = [_time_start(cmd, dag_file, home) for _ in range(repeats)]
        out[f"{label}.{name}.median_s"] = round(statistics.median(times), 4)
        out[f"{label}.{name}.min_s"] = round(min(times), 4)
    out[f"{label}.chain_100.per_step_ms"] = round(
        (out[f"{label}.chain_100.median_s"] - out[f"{label}.echo_1.median_s"]) / 99 * 1000, 2)
    return out


def run() -> dict:
    workdir = tempfile.mkdtemp(prefix="bench-runs-")
    try:
        metrics = _measure("ours", [sys.executable, "-I", "-S", _zipapp()], workdir)
        peer = _peer()
        if peer:
            metrics.update(_measure("dagu", [peer], workdir))
            for name in ("echo_1", "chain_100", "sleep_200x10"):
                metrics[f"ratio.{name}"] = round(
                    metrics[f"ours.{name}.median_s"] / metrics[f"dagu.{name}.median_s"], 2)
        else:
            metrics["dagu"] = "not installed (../shared/peer/install-dagu.sh)"
        return metrics
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
