"""Log file locations, and bounded reads (head/tail/offset) that never load a whole file."""
from __future__ import annotations

import os
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def safe_name(name: str) -> str:
    """A file-system-safe version of a DAG or step name (Dagu's rule), at most 100 chars."""
    return _UNSAFE.sub("_", name)[:100] or "_"


def run_log_dir(log_root: str, dag_name: str, run_id: str) -> str:
    """LOGS/<dag>/<run_id>: the run's own log and its step logs."""
    return os.path.join(log_root, safe_name(dag_name), safe_name(run_id))


def run_log_path(run_dir: str) -> str:
    """The runner's log for the run (all attempts append to it)."""
    return os.path.join(run_dir, "run.log")


def step_log_paths(run_dir: str, step_name: str, attempt: int) -> tuple[str, str]:
    """(stdout, stderr) files of a step; a retry attempt gets its own directory."""
    base = run_dir if attempt <= 1 else os.path.join(run_dir, f"attempt-{attempt}")
    stem = os.path.join(base, safe_name(step_name))
    return stem + ".out", stem + ".err"
