"""DAG files on disk: resolving a name or path, reading and loading them (with a parse cache)."""
from __future__ import annotations

import os
import re
from collections.abc import Mapping

from dagu import params as P, spec
from dagu.config import Config
from dagu.errors import BadRequest, NotFound
from dagu.model import DAG
from dagu.shell import command_runner

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


def load_dag_file(path: str, config: Config, *, evaluate: bool = False,
                  params: list[P.ParamToken] | None = None,
                  environ: Mapping[str, str] | None = None) -> DAG:
    """Load a DAG file with the base config merged; evaluate=True resolves it for a run."""
    text = read_text(path)
    if text is None:
        raise NotFound(f"cannot read DAG file {path}")
    env = dict(environ if environ is not None else os.environ)
    options = spec.LoadOptions(
        location=os.path.abspath(path),
        base_text=read_text(config.base_config) if config.base_config else None,
        base_location=config.base_config,
        evaluate=evaluate,
        environ=env,
        run_command=command_runner(env, os.path.dirname(os.path.abspath(path))) if evaluate else None,
        read_text=read_text,
        params=params,
    )
    return spec.load(text, options)
