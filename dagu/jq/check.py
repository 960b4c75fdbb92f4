"""Checker: undefined names are errors before the query runs (as in jq and gojq)."""
from __future__ import annotations

from collections.abc import Iterator

from dagu.jq.errors import _CompileError
from dagu.jq.evaluate import _EVAL, _NATIVE
from dagu.jq.prelude import _PRELUDE_ENV


def _nodes_in(item: object) -> Iterator[tuple]:
    if isinstance(item, tuple) and item:
        if isinstance(item[0], str) and item[0] in _EVAL:
            yield item
        else:
            for sub in item:
                yield from _nodes_in(sub)


def _pattern_vars(pattern: tuple) -> set[str]:
    kind = pattern[0]
    if kind == "pvar":
        return {pattern[1]}
    if kind == "pboth":
        return {pattern[1]} | _pattern_vars(pattern[2])
    items = pattern[1] if kind == "parray" else [sub for _, sub in pattern[1]]
    return set().union(*(_pattern_vars(sub) for sub in items))


def _pattern_keys(pattern: tuple) -> Iterator[tuple]:
    if pattern[0] == "pobject":
        for key, sub in pattern[1]:
            yield key
            yield from _pattern_keys(sub)
    elif pattern[0] == "parray":
        for sub in pattern[1]:
            yield from _pattern_keys(sub)
    elif pattern[0] == "pboth":
        yield from _pattern_keys(pattern[2])


def _check(node: tuple, names: frozenset, funcs: frozenset) -> None:
    """Raise JqError for a call, `$variable` or `break $label` with nothing defining it in scope."""
    tag = node[0]
    if tag == "missing":
        raise _CompileError('missing query (try ".")')
    if tag == "call":
        key = (node[1], len(node[2]))
        if key not in funcs and key not in _NATIVE and key not in _PRELUDE_ENV.funcs:
            raise _CompileError(f"function not defined: {key[0]}/{key[1]}")
    elif tag == "var" and node[1] not in names:
        raise _CompileError(f"variable not defined: ${node[1]}")
    elif tag == "break" and "*label " + node[1] not in names:
        raise _CompileError(f"label not defined: ${node[1]}")
    if tag == "label":
        _check(node[2], names | {"*label " + node[1]}, funcs)
    elif tag == "def":
        _, name, params, body, rest = node
        funcs = funcs | {(name, len(params))}
        _check(body, names | {p[1:] for p in params if p[0] == "$"},
               funcs | {(p.lstrip("$"), 0) for p in params})
        _check(rest, names, funcs)
    elif tag in ("as", "reduce", "foreach"):
        source, pattern, *scoped = node[1:]
        _check(source, names, funcs)
        for key in _pattern_keys(pattern):
            _check(key, names, funcs)
        bound = names | _pattern_vars(pattern)
        for i, child in enumerate(scoped):
            if child is not None:
                _check(child, names if tag != "as" and i == 0 else bound, funcs)
    elif tag != "lit":
        for item in node[1:]:
            for child in _nodes_in(item):
                _check(child, names, funcs)
