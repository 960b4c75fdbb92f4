"""Builtins on strings: searching, splitting, conversions, regular expressions and @formats."""
from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator

from dagu.jq.builtins import _function, _items, _need_str, _on
from dagu.jq.errors import JqError
from dagu.jq.evaluate import _NATIVE, _arg_product, _Env, _values
from dagu.jq.formats import _FORMATS, _format
from dagu.jq.operators import _split
from dagu.jq.paths import _indices
from dagu.jq.values import _brief, _desc, _dumps, _is_num, _reject_constant, _tostring


@_function("implode")
def _implode(v):
    if not isinstance(v, list) or not all(_is_num(c) for c in v):
        raise JqError(f"implode cannot be applied to: {_desc(v)}")
    return "".join(chr(int(c)) if 0 <= c <= 0x10FFFF and not 0xD800 <= c < 0xE000 else "\ufffd"
                   for c in v)


@_function("ascii")
def _ascii(v):
    if not _is_num(v) or not 0 <= v <= 127:
        raise JqError("ascii only takes integers from 0 to 127")
    return chr(int(v))


@_function("startswith", arity=1)
def _startswith(v, x):
    if not (isinstance(v, str) and isinstance(x, str)):
        raise JqError("startswith() requires string inputs")
    return v.startswith(x)


@_function("endswith", arity=1)
def _endswith(v, x):
    if not (isinstance(v, str) and isinstance(x, str)):
        raise JqError("endswith() requires string inputs")
    return v.endswith(x)


@_function("ltrimstr", arity=1)
def _ltrimstr(v, x):
    _need_str("ltrimstr", v, x)
    return v[len(x):] if x and v.startswith(x) else v


@_function("rtrimstr", arity=1)
def _rtrimstr(v, x):
    _need_str("rtrimstr", v, x)
    return v[:-len(x)] if x and v.endswith(x) else v


@_function("trimstr", arity=1)
def _trimstr(v, x):
    return _rtrimstr(_ltrimstr(v, x), x)


@_function("split", arity=1)
def _split1(v, sep):
    if not (isinstance(v, str) and isinstance(sep, str)):
        raise JqError("split input and separator must be strings")
    return _split(v, sep)


@_function("join", arity=1)
def _join(v, sep):
    if sep is None:
        sep = ""
    if not isinstance(sep, str):
        raise JqError(f"join separator must be a string, not {_desc(sep)}")
    parts = []
    for x in _items(v):
        if x is None:
            parts.append("")
        elif isinstance(x, str):
            parts.append(x)
        elif isinstance(x, (bool, int, float)):
            parts.append(_dumps(x))
        else:
            raise JqError(f"cannot join with {_desc(x)}")
    return sep.join(parts)


@_function("indices", arity=1)
def _indices_fn(v, x):
    return _indices(v, x)


@_function("index", arity=1)
def _index_fn(v, x):
    found = _indices(v, x)
    return found[0] if found else None


@_function("rindex", arity=1)
def _rindex_fn(v, x):
    found = _indices(v, x)
    return found[-1] if found else None


@_function("fromjson")
def _fromjson(v):
    _need_str("fromjson", v)
    try:
        return json.loads(v, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise JqError(f"{_brief(v)} cannot be parsed as JSON: {e.msg}") from None


_ASCII_DOWN = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_ASCII_UP = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}

_SIMPLE: dict[str, Callable[[object], object]] = {
    "tostring": _tostring,
    "tojson": _dumps,
    "utf8bytelength": _on("string", "utf8bytelength", lambda s: len(s.encode("utf-8", "surrogatepass"))),
    "explode": _on("string", "explode", lambda s: [ord(c) for c in s]),
    "ascii_downcase": _on("string", "ascii_downcase", lambda s: s.translate(_ASCII_DOWN)),
    "ascii_upcase": _on("string", "ascii_upcase", lambda s: s.translate(_ASCII_UP)),
    "trim": _on("string", "trim", str.strip),
    "ltrim": _on("string", "ltrim", str.lstrip),
    "rtrim": _on("string", "rtrim", str.rstrip),
}
for _name, _fn in _SIMPLE.items():
    _function(_name)(_fn)
del _name, _fn


# -- regular expressions (Python's re standing in for Oniguruma / Go's regexp) --------------------

@functools.lru_cache(maxsize=128)
def _regex(pattern: str, flags: str) -> tuple[re.Pattern, bool, bool]:
    """(compiled, global, skip empty matches) for a jq regex and flag string."""
    options = 0
    for flag in flags:  # gojq knows g, i and m (dot matches newline); x, s, n, l, p are jq's
        if flag not in "gimxsnlp":
            raise JqError(f"{flags} is not a valid modifier string")
        options |= {"i": re.IGNORECASE, "x": re.VERBOSE, "s": re.DOTALL, "m": re.DOTALL}.get(flag, 0)
    source = re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", pattern)
    try:
        compiled = re.compile(source, options)
    except re.error as e:
        raise JqError(f"{pattern} is not a valid regex: {e}") from None
    return compiled, "g" in flags, "n" in flags


def _matches(v: object, pattern: object, flags: object) -> Iterator[re.Match]:
    if not isinstance(v, str):
        raise JqError(f"{_desc(v)} cannot be matched, as it is not a string")
    if not isinstance(pattern, str):
        raise JqError(f"{_desc(pattern)} cannot be matched, as it is not a string")
    if flags is not None and not isinstance(flags, str):
        raise JqError(f"{_desc(flags)} is not a string")
    compiled, global_, skip_empty = _regex(pattern, flags or "")
    found = compiled.finditer(v) if global_ else filter(None, [compiled.search(v)])
    for m in found:
        if not (skip_empty and m.start() == m.end()):
            yield m


def _match_object(m: re.Match) -> dict:
    names = {index: name for name, index in m.re.groupindex.items()}
    captures = []
    for i in range(1, m.re.groups + 1):
        text = m.group(i)
        captures.append({"offset": m.start(i) if text is not None else -1,
                         "length": len(text) if text is not None else 0,
                         "string": text, "name": names.get(i)})
    return {"offset": m.start(), "length": m.end() - m.start(), "string": m.group(),
            "captures": captures}


def _regex_args(args: tuple, env: _Env, v: object, extra_flags: str = "") -> Iterator[tuple]:
    """(pattern, flags) for each combination of a regex builtin's arguments."""
    for values in _arg_product(args, env, v):
        pattern, flags = values[0], (values[1] if len(values) > 1 else None)
        if extra_flags:
            flags = (flags if isinstance(flags, str) else "") + extra_flags
        yield pattern, flags


@_function("test", arity=1)
@_function("test", arity=2)
def _test(v, pattern, flags=None):
    return next(_matches(v, pattern, flags), None) is not None


def _register_regex_stream(name: str, arities: tuple, to_value: Callable[[re.Match], object],
                           extra_flags: str = "") -> None:
    def impl(env, v, p, args):
        for pattern, flags in _regex_args(args, env, v, extra_flags):
            for m in _matches(v, pattern, flags):
                yield to_value(m), None
    for arity in arities:
        _NATIVE[(name, arity)] = (impl, False)


def _scanned(m: re.Match) -> object:
    return [m.group(i) for i in range(1, m.re.groups + 1)] if m.re.groups else m.group()


_register_regex_stream("match", (1, 2), _match_object)
_register_regex_stream("capture", (1, 2), lambda m: dict(m.groupdict()))
_register_regex_stream("scan", (1, 2), _scanned, extra_flags="g")


@_function("split", arity=2)
def _split2(v, pattern, flags):
    if flags is not None and not isinstance(flags, str):
        raise JqError(f"{_desc(flags)} is not a string")
    pieces, position = [], 0
    for m in _matches(v, pattern, (flags or "") + "g"):
        pieces.append(v[position:m.start()])
        position = m.end()
    pieces.append(v[position:])
    return pieces


def _substitute(env: _Env, v: str, matches: list, replacement: tuple) -> list[str]:
    """gojq's sub: the replacement runs on each match's named captures; its k-th outputs make
    the k-th result; no output at all leaves the string as it is."""
    results: list[str] = []
    position = 0
    for m in matches:
        gap = v[position:m.start()]
        for k, text in enumerate(_values(replacement, env, dict(m.groupdict()))):
            if not isinstance(text, str):
                raise JqError(f"{_desc(text)} cannot be added to a string")
            if k < len(results):
                results[k] += gap + text
            else:
                results.append(gap + text)
        position = m.end()
    return [r + v[position:] for r in results] or [v]


def _register_sub(name: str, global_: bool) -> None:
    def impl(env, v, p, args):
        pattern_args = (args[0],) + args[2:]
        for pattern, flags in _regex_args(pattern_args, env, v, "g" if global_ else ""):
            matches = list(_matches(v, pattern, flags))
            for text in _substitute(env, v, matches, args[1]):  # type: ignore[arg-type]
                yield text, None
    _NATIVE[(name, 2)] = (impl, False)
    _NATIVE[(name, 3)] = (impl, False)


_register_sub("sub", False)
_register_sub("gsub", True)


@_function("format", arity=1)
def _format_fn(v, name):
    _need_str("format", name)
    if name not in _FORMATS:
        raise JqError(f"format not defined: @{name}")
    return _format(name, v)
