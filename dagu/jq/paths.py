"""Indexing and paths: `v[k]`, slices, getpath, setpath and delpaths (on copies: values are
never mutated)."""
from __future__ import annotations

import math
from collections.abc import Callable

from dagu.jq.errors import JqError
from dagu.jq.values import _brief, _desc, _equal, _is_num, _type

Path = tuple  # keys from the root: strings, integers, {"start": s, "end": e} slices
_MAX_INDEX = 536870912  # gojq's limit on array indices created by assignment


def _to_int(x: int | float) -> int:
    """A number as an integer the way Go converts it: truncated, infinities clamped."""
    if isinstance(x, int):
        return x
    if x != x:
        return 0
    if math.isinf(x):
        return (2**63 - 1) if x > 0 else -(2**63 - 1)
    return int(x)


def _index(v: object, k: object) -> object:
    """`v[k]`: a field, an element (negative counts from the end), a slice object or indices."""
    if isinstance(k, str):
        if v is None:
            return None
        if isinstance(v, dict):
            return v.get(k)
        raise JqError(f'cannot index {_type(v)} with "{k}"')
    if _is_num(k):
        if v is None:
            return None
        if isinstance(v, (list, str)):
            if not math.isfinite(k):  # type: ignore[arg-type]
                return None
            i = _to_int(k)  # type: ignore[arg-type]
            if i < 0:
                i += len(v)
            return v[i] if 0 <= i < len(v) else None
        raise JqError(f"cannot index {_type(v)} with number")
    if isinstance(k, dict) and (v is None or isinstance(v, (list, str))):
        if "start" not in k or "end" not in k:
            raise JqError(f'expected "start" and "end" for slicing but got: {_desc(k)}')
        return _slice(v, k["start"], k["end"])
    if isinstance(k, list) and (v is None or isinstance(v, list)):
        return _indices(v, k)
    raise JqError(f"cannot index {_type(v)} with {_type(k)}")


def _slice_bounds(n: int, low: object, high: object) -> tuple[int, int]:
    """[start, end) of a slice of n items: fractions widen it (start down, end up), negative
    bounds count from the end, everything is clamped to the sequence."""
    def clamp(x: object, default: int, rounding: Callable[[float], int]) -> int:
        if x is None:
            return default
        if not _is_num(x):
            raise JqError("start and end indices of an array slice must be numbers")
        if x != x:
            return 0
        if math.isinf(x):  # type: ignore[arg-type]
            return 0 if x < 0 else n  # type: ignore[operator]
        i = rounding(x)  # type: ignore[arg-type]
        if i < 0:
            i = max(0, i + n)
        return min(i, n)

    start = clamp(low, 0, math.floor)
    return start, max(start, clamp(high, n, math.ceil))


def _slice(v: object, low: object, high: object) -> object:
    if v is None:
        return None
    if not isinstance(v, (list, str)):
        raise JqError(f"cannot index {_type(v)} with object")
    start, end = _slice_bounds(len(v), low, high)
    return v[start:end]


def _getpath(v: object, path: Path | list) -> object:
    for k in path:
        if v is None:
            return None
        v = _index(v, k)
    return v


def _setpath(v: object, path: Path | list, i: int, x: object) -> object:
    """A copy of v with x at path[i:] (containers are created for null; nothing is mutated)."""
    if i == len(path):
        return x
    k = path[i]
    if isinstance(k, str):
        if v is None:
            v = {}
        elif not isinstance(v, dict):
            raise JqError(f'cannot index {_type(v)} with "{k}"')
        out = dict(v)
        out[k] = _setpath(v.get(k), path, i + 1, x)
        return out
    if _is_num(k):
        if v is None:
            v = []
        elif not isinstance(v, list):
            raise JqError(f"cannot index {_type(v)} with number")
        idx = _to_int(k)  # type: ignore[arg-type]
        if idx < 0:
            idx += len(v)
            if idx < 0:
                raise JqError("out of bounds negative array index")
        if idx >= _MAX_INDEX:
            raise JqError("array index too large")
        items = list(v)
        if idx >= len(items):
            items.extend([None] * (idx + 1 - len(items)))
        items[idx] = _setpath(items[idx], path, i + 1, x)
        return items
    if isinstance(k, dict):
        if v is None:
            v = []
        elif not isinstance(v, list):
            raise JqError(f"cannot update a slice of {_type(v)}")
        start, end = _slice_bounds(len(v), k.get("start"), k.get("end"))
        new = _setpath(v[start:end], path, i + 1, x)
        if not isinstance(new, list):
            raise JqError("a slice of an array can only be assigned another array")
        return v[:start] + new + v[end:]
    raise JqError(f"invalid path component {_brief(k)}")


_DELETED = object()  # marks what delpaths removes, so every path refers to the original value


def _delpaths(v: object, paths: list) -> object:
    if not isinstance(paths, list):
        raise JqError("paths must be specified as an array")
    for path in paths:
        if not isinstance(path, list):
            raise JqError("path must be specified as an array")
        if not path:
            return None
        v = _mark(v, path, 0)
    return _sweep(v)


def _mark(v: object, path: list, i: int) -> object:
    """A copy of v with the value at path replaced by _DELETED (unchanged if it is absent)."""
    if v is None or v is _DELETED:
        return v
    k, last = path[i], i == len(path) - 1
    if isinstance(k, str):
        if not isinstance(v, dict):
            raise JqError(f'cannot delete field "{k}" of {_type(v)}')
        if k not in v:
            return v
        out = dict(v)
        out[k] = _DELETED if last else _mark(v[k], path, i + 1)
        return out
    if not isinstance(v, list):
        raise JqError(f"cannot delete {_type(k)} index of {_type(v)}")
    if _is_num(k):
        idx = _to_int(k)
        if idx < 0:
            idx += len(v)
        if not 0 <= idx < len(v):
            return v
        items = list(v)
        items[idx] = _DELETED if last else _mark(v[idx], path, i + 1)
        return items
    if isinstance(k, dict):
        start, end = _slice_bounds(len(v), k.get("start"), k.get("end"))
        middle = [_DELETED] * (end - start) if last else _mark(v[start:end], path, i + 1)
        return v[:start] + middle + v[end:]  # type: ignore[operator]
    raise JqError(f"invalid path component {_brief(k)}")


def _sweep(v: object) -> object:
    """v without the _DELETED marks; untouched containers are returned as they are."""
    if isinstance(v, list):
        items = [_sweep(x) for x in v if x is not _DELETED]
        same = len(items) == len(v) and all(a is b for a, b in zip(items, v))
        return v if same else items
    if isinstance(v, dict):
        out = {k: _sweep(x) for k, x in v.items() if x is not _DELETED}
        same = len(out) == len(v) and all(out[k] is v[k] for k in out)
        return v if same else out
    return v


def _indices(v: object, x: object) -> object:
    if v is None:
        return None
    if isinstance(v, str) and isinstance(x, str):
        if not x:
            return []
        found, i = [], v.find(x)
        while i >= 0:
            found.append(i)
            i = v.find(x, i + 1)
        return found
    if isinstance(v, list):
        if not isinstance(x, list):
            return [i for i, y in enumerate(v) if _equal(y, x)]
        if not x:
            return []
        n = len(x)
        return [i for i in range(len(v) - n + 1) if all(_equal(v[i + j], x[j]) for j in range(n))]
    raise JqError(f"cannot determine the indices of {_desc(x)} in {_desc(v)}")
