"""HTTP adapter: ThreadingHTTPServer + our router. Bounded bodies, threads and read timeouts;
one write per response (no Nagle/delayed-ACK stall on keep-alive); gzip when accepted; an access
log line per request; errors as Dagu's `{code, message}` body; graceful shutdown."""
from __future__ import annotations

import gzip
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from dagu.api import auth
from dagu.api.router import Router
from dagu.errors import BadRequest, DaguError, Forbidden, MethodNotAllowed, PayloadTooLarge, http_status

log = logging.getLogger("dagu.api")
access_log = logging.getLogger("dagu.access")

API_PREFIX = "/api/v2"
GZIP_MIN_BYTES = 1024
READ_TIMEOUT_SEC = 15.0
_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
            403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
            413: "Payload Too Large", 431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass
class Request:
    """What a handler sees."""

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    headers: object
    body: bytes
    app: object

    def arg(self, name: str, default: str | None = None) -> str | None:
        """A query parameter (first value)."""
        values = self.query.get(name)
        return values[0] if values else default

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        """An integer query parameter; BadRequest when it is not one."""
        value = self.arg(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise BadRequest(f"query parameter {name} must be an integer, got {value!r}") from None

    def json(self, required: bool = False) -> dict:
        """The JSON object body ({} when empty and not required)."""
        if not self.body.strip():
            if required:
                raise BadRequest("a JSON request body is required")
            return {}
        try:
            value = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"invalid JSON body: {exc}") from None
        if not isinstance(value, dict):
            raise BadRequest("the request body must be a JSON object")
        return value


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(obj: object, status: int = 200) -> Response:
    return Response(status, json.dumps(obj, separators=(",", ":")).encode())


def error_response(err: DaguError) -> Response:
    body = {"code": err.code, "message": err.message}
    details = err.details
    if details and not isinstance(err, MethodNotAllowed):
        body["details"] = details
    resp = json_response(body, http_status(err))
    if isinstance(err, MethodNotAllowed) and details:
        resp.headers["Allow"] = ", ".join(details.get("allow", []))
    if resp.status == 401:
        resp.headers["WWW-Authenticate"] = getattr(err, "challenge", 'Basic realm="dagu"')
    return resp


class DaguHTTPServer(ThreadingHTTPServer):
    """At most `max_threads` requests in flight; in-flight ones finish on shutdown."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, app, router: Router, base_path: str, max_threads: int):
        self.app = app
        self.router = router
        self.base_path = base_path
        self.slots = threading.BoundedSemaphore(max_threads)
        self.closing = False
        self.connections: set = set()
        self.conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        self.slots.acquire()   # back-pressure: accept waits while every slot is busy
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, let in-flight requests finish (up to grace), close idle connections."""
        self.closing = True
        self.shutdown()
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with self.conn_lock:
                busy = [h for h in self.connections if h.busy]
                idle = [h for h in self.connections if not h.busy]
            for handler in idle:
                handler.close_idle()
            if not busy:
                break
            time.sleep(0.02)
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT_SEC
    server_version = "dagu-py"
    busy = False

    def setup(self) -> None:
        self.timeout = self.server.app.config.read_timeout_sec   # applied by super().setup()
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.conn_lock:
            self.server.connections.add(self)

    def finish(self) -> None:
        with self.server.conn_lock:
            self.server.connections.discard(self)
        try:
            super().finish()
        except OSError:
            pass

    def close_idle(self) -> None:
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's name
        log.debug("%s - %s", self.address_string(), format % args)

    def handle_one_request(self) -> None:
        self.busy = False
        try:
            super().handle_one_request()
        except OSError:   # reset, timed out, or closed under us: this connection is done
            self.close_connection = True
        finally:
            self.busy = False

    def parse_request(self) -> bool:
        ok = super().parse_request()
        self.busy = ok
        return ok

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors found by http.server itself (bad request line, huge headers) as JSON too."""
        self.close_connection = True
        text = message or _REASONS.get(code, "error")
        resp = Response(code, json.dumps({"code": "bad_request" if code < 500 else "internal_error",
                                          "message": text}).encode())
        self._send(resp)

    def __getattr__(self, name: str):
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _dispatch(self) -> None:
        started = time.perf_counter()
        resp = self._respond()
        if self.server.closing:
            self.close_connection = True
        sent = self._send(resp)
        access_log.info('%s "%s %s" %d %d %.1fms', self.client_address[0], self.command,
                        self.path, resp.status, sent, (time.perf_counter() - started) * 1000)

    def _respond(self) -> Response:
        try:
            return self._route()
        except DaguError as err:
            return error_response(err)
        except Exception:   # a bug: full traceback in our log, no internals to the client
            log.exception("unhandled error in %s %s", self.command, self.path)
            return json_response({"code": "internal_error",
                                  "message": "an unexpected error occurred"}, 500)

    def _route(self) -> Response:
        server = self.server
        url = urlsplit(self.path)
        path = url.path
        if server.base_path:
            if not (path == server.base_path or path.startswith(server.base_path + "/")):
                raise_not_found(path)
            path = path[len(server.base_path):] or "/"
        if path.startswith(API_PREFIX):
            path = path[len(API_PREFIX):] or "/"
        elif path in ("/", "") or not path.startswith("/api/"):
            return server.app.ui(path) if hasattr(server.app, "ui") else raise_not_found(path)
        body = self._read_body()   # first: an unread body would corrupt the next request
        path = path.rstrip("/") or "/"
        if not auth.is_public(path, server.app.config):
            auth.check(self.headers, server.app.config)
        route, params = server.router.match(self.command, path)
        node = (parse_qs(url.query).get("remoteNode") or [""])[0]
        if node not in ("", "local") and path not in ("/health", "/metrics"):
            raise BadRequest(f"remote node {node} not found")   # none can be configured yet
        if route.permission and not auth.permitted(server.app.config, route.permission):
            raise Forbidden("Permission denied")
        req = Request(self.command, path, {k: unquote(v) for k, v in params.items()},
                      parse_qs(url.query, keep_blank_values=True), self.headers, body, server.app)
        result = route.handler(req)
        if isinstance(result, Response):
            return result
        if result is None:
            return Response(200, b"")
        return json_response(result)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise BadRequest("chunked request bodies are not supported; send Content-Length")
        length_text = self.headers.get("Content-Length") or "0"
        try:
            length = int(length_text)
        except ValueError:
            self.close_connection = True
            raise BadRequest("invalid Content-Length") from None
        limit = self.server.app.config.max_request_bytes
        if length < 0:
            self.close_connection = True
            raise BadRequest("invalid Content-Length")
        if length > limit:
            self.close_connection = True   # the unread body must not be parsed as a request
            raise PayloadTooLarge(f"request body of {length} bytes exceeds the limit of {limit}")
        if length == 0:
            return b""
        try:
            body = self.rfile.read(length)
        except (TimeoutError, OSError):
            self.close_connection = True
            raise BadRequest(f"the request body was not received within {self.timeout} s") from None
        if len(body) < length:
            self.close_connection = True
            raise BadRequest(f"the request body ended after {len(body)} of {length} bytes")
        return body

    def _send(self, resp: Response) -> int:
        body = resp.body
        headers = dict(resp.headers)
        request_headers = getattr(self, "headers", None) or {}
        if body and len(body) >= GZIP_MIN_BYTES and "gzip" in request_headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
            headers["Vary"] = "Accept-Encoding"
        if resp.status != 204:
            headers.setdefault("Content-Type", resp.content_type)
            headers["Content-Length"] = str(len(body))
        if self.close_connection:
            headers["Connection"] = "close"
        lines = [f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Unknown')}",
                 f"Date: {self.date_time_string()}", f"Server: {self.server_version}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        command = getattr(self, "command", None)
        payload = head if (command == "HEAD" or resp.status == 204) else head + body
        try:
            self.wfile.write(payload)   # headers and body in one write
        except OSError:
            self.close_connection = True
        return len(body)


def raise_not_found(path: str):
    from dagu.errors import NotFound
    raise NotFound(f"no such endpoint: {path}")
