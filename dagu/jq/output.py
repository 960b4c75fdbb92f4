"""Printing results Dagu's way: JSON indented by four spaces, or raw text as Go prints it."""
from __future__ import annotations

import math
from decimal import Decimal

from dagu.jq.errors import JqError
from dagu.jq.values import _dumps, _fixed


def format_result(value: object, raw: bool = False) -> str:
    """One result as Dagu prints it (without the newline): JSON indented by four spaces with
    sorted keys; raw: strings bare, null empty, numbers and booleans as Go prints them,
    arrays and objects compact."""
    try:
        return _format_result(value, raw)
    except RecursionError:
        raise JqError("result nested too deeply to print") from None


def _format_result(value: object, raw: bool) -> str:
    if not raw:
        return _dumps(value, "    ", go=True)
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float_text(value)
    return _dumps(value, go=True)


def _go_float_text(x: float) -> str:
    """A float as Go's fmt prints it with %v (shortest digits, exponent from 1e+06 and below 1e-04)."""
    if x != x:
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    sign, digits, exponent = Decimal(repr(x)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0")
    e10 = len(digits) + int(exponent) - 1
    if -4 <= e10 < 6:
        return _fixed(x)
    mantissa = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{'-' if e10 < 0 else '+'}{abs(e10):02d}"
