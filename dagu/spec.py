"""DAG YAML text -> model.DAG, exactly as Dagu v1.17 reads it, reporting every problem at once.

Loading never touches disk, the environment or processes by itself: a caller that wants a DAG
evaluated for a run (backticks executed, $VARs expanded, dotenv files read) passes the
environment, a command runner and a file reader in LoadOptions.
"""
from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from dagu import cron, params as P
from dagu.errors import LoadError
from dagu.expand import CommandRunner, ExpandError, evaluate
from dagu.model import CHAIN, DAG, GRAPH, MailConfig, Schedule, SMTPConfig
from dagu.stepspec import StepBuilder, build_conditions, check_steps
from dagu.yamlsource import Positions, YAMLSyntaxError, document_starts, load_documents
from dagu.fields import Fields, as_bool, as_int, as_str, as_str_list

TOP_LEVEL_KEYS = (
    "name", "group", "description", "type", "tags", "schedule", "skipIfSuccessful", "env",
    "dotenv", "params", "logDir", "handlerOn", "steps", "smtp", "mailOn", "errorMail", "infoMail",
    "timeoutSec", "delaySec", "restartWaitSec", "histRetentionDays", "precondition",
    "preconditions", "maxActiveRuns", "maxActiveSteps", "maxCleanUpTimeSec", "queue",
    "catchupWindow",
)
# Base-config list fields are appended (base first) rather than replaced, as Dagu's merge does.
_APPENDED_FIELDS = ("env", "tags", "params", "dotenv")
MAX_FILE_NAME = 200
_NAME_FROM_FILE = re.compile(r"^[A-Za-z0-9_.-]+$")
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)?\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


@dataclass
class LoadOptions:
    """How to load: where the file is, base config, and whether to evaluate for a run."""

    location: str = ""
    base_text: str | None = None
    base_location: str = "base.yaml"
    evaluate: bool = False
    environ: dict[str, str] = field(default_factory=dict)
    run_command: CommandRunner | None = None
    read_text: Callable[[str], str | None] | None = None
    params: list[P.ParamToken] | None = None


def load(text: str, options: LoadOptions | None = None) -> DAG:
    """Build the DAG of the first document (others become local DAGs); LoadError lists every problem.

    Valid files take a fast pass without line bookkeeping; only when a problem is found is the
    text loaded again with positions, so that every message can name its line."""
    opts = options or LoadOptions()
    try:
        return _load(text, opts, positioned=False)
    except LoadError:
        return _load(text, opts, positioned=True)


def _load(text: str, opts: LoadOptions, positioned: bool) -> DAG:
    source = os.path.basename(opts.location) or "<dag>"
    pos = Positions(source=source)
    problems: list[str] = []
    try:
        docs = load_documents(text, pos if positioned else None, problems)
    except YAMLSyntaxError as exc:
        raise LoadError([f"{source}: {exc}"]) from None
    if problems:
        raise LoadError(problems)
    if not positioned and len(docs) > 1:
        pos.doc_lines = document_starts(text)
    elif not positioned:
        pos.doc_lines = [1] * len(docs)
    sources = _document_sources(text, pos.doc_lines)
    base = _load_base(opts, pos, problems)
    kept = [(d, line, src) for i, (d, line, src) in enumerate(zip(docs, pos.doc_lines, sources))
            if i == 0 or d is not None] or [(None, 1, text)]
    dags = []
    for index, (doc, line, doc_source) in enumerate(kept):
        build = _Builder(pos, opts if index == 0 else _local_options(opts), problems)
        build.doc_line = line
        dags.append(build.dag(_merge(base, doc, build), index, doc_source))
    _check_local_names(dags[1:], problems, source)
    if problems:
        raise LoadError(problems)
    if len(dags) > 1:
        return dataclasses.replace(dags[0], local_dags=tuple(dags[1:]))
    return dags[0]


def _document_sources(text: str, starts: list[int]) -> list[str]:
    """The text of each document (a child run of a local DAG loads just its own part)."""
    if len(starts) <= 1:
        return [text]
    lines = text.splitlines(keepends=True)
    bounds = [0] + [max(0, line - 1) for line in starts[1:]] + [len(lines)]
    return ["".join(lines[bounds[i]:bounds[i + 1]]) for i in range(len(starts))]


def _local_options(opts: LoadOptions) -> LoadOptions:
    return LoadOptions(location=opts.location, base_text=None, evaluate=False)


def _load_base(opts: LoadOptions, pos: Positions, problems: list[str]) -> dict:
    if not opts.base_text:
        return {}
    saved, pos.source = pos.source, os.path.basename(opts.base_location) or "base.yaml"
    try:
        docs = load_documents(opts.base_text, pos, problems)
    except YAMLSyntaxError as exc:
        problems.append(f"{pos.source}: {exc}")
        return {}
    finally:
        pos.source = saved
    base = docs[0] if docs else None
    if base is None:
        return {}
    if not isinstance(base, dict):
        problems.append(f"{pos.source}: the base config must be a mapping of DAG fields")
        return {}
    return base


def _merge(base: dict, doc: object, build: "_Builder") -> object:
    """The document over the base config: its fields win, list fields are appended."""
    if not base or not isinstance(doc, (dict, type(None))):
        return doc
    merged = dict(base)
    for key, value in (doc or {}).items():
        if key in _APPENDED_FIELDS and key in base:
            merged[key] = _as_list(base[key], key) + _as_list(value, key)
        else:
            merged[key] = value
        build.pos.mark(merged, 0, key)
    return merged


def _as_list(value: object, key: str) -> list:
    if value is None:
        return []
    if isinstance(value, dict):
        return [{k: v} for k, v in value.items()]
    if isinstance(value, list):
        return list(value)
    if key == "tags" and isinstance(value, str):
        return [t for t in value.split(",")]
    return [value]


def _check_local_names(locals_: list[DAG], problems: list[str], source: str) -> None:
    seen: set[str] = set()
    for d in locals_:
        if d.name in seen:
            problems.append(f"{source}: duplicate DAG name {d.name!r} found")
        seen.add(d.name)


class _Builder:
    """Builds one document; every problem goes to the shared problems list."""

    def __init__(self, pos: Positions, opts: LoadOptions, problems: list[str]):
        self.pos = pos
        self.opts = opts
        self.problems = problems
        self.doc_line = 1
        # The caller's dict is updated in place: its command runner sees what earlier fields set.
        self.environ: dict[str, str] | None = opts.environ if opts.evaluate else None

    def error(self, container: object, key: object, message: str) -> None:
        self.problems.append(f"{self.pos.where(container, key)}: {message}")

    def dag(self, raw: object, index: int, source_text: str) -> DAG:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            kind = "a list" if isinstance(raw, list) else f"the value {raw!r}"
            self.problems.append(f"{self.pos.source}:{self.doc_line}: a DAG must be a mapping "
                                 f"of fields (name: ..., steps: ...), got {kind}")
            return DAG(name=self._name_from_file())
        f = Fields(raw, TOP_LEVEL_KEYS, self, "DAG" if index == 0 else f"DAG document {index + 1}")
        name = self._name(f, index)
        dag_dir = os.path.dirname(self.opts.location) if self.opts.location else "."
        env = self._env(f)
        dotenv = tuple(as_str_list(f, "dotenv"))
        env += self._dotenv(dotenv, dag_dir)
        tokens, params = self._params(f)
        steps_builder = StepBuilder(self, dag_dir, f.get("type") != GRAPH)
        dag = DAG(
            name=name,
            location=self.opts.location,
            group=as_str(f, "group"),
            description=as_str(f, "description"),
            type=self._type(f),
            tags=tuple(t.strip().lower() for t in as_str_list(f, "tags", split_commas=True)
                       if t.strip()),
            **self._schedules(f),
            skip_if_successful=as_bool(f, "skipIfSuccessful"),
            catchup_window_sec=self._duration(f, "catchupWindow"),
            env=tuple(env),
            dotenv=dotenv,
            params=tuple(params),
            default_params=P.serialize(tokens),
            log_dir=self._eval_text(f, "logDir"),
            steps=check_steps(f, steps_builder.steps(f)),
            handlers=steps_builder.handlers(f),
            preconditions=build_conditions(self, f, "precondition") + build_conditions(
                self, f, "preconditions"),
            smtp=self._smtp(f),
            error_mail=self._mail(f, "errorMail"),
            info_mail=self._mail(f, "infoMail"),
            mail_on_failure=as_bool(f.sub("mailOn", ("failure", "success")), "failure"),
            mail_on_success=as_bool(f.sub("mailOn", ("failure", "success")), "success"),
            timeout_sec=as_int(f, "timeoutSec", minimum=0),
            delay_sec=as_int(f, "delaySec", minimum=0),
            restart_wait_sec=as_int(f, "restartWaitSec", minimum=0),
            max_active_runs=as_int(f, "maxActiveRuns") or 1,
            max_active_steps=as_int(f, "maxActiveSteps", minimum=0),
            max_clean_up_time_sec=as_int(f, "maxCleanUpTimeSec", minimum=0) or 60,
            hist_retention_days=as_int(f, "histRetentionDays") or 30,
            queue=as_str(f, "queue"),
            source=source_text,
        )
        return dag

    # -- identity -------------------------------------------------------------------------------
    def _name_from_file(self) -> str:
        base = os.path.basename(self.opts.location)
        return re.sub(r"\.ya?ml$", "", base) if base else ""

    def _name(self, f: Fields, index: int) -> str:
        name = as_str(f, "name")
        if name:
            return name
        if index > 0:
            self.error(f.raw, None, f"DAG at index {index} must have a name in multi-DAG file")
            return f"#{index}"
        name = self._name_from_file()
        # Dagu allows 40 characters; we allow what the API accepts as a file name (200), so a
        # DAG created through POST /dags always loads.
        if name and (len(name) > MAX_FILE_NAME or not _NAME_FROM_FILE.match(name)):
            self.problems.append(f"{self.pos.source}: DAG name {name!r} (from the file name) must be "
                                 f"at most {MAX_FILE_NAME} characters of letters, digits, '_', "
                                 "'.' and '-'")
        return name

    def _type(self, f: Fields) -> str:
        value = as_str(f, "type") or CHAIN
        if value in (CHAIN, GRAPH):
            return value
        if value == "agent":
            f.error("type", "agent type is not yet implemented")
        else:
            f.error("type", f"invalid type: {value} (must be one of: graph, chain, agent)")
        return CHAIN

    # -- schedules ------------------------------------------------------------------------------
    def _schedules(self, f: Fields) -> dict:
        value = f.get("schedule")
        out = {"schedule": (), "stop_schedule": (), "restart_schedule": ()}
        if value is None:
            return out
        if isinstance(value, dict):
            sub = f.sub("schedule", ("start", "stop", "restart"))
            for key, attr in (("start", "schedule"), ("stop", "stop_schedule"),
                              ("restart", "restart_schedule")):
                out[attr] = self._cron_list(sub, key)
        else:
            out["schedule"] = self._cron_list(f, "schedule")
        return out

    def _cron_list(self, f: Fields, key: str) -> tuple[Schedule, ...]:
        result = []
        for expr in as_str_list(f, key):
            try:
                cron.parse(expr)
            except cron.CronError as exc:
                f.error(key, f"invalid schedule {expr!r}: {exc}")
                continue
            result.append(Schedule(expr))
        return tuple(result)

    def _duration(self, f: Fields, key: str) -> int:
        value = f.get(key)
        if value is None:
            return 0
        m = _DURATION.match(str(value))
        if isinstance(value, bool) or not m:
            f.error(key, f"invalid {key} {value!r}: expected a duration such as 90, 30m, 6h or 2d")
            return 0
        return int(m.group(1)) * _DURATION_UNITS[m.group(2)]

    # -- environment and params -----------------------------------------------------------------
    def _env(self, f: Fields) -> list[tuple[str, str]]:
        value = f.get("env")
        pairs: list[tuple[object, object, object, object]] = []   # key, value, container, ckey
        if isinstance(value, dict):
            pairs = [(k, v, value, k) for k, v in value.items()]
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    pairs += [(k, v, value, i) for k, v in item.items()]
                elif isinstance(item, str) and "=" in item:
                    k, v = item.split("=", 1)
                    pairs.append((k, v, value, i))
                else:
                    self.error(value, i, f"invalid value for env: {item!r} (expected KEY: value)")
        elif value is not None:
            f.error("env", f"invalid value for env: expected a map or a list, got {value!r}")
        result = []
        for k, v, container, ckey in pairs:
            if isinstance(v, (dict, list)):
                self.error(container, ckey, f"invalid value for env {k}: {v!r}")
                continue
            text = self._eval(P.scalar_text(v), container, ckey, f"invalid value for env {k}")
            result.append((str(k), text))
            if self.environ is not None:
                self.environ[str(k)] = text
        return result

    def _dotenv(self, files: tuple[str, ...], dag_dir: str) -> list[tuple[str, str]]:
        if self.environ is None or self.opts.read_text is None:
            return []
        result = []
        for name in files:
            path = self._eval(name, None, None, "invalid dotenv path")
            for candidate in (path if os.path.isabs(path) else os.path.join(dag_dir, path),
                              os.path.join(self.environ.get("HOME", ""), path)):
                text = self.opts.read_text(candidate)
                if text is not None:
                    for k, v in parse_dotenv(text):
                        result.append((k, v))
                        self.environ[k] = v
                    break
        return result

    def _params(self, f: Fields) -> tuple[list[P.ParamToken], list[tuple[str, str]]]:
        try:
            tokens = P.tokens_from_yaml(f.get("params"))
        except P.ParamError as exc:
            f.error("params", str(exc))
            return [], []
        try:
            resolved = P.resolve(tokens, self.environ, self.opts.run_command)
            if self.opts.params:
                over = P.resolve(self.opts.params, self.environ, self.opts.run_command)
                resolved = P.override(resolved, over, [not t.name for t in self.opts.params])
                if self.environ is not None:
                    for k, v in resolved:
                        self.environ[k] = v
        except P.ParamError as exc:
            f.error("params", str(exc))
            return tokens, []
        return tokens, resolved

    def _eval(self, text: str, container: object, key: object, what: str) -> str:
        if self.environ is None:
            return text
        try:
            return evaluate(text, run_command=self.opts.run_command, environ=self.environ)
        except ExpandError as exc:
            self.error(container, key, f"{what}: {exc}")
            return text

    def _eval_text(self, f: Fields, key: str) -> str:
        return self._eval(as_str(f, key), f.raw, f.key_of(key), f"invalid {key}")

    # -- mail -----------------------------------------------------------------------------------
    def _smtp(self, f: Fields) -> SMTPConfig | None:
        sub = f.sub("smtp", ("host", "port", "username", "password"))
        if not (sub.get("host") or sub.get("port")):
            return None
        return SMTPConfig(as_str(sub, "host"), as_str(sub, "port"), as_str(sub, "username"),
                          as_str(sub, "password"))

    def _mail(self, f: Fields, key: str) -> MailConfig | None:
        sub = f.sub(key, ("from", "to", "prefix", "attachLogs"))
        if not (sub.get("from") or sub.get("to")):
            return None
        return MailConfig(as_str(sub, "from"), tuple(as_str_list(sub, "to")), as_str(sub, "prefix"),
                          as_bool(sub, "attachLogs"))


def parse_dotenv(text: str) -> list[tuple[str, str]]:
    """KEY=value lines (optional `export `, quotes, # comments) from a .env file."""
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        pairs.append((key.strip(), value))
    return pairs
