"""Binary operators on jq values: + - * / % and the comparisons."""
from __future__ import annotations

import math
from collections.abc import Callable

from dagu.jq.errors import JqError
from dagu.jq.paths import _to_int
from dagu.jq.values import _brief, _compare, _desc, _equal, _is_num, _num_text


def _add(a: object, b: object) -> object:
    if a is None:
        return b
    if b is None:
        return a
    if _is_num(a) and _is_num(b):
        return a + b  # type: ignore[operator]
    if type(a) is type(b) and isinstance(a, (str, list)):
        return a + b  # type: ignore[operator]
    if isinstance(a, dict) and isinstance(b, dict):
        return {**a, **b}
    raise JqError(f"{_desc(a)} and {_desc(b)} cannot be added")


def _subtract(a: object, b: object) -> object:
    if _is_num(a) and _is_num(b):
        return a - b  # type: ignore[operator]
    if isinstance(a, list) and isinstance(b, list):
        return [x for x in a if not any(_equal(x, y) for y in b)]
    raise JqError(f"{_desc(a)} and {_desc(b)} cannot be subtracted")


def _multiply(a: object, b: object) -> object:
    if _is_num(a) and _is_num(b):
        return a * b  # type: ignore[operator]
    if isinstance(a, dict) and isinstance(b, dict):
        return _deep_merge(a, b)
    if isinstance(b, str) and _is_num(a):
        a, b = b, a
    if isinstance(a, str) and _is_num(b):
        if b != b or b < 0:  # type: ignore[operator]
            return None
        count = int(min(b, 2**31))  # type: ignore[type-var]
        if len(a) * count >= 2**28:
            raise JqError(f"repeat string result too large: {_brief(a)} * {_num_text(b)}")  # type: ignore[arg-type]
        return a * count
    raise JqError(f"{_desc(a)} and {_desc(b)} cannot be multiplied")


def _deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            v = _deep_merge(out[k], v)
        out[k] = v
    return out


def _divide(a: object, b: object) -> object:
    if _is_num(a) and _is_num(b):
        if b == 0:
            raise JqError(f"cannot divide {_desc(a)} by: {_desc(b)}")
        if isinstance(a, int) and isinstance(b, int) and a % b == 0:
            return a // b
        try:
            return a / b  # type: ignore[operator]
        except OverflowError:
            return math.copysign(math.inf, a) * math.copysign(1, b)  # type: ignore[arg-type]
    if isinstance(a, str) and isinstance(b, str):
        return _split(a, b) if a else []
    raise JqError(f"{_desc(a)} and {_desc(b)} cannot be divided")


def _modulo(a: object, b: object) -> object:
    if _is_num(a) and _is_num(b):
        if a != a or b != b:
            return math.nan
        x, y = _to_int(a), _to_int(b)  # type: ignore[arg-type]
        if y == 0:
            raise JqError(f"cannot modulo {_desc(a)} by: {_desc(b)}")
        r = abs(x) % abs(y)
        return -r if x < 0 else r  # the sign of the dividend, as in Go and C
    raise JqError(f"{_desc(a)} and {_desc(b)} cannot be divided")


_BINOPS: dict[str, Callable[[object, object], object]] = {
    "+": _add, "-": _subtract, "*": _multiply, "/": _divide, "%": _modulo,
    "==": lambda a, b: _compare(a, b) == 0, "!=": lambda a, b: _compare(a, b) != 0,
    "<": lambda a, b: _compare(a, b) < 0, "<=": lambda a, b: _compare(a, b) <= 0,
    ">": lambda a, b: _compare(a, b) > 0, ">=": lambda a, b: _compare(a, b) >= 0,
}


def _split(s: str, sep: str) -> list:
    return list(s) if sep == "" else s.split(sep)
