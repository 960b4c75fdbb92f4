"""One execution of a shell/script step as a real OS process, logging straight to files.

The child runs in its own session (so its process group id is its pid) with stdin on /dev/null
and its stdout/stderr opened directly on the step's log files: the runner copies nothing, and its
memory does not depend on how much a step prints. Only when a step also names `stdout:`/`stderr:`
files does that stream go through a pipe, copied in 64 KiB chunks by one thread into both files.
"""
from __future__ import annotations

import os
import select
import shlex
import signal
import subprocess
import tempfile
import threading
from collections.abc import Mapping

from dagu.shell import default_shell

CHUNK = 64 * 1024
MAX_OUTPUT_BYTES = 1 << 20
DRAIN_GRACE_SEC = 2.0  # how long wait() keeps copying a pipe after the step's main process exits
SCRIPT_PREFIX = "dagu_script-"


class StepStartError(OSError):
    """The step's process could not be started (missing directory, program, shell...)."""


class OutputTooLarge(ValueError):
    """A step wrote more than the `output:` limit to stdout."""


# -- argv -----------------------------------------------------------------------------------------

def build_argv(*, command: str, args: tuple[str, ...], command_is_list: bool, script_path: str,
               shell: str, environ: Mapping[str, str]) -> list[str]:
    """The argv for one step execution, by Dagu's rules.

    Shell words are `shlex.split(shell or default_shell(environ))`.

    - String command (no script): `[*shell words, "-c", command]`; `-c` is not added when the
      shell string already has a `-c` word (`shell: bash -o pipefail -c`). Pass the whole line as
      written (Step.cmd_with_args) with `args=()`: any `args` are appended shell-quoted.
    - List command (`command_is_list`, command = program, args = the rest): the words are
      `shlex.quote`d, joined into one line and run through the shell exactly as a string command.
    - Script (`script_path` set; the caller has written the file):
      - with a command: `[*command words, *args, script_path]` (`command: python` -> `python
        <file>`); the command replaces the shell;
      - without a command, without an explicit shell, and the file starts with `#!`: the file is
        made executable (0o750) and run directly: `[script_path, *args]`;
      - otherwise `[*shell words without "-c", *args, script_path]` (`bash -o pipefail <file>`).
    """
    if script_path:
        if command:
            words = [command] if command_is_list else _split(command, "command")
            return [*words, *args, script_path]
        if not shell and _has_shebang(script_path):
            os.chmod(script_path, 0o750)
            return [script_path, *args]
        words = [w for w in _shell_words(shell, environ) if w != "-c"]
        return [*words, *args, script_path]
    if not command:
        raise StepStartError("step has no command or script to run")
    if command_is_list:
        line = " ".join(shlex.quote(w) for w in (command, *args))
    else:
        line = " ".join([command, *(shlex.quote(a) for a in args)])
    words = _shell_words(shell, environ)
    if "-c" not in words:
        words.append("-c")
    return [*words, line]


def _split(text: str, what: str) -> list[str]:
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise StepStartError(f"invalid {what} {text!r}: {exc}") from None
    if not words:
        raise StepStartError(f"empty {what}")
    return words


def _shell_words(shell: str, environ: Mapping[str, str]) -> list[str]:
    return _split(shell or default_shell(environ), "shell")


def _has_shebang(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError as exc:
        raise StepStartError(f"cannot read script {path}: {exc.strerror}") from None


def write_script(directory: str, text: str) -> str:
    """Write `text` to a new 0o750 `dagu_script-*` file in directory (else the temp dir)."""
    for where in (directory, tempfile.gettempdir()):
        if not where:
            continue
        try:
            fd, path = tempfile.mkstemp(prefix=SCRIPT_PREFIX, dir=where)
        except OSError:
            continue
        try:
            os.fchmod(fd, 0o750)
            data = text.encode("utf-8")
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError as exc:
            os.close(fd)
            os.unlink(path)
            raise StepStartError(f"cannot write script file {path}: {exc.strerror}") from None
        os.close(fd)
        return path
    raise StepStartError(f"cannot create a script file in {directory or 'the temp directory'}")


# -- output and log offsets -----------------------------------------------------------------------

def log_offset(path: str) -> int:
    """The current size of a file (0 if it does not exist)."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def read_output(path: str, offset: int, limit: int = MAX_OUTPUT_BYTES) -> str:
    """The trimmed text written to path after offset; OutputTooLarge past limit bytes."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(limit + 1)
    except FileNotFoundError:
        return ""
    if len(data) > limit:
        raise OutputTooLarge(f"output exceeded maximum size limit of {limit} bytes")
    return data.decode("utf-8", "replace").strip()


# -- the process ----------------------------------------------------------------------------------

class StepProcess:
    """One running step process (its own process group) and the files it writes."""

    def __init__(self) -> None:
        self.pid: int = 0
        self.exit_code: int | None = None
        self.signaled: int | None = None
        self.copy_errors: list[str] = []
        self._popen: subprocess.Popen | None = None
        self._lock = threading.Lock()      # guards _reaped against a signal to a reused pid
        self._reaped = False
        self._kill_requested = False
        self._copiers: list[threading.Thread] = []
        self._files: list[object] = []     # files this process must close in wait()
        self._wake_r = self._wake_w = -1   # tells copiers to stop after the drain grace

    def start(self, argv: list[str], *, cwd: str, env: Mapping[str, str], stdout_path: str,
              stderr_path: str, extra_stdout: str = "", extra_stderr: str = "") -> None:
        """Spawn argv in cwd with env; stdout/stderr appended to the log (and extra) files."""
        if self._popen is not None:
            raise RuntimeError("StepProcess already started")
        if not argv:
            raise StepStartError("nothing to run")
        if cwd and not os.path.isdir(cwd):
            raise StepStartError(f"directory does not exist: {cwd}")
        opened: list = []
        try:
            out_target, out_copy = self._stream(stdout_path, extra_stdout, cwd, opened)
            err_target, err_copy = self._stream(stderr_path, extra_stderr, cwd, opened)
            try:
                self._popen = subprocess.Popen(
                    argv, cwd=cwd or None, env=dict(env), stdin=subprocess.DEVNULL,
                    stdout=out_target, stderr=err_target, close_fds=True,
                    start_new_session=True)
            except FileNotFoundError as exc:
                missing = exc.filename or argv[0]
                raise StepStartError(f"command not found: {missing}") from None
            except PermissionError:
                raise StepStartError(f"permission denied: {argv[0]}") from None
            except OSError as exc:
                raise StepStartError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        except BaseException:
            for f in opened:
                f.close()
            raise
        self.pid = self._popen.pid
        # The child holds its own copies of the log descriptors; keep only what copiers need.
        keep = [f for pair in (out_copy, err_copy) if pair for f in pair]
        for f in opened:
            if f not in keep:
                f.close()
        self._files = keep
        pipes = [(self._popen.stdout, out_copy), (self._popen.stderr, err_copy)]
        if out_copy or err_copy:
            self._wake_r, self._wake_w = os.pipe()
        for pipe, targets in pipes:
            if targets:
                t = threading.Thread(target=self._copy, args=(pipe, targets), daemon=True,
                                     name=f"step-{self.pid}-copy")
                t.start()
                self._copiers.append(t)

    @staticmethod
    def _stream(log_path: str, extra: str, cwd: str, opened: list):
        """(what the child's stream is set to, the files a copier writes or None)."""
        log = _open_append(log_path, "log file", make_parent=True)
        opened.append(log)
        if not extra:
            return log, None
        extra_file = _open_append(os.path.join(cwd or os.getcwd(), extra), "output file",
                                  make_parent=False)
        opened.append(extra_file)
        return subprocess.PIPE, (log, extra_file)

    def _copy(self, pipe, targets) -> None:
        """Copy a pipe into every target file in CHUNK reads until EOF or told to stop."""
        src = pipe.fileno()
        poller = select.poll()
        poller.register(src, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        live = list(targets)
        try:
            while True:
                ready = {fd for fd, _ in poller.poll()}
                if self._wake_r in ready:
                    return                          # the drain grace is over
                data = os.read(src, CHUNK)
                if not data:
                    return
                for f in list(live):
                    try:
                        _write_all(f.fileno(), data)
                    except OSError as exc:           # keep draining so the step never blocks
                        self.copy_errors.append(f"{f.name}: {exc.strerror or exc}")
                        live.remove(f)
        finally:
            pipe.close()

    def wait(self) -> int:
        """Wait for the step; its exit code (128+N when killed by signal N)."""
        if self._popen is None:
            raise RuntimeError("StepProcess not started")
        if self.exit_code is not None:
            return self.exit_code
        pid = self.pid
        try:
            # Wait for the exit *without* reaping: until we reap under the lock, the pid (and so
            # the process group id) cannot be reused, which makes send_signal() race-free.
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            pass
        with self._lock:
            if self._kill_requested:
                # Grandchildren may outlive the leader; the zombie leader still pins the pgid.
                _killpg(pid, signal.SIGKILL)
            code = self._popen.wait()
            self._reaped = True
        self._finish_copiers()
        if code < 0:
            self.signaled = -code
            code = 128 - code
        self.exit_code = code
        return code

    def _finish_copiers(self) -> None:
        """Join copier threads (a grace for background children holding the pipe), close files."""
        for t in self._copiers:
            t.join(DRAIN_GRACE_SEC)
        if any(t.is_alive() for t in self._copiers):
            os.write(self._wake_w, b"x")
            for t in self._copiers:
                t.join()
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1
        for f in self._files:
            f.close()
        self._files = []

    def send_signal(self, sig: int) -> None:
        """Send sig to the step's whole process group (no-op once the step has been reaped)."""
        with self._lock:
            if self._popen is None or self._reaped:
                return
            _killpg(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL the step's process group, and again any leftovers when the leader exits."""
        with self._lock:
            self._kill_requested = True
        self.send_signal(signal.SIGKILL)


def _open_append(path: str, what: str, *, make_parent: bool):
    try:
        parent = os.path.dirname(path)
        if parent and make_parent:
            os.makedirs(parent, exist_ok=True)
        return open(path, "ab", buffering=0)
    except OSError as exc:
        raise StepStartError(f"cannot open {what} {path}: {exc.strerror or exc}") from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
