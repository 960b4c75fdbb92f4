"""A real dagu server for API tests (a subprocess on 127.0.0.1) and a tiny HTTP client."""
from __future__ import annotations

import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body) if self.body else None


@dataclass
class Server:
    """A running `dagu start-all` (or `server`); `dags` is its DAGs directory."""

    home: Path
    port: int
    env: dict
    proc: subprocess.Popen | None = None
    base_path: str = ""
    headers: dict = field(default_factory=dict)

    @property
    def dags(self) -> Path:
        return self.home / "dags"

    def url(self, path: str) -> str:
        return f"{self.base_path}/api/v2{path}"

    def request(self, method: str, path: str, body=None, headers: dict | None = None,
                raw: bytes | None = None, timeout: float = 30) -> Reply:
        """One request on a fresh connection; body is JSON-encoded unless raw is given."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
            hdrs = dict(self.headers)
            hdrs.update(headers or {})
            if data is not None:
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, self.url(path) if not path.startswith("/api") and not
                         path.startswith(self.base_path + "/api") else path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
            h = {k.lower(): v for k, v in resp.getheaders()}
            if h.get("content-encoding") == "gzip":
                payload = gzip.decompress(payload)
            return Reply(resp.status, h, payload)
        finally:
            conn.close()

    def get(self, path: str, **kw) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, body=None, **kw) -> Reply:
        return self.request("POST", path, body, **kw)

    def wait_run(self, name: str, run_id: str, done=("finished", "failed", "cancelled",
                                                     "partial success"), timeout=20.0) -> dict:
        """Poll GET /dag-runs/{name}/{id} until its statusLabel is in done."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            r = self.get(f"/dag-runs/{name}/{run_id}")
            if r.status == 200:
                last = r.json["dagRunDetails"]
                if last["statusLabel"] in done:
                    return last
            time.sleep(0.05)
        raise AssertionError(f"run {name}/{run_id} did not finish: {last}")

    def stop(self) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode if self.proc else 0


def start_server(home: Path, *, command: str = "start-all", env_extra: dict | None = None,
                 entry: list[str] | None = None, base_path: str = "") -> Server:
    """Start dagu on a free port with DAGU_HOME=home; returns once /health answers."""
    port = free_port()
    (home / "dags").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
    env.update(DAGU_HOME=str(home), HOME=str(home), DAGU_PORT=str(port), DAGU_HOST="127.0.0.1")
    if base_path:
        env["DAGU_BASE_PATH"] = base_path
    env.update(env_extra or {})
    cmd = (entry or [sys.executable, str(ROOT / "dagu.py")]) + [command]
    log = open(home / "server.log", "ab")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    server = Server(home, port, env, proc, base_path)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {(home / 'server.log').read_text()[-2000:]}")
        try:
            if server.get("/health", timeout=2).status == 200:
                return server
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("server did not answer /health in 15 s")
