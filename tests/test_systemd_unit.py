"""contrib/dagu.service: the settings an air-gapped install relies on, and systemd's own check."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "contrib" / "dagu.service"


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections -> (key, value) pairs in order (keys may repeat), with `\\` line continuations."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    lines = iter(text.splitlines())
    for line in lines:
        line = line.strip()
        while line.endswith("\\"):
            line = line[:-1] + " " + next(lines, "").strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            assert current not in sections, f"section [{current}] appears twice"
            sections[current] = []
            continue
        assert current is not None, f"setting outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line}"
        sections[current].append((key.strip(), value.strip()))
    return sections


UNIT_SECTIONS = parse_unit(UNIT.read_text())


def values(section: str, key: str) -> list[str]:
    return [v for k, v in UNIT_SECTIONS.get(section, []) if k == key]


def one(section: str, key: str) -> str:
    found = values(section, key)
    assert len(found) == 1, f"[{section}] {key}= set {len(found)} times: {found}"
    return found[0]


def environment() -> dict[str, str]:
    env: dict[str, str] = {}
    for value in values("Service", "Environment"):
        for item in shlex.split(value):
            name, _, setting = item.partition("=")
            env[name] = setting
    return env


def test_sections():
    assert list(UNIT_SECTIONS) == ["Unit", "Service", "Install"]


@pytest.mark.parametrize("section, key, expected", [
    ("Service", "ExecStart", "/usr/bin/python3 /opt/dagu/dagu.pyz start-all"),
    # runs are detached processes; a restart of the service must not kill them
    ("Service", "KillMode", "process"),
    ("Service", "Restart", "on-failure"),
    ("Service", "User", "dagu"),
    ("Install", "WantedBy", "multi-user.target"),
])
def test_key_settings(section, key, expected):
    assert one(section, key) == expected


def test_environment_points_at_the_state_directory_and_localhost():
    env = environment()
    assert env["DAGU_HOME"] == "/var/lib/dagu"
    assert env["DAGU_HOST"] == "127.0.0.1"
    assert env["DAGU_PORT"] == "8080"
    # systemd creates DAGU_HOME for the service user
    assert one("Service", "StateDirectory") == "dagu"


def test_stop_timeout_covers_the_servers_grace_period():
    # the server waits up to 10 s for in-flight requests and 10 s for the scheduler thread
    timeout = one("Service", "TimeoutStopSec")
    assert re.fullmatch(r"\d+s?", timeout), timeout
    assert 20 <= int(timeout.rstrip("s")) <= 120


@pytest.mark.parametrize("key, forbidden", [
    # steps are arbitrary user commands: they must be able to write where the user may
    ("ProtectSystem", {"strict", "full"}),
    ("ProtectHome", {"yes", "true", "read-only", "tmpfs"}),
    # runs outlive a restart; a private /tmp would differ between the old and new instance
    ("PrivateTmp", {"yes", "true"}),
    ("DynamicUser", {"yes", "true"}),
    ("MemoryDenyWriteExecute", {"yes", "true"}),
])
def test_hardening_does_not_break_user_steps(key, forbidden):
    assert not set(values("Service", key)) & forbidden


# What `systemd-analyze verify` may say on a build machine that is not the target host.
BENIGN = [
    re.compile(r"is not executable|No such file or directory"),   # no /usr/bin/python3 here
    re.compile(r"dagu\.pyz"),
    re.compile(r"[Uu]ser|[Gg]roup"),                              # no `dagu` user here
    re.compile(r"KillMode=process"),                              # newer systemd's advice
    re.compile(r"Failed to (connect|create|open).*(bus|manager)", re.I),
]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed on this machine")
def test_systemd_analyze_verify_finds_nothing_wrong(tmp_path):
    unit = tmp_path / "dagu.service"
    shutil.copy(UNIT, unit)
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    problems = [line for line in lines if not any(p.search(line) for p in BENIGN)]
    # verify exits 0 even for unknown keys ("Unknown key ..., ignoring"): read what it prints
    assert not problems, "\n".join(lines)
    assert proc.returncode == 0 or lines, f"verify failed silently (exit {proc.returncode})"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed on this machine")
def test_systemd_analyze_verify_would_catch_a_typo(tmp_path):
    # the verify test above means something only if verify reports mistakes this way
    unit = tmp_path / "dagu.service"
    unit.write_text(UNIT.read_text().replace("KillMode=process", "KillMode=proces"))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert "proces" in proc.stdout + proc.stderr
