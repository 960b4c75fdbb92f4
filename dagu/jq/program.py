"""The API: compile a query, decode a step's JSON input, run the query, print what it outputs."""
from __future__ import annotations

import functools
import json
from collections.abc import Iterator

from dagu.jq.check import _check
from dagu.jq.errors import JqError, _CompileError
from dagu.jq.evaluate import _ev
from dagu.jq.output import format_result
from dagu.jq.parser import _Parser
from dagu.jq.prelude import _PRELUDE_ENV
from dagu.jq.values import _reject_constant


class JqProgram:
    """A parsed and checked jq query; run it against decoded JSON values."""

    __slots__ = ("query", "_ast")

    def __init__(self, query: str, ast: tuple) -> None:
        self.query = query
        self._ast = ast

    def iter(self, value: object) -> Iterator[object]:
        """The query's outputs one by one; the first uncaught error raises JqError."""
        try:
            for x, _ in _ev(self._ast, _PRELUDE_ENV, value, None):
                yield x
        except RecursionError:
            raise JqError("query nested too deeply") from None

    def run(self, value: object) -> list[object]:
        return list(self.iter(value))

    def __repr__(self) -> str:
        return f"JqProgram({self.query!r})"


@functools.lru_cache(maxsize=256)
def compile(query: str) -> JqProgram:  # noqa: A001 -- the jq module's natural verb
    """Parse and check a query (JqError on a syntax error or an undefined name)."""
    try:
        ast = _Parser(query).parse_program()
        _check(ast, frozenset({"ENV"}), frozenset())
    except RecursionError:
        raise JqError("query nested too deeply") from None
    return JqProgram(query, ast)


def parse_input(text: str) -> object:
    """Decode a step's JSON input as Dagu does (Go's encoding/json into `any`): numbers become
    floats; NaN, Infinity and trailing data are errors."""
    try:
        return json.loads(text, parse_int=float, parse_constant=_reject_constant)
    except RecursionError:
        raise JqError("invalid JSON input: nested too deeply") from None
    except json.JSONDecodeError as e:
        raise JqError(f"invalid JSON input: {e.msg} at line {e.lineno} column {e.colno}") from None
    except JqError as e:
        raise JqError(f"invalid JSON input: {e.message}") from None


def run(query: str, input_text: str, raw: bool = False) -> str:
    """Run a query over JSON text and return the printed results joined by newlines.

    JqError for invalid JSON input (checked first, as Dagu does), an invalid query, or a
    runtime error."""
    value = parse_input(input_text)
    program = compile(query)
    return "\n".join(format_result(x, raw) for x in program.iter(value))


def execute(query: str, input_text: str, raw: bool = False) -> tuple[str, str]:
    """(stdout, stderr) as Dagu's jq executor writes them: each result plus a newline. A runtime
    error, or an undefined function/variable, ends the stream and is reported on stderr as
    `failed to run jq query: <error>` without failing the step (gojq hands those out through
    the result iterator). Invalid JSON input or a syntax error raise JqError: the step fails."""
    value = parse_input(input_text)
    try:
        program = compile(query)
    except _CompileError as e:
        return "", f"failed to run jq query: {e.message}"
    lines: list[str] = []
    try:
        for x in program.iter(value):
            lines.append(format_result(x, raw) + "\n")
    except JqError as e:
        return "".join(lines), f"failed to run jq query: {e.message}"
    return "".join(lines), ""
