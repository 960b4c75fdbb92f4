"""`executor: http` steps against a real HTTP server on 127.0.0.1."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dagu.cli import main


class _Echo(BaseHTTPRequestHandler):
    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        status = 404 if self.path.startswith("/missing") else 200
        payload = json.dumps({"method": self.command, "path": self.path, "body": body,
                              "token": self.headers.get("X-Token", "")}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def echo_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def run_dag(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGU_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DISABLE_DAG_RUN_QUEUE", "1")

    def run(text: str) -> tuple[int, dict]:
        path = tmp_path / "http.yaml"
        path.write_text(text)
        code = main(["start", "-q", str(path)])
        capsys.readouterr()
        main(["status", "--json", str(path)])
        return code, json.loads(capsys.readouterr().out)
    return run


def _node(record: dict, name: str = "call") -> dict:
    return next(n for n in record["nodes"] if n["step"]["name"] == name)


@pytest.mark.parametrize("command, config, expect_in_body", [
    ("GET {url}/hello", "silent: true", '"method": "GET"'),
    ("POST {url}/items", "silent: true\n        body: '{{\"a\": 1}}'\n        headers:\n          X-Token: t1",
     '"token": "t1"'),
    ("{url}/plain", "silent: true", '"path": "/plain"'),            # method defaults to GET
    ("GET {url}/q", "silent: true\n        query:\n          page: 2", '"path": "/q?page=2"'),
])
def test_requests_and_output(run_dag, echo_url, command, config, expect_in_body):
    code, record = run_dag(f"""
steps:
  - name: call
    command: {command.format(url=echo_url)}
    executor:
      type: http
      config:
        {config.format(url=echo_url)}
    output: RESPONSE
""")
    node = _node(record)
    assert code == 0 and node["statusLabel"] == "finished"
    value = node["outputVariables"]["RESPONSE"].split("=", 1)[1]
    assert expect_in_body in value


def test_non_2xx_fails_the_step_with_the_status(run_dag, echo_url):
    code, record = run_dag(f"""
steps:
  - name: call
    command: GET {echo_url}/missing
    executor: http
""")
    node = _node(record)
    assert code == 1 and node["statusLabel"] == "failed"
    assert "http status code not 2xx: 404" in node["error"]


def test_json_mode_and_variables(run_dag, echo_url):
    code, record = run_dag(f"""
env:
  - BASE: {echo_url}
steps:
  - name: call
    command: GET ${{BASE}}/json
    executor:
      type: http
      config:
        json: true
    output: OUT
  - name: use
    command: echo "${{OUT.status_code}} ${{OUT.body.path}}"
    output: SEEN
""")
    assert code == 0
    assert _node(record, "use")["outputVariables"]["SEEN"] == "SEEN=200 /json"


def test_unreachable_host_is_a_clear_failure(run_dag):
    code, record = run_dag("""
steps:
  - name: call
    command: GET http://127.0.0.1:9/nothing
    executor:
      type: http
      config:
        timeout: 2
""")
    node = _node(record)
    assert code == 1 and "http request failed" in node["error"]
