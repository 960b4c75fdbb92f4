"""A fork server: starting a run without paying for a new Python interpreter.

`ForkServer.start()` forks a helper from the long-running process (server or scheduler) before
that process starts any thread or opens the database, with the engine already imported. Asked
over a socket, the helper double-forks a runner: the runner calls `setsid`, so it belongs to
neither the helper nor the service and outlives both (a restart of the service never kills a
run). A runner reports its end through the scheduler's wake socket, not as a child process.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys

_LEN = struct.Struct("!I")


def _send(sock: socket.socket, obj: object) -> None:
    data = json.dumps(obj).encode()
    sock.sendall(_LEN.pack(len(data)) + data)


def _recv(sock: socket.socket) -> object | None:
    head = _recv_exact(sock, _LEN.size)
    if head is None:
        return None
    body = _recv_exact(sock, _LEN.unpack(head)[0])
    return None if body is None else json.loads(body)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


class ForkServer:
    """The service's side: spawn(args) returns the runner's pid, or None if the helper is gone."""

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.pid = 0

    def start(self) -> None:
        """Fork the helper. Call before starting threads or opening the database."""
        parent, child = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            parent.close()
            _serve(child)
            os._exit(0)
        child.close()
        self.sock, self.pid = parent, pid

    def spawn(self, args: list[str], env: dict[str, str] | None = None,
              cwd: str | None = None) -> int | None:
        """Start `dagu <args>` as a detached runner."""
        if self.sock is None:
            return None
        try:
            _send(self.sock, {"args": args, "env": dict(env if env is not None else os.environ),
                              "cwd": cwd or os.getcwd()})
            reply = _recv(self.sock)
        except OSError:
            reply = None
        if not isinstance(reply, dict) or not reply.get("pid"):
            self.close()
            return None
        return int(reply["pid"])

    def close(self) -> None:
        """Stop the helper (runners already started keep going)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.pid:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = 0


def _serve(sock: socket.socket) -> None:
    """The helper: one request at a time; it never runs anything itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # the service decides when we stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Imported here, once, and inherited by every runner; the service itself starts faster.
    import dagu.commands  # noqa: F401
    import dagu.executors.shellstep  # noqa: F401
    import dagu.executors.subdag  # noqa: F401
    from dagu.cli import build_parser
    build_parser()   # cached: every runner parses its arguments with this one
    while True:
        try:
            request = _recv(sock)
        except OSError:
            return
        if request is None:
            return
        try:
            pid = _double_fork(sock, request)
        except OSError:
            pid = 0
        _send(sock, {"pid": pid})


def _double_fork(sock: socket.socket, request: dict) -> int:
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(r)
        try:
            os.setsid()
            runner = os.fork()
            if runner == 0:
                os.close(w)
                _become_runner(sock, request)
            os.write(w, str(runner).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = os.read(r, 32)
    os.close(r)
    os.waitpid(middle, 0)
    return int(data or b"0")


def _become_runner(sock: socket.socket, request: dict) -> None:
    """In the runner: a clean process state, then the CLI as if started from the command line."""
    code = 1
    try:
        sock.close()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL if sig != signal.SIGPIPE else signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        os.environ.clear()
        os.environ.update(request.get("env") or {})
        os.chdir(request.get("cwd") or "/")
        from dagu.cli import main
        code = main(list(request["args"]))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(code)
