"""Builtins on arrays, objects, paths, numbers and dates."""
from __future__ import annotations

import calendar
import math
import re
import time
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from dagu.jq.builtins import _function, _items, _need_str, _on
from dagu.jq.errors import JqError
from dagu.jq.operators import _add
from dagu.jq.paths import _delpaths, _setpath
from dagu.jq.values import _brief, _desc, _dumps, _equal, _is_num, _sort_key, _truthy, _type


@_function("length")
def _length(v):
    if v is None:
        return 0
    if v is True or v is False:
        raise JqError(f"{_desc(v)} has no length")
    if _is_num(v):
        return abs(v)
    return len(v)


@_function("keys", "keys_unsorted")
def _keys(v):
    if isinstance(v, dict):
        return sorted(v)
    if isinstance(v, list):
        return list(range(len(v)))
    raise JqError(f"{_desc(v)} has no keys")


@_function("has", arity=1)
def _has(v, k):
    if isinstance(v, dict) and isinstance(k, str):
        return k in v
    if isinstance(v, list) and _is_num(k):
        return 0 <= k < len(v)
    if v is None:
        return False
    raise JqError(f"cannot check whether {_type(v)} has a {_type(k)} key")


def _contained(v: object, x: object) -> bool:
    """contains() inside containers, where a type mismatch is just false."""
    try:
        return _contains(v, x)
    except JqError:
        return False


@_function("contains", arity=1)
def _contains(v, x):
    if isinstance(v, dict) and isinstance(x, dict):
        return all(k in v and _contained(v[k], y) for k, y in x.items())
    if isinstance(v, list) and isinstance(x, list):
        return all(any(_contained(item, y) for item in v) for y in x)
    if isinstance(v, str) and isinstance(x, str):
        return x in v
    if _is_num(v) and _is_num(x):
        return _equal(v, x)
    if _type(v) == _type(x) and _equal(v, x):  # equal nulls or booleans; unequal ones are errors
        return True
    raise JqError(f"{_desc(v)} and {_desc(x)} cannot have their containment checked")


@_function("add")
def _add_all(v):
    if v is None:
        return None
    items = _items(v)
    if items and all(isinstance(x, str) for x in items):
        return "".join(items)
    total = None
    for x in items:
        total = _add(total, x)
    return total


def _cbrt(x: float) -> float:
    """Cube root, corrected to the nearest float (C's cbrt may be one unit off)."""
    r = math.cbrt(x)
    if not math.isfinite(r) or r == 0:
        return r
    candidates = (r, math.nextafter(r, math.inf), math.nextafter(r, -math.inf))
    return min(candidates, key=lambda c: abs(Fraction(c) ** 3 - Fraction(x)))


def _round(x: float) -> float:
    """Go's math.Round: halves away from zero."""
    return float(Decimal(x).quantize(Decimal(1), rounding=ROUND_HALF_UP))


_MATH = {
    "floor": math.floor, "ceil": math.ceil, "round": _round, "trunc": math.trunc,
    "fabs": math.fabs, "sqrt": math.sqrt, "cbrt": _cbrt,
    "exp": math.exp, "exp2": lambda x: 2.0 ** x, "exp10": lambda x: 10.0 ** x, "log": math.log,
    "log2": math.log2, "log10": math.log10, "log1p": math.log1p, "expm1": math.expm1,
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin, "acos": math.acos,
    "atan": math.atan, "sinh": math.sinh, "cosh": math.cosh, "tanh": math.tanh,
}


def _math_function(name: str, fn: Callable[[float], float]) -> None:
    def apply(v):
        if not _is_num(v):
            raise JqError(f"{name} cannot be applied to: {_desc(v)}")
        x = float(v)
        if not math.isfinite(x) and name in ("floor", "ceil", "round", "trunc"):
            return x
        try:
            return float(fn(x))
        except OverflowError:
            return math.inf
        except ValueError:  # outside the function's domain: log(0) is -inf, the rest NaN
            return -math.inf if name.startswith("log") and x == 0 else math.nan
    _function(name)(apply)


for _name, _fn in _MATH.items():
    _math_function(_name, _fn)
del _name, _fn


@_function("pow", arity=2, last_slowest=True)
def _pow(v, a, b):
    if not (_is_num(a) and _is_num(b)):
        raise JqError(f"pow cannot be applied to: {_desc(a)}, {_desc(b)}")
    try:
        return math.pow(a, b)
    except OverflowError:
        return math.inf
    except ValueError:
        return math.nan


@_function("isnan")
def _isnan(v):
    if v is not None and not _is_num(v):
        raise JqError(f"isnan cannot be applied to: {_desc(v)}")
    return v is not None and v != v


_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@_function("tonumber")
def _tonumber(v):
    if _is_num(v):
        return v
    if isinstance(v, str):
        if not _NUMBER_TEXT.fullmatch(v):
            raise JqError(f"tonumber cannot be applied to {_brief(v)}: invalid number")
        return float(v) if any(c in v for c in ".eE") else int(v)
    raise JqError(f"tonumber cannot be applied to: {_desc(v)}")


@_function("toboolean")
def _toboolean(v):
    if v is True or v is False:
        return v
    if isinstance(v, str):
        if v in ("true", "false"):
            return v == "true"
        raise JqError(f"toboolean cannot be applied to {_brief(v)}: invalid boolean")
    raise JqError(f"toboolean cannot be applied to: {_desc(v)}")


@_function("sort")
def _sort(v, name: str = "sort"):
    if not isinstance(v, list):
        raise JqError(f"{name} cannot be applied to: {_desc(v)}")
    return sorted(v, key=_sort_key)


@_function("unique")
def _unique(v):
    out: list = []
    for x in _sort(v, "unique"):
        if not out or not _equal(out[-1], x):
            out.append(x)
    return out


@_function("min")
def _min(v):
    ordered = _sort(v, "min")
    return ordered[0] if ordered else None


@_function("max")
def _max(v):
    ordered = _sort(v, "max")  # stable, so the last of equal maxima wins, as in jq
    return ordered[-1] if ordered else None


@_function("reverse")
def _reverse(v):
    if v is None:
        return []
    if isinstance(v, (list, str)):
        return v[::-1]
    raise JqError(f"reverse cannot be applied to: {_desc(v)}")


def _flatten(v: object, depth: float) -> list:
    if not isinstance(v, (list, dict)):
        raise JqError(f"flatten cannot be applied to: {_desc(v)}")
    out: list = []
    for x in _items(v):
        if isinstance(x, list) and depth != 0:
            out.extend(_flatten(x, depth - 1))
        else:
            out.append(x)
    return out


@_function("flatten", arity=1)
def _flatten1(v, depth):
    if not _is_num(depth) or depth < 0:
        raise JqError("flatten depth must not be negative")
    return _flatten(v, depth)


@_function("transpose")
def _transpose(v):
    if not isinstance(v, list) or not all(isinstance(row, list) for row in v):
        raise JqError(f"transpose cannot be applied to: {_desc(v)}")
    width = max((len(row) for row in v), default=0)
    return [[row[i] if i < len(row) else None for row in v] for i in range(width)]


@_function("setpath", arity=2, last_slowest=True)
def _setpath_fn(v, path, x):
    if not isinstance(path, list):
        raise JqError("path must be specified as an array")
    return _setpath(v, path, 0, x)


@_function("delpaths", arity=1)
def _delpaths_fn(v, paths):
    return _delpaths(v, paths)


@_function("from_entries")
def _from_entries(v):
    out = {}
    for entry in _items(v):
        if not isinstance(entry, dict):
            raise JqError(f"from_entries cannot be applied to an entry {_desc(entry)}")
        key = next((entry[k] for k in ("key", "Key", "name", "Name", "k", "K") if _truthy(entry.get(k))),
                   entry.get("key"))
        if isinstance(key, (bool, int, float)):
            key = _dumps(key)
        elif not isinstance(key, str):
            raise JqError(f"object keys must be strings, not {_desc(key)}")
        out[key] = entry["value"] if "value" in entry else entry.get("Value", entry.get("v"))
    return out


_ISO8601 = "%Y-%m-%dT%H:%M:%SZ"


def _broken_down(v: object, name: str) -> time.struct_time:
    """A time from seconds since the epoch or jq's broken-down array [Y, M-1, D, h, m, s, ...]."""
    if _is_num(v):
        return time.gmtime(math.floor(v))
    if isinstance(v, list) and len(v) >= 6 and all(_is_num(x) for x in v[:6]):
        y, mo, d, h, mi, s = (int(x) for x in v[:6])
        return time.gmtime(calendar.timegm((y, mo + 1, d, h, mi, s, 0, 0, 0)))
    raise JqError(f"{name} cannot be applied to: {_desc(v)}")


@_function("todateiso8601")
def _todate(v):
    return time.strftime(_ISO8601, _broken_down(v, "todate"))


@_function("fromdateiso8601")
def _fromdate(v):
    _need_str("fromdate", v)
    try:
        return calendar.timegm(time.strptime(v, _ISO8601))
    except ValueError:
        raise JqError(f'date {_brief(v)} does not match format "{_ISO8601}"') from None


@_function("gmtime")
def _gmtime(v):
    if not _is_num(v):
        raise JqError(f"gmtime cannot be applied to: {_desc(v)}")
    t = time.gmtime(math.floor(v))
    seconds = t.tm_sec + (v - math.floor(v))
    return [t.tm_year, t.tm_mon - 1, t.tm_mday, t.tm_hour, t.tm_min, seconds,
            (t.tm_wday + 1) % 7, t.tm_yday - 1]


@_function("mktime")
def _mktime(v):
    return calendar.timegm(_broken_down(v, "mktime"))


@_function("strftime", arity=1)
def _strftime(v, fmt):
    _need_str("strftime", fmt)
    return time.strftime(fmt, _broken_down(v, "strftime"))


_SIMPLE: dict[str, Callable[[object], object]] = {
    "not": lambda v: not _truthy(v),
    "type": _type,
    "any": lambda v: any(_truthy(x) for x in _items(v)),
    "all": lambda v: all(_truthy(x) for x in _items(v)),
    "flatten": lambda v: _flatten(v, math.inf),
    "infinite": lambda v: math.inf,
    "nan": lambda v: math.nan,
    "isinfinite": lambda v: _is_num(v) and math.isinf(v),
    "isfinite": lambda v: _is_num(v) and not math.isinf(v),
    "isnormal": lambda v: _is_num(v) and math.isfinite(v) and abs(v) >= 2.2250738585072014e-308,
    "abs": _on("number", "abs", abs),
    "env": lambda v: {},  # Dagu gives gojq no environment
    "input_filename": lambda v: None,
    "now": lambda v: time.time(),
}
for _name, _fn in _SIMPLE.items():
    _function(_name)(_fn)
del _name, _fn
