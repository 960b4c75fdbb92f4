"""The HTTP layer against a real `dagu start-all`: routing errors, limits, keep-alive, gzip,
access log, base path, process life (flags, locks, shutdown), authentication and permissions."""
from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dagu.api.app import build_router
from dagu.store import RunStore
from tests import apischema
from tests.apiclient import ROOT, free_port, start_server

DAG_NAMES = [f"listed-{i}" for i in range(6)]
USER, PASSWORD, TOKEN = "admin", "s3cret:with:colons", "tok-123"


def routes():
    """(method, pattern, permission, public) of every route of the router, as it is now."""
    return [(r.method, r.pattern, r.permission, r.public) for r in build_router().routes]


def has_route(method: str, pattern: str) -> bool:
    return any(m == method and p == pattern for m, p, _, _ in routes())


def fill(pattern: str, value: str = "dummy") -> str:
    return re.sub(r"\{[^}]+\}", value, pattern)


def write_dag(dags: Path, name: str, body: str) -> None:
    dags.mkdir(parents=True, exist_ok=True)
    (dags / f"{name}.yaml").write_text(body)


def listing_dag(i: int) -> str:
    return (f"description: listed DAG number {i} with a description long enough to compress\n"
            f"tags: [team-{i}, nightly]\nschedule: \"{i} 3 * * *\"\n"
            "steps:\n  - name: first\n    command: echo one\n"
            "  - name: second\n    command: echo two\n    depends: [first]\n")


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes (or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (socket.timeout, ConnectionResetError):
            pass
    return b"".join(chunks)


def split_response(raw: bytes) -> tuple[int, dict, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """One plain start-all for the stateless checks, with a few DAG files."""
    home = tmp_path_factory.mktemp("srv") / "home"
    for i, name in enumerate(DAG_NAMES):
        write_dag(home / "dags", name, listing_dag(i))
    server = start_server(home)
    yield server
    server.stop()


def assert_error(reply, status: int, code: str) -> None:
    assert reply.status == status, (reply.status, reply.body[:300])
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json["code"] == code
    assert isinstance(reply.json["message"], str) and reply.json["message"]
    if apischema.spec_available():
        assert apischema.check(reply.json, "Error") == []


# ------------------------------------------------------------ routing

@pytest.mark.parametrize("path", ["/api/v2/nope", "/api/v2/health/extra", "/api/v2/",
                                  "/api/v2/dags/a/b/c/d/e/f"])
def test_unknown_route_is_404_json(srv, path):
    assert_error(srv.get(path), 404, "not_found")


def test_every_pattern_answers_405_with_allow_for_a_method_it_lacks(srv):
    table = routes()
    for pattern in sorted({p for _, p, _, _ in table}):
        path = fill(pattern)
        allowed = {m for m, p, _, _ in table if re.fullmatch(fill(p, "[^/]+"), path)}
        method = next(m for m in ("PUT", "PATCH", "DELETE", "POST", "GET") if m not in allowed)
        reply = srv.request(method, srv.url(path))
        assert_error(reply, 405, "bad_request")
        expected = allowed | ({"HEAD"} if "GET" in allowed else set())
        assert {m.strip() for m in reply.headers["allow"].split(",")} == expected, pattern


def test_head_is_get_without_a_body(srv):
    get = srv.get("/health")
    raw = raw_exchange(srv.port, b"HEAD /api/v2/health HTTP/1.1\r\nHost: x\r\n"
                                 b"Connection: close\r\n\r\n")
    status, headers, body = split_response(raw)
    assert status == 200
    assert headers["content-type"] == get.headers["content-type"]
    assert int(headers["content-length"]) == len(get.body) > 0
    assert body == b""


def test_head_on_keep_alive_does_not_desync_the_connection(srv):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    try:
        for method in ("HEAD", "GET", "HEAD", "GET"):
            conn.request(method, "/api/v2/health")
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200
            assert (body == b"") == (method == "HEAD")
            if method == "GET":
                assert json.loads(body)["status"] == "healthy"
    finally:
        conn.close()


# ------------------------------------------------------------ request bodies

BODY_ROUTES = ("POST", "PUT", "PATCH")


def test_malformed_json_body_is_400_bad_request(srv):
    if has_route("POST", "/dags"):
        path = "/dags"
    elif has_route("POST", "/dags/{fileName}/start"):
        path = f"/dags/{DAG_NAMES[0]}/start"
    else:
        pytest.skip("no POST route that reads a JSON body yet (POST /dags, /dags/{f}/start)")
    reply = srv.request("POST", srv.url(path), raw=b'{"name": "x",', headers={
        "Content-Type": "application/json"})
    assert_error(reply, 400, "bad_request")


def test_no_route_answers_500_to_a_malformed_body(srv):
    body_routes = [(m, p) for m, p, _, _ in routes() if m in BODY_ROUTES]
    if not body_routes:
        pytest.skip("no routes with a request body yet")
    for method, pattern in body_routes:
        for value in ("dummy", DAG_NAMES[0]):
            reply = srv.request(method, srv.url(fill(pattern, value)), raw=b"{nope",
                                headers={"Content-Type": "application/json"})
            assert reply.status < 500, (method, pattern, reply.status, reply.body[:300])
            assert reply.json["code"] in ("bad_request", "not_found"), (method, pattern, reply.json)


def test_body_over_1_mib_is_413_and_the_server_stays_up(srv):
    limit = 1 << 20
    raw = raw_exchange(srv.port, (f"POST /api/v2/health HTTP/1.1\r\nHost: x\r\n"
                                  f"Content-Type: application/json\r\n"
                                  f"Content-Length: {limit + 1}\r\n\r\n").encode())
    status, headers, body = split_response(raw)
    assert status == 413
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["code"] == "bad_request"
    assert headers.get("connection", "").lower() == "close"   # the unread body is not parsed
    assert srv.get("/health").status == 200


def test_body_of_exactly_1_mib_is_read_and_routed(srv):
    # the limit is inclusive: the request gets past the body check to routing (405 here)
    reply = srv.request("POST", "/api/v2/health", raw=b" " * (1 << 20))
    assert_error(reply, 405, "bad_request")
    assert srv.get("/health").status == 200


def test_chunked_request_body_is_400(srv):
    raw = raw_exchange(srv.port, b"POST /api/v2/health HTTP/1.1\r\nHost: x\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    status, headers, body = split_response(raw)
    assert status == 400
    assert json.loads(body)["code"] == "bad_request"
    assert srv.get("/health").status == 200


@pytest.mark.parametrize("request_bytes", [
    b"POST /api/v2/health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST /api/v2/health HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{}",
], ids=["negative-length", "truncated-body"])
def test_broken_body_framing_is_400(srv, request_bytes):
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(request_bytes)
        sock.shutdown(socket.SHUT_WR)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    status, headers, body = split_response(raw)
    assert (status, json.loads(body)["code"]) == (400, "bad_request"), raw[:300]


@pytest.mark.parametrize("request_bytes, status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /api/v2/health HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431),
], ids=["bad-request-line", "header-too-long"])
def test_protocol_errors_are_json_too(srv, request_bytes, status):
    got, headers, body = split_response(raw_exchange(srv.port, request_bytes))
    assert got == status
    assert headers["content-type"].startswith("application/json"), body[:200]
    assert json.loads(body)["code"] == "bad_request"


@pytest.mark.slow
def test_stalled_body_times_out_cleanly(tmp_path):
    # server.readTimeoutSec via its variable, short, so the test does not wait the default 15 s
    server = start_server(tmp_path / "home", env_extra={"DAGU_READ_TIMEOUT_SEC": "2"})
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(b"POST /api/v2/health HTTP/1.1\r\nHost: x\r\nContent-Length: 10"
                         b"\r\n\r\n{}")
            raw = b""
            while b"\r\n\r\n" not in raw:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                raw += chunk
            status, headers, _ = split_response(raw)
        time.sleep(0.5)
        assert server.get("/health").status == 200
    finally:
        server.stop()
    log = (tmp_path / "home" / "server.log").read_text()
    assert status in (400, 408), raw[:300]
    assert headers.get("connection", "").lower() == "close"
    assert "Traceback" not in log, log[-2000:]


# ------------------------------------------------------------ connection handling

def test_keep_alive_50_requests_on_one_connection_are_fast(srv):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    times = []
    try:
        conn.connect()
        sock = conn.sock
        for _ in range(50):
            started = time.perf_counter()
            conn.request("GET", "/api/v2/health")
            resp = conn.getresponse()
            resp.read()
            times.append(time.perf_counter() - started)
            assert resp.status == 200
            assert conn.sock is sock, "the server closed the keep-alive connection"
    finally:
        conn.close()
    # Nagle + delayed ACK would show as ~40 ms per request when headers and body go separately
    assert statistics.median(times) < 0.030, [round(t * 1000, 1) for t in times]


def gzip_target(srv) -> str:
    return "/dags" if has_route("GET", "/dags") else "/metrics"


def test_big_responses_are_gzipped_when_accepted(srv):
    path = gzip_target(srv)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request("GET", srv.url(path), headers={"Accept-Encoding": "gzip, deflate"})
        resp = conn.getresponse()
        zipped = resp.read()
        assert resp.status == 200
        assert resp.getheader("Content-Encoding") == "gzip"
        assert "Accept-Encoding" in (resp.getheader("Vary") or "")
        assert int(resp.getheader("Content-Length")) == len(zipped)
        text = gzip.decompress(zipped)
        conn.request("GET", srv.url(path))
        resp = conn.getresponse()
        plain = resp.read()
        assert resp.getheader("Content-Encoding") is None
        assert len(plain) >= 1024
    finally:
        conn.close()
    if path == "/dags":
        assert json.loads(text) == json.loads(plain)
    else:
        assert text.splitlines()[:3] == plain.splitlines()[:3]


def test_small_responses_are_not_gzipped(srv):
    reply = srv.get("/health", headers={"Accept-Encoding": "gzip"})
    assert reply.status == 200
    assert "content-encoding" not in reply.headers


def test_access_log_line_per_request(srv):
    marker = f"probe{time.monotonic_ns()}"
    assert srv.get(f"/api/v2/health?{marker}=1").status == 200
    assert srv.get(f"/api/v2/{marker}").status == 404
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        text = (srv.home / "server.log").read_text()
        lines = [line for line in text.splitlines() if marker in line]
        if len(lines) >= 2:
            break
        time.sleep(0.05)
    assert len(lines) == 2, lines
    assert re.search(rf'"GET /api/v2/health\?{marker}=1" 200 \d+', lines[0]), lines[0]
    assert re.search(rf'"GET /api/v2/{marker}" 404 \d+', lines[1]), lines[1]
    assert "127.0.0.1" in lines[0]


def test_base_path(tmp_path):
    server = start_server(tmp_path / "home", base_path="/dagu")
    try:
        assert server.get("/dagu/api/v2/health").status == 200
        assert server.get("/dagu/api/v2/health").json["status"] == "healthy"
        assert_error(server.get("/api/v2/health"), 404, "not_found")
        assert_error(server.get("/dagux/api/v2/health"), 404, "not_found")
    finally:
        assert server.stop() == 0


# ------------------------------------------------------------ the process

def base_env(home: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
    env.update(DAGU_HOME=str(home), HOME=str(home), DAGU_HOST="127.0.0.1")
    env.update(extra)
    return env


def dagu(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "dagu.py"), *args]


def wait_health(port: int, proc: subprocess.Popen, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited early"
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v2/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.05)
        finally:
            conn.close()
    raise AssertionError(f"no /health on port {port}")


def test_host_and_port_flags_beat_the_environment(tmp_path):
    home = tmp_path / "home"
    env_port, flag_port = free_port(), free_port()
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(dagu("start-all", "--host", "127.0.0.1", "--port", str(flag_port)),
                            env=base_env(home, DAGU_PORT=str(env_port), DAGU_HOST="0.0.0.0"),
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        wait_health(flag_port, proc)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", env_port), timeout=1).close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    assert f"listening on http://127.0.0.1:{flag_port}/api/v2" in (tmp_path / "server.log").read_text()


def test_second_start_all_on_the_same_home_fails_clearly(tmp_path):
    first = start_server(tmp_path / "home")
    try:
        proc = subprocess.run(dagu("start-all", "--port", str(free_port())),
                              env=base_env(first.home), capture_output=True, text=True, timeout=30)
        assert proc.returncode != 0
        assert "another scheduler" in proc.stderr and "already running" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        assert first.get("/health").status == 200
    finally:
        assert first.stop() == 0


def test_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run(dagu("start-all", "--port", str(port)), env=base_env(tmp_path / "h"),
                              capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    # the failed start released the scheduler lock: a start-all on a free port works now
    server = start_server(tmp_path / "h")
    assert server.stop() == 0


def cli_status(env: dict, name: str, run_id: str) -> dict:
    proc = subprocess.run(dagu("status", "--json", "--run-id", run_id, name), env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def wait_status(env: dict, name: str, run_id: str, labels: set[str], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    record = {}
    while time.monotonic() < deadline:
        record = cli_status(env, name, run_id)
        if record["statusLabel"] in labels:
            return record
        time.sleep(0.1)
    raise AssertionError(f"{name}/{run_id} never reached {labels}: {record.get('statusLabel')}")


def test_sigterm_exits_0_quickly_and_runs_keep_going(tmp_path):
    server = start_server(tmp_path / "home")
    write_dag(server.dags, "slow", "steps:\n  - name: nap\n    command: sleep 2\n"
                                   "  - name: after\n    command: echo done\n    depends: [nap]\n")
    env = base_env(server.home)
    run_ids = []
    try:
        proc = subprocess.run(dagu("enqueue", "--run-id", "viaqueue", "slow"), env=env,
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        run_ids.append("viaqueue")
        if has_route("POST", "/dags/{fileName}/start"):
            reply = server.post("/dags/slow/start", {"dagRunId": "viaapi"})
            assert reply.status == 200, reply.body
            run_ids.append(reply.json["dagRunId"])
        for run_id in run_ids:
            wait_status(env, "slow", run_id, {"running"}, timeout=10)
    finally:
        started = time.monotonic()
        code = server.stop()
        stopped_in = time.monotonic() - started
    assert code == 0
    assert stopped_in < 5, stopped_in
    for run_id in run_ids:
        record = wait_status(env, "slow", run_id, {"finished", "failed", "cancelled"}, timeout=15)
        assert record["statusLabel"] == "finished", record
        assert [n["statusLabel"] for n in record["nodes"]] == ["finished", "finished"]


class _StderrLike:
    """Behaves like sys.stderr's BufferedWriter: a write re-entered from a signal handler that
    interrupted a write raises RuntimeError("reentrant call"). `fire` sends SIGTERM to this
    process in the middle of the next write, as a `systemctl stop` can at any moment."""

    def __init__(self):
        self.depth = 0
        self.fire = False
        self.text = []

    def write(self, text):
        if self.depth:
            raise RuntimeError("reentrant call inside <_io.BufferedWriter name='<stderr>'>")
        self.depth += 1
        try:
            if self.fire:
                self.fire = False
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(10_000):     # the Python-level handler runs in here
                    pass
            self.text.append(text)
        finally:
            self.depth -= 1
        return len(text)

    def flush(self):
        pass


def test_sigterm_during_a_log_write_still_stops(monkeypatch):
    import logging
    import threading

    from dagu import service
    stream = _StderrLike()
    monkeypatch.setattr(sys, "stderr", stream)
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("dagu")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    stop = threading.Event()

    class Wake:
        def wake(self):
            pass
    try:
        service._stop_on_signals(stop, Wake())
        stream.fire = True
        logger.info("listening on http://127.0.0.1:8080/api/v2")
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert stop.is_set(), "SIGTERM was lost: " + "".join(stream.text)[-300:]


# ------------------------------------------------------------ authentication

def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


BEARER = {"Authorization": f"Bearer {TOKEN}"}
AUTH_BASIC = {"DAGU_AUTH_BASIC_USERNAME": USER, "DAGU_AUTH_BASIC_PASSWORD": PASSWORD}
AUTH_TOKEN = {"DAGU_AUTH_TOKEN": TOKEN}


@pytest.fixture(scope="module")
def auth_servers(tmp_path_factory):
    """name -> server: basic only, token only, both, and basic with `metrics: public`."""
    servers = {}
    configs = {"basic": (AUTH_BASIC, ""), "token": (AUTH_TOKEN, ""),
               "both": ({**AUTH_BASIC, **AUTH_TOKEN}, ""),
               "public-metrics": (AUTH_BASIC, "metrics: public\n")}
    try:
        for name, (env, config) in configs.items():
            home = tmp_path_factory.mktemp(name) / "home"
            home.mkdir(parents=True)
            if config:
                (home / "config.yaml").write_text(config)
            servers[name] = start_server(home, env_extra=env)
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def assert_unauthorized(reply, scheme: str) -> None:
    assert_error(reply, 401, "unauthorized")
    assert reply.headers["www-authenticate"].startswith(scheme + " realm="), reply.headers


@pytest.mark.parametrize("server, headers, status", [
    ("basic", {}, 401),
    ("basic", basic(USER, "wrong"), 401),
    ("basic", basic("other", PASSWORD), 401),
    ("basic", basic(USER, PASSWORD), 200),
    ("basic", BEARER, 401),
    ("basic", {"Authorization": "Basic !!!not-base64"}, 401),
    ("basic", {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}, 401),
    ("basic", {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:x").decode()}, 401),
    ("basic", {"Authorization": "Basic"}, 401),
    ("token", {}, 401),
    ("token", BEARER, 200),
    ("token", {"Authorization": "bearer " + TOKEN}, 200),
    ("token", {"Authorization": "Bearer wrong"}, 401),
    ("token", {"Authorization": f"Bearer {TOKEN}x"}, 401),
    ("token", basic(USER, PASSWORD), 401),
    ("both", {}, 401),
    ("both", BEARER, 200),
    ("both", basic(USER, PASSWORD), 200),
    ("both", basic(USER, "wrong"), 401),
    ("both", {"Authorization": "Bearer wrong"}, 401),
])
def test_credentials_on_a_protected_route(auth_servers, server, headers, status):
    reply = auth_servers[server].get("/metrics", headers=headers)
    if status == 401:
        assert_unauthorized(reply, "Bearer" if server == "token" else "Basic")
    else:
        assert reply.status == 200, reply.body
        assert reply.body.startswith(b"# HELP")


@pytest.mark.parametrize("server", ["basic", "token", "both", "public-metrics"])
def test_health_is_open_without_credentials(auth_servers, server):
    reply = auth_servers[server].get("/health")
    assert reply.status == 200 and reply.json["status"] == "healthy"


def test_metrics_public_opens_only_metrics(auth_servers):
    server = auth_servers["public-metrics"]
    reply = server.get("/metrics")
    assert reply.status == 200 and reply.body.startswith(b"# HELP")
    assert_unauthorized(server.get("/dags"), "Basic")
    assert server.get("/metrics", headers=basic(USER, PASSWORD)).status == 200


@pytest.mark.parametrize("server", ["basic", "token", "public-metrics"])
def test_every_route_is_401_without_credentials(auth_servers, server):
    srv = auth_servers[server]
    checked = 0
    for method, pattern, _, public in routes():
        if public or (server == "public-metrics" and pattern == "/metrics"):
            continue
        body = b"{}" if method in BODY_ROUTES else None
        reply = srv.request(method, srv.url(fill(pattern)), raw=body)
        assert reply.status == 401, (method, pattern, reply.status, reply.body[:200])
        assert_unauthorized(reply, "Bearer" if server == "token" else "Basic")
        checked += 1
    assert checked >= 1


def test_no_route_answers_500_with_valid_credentials_and_dummy_values(auth_servers):
    srv = auth_servers["both"]
    for method, pattern, _, _ in routes():
        body = b"{}" if method in BODY_ROUTES else None
        reply = srv.request(method, srv.url(fill(pattern)), raw=body, headers=BEARER)
        assert reply.status < 500, (method, pattern, reply.status, reply.body[:300])


# ------------------------------------------------------------ permissions

def test_permissions_forbid_write_and_run_routes(tmp_path):
    guarded = [(m, p, perm) for m, p, perm, _ in routes() if perm]
    home = tmp_path / "home"
    home.mkdir(parents=True)
    (home / "config.yaml").write_text("permissions:\n  writeDAGs: false\n  runDAGs: false\n")
    original = "steps:\n  - name: s\n    command: echo hi\n"
    write_dag(home / "dags", "dummy", original)
    server = start_server(home)
    try:
        for method, pattern, perm in guarded:
            body = b"{}" if method in BODY_ROUTES else None
            reply = server.request(method, server.url(fill(pattern)), raw=body)
            assert_error(reply, 403, "forbidden")
        # routes without a permission still answer
        assert server.get("/health").status == 200
        assert server.get("/metrics").status == 200
        # nothing was written, renamed, deleted or run
        assert sorted(p.name for p in (home / "dags").iterdir()) == ["dummy.yaml"]
        assert (home / "dags" / "dummy.yaml").read_text() == original
        with RunStore(str(home / "data" / "dagu.db")) as store:
            assert store.count_runs() == 0 and store.queue_length() == 0
    finally:
        server.stop()
    if not guarded:
        pytest.skip("no route with a permission yet (dags/runs routes not registered)")


def test_permission_names_are_the_two_config_keys():
    assert {perm for _, _, perm, _ in routes()} <= {"", "writeDAGs", "runDAGs"}


def test_sigterm_lets_an_in_flight_request_finish(tmp_path):
    """Stop accepting, but answer the request whose body is still arriving, then exit 0."""
    server = start_server(tmp_path / "home")
    try:
        body = json.dumps({"name": "late"}).encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
            sock.sendall(b"POST /api/v2/dags HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                         b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:5])
            time.sleep(0.3)                      # the request is now being read
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            sock.sendall(body[5:])
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        assert raw.startswith(b"HTTP/1.1 201"), raw[:300]
        assert server.proc.wait(timeout=15) == 0
        assert (server.dags / "late.yaml").is_file()
    finally:
        server.stop()
