"""String evaluation as Dagu does it: ${VAR}/$VAR, ${VAR.json.path}, `cmd`, then $ENV.

The pipeline (Dagu's EvalString), each stage optional:
  1. JSON-path references `${NAME.a.b}` / `$NAME.a[0]` into variables holding JSON, falling back
     to step properties `${id.stdout}`, `${id.stderr}`, `${id.exit_code}`;
  2. plain references `${NAME}` / `$NAME` from the variable layers (a reference wrapped in single
     quotes, `'$X'`, is left alone so shells can see it);
  3. backtick command substitution, through an injected runner (this module never runs anything);
  4. environment expansion with Go's os.ExpandEnv rules (unknown names become empty).
Nothing here touches the process environment: callers pass mappings in.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence

CommandRunner = Callable[[str], str]


class ExpandError(ValueError):
    """A substitution that cannot be done (e.g. a backtick command that failed)."""


_JSON_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_-]*)((?:\.[^}.\s]+|\[\d+\])+)\}"
                       r"|\$([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+|\[\d+\])+)")
_PLAIN_REF = re.compile(r"\$\{([^}]+)\}|\$([A-Za-z0-9_]+)")
_BACKTICK = re.compile(r"`((?:\\`|[^`])*)`")
_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\.\[(\d+)\]")

_MISSING = object()


def merge_layers(layers: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """One lookup table for several variable layers; the first layer that defines a name wins."""
    merged: dict[str, str] = {}
    for layer in reversed(layers):
        merged.update(layer)
    return merged


def json_path(value: object, path: str) -> object:
    """Follow a jq-style path (`.a.b`, `.a[0]`, `.[1]`) into decoded JSON; _MISSING when absent."""
    pos = 0
    cur = value
    while pos < len(path):
        m = _PATH_TOKEN.match(path, pos)
        if not m:
            return _MISSING
        key, idx = m.group(1), m.group(2) or m.group(3)
        if key is not None and isinstance(cur, dict) and key in cur:
            cur = cur[key]
        elif idx is not None and isinstance(cur, list) and int(idx) < len(cur):
            cur = cur[int(idx)]
        else:
            return _MISSING
        pos = m.end()
    return cur


def format_value(value: object) -> str:
    """Render a JSON value the way Dagu prints it into a command (numbers without `.0`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def expand_json_refs(text: str, variables: Mapping[str, str],
                     step_props: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """Replace `${NAME.path}` with the JSON value found at path, or a step property."""
    if "$" not in text:
        return text

    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(3)
        path = m.group(2) or m.group(4)
        raw = variables.get(name)
        if raw is not None:
            try:
                found = json_path(json.loads(raw), path)
            except ValueError:
                found = _MISSING
            if found is not _MISSING:
                return format_value(found)
        props = (step_props or {}).get(name)
        if props is not None and path.startswith(".") and path[1:] in props:
            return props[path[1:]]
        return m.group(0)

    return _JSON_REF.sub(repl, text)


def single_quoted_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each '...' span as a shell reads them (a `'` inside "..." is literal)."""
    spans: list[tuple[int, int]] = []
    start = -1
    in_double = False
    i = 0
    while i < len(text):
        c = text[i]
        if start >= 0:
            if c == "'":
                spans.append((start, i + 1))
                start = -1
        elif c == "\\":
            i += 1
        elif c == '"':
            in_double = not in_double
        elif c == "'" and not in_double:
            start = i
        i += 1
    if start >= 0:
        spans.append((start, len(text)))
    return spans


def expand_plain_refs(text: str, variables: Mapping[str, str]) -> str:
    """Replace `${NAME}` / `$NAME` for names in variables. References inside single quotes stay,
    so the shell sees them literally, as it would."""
    if "$" not in text:
        return text
    spans = single_quoted_spans(text) if "'" in text else []

    def repl(m: re.Match) -> str:
        name = m.group(1) if m.group(1) is not None else m.group(2)
        if name not in variables or any(a <= m.start() < b for a, b in spans):
            return m.group(0)
        return variables[name]

    return _PLAIN_REF.sub(repl, text)


def substitute_commands(text: str, run: CommandRunner) -> str:
    """Replace each `cmd` with its trimmed output; a failing command raises ExpandError."""
    if "`" not in text:
        return text

    def repl(m: re.Match) -> str:
        cmd = m.group(1).replace("\\`", "`")
        return run(cmd)

    return _BACKTICK.sub(repl, text)


def _shell_name(s: str) -> tuple[str, int]:
    """Go's getShellName: the variable name after a `$` and how many chars it used."""
    if s.startswith("{"):
        if len(s) > 2 and _is_special(s[1]) and s[2] == "}":
            return s[1], 3
        end = s.find("}")
        if end <= 1:
            return "", (2 if end == 1 else 1)
        return s[1:end], end + 1
    if _is_special(s[0]):
        return s[0], 1
    i = 0
    while i < len(s) and (s[i].isalnum() and s[i].isascii() or s[i] == "_"):
        i += 1
    return s[:i], i


def _is_special(c: str) -> bool:
    return c in "*#$@!?-" or ("0" <= c <= "9")


def expand_env(text: str, environ: Mapping[str, str]) -> str:
    """os.ExpandEnv: `$NAME`/`${NAME}` from environ, unknown names become empty."""
    if "$" not in text:
        return text
    out: list[str] = []
    i = 0
    j = 0
    n = len(text)
    while j < n:
        if text[j] == "$" and j + 1 < n:
            out.append(text[i:j])
            name, width = _shell_name(text[j + 1:])
            if name == "" and width > 0:
                pass  # invalid syntax such as "${}": Go drops it
            elif name == "":
                out.append("$")
            else:
                out.append(environ.get(name, ""))
            j += width
            i = j + 1
        j += 1
    out.append(text[i:])
    return "".join(out)


def evaluate(text: str, layers: Sequence[Mapping[str, str]] = (), *,
             run_command: CommandRunner | None = None,
             environ: Mapping[str, str] | None = None,
             step_props: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """The whole pipeline; stages 3 and 4 run only when a runner / environ is given."""
    variables = merge_layers(layers) if layers else {}
    if variables or step_props:
        text = expand_json_refs(text, variables, step_props)
        text = expand_plain_refs(text, variables)
    if run_command is not None:
        text = substitute_commands(text, run_command)
    if environ is not None:
        text = expand_env(text, environ)
    return text
