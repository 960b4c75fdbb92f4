"""DAG files on disk: resolving a name or path, reading and loading them (with a parse cache)."""
from __future__ import annotations

import os
import re
import stat
import threading
from dataclasses import dataclass

from dagu import spec
from dagu.config import Config
from dagu.errors import BadRequest, LoadError, NotFound
from dagu.model import DAG

YAML_SUFFIXES = (".yaml", ".yml")
FILE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


def resolve_dag_path(arg: str, dags_dir: str, cwd: str | None = None) -> str:
    """Dagu's lookup of a DAG argument: a path (absolute, ~, or relative to cwd), else a name in
    the DAGs directory; `.yaml` is tried when no suffix is given."""
    cwd = cwd or os.getcwd()
    expanded = os.path.expanduser(arg)
    candidates = []
    for base in ([expanded] if os.path.isabs(expanded) else
                 [os.path.join(cwd, expanded), os.path.join(dags_dir, expanded)]):
        candidates.append(base)
        if not base.endswith(YAML_SUFFIXES):
            candidates += [base + s for s in YAML_SUFFIXES]
    for path in candidates:
        if os.path.isfile(path):
            return os.path.abspath(path)
    raise NotFound(f"DAG {arg!r} not found (looked in {cwd} and {dags_dir})")


def check_file_name(name: str) -> str:
    """A DAG file name from a request, without suffix; BadRequest unless it is a plain name."""
    stem = strip_suffix(name)
    if not FILE_NAME.match(stem) or stem.startswith(".") or stem in (".", ".."):
        raise BadRequest(f"invalid DAG file name {name!r}: use letters, digits, '_', '.' and '-'")
    return stem


def strip_suffix(name: str) -> str:
    """`x.yaml` / `x.yml` -> `x`."""
    for suffix in YAML_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_text(path: str) -> str | None:
    """A file's text, or None when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError):
        return None


def load_options(location: str, config: Config, **kw) -> spec.LoadOptions:
    """Options for loading a DAG file: its location and the base config merged under it."""
    return spec.LoadOptions(
        location=os.path.abspath(location) if location else "",
        base_text=read_text(config.base_config) if config.base_config else None,
        base_location=config.base_config, read_text=read_text, **kw)


def load_dag_file(path: str, config: Config) -> DAG:
    """Load a DAG file with the base config merged, without evaluating anything."""
    text = read_text(path)
    if text is None:
        raise NotFound(f"cannot read DAG file {path}")
    return spec.load(text, load_options(path, config))


@dataclass(frozen=True)
class DagFile:
    """One file of the DAGs directory as last seen: the DAG, or why it does not load."""

    file_name: str          # without suffix: the API's fileName
    path: str
    mtime_ns: int
    size: int
    dag: DAG | None
    error: str = ""
    identity: tuple = ()    # (inode, ctime): an edit that keeps mtime and size still shows


class DagRegistry:
    """The top level of the DAGs directory, each file parsed once per (mtime, size).

    Loads are metadata-only (no evaluation, no base config), as Dagu lists and schedules them."""

    def __init__(self, dags_dir: str):
        self.dags_dir = dags_dir
        self._cache: dict[str, DagFile] = {}
        self._lock = threading.Lock()

    def scan(self) -> list[DagFile]:
        """Every DAG file, sorted by file name; unchanged files come from the cache."""
        seen: dict[str, DagFile] = {}
        try:
            entries = sorted(os.scandir(self.dags_dir), key=lambda e: e.name)
        except OSError:
            entries = []
        for entry in entries:
            if not entry.name.endswith(YAML_SUFFIXES) or entry.name.startswith("."):
                continue
            try:
                st = entry.stat()
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            seen[entry.name] = self._load(entry.path, entry.name, st)
        with self._lock:
            self._cache = seen
        return list(seen.values())

    def get(self, file_name: str) -> DagFile | None:
        """One DAG file by name (with or without suffix), re-read if it changed."""
        stem = check_file_name(file_name)
        for suffix in YAML_SUFFIXES:
            path = os.path.join(self.dags_dir, stem + suffix)
            try:
                st = os.stat(path)
            except OSError:
                continue
            return self._load(path, stem + suffix, st)
        return None

    def _load(self, path: str, name: str, st: os.stat_result) -> DagFile:
        with self._lock:
            cached = self._cache.get(name)
        identity = (st.st_ino, st.st_ctime_ns)
        if (cached and cached.mtime_ns == st.st_mtime_ns and cached.size == st.st_size
                and cached.identity == identity):
            return cached
        text = read_text(path)
        dag, error = None, ""
        if text is None:
            error = f"reading {name} failed: cannot read the file"
        else:
            try:
                dag = spec.load(text, spec.LoadOptions(location=path))
            except LoadError as exc:
                error = f"reading {name} failed: " + "; ".join(exc.errors)
        found = DagFile(strip_suffix(name), path, st.st_mtime_ns, st.st_size, dag, error, identity)
        with self._lock:
            self._cache[name] = found
        return found
