"""Values: type names, truthiness, jq's total order, JSON text."""
from __future__ import annotations

import functools
import math
import re
from decimal import Decimal

from dagu.jq.errors import JqError

_ORDER = {"null": 0, "boolean": 1, "number": 2, "string": 3, "array": 4, "object": 5}
_MAX_FLOAT = 1.7976931348623157e308


def _type(v: object) -> str:
    if v is None:
        return "null"
    if v is True or v is False:
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    raise JqError(f"not a JSON value: {type(v).__name__}")


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _truthy(v: object) -> bool:
    return not (v is None or v is False)


def _compare(a: object, b: object) -> int:
    """jq ordering: null < false < true < numbers < strings < arrays < objects."""
    ta, tb = _type(a), _type(b)
    if ta != tb:
        return -1 if _ORDER[ta] < _ORDER[tb] else 1
    if ta == "array":
        for x, y in zip(a, b):  # type: ignore[call-overload]
            c = _compare(x, y)
            if c:
                return c
        return (len(a) > len(b)) - (len(a) < len(b))  # type: ignore[arg-type]
    if ta == "object":
        ka, kb = sorted(a), sorted(b)  # type: ignore[call-overload]
        if ka != kb:
            return _compare(ka, kb)
        for k in ka:
            c = _compare(a[k], b[k])  # type: ignore[index]
            if c:
                return c
        return 0
    if ta == "null":
        return 0
    if ta == "number" and (a != a or b != b):
        return -1 if a != a else 1  # NaN is below every number, itself included (as in gojq)
    return (a > b) - (a < b)  # type: ignore[operator]


_sort_key = functools.cmp_to_key(_compare)


def _equal(a: object, b: object) -> bool:
    return _compare(a, b) == 0


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                  "\t": "\\t"}
_JQ_ESCAPED = re.compile('[\x00-\x1f"\\\\\x7f\ud800-\udfff]')  # gojq's encoder
_GO_ESCAPED = re.compile('[\x00-\x1f"\\\\<>&\u2028\u2029\ud800-\udfff]')  # Go encoding/json


def _escape_char(m: re.Match) -> str:
    c = m.group()
    short = _SHORT_ESCAPES.get(c)
    if short:
        return short
    if "\ud800" <= c <= "\udfff":
        return "\\ufffd"
    return "\\u%04x" % ord(c)


def _fixed(x: float) -> str:
    """Shortest round-trip digits of x without an exponent (Go's 'f' format, precision -1)."""
    text = format(Decimal(repr(x)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _num_text(x: int | float) -> str:
    """A number as gojq and Go's encoding/json write it: 30.0 -> 30, 1e21 -> 1e+21, 1e-7 -> 1e-7."""
    if isinstance(x, int):
        return str(x)
    if x != x:
        return "null"
    if math.isinf(x):
        x = math.copysign(_MAX_FLOAT, x)
    a = abs(x)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        return re.sub(r"e-0(\d)$", r"e-\1", repr(x))
    return _fixed(x)


def _dumps(v: object, indent: str | None = None, go: bool = False) -> str:
    """JSON text with sorted keys: compact like gojq's `tojson`, or indented; `go` adds Go
    encoding/json's HTML escaping of <, > and & (what Dagu's output goes through)."""
    out: list[str] = []
    _encode(v, out, _GO_ESCAPED if go else _JQ_ESCAPED, indent, "\n")
    return "".join(out)


def _encode(v: object, out: list[str], escaped: re.Pattern, indent: str | None, nl: str) -> None:
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, str):
        out.append('"' + escaped.sub(_escape_char, v) + '"')
    elif isinstance(v, (int, float)):
        out.append(_num_text(v))
    elif isinstance(v, (list, dict)):
        if not v:
            out.append("[]" if isinstance(v, list) else "{}")
            return
        child = None if indent is None else nl + indent
        out.append("[" if isinstance(v, list) else "{")
        for i, item in enumerate(sorted(v) if isinstance(v, dict) else v):
            if i:
                out.append(",")
            if child:
                out.append(child)
            if isinstance(v, dict):
                out.append('"' + escaped.sub(_escape_char, item) + ('": ' if child else '":'))
                item = v[item]
            _encode(item, out, escaped, indent, child or nl)
        if child:
            out.append(nl)
        out.append("]" if isinstance(v, list) else "}")
    else:
        raise JqError(f"not a JSON value: {type(v).__name__}")


def _brief(v: object) -> str:
    text = _dumps(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _desc(v: object) -> str:
    return f"{_type(v)} ({_brief(v)})"


def _tostring(v: object) -> str:
    return v if isinstance(v, str) else _dumps(v)


def _reject_constant(name: str) -> object:
    raise JqError(f"{name} is not valid JSON")
