"""DAG parameters: Dagu's parameter-string grammar, YAML forms, evaluation and overrides.

A parameter is named (`NAME=value`) or positional (`value`); positional parameters are named by
their 1-based index among all parameters ("1", "2", ...). Evaluation is sequential, so a later
value may refer to an earlier one (`Y=${P1}`).
"""
from __future__ import annotations

import json
import re
from collections.abc import MutableMapping
from dataclasses import dataclass

from dagu.expand import CommandRunner, ExpandError, expand_env, substitute_commands

# Dagu's token grammar: optional NAME=, then a "quoted" value, a `backtick` value or a bare word.
_TOKEN = re.compile(r'(?:([^\s=]+)=)?("(?:\\"|[^"])*"|`(?:\\"|[^"]*)`|[^"\s]+)')


class ParamError(ValueError):
    """A parameter that cannot be parsed or evaluated."""


@dataclass(frozen=True)
class ParamToken:
    """One parameter as written: name ("" when positional) and its raw value."""

    name: str
    value: str
    evaluate_all: bool = False    # map-form values get backticks evaluated whatever they start with


def parse_param_string(text: str) -> list[ParamToken]:
    """Split `A=1 "two words" B="x y"` into tokens, as Dagu's regexp does."""
    return [ParamToken(m.group(1) or "", m.group(2)) for m in _TOKEN.finditer(text or "")]


def tokens_from_yaml(value: object) -> list[ParamToken]:
    """Tokens from the YAML `params:` field: a string, a list, or a map."""
    if value is None:
        return []
    if isinstance(value, str):
        return parse_param_string(value)
    if isinstance(value, dict):
        return [ParamToken(str(k), scalar_text(v), True) for k, v in value.items()]
    if isinstance(value, list):
        tokens: list[ParamToken] = []
        for item in value:
            if isinstance(item, dict):
                if len(item) != 1:
                    raise ParamError("each params list item must be a string or a single-key map")
                (k, v), = item.items()
                tokens.append(ParamToken(str(k), scalar_text(v), True))
            elif isinstance(item, (str, int, float, bool)):
                tokens.extend(parse_param_string(scalar_text(item)))
            else:
                raise ParamError(f"invalid params list item: {item!r}")
        return tokens
    if isinstance(value, (int, float, bool)):
        return parse_param_string(scalar_text(value))
    raise ParamError(f"params must be a string, a list or a map, got {type(value).__name__}")


def tokens_from_args(args: list[str]) -> list[ParamToken]:
    """Tokens from CLI words after `--`: each word is one parameter, spaces kept."""
    tokens = []
    for arg in args:
        m = re.match(r"^([^\s=\"]+)=(.*)$", arg, re.S)
        tokens.append(ParamToken(m.group(1), m.group(2)) if m else ParamToken("", arg))
    return tokens


def scalar_text(value: object) -> str:
    """A YAML scalar as Go's %v prints it (true, 1.5, 123)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        return raw[1:-1].replace('\\"', '"')
    return raw


def resolve(tokens: list[ParamToken], environ: MutableMapping[str, str] | None,
            run_command: CommandRunner | None) -> list[tuple[str, str]]:
    """Name and evaluate tokens in order. With environ, values are expanded and exported into it."""
    resolved: list[tuple[str, str]] = []
    for index, tok in enumerate(tokens, start=1):
        value = _unquote(tok.value)
        if environ is not None:
            if run_command is not None and (tok.evaluate_all or tok.value[:1] in ('"', "`")):
                try:
                    value = substitute_commands(value, run_command)
                except ExpandError as exc:
                    raise ParamError(f"invalid parameter value {tok.value!r}: {exc}") from None
            value = expand_env(value, environ)
        name = tok.name or str(index)
        resolved.append((name, value))
        if environ is not None:
            # Dagu exports positional i as the value and named params as both NAME and i=NAME=value.
            environ[str(index)] = value if not tok.name else f"{tok.name}={value}"
            if tok.name:
                environ[tok.name] = value
    return resolved


def override(params: list[tuple[str, str]], overrides: list[tuple[str, str]],
             positional: list[bool]) -> list[tuple[str, str]]:
    """Apply overrides by name, as Dagu's code does: a positional override is named by its index
    ("1", "2", ...) first, so it replaces the param of that name or is appended — a named param
    that happens to sit at that position is kept (`a N=x b` + `p q` -> 1=p N=x 3=b 2=q)."""
    result = list(params)
    for (name, value), _is_positional in zip(overrides, positional):
        for i, (existing, _) in enumerate(result):
            if existing == name:
                result[i] = (name, value)
                break
        else:
            result.append((name, value))
    return result


def serialize(tokens: list[ParamToken]) -> str:
    """Dagu's `defaultParams`: `NAME="value"` / `"value"` joined by spaces."""
    return " ".join((f"{t.name}={_quote(_unquote(t.value))}" if t.name else _quote(_unquote(t.value)))
                    for t in tokens)


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def to_param_string(pairs: list[tuple[str, str]]) -> str:
    """Pairs back into a parameter string that parse_param_string reads identically."""
    return " ".join(f"{k}={_quote(v)}" for k, v in pairs)


def parse_api_params(value: object) -> list[ParamToken]:
    """Params from an API body or CLI flag: a param string, a JSON object in a string, or an object."""
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        return [ParamToken(str(k), scalar_text(v)) for k, v in value.items()]
    if not isinstance(value, str):
        raise ParamError("params must be a string or an object")
    text = value.strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            return [ParamToken(str(k), scalar_text(v)) for k, v in obj.items()]
    if len(text) >= 2 and text[0] == text[-1] == '"' and '"' not in text[1:-1]:
        text = text[1:-1]   # `--params="p3 p4"` passes the quotes through literally
    return parse_param_string(text)

