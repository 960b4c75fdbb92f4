"""Log file locations, and bounded reads (head/tail/offset) that never load a whole file."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass

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
    safe = safe_name(step_name)
    if safe != step_name:   # "a b" and "a_b" must not share a file
        safe = f"{safe[:90]}-{hashlib.sha1(step_name.encode()).hexdigest()[:8]}"
    stem = os.path.join(base, safe)
    return stem + ".out", stem + ".err"


# -- bounded reads (Dagu's logutil: tail / head / offset+limit) ----------------------------------

DEFAULT_LIMIT = 1000               # lines when neither tail, head nor limit is given
EXACT_COUNT_BELOW = 10 * 1024      # smaller files get an exact line count; bigger ones an estimate
SAMPLE_BYTES = 1 << 20             # estimate from the first MiB (and one at mid-file when > 2 MiB)
MAX_LINE_BYTES = 64 * 1024         # a longer line is cut (Go's bufio.Scanner would fail on it)
MAX_CONTENT_BYTES = 32 << 20       # one answer never holds more than this
_BLOCK = 64 * 1024


@dataclass(frozen=True)
class LogPage:
    """Some lines of a log file, and what is known about the rest."""

    lines: list[str]
    total_lines: int
    has_more: bool
    is_estimate: bool

    def to_api(self) -> dict:
        """The API's Log object (every field present, zero values included)."""
        return {"content": "\n".join(self.lines), "lineCount": len(self.lines),
                "totalLines": self.total_lines, "hasMore": self.has_more,
                "isEstimate": self.is_estimate}


def read_log(path: str, *, tail: int = 0, head: int = 0, offset: int = 0,
             limit: int = 0) -> LogPage:
    """Dagu's precedence: tail > head > offset (1-based, `limit` lines, default 1000) > the first
    `limit` lines. Reads only what it returns (plus a line-count sample); OSError when the file
    cannot be opened (FileNotFoundError when it does not exist)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return LogPage([], 0, False, False)
        total, estimate = _count_lines(fh, size)
        if tail > 0:
            raw, more = _last_lines(fh, size, tail)
            known = len(raw) + (1 if more else 0)
        else:
            skip = offset - 1 if head <= 0 and offset > 0 else 0
            count = head if head > 0 else (limit if limit > 0 else DEFAULT_LIMIT)
            fh.seek(0)
            skipped = _skip_lines(fh, skip)
            raw, more = _first_lines(fh, count)
            known = skipped + len(raw) + (1 if more else 0)
    lines = [_text(line) for line in raw]
    # an estimate is never below what was actually seen
    return LogPage(lines, max(total, known) if estimate else total, more, estimate)


def _text(line: bytes) -> str:
    if line.endswith(b"\r"):
        line = line[:-1]
    return line[:MAX_LINE_BYTES].decode("utf-8", errors="replace")


def _count_lines(fh, size: int) -> tuple[int, bool]:
    """(lines, is_estimate): exact for small files, else from the average line length of samples."""
    if size < EXACT_COUNT_BELOW:
        fh.seek(0)
        data = fh.read(size)
        return data.count(b"\n") + (0 if data.endswith(b"\n") else 1), False
    fh.seek(0)
    sample = fh.read(SAMPLE_BYTES)
    sampled, newlines = len(sample), sample.count(b"\n")
    if size > 2 * SAMPLE_BYTES:
        fh.seek(size // 2)
        middle = fh.read(SAMPLE_BYTES)
        sampled, newlines = sampled + len(middle), newlines + middle.count(b"\n")
    average = sampled / max(newlines, 1)
    return max(1, int(size / average * 1.05)), True


def _skip_lines(fh, count: int) -> int:
    """Move past `count` lines without keeping them; how many there were."""
    skipped = 0
    while skipped < count:
        start = fh.tell()
        block = fh.read(_BLOCK)
        if not block:
            return skipped
        found = block.count(b"\n")
        if skipped + found < count:
            skipped += found
            continue
        index = -1
        for _ in range(count - skipped):
            index = block.index(b"\n", index + 1)
        fh.seek(start + index + 1)
        return count
    return skipped


def _first_lines(fh, count: int) -> tuple[list[bytes], bool]:
    """Up to `count` lines from the current position, and whether more follow."""
    lines: list[bytes] = []
    budget = MAX_CONTENT_BYTES
    while len(lines) < count and budget > 0:
        line = _next_line(fh)
        if line is None:
            return lines, False
        lines.append(line)
        budget -= len(line) + 1
    return lines, fh.read(1) != b""


def _next_line(fh) -> bytes | None:
    """The next line without its newline (cut at MAX_LINE_BYTES), or None at the end."""
    line = fh.readline(MAX_LINE_BYTES + 1)
    if not line:
        return None
    if line.endswith(b"\n"):
        return line[:-1]
    if len(line) > MAX_LINE_BYTES:      # too long: drop the rest of it
        while True:
            rest = fh.readline(_BLOCK)
            if not rest or rest.endswith(b"\n"):
                break
    return line[:MAX_LINE_BYTES]


def _last_lines(fh, size: int, count: int) -> tuple[list[bytes], bool]:
    """The last `count` lines, read backwards in blocks, and whether earlier lines exist."""
    end = size
    fh.seek(size - 1)
    if fh.read(1) == b"\n":
        end -= 1                         # the final newline ends the last line
    pos, blocks, newlines, held = end, [], 0, 0
    # `count` complete lines need `count` newlines before them (or the start of the file)
    while pos > 0 and newlines < count and held < MAX_CONTENT_BYTES:
        step = min(_BLOCK, pos)
        pos -= step
        fh.seek(pos)
        block = fh.read(step)
        blocks.append(block)
        newlines += block.count(b"\n")
        held += len(block)
    buf = b"".join(reversed(blocks))
    parts = buf.split(b"\n")
    if pos > 0 or len(parts) > count:
        complete = parts[1:] if pos > 0 else parts   # the first part may be cut off
        return complete[-count:], True
    return parts, False


def delete_run_logs(record: dict) -> None:
    """Remove a deleted run's log directory."""
    log = record.get("log") or ""
    if log:
        shutil.rmtree(os.path.dirname(log), ignore_errors=True)
