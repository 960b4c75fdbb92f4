"""REST API benchmarks against the built `dagu.pyz start-all` and, when it is installed, the real
Dagu side by side (same DAG files, same requests, one after the other on 127.0.0.1).

Measured (medians unless named): process start -> first 200 from /health; idle memory with 10
DAG files; GET /health on one keep-alive connection; GET /dags with 10 and with 500 DAG files
(each with a description, two tags, a schedule and two steps; perPage=50); GET /dag-runs with
50,000 runs in history (ours only: generated straight into our SQLite store); POST /start of a
1-step `echo hi` -> run seen as success (polling every 5 ms); 100 x POST /enqueue -> all
success, with maxActiveRuns 1 (Dagu's default) and 10. `ratio.*` = ours / Dagu: below 1 is
better for times and sizes, above 1 is better for `*_rps` and `*_runs_per_s`. Dagu: $DAGU_PEER or /tmp/dagu-peer/package/bin/dagu
(`bash ../shared/peer/install-dagu.sh` installs it)."""
from __future__ import annotations

import http.client
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "api"
DESCRIPTION = ("REST API: start-all startup, idle memory, /health, /dags (10, 500 files), "
               "/dag-runs (50k runs), POST start -> success, 100 enqueued runs; vs real Dagu")
PEER_DEFAULT = "/tmp/dagu-peer/package/bin/dagu"

STARTUPS = 5
HEALTH_REQUESTS = 1000
DAGS10_REQUESTS = 300
DAGS500_REQUESTS = 100
DAGRUNS_REQUESTS = 200
HISTORY_RUNS = 50_000
START_RUNS = 10
ENQUEUED_RUNS = 100
ENQUEUE_WAIT_SEC = 120.0    # Dagu's queue takes ~3 s per run with maxActiveRuns 1

# The numbers to beat (../shared/reference/dagu-performance.md), for our side.
TARGETS = {  # metric: (limit, unit note)
    "startup_ms": 100.0,
    "idle_pss_tree_mib": 25.0,
    "health_p50_ms": 0.3,
    "dags10_p50_ms": 1.0,
    "dags500_p50_ms": 7.0,
    "start_to_success_ms": 40.0,
    "enqueue100_max1_s": 1.7,
}


class Unavailable(Exception):
    """The server does not serve this route (yet)."""


# ------------------------------------------------------------ processes and files

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listing_dag(i: int) -> str:
    return (f"description: listing benchmark DAG number {i}, with a plain description\n"
            f"tags: [team-{i % 7}, nightly]\n"
            f"schedule: \"{i % 60} 0 1 1 *\"\n"
            "steps:\n"
            "  - name: extract\n    command: echo extract\n"
            "  - name: load\n    command: echo load\n    depends: [extract]\n")


def write_listing(dags: str, start: int, stop: int) -> None:
    os.makedirs(dags, exist_ok=True)
    for i in range(start, stop):
        with open(os.path.join(dags, f"list-{i:03d}.yaml"), "w") as fh:
            fh.write(listing_dag(i))


def write_functional(dags: str) -> None:
    bodies = {
        "echo1": "steps:\n  - name: s\n    command: echo hi\n",
        "qone": "maxActiveRuns: 1\nsteps:\n  - name: s\n    command: echo hi\n",
        "qten": "maxActiveRuns: 10\nsteps:\n  - name: s\n    command: echo hi\n",
    }
    for name, body in bodies.items():
        with open(os.path.join(dags, f"{name}.yaml"), "w") as fh:
            fh.write(body)


class Server:
    """One `start-all` of one implementation on a free port."""

    def __init__(self, cmd: list[str], home: str):
        self.port = free_port()
        self.home = home
        env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
        env.update(DAGU_HOME=home, HOME=home, DAGU_HOST="127.0.0.1", DAGU_PORT=str(self.port),
                   DAGU_SKIP_EXAMPLES="true")
        self.log = open(os.path.join(home, "server.log"), "ab")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd + ["start-all"], env=env, stdout=self.log,
                                     stderr=self.log, stdin=subprocess.DEVNULL)
        self.startup_ms = self._wait_health() * 1000

    def _wait_health(self, timeout: float = 30.0) -> float:
        deadline = self.started + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/api/v2/health")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return time.perf_counter() - self.started
            except OSError:
                time.sleep(0.001)
        raise RuntimeError("no 200 from /health in 30 s")

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                found += [int(p) for p in fh.read().split()]
        except OSError:
            pass
    return found


def _status_kib(pid: int, key: str, source: str = "status") -> int:
    try:
        with open(f"/proc/{pid}/{source}") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_mib(pid: int) -> tuple[float, float]:
    """(RSS of the process, PSS of it and all its descendants) in MiB."""
    rss = _status_kib(pid, "VmRSS")
    tree, pending = [], [pid]
    while pending:
        p = pending.pop()
        tree.append(p)
        pending += _children(p)
    pss = sum(_status_kib(p, "Pss", "smaps_rollup") for p in tree)
    return rss / 1024, pss / 1024


# ------------------------------------------------------------ requests

def request(conn: http.client.HTTPConnection, method: str, path: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    payload = resp.read()
    if resp.status == 405 or (resp.status == 404 and (b"no such endpoint" in payload
                                                      or b"404 page not found" in payload)):
        raise Unavailable(f"{method} {path} -> {resp.status}")
    return resp.status, payload


def latency(server: Server, path: str, n: int, warmup: int = 20) -> dict:
    """p50/p99 (ms) and requests/s of n GETs on one keep-alive connection."""
    conn = server.connection()
    try:
        for _ in range(warmup):
            status, body = request(conn, "GET", path)
            if status != 200:
                raise RuntimeError(f"GET {path} -> {status}: {body[:200]!r}")
        times = []
        began = time.perf_counter()
        for _ in range(n):
            t = time.perf_counter()
            status, _ = request(conn, "GET", path)
            times.append(time.perf_counter() - t)
            if status != 200:
                raise RuntimeError(f"GET {path} -> {status}")
        elapsed = time.perf_counter() - began
    finally:
        conn.close()
    times.sort()
    return {"p50_ms": round(statistics.median(times) * 1000, 3),
            "p99_ms": round(times[math.ceil(0.99 * len(times)) - 1] * 1000, 3),
            "rps": round(n / elapsed, 1)}


def run_status(conn, name: str, run_id: str) -> int | None:
    status, body = request(conn, "GET", f"/api/v2/dag-runs/{name}/{run_id}")
    if status != 200:
        return None
    return json.loads(body)["dagRunDetails"]["status"]


def start_to_success(server: Server, name: str = "echo1") -> float:
    """ms from sending POST /start to seeing the run succeed (polling every 5 ms)."""
    conn = server.connection()
    try:
        began = time.perf_counter()
        status, body = request(conn, "POST", f"/api/v2/dags/{name}/start", {})
        if status != 200:
            raise RuntimeError(f"POST start -> {status}: {body[:200]!r}")
        run_id = json.loads(body)["dagRunId"]
        deadline = began + 30
        while time.perf_counter() < deadline:
            state = run_status(conn, name, run_id)
            if state == 4:
                return (time.perf_counter() - began) * 1000
            if state in (2, 3, 6):
                raise RuntimeError(f"run {run_id} ended with status {state}")
            time.sleep(0.005)
    finally:
        conn.close()
    raise RuntimeError("run did not succeed in 30 s")


def enqueue_many(server: Server, name: str, n: int) -> dict:
    """n x POST /enqueue, then poll until every run succeeded (at most ENQUEUE_WAIT_SEC):
    `s` = seconds from the first POST to the last success (or "> limit (k/n done)"), and
    `runs_per_s` = successes per second over that span."""
    conn = server.connection()
    try:
        began = time.perf_counter()
        pending = []
        for _ in range(n):
            status, body = request(conn, "POST", f"/api/v2/dags/{name}/enqueue", {})
            if status != 200:
                raise RuntimeError(f"POST enqueue -> {status}: {body[:200]!r}")
            pending.append(json.loads(body)["dagRunId"])
        deadline = began + ENQUEUE_WAIT_SEC
        while pending and time.perf_counter() < deadline:
            still = []
            for run_id in pending:
                state = run_status(conn, name, run_id)
                if state in (2, 3, 6):
                    raise RuntimeError(f"queued run {run_id} ended with status {state}")
                if state != 4:
                    still.append(run_id)
            pending = still
            if pending:
                time.sleep(0.02)
        elapsed = time.perf_counter() - began
        done = n - len(pending)
        return {"s": round(elapsed, 2) if not pending
                else f"> {ENQUEUE_WAIT_SEC:.0f} ({done}/{n} done)",
                "runs_per_s": round(done / elapsed, 2)}
    finally:
        conn.close()


def attempt(out: dict, key: str, fn) -> None:
    """out[key] = fn(), or why it could not be measured."""
    try:
        value = fn()
    except Unavailable as exc:
        out[key] = f"unavailable ({exc})"
        return
    except Exception as exc:  # a benchmark reports; it does not stop at the first failure
        out[key] = f"error: {type(exc).__name__}: {exc}"[:200]
        return
    if isinstance(value, dict):
        for sub, v in value.items():
            out[f"{key}_{sub}"] = v
    else:
        out[key] = round(value, 3) if isinstance(value, float) else value


# ------------------------------------------------------------ one implementation

def generate_history(db_path: str, runs: int) -> float:
    """Insert `runs` finished root runs (minimal records) into our store; seconds taken."""
    sys.path.insert(0, ROOT)
    from dagu.store import RunStore
    now_ms = int(time.time() * 1000)
    began = time.perf_counter()
    with RunStore(db_path) as store:
        for i in range(runs):
            created = now_ms - (runs - i) * 50
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created / 1000))
            store.insert_run({
                "name": f"hist-{i % 50:02d}", "dagRunId": f"hist-{i:06d}", "createdAt": created,
                "status": 4 if i % 10 else 2, "statusLabel": "finished" if i % 10 else "failed",
                "startedAt": f"{stamp}.000Z", "finishedAt": f"{stamp}.040Z",
                "log": f"/tmp/hist/{i}.log", "params": "", "nodes": [], "attempt": 1})
    return time.perf_counter() - began


def bench_one(cmd: list[str], ours: bool, work: str) -> dict:
    out: dict = {}
    home = os.path.join(work, "home")
    dags = os.path.join(home, "dags")
    write_listing(dags, 0, 10)

    startups = []
    for _ in range(STARTUPS):
        server = Server(cmd, home)
        startups.append(server.startup_ms)
        server.stop()
    out["startup_ms"] = round(statistics.median(startups), 1)

    server = Server(cmd, home)
    try:
        time.sleep(2.0)    # idle: let start-up work settle
        rss, pss = memory_mib(server.proc.pid)
        out["idle_rss_mib"] = round(rss, 1)
        out["idle_pss_tree_mib"] = round(pss, 1)
        attempt(out, "health", lambda: latency(server, "/api/v2/health", HEALTH_REQUESTS, 100))
        attempt(out, "dags10", lambda: latency(server, "/api/v2/dags?perPage=50", DAGS10_REQUESTS))
    finally:
        server.stop()

    write_listing(dags, 10, 500)
    write_functional(dags)
    server = Server(cmd, home)
    try:
        attempt(out, "dags500", lambda: latency(server, "/api/v2/dags?perPage=50",
                                                DAGS500_REQUESTS, 5))
        attempt(out, "start_to_success_ms",
                lambda: statistics.median(start_to_success(server) for _ in range(START_RUNS)))
        # maxActiveRuns 10 first: a slow queue left over from the other must not delay it
        attempt(out, "enqueue100_max10", lambda: enqueue_many(server, "qten", ENQUEUED_RUNS))
        attempt(out, "enqueue100_max1", lambda: enqueue_many(server, "qone", ENQUEUED_RUNS))
    finally:
        server.stop()

    if ours:
        out["dagruns50k_generate_s"] = round(
            generate_history(os.path.join(home, "data", "dagu.db"), HISTORY_RUNS), 1)
        server = Server(cmd, home)
        try:
            attempt(out, "dagruns50k", lambda: latency(server, "/api/v2/dag-runs",
                                                       DAGRUNS_REQUESTS, 5))
            attempt(out, "dagruns50k_by_name",
                    lambda: latency(server, "/api/v2/dag-runs?name=hist-07&perPage=50",
                                    DAGRUNS_REQUESTS, 5))
        finally:
            server.stop()
    return out


def find_peer() -> str | None:
    path = os.environ.get("DAGU_PEER") or PEER_DEFAULT
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def run() -> dict:
    subprocess.run(["bash", os.path.join(ROOT, "build_zipapp.sh")], check=True,
                   capture_output=True)
    impls = {"ours": [sys.executable, "-I", "-S", os.path.join(ROOT, "dagu.pyz")]}
    peer = find_peer()
    if peer:
        impls["dagu"] = [peer]
    results: dict[str, dict] = {}
    for label, cmd in impls.items():
        work = tempfile.mkdtemp(prefix=f"bench-api-{label}-")
        try:
            results[label] = bench_one(cmd, label == "ours", work)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    metrics: dict = {}
    for label, values in results.items():
        for key, value in values.items():
            metrics[f"{label}.{key}"] = value
    if "dagu" in results:
        for key, value in results["ours"].items():
            other = results["dagu"].get(key)
            if isinstance(value, (int, float)) and isinstance(other, (int, float)) and other:
                metrics[f"ratio.{key}"] = round(value / other, 2)
    else:
        metrics["dagu"] = f"not installed ({PEER_DEFAULT}; set DAGU_PEER)"
    missed = []
    for key, limit in TARGETS.items():
        value = results["ours"].get(key)
        if not isinstance(value, (int, float)) or value > limit:
            missed.append(f"{key}={value} (target <= {limit})")
    metrics["targets_missed"] = "; ".join(missed) or "none"
    metrics["target_met"] = not missed
    return metrics
