"""Exceptions of the jq package: errors a query raises or catches, and `break`'s unwinding."""
from __future__ import annotations


class JqError(ValueError):
    """A jq syntax or runtime error; str() reads `jq: <message>`.

    `value` is what `try ... catch .` receives: the argument of `error(v)`, else the message.
    """

    def __init__(self, message: str, value: object = None, *, thrown: bool = False) -> None:
        super().__init__(f"jq: {message}")
        self.message = message
        self.value = value if thrown else message


class _CompileError(JqError):
    """An undefined name or a missing query: gojq reports these when the query runs, so Dagu
    prints them on stderr instead of failing the step (unlike syntax errors)."""


class _Break(Exception):
    """`break $label`: unwinds to the matching `label`, never caught by `try`."""

    def __init__(self, tag: object) -> None:
        super().__init__("break")
        self.tag = tag
