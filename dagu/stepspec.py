"""Step definitions: YAML step mappings -> model.Step, plus the checks that need all steps."""
from __future__ import annotations

import dataclasses
import re
import shlex
import signal

from dagu import graph, params as P
from dagu.fields import Fields, as_bool, as_int, as_int_list, as_str, as_str_list
from dagu.model import (HANDLER_NAMES, Condition, ContinueOn, Executor, Parallel, RepeatPolicy,
                        RetryPolicy, Step)

STEP_KEYS = (
    "name", "id", "description", "dir", "workingDir", "executor", "command", "shell",
    "shellPackages", "script", "stdout", "stderr", "output", "depends", "continueOn",
    "retryPolicy", "repeatPolicy", "mailOnError", "precondition", "preconditions",
    "signalOnStop", "run", "params", "parallel", "env",
)
EXECUTOR_TYPES = ("", "command", "shell", "dag", "subworkflow", "parallel", "http", "jq", "ssh",
                  "mail", "docker")
MAX_STEP_NAME = 40
MAX_PARALLEL_ITEMS = 1000
_STEP_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_NO_CONTINUE, _NO_RETRY, _NO_REPEAT = ContinueOn(), RetryPolicy(), RepeatPolicy()
_RESERVED_IDS = {"env", "params", "args", "stdout", "stderr", "output", "outputs"}


class StepBuilder:
    """Builds the steps and handlers of one DAG document."""

    def __init__(self, reporter, dag_dir: str, chain: bool):
        self.reporter = reporter
        self.dag_dir = dag_dir
        self.chain = chain

    def steps(self, f: Fields) -> tuple[Step, ...]:
        value = f.get("steps")
        if value is None:
            return ()
        if isinstance(value, dict):   # map form: the key is the step name
            items = []
            for name, body in value.items():
                if isinstance(body, dict) and "name" not in body:
                    body = {"name": name, **body}
                items.append((body, value, name))
        elif isinstance(value, list):
            items = [(body, value, i) for i, body in enumerate(value)]
        else:
            f.error("steps", "expected a list of steps")
            return ()
        steps: list[Step] = []
        for index, (body, container, key) in enumerate(items):
            # chain type: a step without `depends` follows the previous one
            implicit = (steps[-1].name,) if self.chain and steps else ()
            step = self.step(body, container, key, f"steps[{index}]", implicit_depends=implicit)
            if step is not None:
                steps.append(step)
        return tuple(steps)

    def handlers(self, f: Fields) -> tuple[tuple[str, Step], ...]:
        sub = f.sub("handlerOn", tuple(HANDLER_NAMES))
        out = []
        for kind, name in HANDLER_NAMES.items():
            body = sub.get(kind)
            if body is None:
                continue
            step = self.step(body, sub.raw, sub.key_of(kind), f"handlerOn.{kind}", forced_name=name)
            if step is not None:
                out.append((kind, step))
        return tuple(out)

    def step(self, body: object, container: object, key: object, where: str,
             forced_name: str = "", implicit_depends: tuple[str, ...] = ()) -> Step | None:
        """One step; None when it is too broken to keep (the problem is reported)."""
        if not isinstance(body, dict):
            self.reporter.error(container, key, f"{where}: a step must be a mapping, got {body!r}")
            return None
        given = next((v for k, v in body.items() if str(k).lower() == "name"), None)
        label = forced_name or (str(given) if isinstance(given, (str, int, float)) else "")
        f = Fields(body, STEP_KEYS, self.reporter, f"{where} ({label})" if label else where)
        name = forced_name or as_str(f, "name")
        if not name:
            self.reporter.error(body, None, f"{where}: step name is required")
        elif len(name) > MAX_STEP_NAME:
            f.error("name", f"step name must be at most {MAX_STEP_NAME} characters")
        command, args, cmd_text, is_list = self._command(f)
        run = as_str(f, "run")
        parallel = self._parallel(f, run)
        executor = self._executor(f, run, parallel)
        script = as_str(f, "script")
        if not (cmd_text or script or run or executor.type):
            if f.has("command"):
                f.error("command", "step command is empty")
            else:
                self.reporter.error(body, None, f"{f.where}: step command is required")
        output = as_str(f, "output")
        return Step(
            name=name,
            id=as_str(f, "id"),
            description=as_str(f, "description"),
            dir=as_str(f, "dir") or as_str(f, "workingDir") or self.dag_dir,
            command=command,
            args=args,
            cmd_with_args=cmd_text,
            command_is_list=is_list,
            shell=as_str(f, "shell"),
            shell_packages=tuple(as_str_list(f, "shellPackages")),
            script=script,
            stdout=as_str(f, "stdout"),
            stderr=as_str(f, "stderr"),
            output=output[1:] if output.startswith("$") else output,
            depends=tuple(as_str_list(f, "depends")) if f.has("depends") else implicit_depends,
            continue_on=self._continue_on(f),
            retry_policy=self._retry(f),
            repeat_policy=self._repeat(f),
            mail_on_error=as_bool(f, "mailOnError"),
            preconditions=build_conditions(self.reporter, f, "precondition")
            + build_conditions(self.reporter, f, "preconditions"),
            signal_on_stop=self._signal(f),
            run=run,
            params=self._child_params(f) if run else "",
            parallel=parallel,
            executor=executor,
            env=self._env(f),
        )

    # -- command forms --------------------------------------------------------------------------
    def _command(self, f: Fields) -> tuple[str, tuple[str, ...], str, bool]:
        value = f.get("command")
        if value is None:
            return "", (), "", False
        if isinstance(value, list):
            words = [P.scalar_text(v) for v in value]
            if not words:
                f.error("command", "step command is empty")
                return "", (), "", True
            joined = " ".join(shlex.quote(w) if (" " in w or not w) else w for w in words)
            return words[0], tuple(words[1:]), joined, True
        if isinstance(value, dict):
            f.error("command", "expected a string or a list, got a mapping")
            return "", (), "", False
        text = P.scalar_text(value)
        words = split_words(text)
        return (words[0] if words else ""), tuple(words[1:]), text.strip() and text, False

    def _executor(self, f: Fields, run: str, parallel: Parallel | None) -> Executor:
        value = f.get("executor")
        if run:
            kind = "parallel" if parallel is not None else "dag"
            return Executor(kind)
        if value is None:
            return Executor()
        if isinstance(value, str):
            kind, config = value, {}
        elif isinstance(value, dict):
            sub = f.sub("executor", ("type", "config"))
            kind = as_str(sub, "type")
            config = sub.get("config") or {}
            if not isinstance(config, dict):
                sub.error("config", "expected a mapping")
                config = {}
        else:
            f.error("executor", f"expected a type name or {{type, config}}, got {value!r}")
            return Executor()
        if kind not in EXECUTOR_TYPES:
            f.error("executor", f"unknown executor type {kind!r} (known: "
                                f"{', '.join(t for t in EXECUTOR_TYPES if t)})")
        return Executor(kind, config)

    def _parallel(self, f: Fields, run: str) -> Parallel | None:
        value = f.get("parallel")
        if value is None:
            return None
        if not run:
            f.error("parallel", "parallel requires run: <child DAG>")
        max_concurrent = 10
        items = value
        if isinstance(value, dict):
            sub = f.sub("parallel", ("items", "maxConcurrent"))
            items = sub.get("items")
            max_concurrent = as_int(sub, "maxConcurrent", default=10)
            if max_concurrent <= 0:
                sub.error("maxConcurrent", "must be greater than 0")
                max_concurrent = 10
        if isinstance(items, str):
            return Parallel(variable=items, max_concurrent=max_concurrent)
        if isinstance(items, list):
            if len(items) > MAX_PARALLEL_ITEMS:
                f.error("parallel", f"at most {MAX_PARALLEL_ITEMS} items, got {len(items)}")
            return Parallel(items=tuple(items), max_concurrent=max_concurrent)
        f.error("parallel", "expected a list of items, a ${VARIABLE}, or {items, maxConcurrent}")
        return None

    def _child_params(self, f: Fields) -> str:
        try:
            return P.serialize(P.tokens_from_yaml(f.get("params")))
        except P.ParamError as exc:
            f.error("params", str(exc))
            return ""

    # -- policies -------------------------------------------------------------------------------
    def _continue_on(self, f: Fields) -> ContinueOn:
        if not f.has("continueOn"):
            return _NO_CONTINUE
        sub = f.sub("continueOn", ("failure", "skipped", "exitCode", "output", "markSuccess"))
        return ContinueOn(as_bool(sub, "failure"), as_bool(sub, "skipped"),
                          as_int_list(sub, "exitCode"), tuple(as_str_list(sub, "output")),
                          as_bool(sub, "markSuccess"))

    def _retry(self, f: Fields) -> RetryPolicy:
        if not f.has("retryPolicy"):
            return _NO_RETRY
        sub = f.sub("retryPolicy", ("limit", "intervalSec", "exitCode", "backoff", "maxIntervalSec"))
        if not sub.has("limit"):
            f.error("retryPolicy", "limit is required")
        return RetryPolicy(
            limit=_int_or_expression(sub, "limit"),
            interval_sec=_int_or_expression(sub, "intervalSec"),
            exit_codes=as_int_list(sub, "exitCode"),
            backoff=_backoff(sub),
            max_interval_sec=as_int(sub, "maxIntervalSec", minimum=0),
        )

    def _repeat(self, f: Fields) -> RepeatPolicy:
        if not f.has("repeatPolicy"):
            return _NO_REPEAT
        sub = f.sub("repeatPolicy", ("repeat", "intervalSec", "limit", "condition", "expected",
                                     "exitCode", "backoff", "maxIntervalSec"))
        repeat, mode = False, ""
        value = sub.get("repeat")
        if isinstance(value, str) and value.strip().lower() in ("while", "until"):
            mode = value.strip().lower()
        elif value is not None:
            repeat = as_bool(sub, "repeat")
        policy = RepeatPolicy(
            repeat=repeat, mode=mode,
            interval_sec=as_int(sub, "intervalSec", minimum=0),
            limit=as_int(sub, "limit", minimum=0),
            condition=as_str(sub, "condition"),
            expected=as_str(sub, "expected"),
            exit_codes=as_int_list(sub, "exitCode"),
            backoff=_backoff(sub),
            max_interval_sec=as_int(sub, "maxIntervalSec", minimum=0),
        )
        if mode and not (policy.condition or policy.exit_codes):
            sub.error("repeat", f"repeat: {mode} needs a condition or exitCode")
        if policy.expected and not policy.condition:
            sub.error("expected", "expected needs a condition")
        return policy

    def _signal(self, f: Fields) -> str:
        name = as_str(f, "signalOnStop")
        if name and (not name.startswith("SIG") or name not in signal.Signals.__members__):
            f.error("signalOnStop", f"invalid signal {name!r} (use a name such as SIGINT or SIGTERM)")
            return ""
        return name

    def _env(self, f: Fields) -> tuple[tuple[str, str], ...]:
        value = f.get("env")
        pairs: list[tuple[str, str]] = []
        entries = value.items() if isinstance(value, dict) else None
        if isinstance(value, list):
            entries = []
            for item in value:
                if isinstance(item, dict):
                    entries.extend(item.items())
                elif isinstance(item, str) and "=" in item:
                    entries.append(tuple(item.split("=", 1)))
                else:
                    f.error("env", f"invalid value for env: {item!r} (expected KEY: value)")
        elif value is not None and entries is None:
            f.error("env", "invalid value for env: expected a map or a list")
        for k, v in entries or ():
            if isinstance(v, (dict, list)):
                f.error("env", f"invalid value for env {k}: {v!r}")
            else:
                pairs.append((str(k), P.scalar_text(v)))
        return tuple(pairs)


_WORD = re.compile(r"""(?:[^\s"'\\]+|"(?:\\.|[^"\\])*"?|'[^']*'?|\\.?)+""")
_QUOTED = re.compile(r""""((?:\\.|[^"\\])*)"?|'([^']*)'?|\\(.?)""")


def split_words(text: str) -> list[str]:
    """Shell-like words of a command line (quotes removed), for showing command and args;
    the shell itself still runs the line as written. Much cheaper than shlex."""
    words = []
    for m in _WORD.finditer(text):
        word = m.group(0)
        if '"' in word or "'" in word or "\\" in word:
            word = _QUOTED.sub(_unquote_part, word)
        words.append(word)
    return words


def _unquote_part(m: re.Match) -> str:
    if m.group(1) is not None:
        return re.sub(r'\\(["\\$`])', r"\1", m.group(1))
    if m.group(2) is not None:
        return m.group(2)
    return m.group(3) or ""


def _int_or_expression(f: Fields, key: str) -> int | str:
    """An int, or a string such as "${RETRIES}" evaluated when the run starts."""
    value = f.get(key)
    if isinstance(value, str) and ("$" in value or "`" in value):
        return value
    return as_int(f, key, minimum=0)


def _backoff(f: Fields) -> float:
    value = f.get("backoff")
    if value is None or value is False:
        return 0.0
    if value is True:
        return 2.0
    if isinstance(value, (int, float)) and value > 1.0:
        return float(value)
    f.error("backoff", f"must be true or a number greater than 1.0, got {value!r}")
    return 0.0


def build_conditions(reporter, f: Fields, key: str) -> tuple[Condition, ...]:
    """Preconditions: a string, {condition|command, expected}, or a list of those."""
    value = f.get(key)
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, dict):
            sub = Fields(item, ("condition", "expected", "command"), reporter, f"{f.where}.{key}")
            cond = as_str(sub, "condition") or as_str(sub, "command")
            if not cond:
                f.error(key, "a precondition needs a condition (or command)")
                continue
            out.append(Condition(cond, as_str(sub, "expected")))
        elif isinstance(item, (str, int, float)) and not isinstance(item, bool):
            out.append(Condition(P.scalar_text(item)))
        else:
            f.error(key, f"expected a string or {{condition, expected}}, got {item!r}")
    return tuple(out)


def check_steps(f: Fields, steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """Names and ids unique and valid, depends resolved (ids -> names), no cycles."""
    names: dict[str, int] = {}
    ids: dict[str, str] = {}
    duplicated = False
    for step in steps:
        if step.name and step.name in names:
            f.error("steps", f"duplicate step name {step.name!r}")
            duplicated = True
        names[step.name] = 1
    for step in steps:
        if not step.id:
            continue
        if not _STEP_ID.match(step.id):
            f.error("steps", f"step {step.name!r}: invalid id {step.id!r} (must start with a letter; "
                             "letters, digits, '_' and '-')")
        elif step.id.lower() in _RESERVED_IDS:
            f.error("steps", f"step {step.name!r}: id {step.id!r} is a reserved word")
        elif step.id in ids:
            f.error("steps", f"duplicate step id {step.id!r}")
        elif step.id in names and step.id != step.name:
            f.error("steps", f"step id {step.id!r} conflicts with another step's name")
        ids[step.id] = step.name
    resolved = []
    for step in steps:
        deps = tuple(dict.fromkeys(ids.get(d, d) if d not in names else d for d in step.depends))
        for dep in deps:
            if dep not in names:
                f.error("depends", f"step {step.name} depends on non-existent step (value: {dep})")
        resolved.append(dataclasses.replace(step, depends=deps) if deps != step.depends else step)
    depends = {s.name: [d for d in s.depends if d in names] for s in resolved}
    cycle = [] if duplicated else graph.find_cycle(depends)   # names must be unique to tell
    if cycle:
        f.error("steps", "cycle detected: " + " -> ".join(cycle))
    return tuple(resolved)
