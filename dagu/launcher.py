"""Run processes: the lock that proves a runner is alive, spawning detached runners, stopping them.

A live runner holds an exclusive flock on its lock file for its whole life. Anyone can test
liveness by trying to take the lock; a record that says "running" while its lock is free is an
orphan (the runner died: kill -9, OOM, reboot) and is marked failed when next read.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping

from dagu.logs import safe_name
from dagu.status import RunStatus

ORPHAN_ERROR = "runner process exited unexpectedly"


def lock_path(data_dir: str, dag_name: str, run_id: str) -> str:
    """The lock file of one run."""
    digest = hashlib.sha1(f"{dag_name}\0{run_id}".encode()).hexdigest()[:12]
    return os.path.join(data_dir, "locks", f"{safe_name(dag_name)[:40]}-{digest}.lock")


class RunLock:
    """An exclusive flock held by the runner of a run."""

    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another process holds it."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        """Give the lock up (closing the fd releases it)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def runner_alive(path: str) -> bool:
    """True when some process holds the run's lock."""
    if not path or not os.path.exists(path):
        return False
    probe = RunLock(path)
    if probe.acquire():
        probe.release()
        return False
    return True


def reconcile(store, record: dict | None, now_text: str) -> dict | None:
    """Mark a running record whose runner is gone as failed (compare-and-set against the runner)."""
    if record is None or record.get("status") != RunStatus.RUNNING:
        return record
    if runner_alive(record.get("lockPath", "")):
        return record
    fixed = dict(record, status=int(RunStatus.FAILED), statusLabel=RunStatus.FAILED.label,
                 finishedAt=record.get("finishedAt") or now_text, error=ORPHAN_ERROR)
    fixed["nodes"] = [_fail_running_node(n, now_text) for n in record.get("nodes", [])]
    if store.update_run_if(fixed, int(RunStatus.RUNNING)):
        return fixed
    return store.get_run(record["name"], record["dagRunId"])


def reconcile_record(store, record: dict | None, clock=None) -> dict | None:
    """A record as it really is: a running run whose runner died reads (and is saved) as failed."""
    from dagu.clock import Clock
    from dagu.runrecord import rfc3339
    return reconcile(store, record, rfc3339((clock or Clock()).now()))


def _fail_running_node(node: dict, now_text: str) -> dict:
    if node.get("status") != 1:
        return node
    kill_orphan_step(int(node.get("pid") or 0), int(node.get("pidStart") or 0))
    fixed = dict(node, status=2, statusLabel="failed", finishedAt=now_text, error=ORPHAN_ERROR)
    fixed.pop("pid", None)
    fixed.pop("pidStart", None)
    return fixed


def process_start_ticks(pid: int) -> int:
    """When a process started (field 22 of /proc/PID/stat); 0 when unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
        return int(data[data.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return 0


def kill_orphan_step(pid: int, started: int) -> None:
    """SIGKILL the process group of a dead runner's step, if that pid is still the same process."""
    if pid <= 0 or not started or process_start_ticks(pid) != started:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def stop_runner(record: dict, sig: int = signal.SIGTERM) -> bool:
    """Signal the run's runner; only while it still holds the lock, so a reused pid is never hit."""
    pid = int(record.get("pid") or 0)
    if pid <= 0 or not runner_alive(record.get("lockPath", "")):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def dagu_command() -> list[str]:
    """How to run this program again: the zipapp we were started from, or this package's checkout."""
    entry = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if entry.endswith(".pyz") and os.path.isfile(entry):
        return [sys.executable, "-I", "-S", entry]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root.endswith(".pyz"):
        return [sys.executable, "-I", "-S", root]
    code = f"import sys; sys.path.insert(0, {root!r}); from dagu.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code]


def spawn(args: list[str], env: Mapping[str, str] | None = None, cwd: str | None = None,
          detached: bool = True) -> subprocess.Popen:
    """Start `dagu <args>`; detached runners get their own session so they outlive the caller."""
    return subprocess.Popen(dagu_command() + args, env=dict(env) if env is not None else None,
                            cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL if detached else None,
                            stderr=subprocess.DEVNULL if detached else None,
                            start_new_session=detached, close_fds=True)


# -- waking the scheduler ---------------------------------------------------------------------
# Runs and enqueues send one datagram to the scheduler's socket, so a freed slot or a new queued
# run is noticed at once; the scheduler still re-checks on a slow timer in case one is lost.

def notify_path(data_dir: str) -> str:
    """The scheduler's wake-up socket."""
    return os.path.join(data_dir, "scheduler.sock")


def notify_scheduler(data_dir: str) -> None:
    """Wake the scheduler (best effort: no scheduler, no harm)."""
    path = notify_path(data_dir)
    if not os.path.exists(path):
        return
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.sendto(b"!", path)
    except OSError:
        pass
    finally:
        sock.close()


class WakeSocket:
    """The scheduler's end: wait() returns when notified or after the timeout."""

    def __init__(self, data_dir: str):
        self.path = notify_path(data_dir)
        os.makedirs(data_dir, exist_ok=True)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self._r, self._w = os.pipe()   # for in-process wake-ups (thread -> loop)

    def wake(self) -> None:
        """Wake the waiting loop from another thread of this process."""
        try:
            os.write(self._w, b"!")
        except OSError:
            pass

    def wait(self, timeout: float) -> bool:
        """Block until a notification (True) or the timeout (False); drains what is pending."""
        ready, _, _ = select.select([self.sock, self._r], [], [], max(0.0, timeout))
        for source in ready:
            try:
                if source is self.sock:
                    while True:
                        self.sock.recv(64)
                else:
                    os.read(self._r, 4096)
            except (BlockingIOError, OSError):
                pass
        return bool(ready)

    def close(self) -> None:
        self.sock.close()
        for fd in (self._r, self._w):
            os.close(fd)
        try:
            os.unlink(self.path)
        except OSError:
            pass
