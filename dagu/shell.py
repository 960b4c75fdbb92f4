"""The user's shell: which one runs commands, and backtick substitution through it."""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping

from dagu.expand import ExpandError

SUBSTITUTION_TIMEOUT_SEC = 60


def default_shell(environ: Mapping[str, str]) -> str:
    """$SHELL if set, else `sh` from PATH, else /bin/sh (Dagu's choice)."""
    return environ.get("SHELL") or shutil.which("sh", path=environ.get("PATH")) or "/bin/sh"


def command_runner(environ: Mapping[str, str], cwd: str | None = None):
    """A runner for expand's backtick stage: `cmd` -> its trimmed stdout, in environ."""

    def run(command: str) -> str:
        shell = default_shell(environ)
        try:
            proc = subprocess.run([shell, "-c", command], env=dict(environ), cwd=cwd or None,
                                  stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=SUBSTITUTION_TIMEOUT_SEC)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ExpandError(f"command `{command}` failed: {exc}") from None
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            detail = f": {err[-1]}" if err else ""
            raise ExpandError(f"command `{command}` exited with {proc.returncode}{detail}")
        return proc.stdout.decode("utf-8", "replace").strip()

    return run
