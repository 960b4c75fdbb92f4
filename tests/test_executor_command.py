"""One execution of a command/script step as a real process: argv rules, exit codes, signals,
log files, `stdout:` copies, `output:` capture and bounded memory."""
from __future__ import annotations

import os
import signal
import stat
import time

import pytest

from dagu.executors.command import (OutputTooLarge, StepProcess, StepStartError, build_argv,
                                    log_offset, read_output, write_script)

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SHELL": "/bin/sh"}


def run_step(tmp_path, argv, *, cwd=None, **extra):
    """Start argv and return (process, stdout log path, stderr log path) — not yet waited."""
    proc = StepProcess()
    out, err = tmp_path / "logs" / "s.out", tmp_path / "logs" / "s.err"
    proc.start(argv, cwd=str(cwd or tmp_path), env=ENV, stdout_path=str(out),
               stderr_path=str(err), **extra)
    return proc, out, err


def sh(line):
    return ["/bin/sh", "-c", line]


def live_group_members(pgid):
    """Pids of non-zombie processes in the group (PID 1 here may never reap orphaned zombies)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry))
    return found


def wait_gone(pgid, timeout=3.0):
    deadline = time.monotonic() + timeout
    while live_group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return live_group_members(pgid)


# -- build_argv -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, expected", [
    pytest.param(dict(command="echo hi | tr a-z A-Z"), ["/bin/sh", "-c", "echo hi | tr a-z A-Z"],
                 id="string-default-shell"),
    pytest.param(dict(command="false", shell="bash -o pipefail -c"),
                 ["bash", "-o", "pipefail", "-c", "false"], id="custom-shell-with-c"),
    pytest.param(dict(command="false", shell="bash -e"), ["bash", "-e", "-c", "false"],
                 id="custom-shell-without-c"),
    pytest.param(dict(command="echo", args=("a b", "$HOME", "c"), command_is_list=True),
                 ["/bin/sh", "-c", "echo 'a b' '$HOME' c"], id="list-quoted"),
    pytest.param(dict(command="echo", args=("x y",)), ["/bin/sh", "-c", "echo 'x y'"],
                 id="string-with-extra-args"),
    pytest.param(dict(command="python3", script_path="/t/s"), ["python3", "/t/s"],
                 id="script-with-command"),
    pytest.param(dict(command="python3 -u", args=("-X", "dev"), script_path="/t/s"),
                 ["python3", "-u", "-X", "dev", "/t/s"], id="script-with-command-words"),
    pytest.param(dict(script_path="/t/s", shell="bash -o pipefail -c"),
                 ["bash", "-o", "pipefail", "/t/s"], id="script-with-shell-drops-c"),
])
def test_build_argv(kw, expected):
    base = dict(command="", args=(), command_is_list=False, script_path="", shell="",
                environ=ENV)
    assert build_argv(**{**base, **kw}) == expected


@pytest.mark.parametrize("text, shell, expected_head", [
    pytest.param("#!/bin/sh\necho hi\n", "", None, id="shebang-runs-directly"),
    pytest.param("echo hi\n", "", ["/bin/sh"], id="no-shebang-default-shell"),
    pytest.param("#!/bin/sh\necho hi\n", "bash", ["bash"], id="shebang-but-explicit-shell"),
])
def test_build_argv_script_file(tmp_path, text, shell, expected_head):
    path = write_script(str(tmp_path), text)
    os.chmod(path, 0o600)
    argv = build_argv(command="", args=(), command_is_list=False, script_path=path,
                      shell=shell, environ=ENV)
    if expected_head is None:
        assert argv == [path]
        assert os.stat(path).st_mode & 0o777 == 0o750
    else:
        assert argv == [*expected_head, path]


def test_build_argv_without_command_or_script_is_an_error():
    with pytest.raises(StepStartError):
        build_argv(command="", args=(), command_is_list=False, script_path="", shell="",
                   environ=ENV)


def test_write_script_mode_name_and_fallback(tmp_path):
    path = write_script(str(tmp_path), "echo héllo\n")
    assert os.path.basename(path).startswith("dagu_script-")
    assert os.path.dirname(path) == str(tmp_path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o750
    with open(path, encoding="utf-8") as f:
        assert f.read() == "echo héllo\n"
    fallback = write_script(str(tmp_path / "missing"), "x")
    try:
        assert os.path.exists(fallback) and not fallback.startswith(str(tmp_path))
    finally:
        os.unlink(fallback)


# -- running ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("line, code", [("true", 0), ("exit 1", 1), ("exit 42", 42)])
def test_exit_codes(tmp_path, line, code):
    proc, _, _ = run_step(tmp_path, sh(line))
    assert proc.wait() == code
    assert proc.signaled is None


def test_signaled_process_reports_128_plus_signal(tmp_path):
    proc, _, _ = run_step(tmp_path, sh("kill -TERM $$"))
    assert proc.wait() == 128 + 15
    assert proc.signaled == 15


def test_streams_land_in_log_files_appended(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "s.out").write_bytes(b"before\n")
    proc, out, err = run_step(tmp_path, sh("echo to-out; echo to-err >&2; pwd; read x || echo eof"))
    assert proc.wait() == 0
    assert out.read_text() == f"before\nto-out\n{tmp_path}\neof\n"
    assert err.read_text() == "to-err\n"


def test_script_runs_through_write_script_and_build_argv(tmp_path):
    path = write_script(str(tmp_path), "#!/bin/sh\necho \"args: $*\"\n")
    argv = build_argv(command="", args=(), command_is_list=False, script_path=path, shell="",
                      environ=ENV)
    proc, out, _ = run_step(tmp_path, argv)
    assert proc.wait() == 0
    assert out.read_text() == "args: \n"


@pytest.mark.parametrize("extra_out, extra_err", [
    pytest.param("rel/copy.out", "", id="relative-stdout-resolved-against-cwd"),
    pytest.param("", "copy.err", id="stderr"),
    pytest.param("both.out", "both.err", id="both"),
])
def test_extra_files_receive_the_same_bytes(tmp_path, extra_out, extra_err):
    work = tmp_path / "work"
    (work / "rel").mkdir(parents=True)
    script = ("printf 'o1\\n'; printf 'e1\\n' >&2; "
              "head -c 300000 /dev/urandom | od -An | head -c 200000; printf 'o2\\n'")
    proc, out, err = run_step(tmp_path, sh(script), cwd=work,
                              extra_stdout=extra_out, extra_stderr=extra_err)
    assert proc.wait() == 0
    assert out.stat().st_size > 200000
    if extra_out:
        assert (work / extra_out).read_bytes() == out.read_bytes()
    if extra_err:
        assert (work / extra_err).read_bytes() == err.read_bytes() == b"e1\n"


def test_extra_file_is_appended(tmp_path):
    (tmp_path / "copy.out").write_text("old\n")
    proc, out, _ = run_step(tmp_path, sh("echo new"), extra_stdout="copy.out")
    assert proc.wait() == 0
    assert (tmp_path / "copy.out").read_text() == "old\nnew\n"
    assert out.read_text() == "new\n"


def test_sigterm_stops_a_sleeping_step_quickly(tmp_path):
    proc, _, _ = run_step(tmp_path, sh("sleep 100"))
    time.sleep(0.1)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait()
    assert time.monotonic() - t0 < 2
    assert code == 128 + signal.SIGTERM and proc.signaled == signal.SIGTERM


@pytest.mark.parametrize("final", ["SIGINT", "kill"])
def test_step_trapping_term_survives_it_but_not_int_or_kill(tmp_path, final):
    proc, out, _ = run_step(tmp_path, sh("trap '' TERM; echo ready; sleep 100"))
    deadline = time.monotonic() + 5
    while b"ready" not in out.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert live_group_members(proc.pid), "step should have ignored SIGTERM"
    if final == "kill":
        proc.kill()
    else:
        proc.send_signal(signal.SIGINT)
    assert proc.wait() > 128
    assert proc.signaled in (signal.SIGINT, signal.SIGKILL)
    assert wait_gone(proc.pid) == []


@pytest.mark.parametrize("extra", ["", "copy.out"])
def test_kill_leaves_no_process_in_the_group(tmp_path, extra):
    proc, out, _ = run_step(tmp_path, sh("sleep 100 & echo $!; sleep 100"), extra_stdout=extra)
    deadline = time.monotonic() + 5
    while not out.read_bytes().strip() and time.monotonic() < deadline:
        time.sleep(0.01)
    grandchild = int(out.read_text())
    assert os.getpgid(grandchild) == proc.pid
    t0 = time.monotonic()
    proc.kill()
    assert proc.wait() == 128 + signal.SIGKILL
    assert time.monotonic() - t0 < 2
    assert wait_gone(proc.pid) == []
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        pass  # group fully gone (a reaping init); otherwise only zombies are left, checked above
    proc.send_signal(signal.SIGTERM)  # after reaping: a no-op, never a reused pid


def test_background_child_holding_the_pipe_does_not_block_wait(tmp_path, monkeypatch):
    from dagu.executors import command
    monkeypatch.setattr(command, "DRAIN_GRACE_SEC", 0.2)
    proc, out, _ = run_step(tmp_path, sh("sleep 100 & echo started"), extra_stdout="copy.out")
    t0 = time.monotonic()
    assert proc.wait() == 0
    assert time.monotonic() - t0 < 2
    assert (tmp_path / "copy.out").read_text() == "started\n"
    os.killpg(proc.pid, signal.SIGKILL)  # the test's own cleanup of the leftover sleep


@pytest.mark.parametrize("argv, cwd, message", [
    pytest.param(["true"], "/nope/missing", "directory does not exist: /nope/missing",
                 id="missing-dir"),
    pytest.param(["/no/such/binary"], None, "command not found: /no/such/binary",
                 id="missing-binary"),
])
def test_start_errors(tmp_path, argv, cwd, message):
    proc = StepProcess()
    with pytest.raises(StepStartError, match=message):
        proc.start(argv, cwd=cwd or str(tmp_path), env=ENV, stdout_path=str(tmp_path / "o"),
                   stderr_path=str(tmp_path / "e"))


# -- output capture --------------------------------------------------------------------------------

def test_read_output_after_offset_trimmed(tmp_path):
    log = tmp_path / "s.out"
    assert log_offset(str(log)) == 0
    assert read_output(str(log), 0) == ""
    log.write_text("previous attempt\n")
    offset = log_offset(str(log))
    assert offset == len("previous attempt\n")
    proc, out, _ = run_step(tmp_path, sh("printf '  \\n  hello wörld \\n\\n'"))
    assert proc.wait() == 0
    assert read_output(str(out), 0) == "hello wörld"
    with open(log, "ab") as f:
        f.write(b"  value \xff\n")
    assert read_output(str(log), offset) == "value \ufffd"


def test_read_output_limit(tmp_path):
    log = tmp_path / "big.out"
    log.write_bytes(b"x" * (1 << 20))
    assert len(read_output(str(log), 0)) == 1 << 20
    with open(log, "ab") as f:
        f.write(b"x" * (1 << 20))
    message = "^output exceeded maximum size limit of 1048576 bytes$"
    with pytest.raises(OutputTooLarge, match=message):
        read_output(str(log), 0)
    assert len(read_output(str(log), 1 << 20)) == 1 << 20


def vm_rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_huge_stdout_through_extra_file_keeps_memory_bounded(tmp_path):
    before = vm_rss_kib()
    proc, out, _ = run_step(tmp_path, sh("head -c 200000000 /dev/zero"), extra_stdout="copy.out")
    assert proc.wait() == 0
    growth_mb = (vm_rss_kib() - before) / 1024
    assert out.stat().st_size == (tmp_path / "copy.out").stat().st_size == 200_000_000
    assert growth_mb < 30
    with pytest.raises(OutputTooLarge):
        read_output(str(out), 0)
    assert vm_rss_kib() - before < 30 * 1024
