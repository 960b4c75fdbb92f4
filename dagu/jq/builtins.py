"""Builtins implemented in Python: the registry, and the builtins that take filters.

Value functions are in builtins_data (arrays, objects, paths, numbers, dates) and builtins_text
(strings, regexes, formats). Importing a builtins module registers its builtins in
evaluate._NATIVE; the prelude module imports them all.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

from dagu.jq.errors import JqError
from dagu.jq.evaluate import (_NATIVE, Native, Stream, _arg_product, _Env, _ev, _extend,
                              _values)
from dagu.jq.paths import Path, _getpath
from dagu.jq.values import _brief, _desc, _equal, _is_num, _sort_key, _truthy


def _native(name: str, arity: int, *, paths: bool = False) -> Callable[[Native], Native]:
    """Register a generator builtin fn(env, v, p, args) getting its arguments as ASTs; `paths`
    says it also works as a path expression (p is then the path of v)."""
    def register(fn: Native) -> Native:
        _NATIVE[(name, arity)] = (fn, paths)
        return fn
    return register


def _function(*names: str, arity: int = 0, last_slowest: bool = False) -> Callable[[Callable], Callable]:
    """Register fn(v, *args) -> value; it runs once per combination of argument outputs, the
    first argument varying slowest (like jq's `def f($a; $b)`), or the last (gojq internals)."""
    def register(fn: Callable) -> Callable:
        def impl(env: _Env, v: object, p: Path | None, args: tuple) -> Stream:
            if last_slowest:
                for values in _arg_product(args[::-1], env, v):
                    yield fn(v, *values[::-1]), None
                return
            for values in _arg_product(args, env, v):
                yield fn(v, *values), None
        for name in names:
            _NATIVE[(name, arity)] = (impl, False)
        return fn
    return register


def _items(v: object) -> list:
    if isinstance(v, list):
        return v
    if isinstance(v, dict):
        return [v[k] for k in sorted(v)]
    raise JqError(f"cannot iterate over {_desc(v)}")


def _need_str(name: str, *values: object) -> None:
    for x in values:
        if not isinstance(x, str):
            raise JqError(f"{name} cannot be applied to: {_desc(x)}")


def _on(kind: str, name: str, fn: Callable[[object], object]) -> Callable[[object], object]:
    """fn behind a check that the input is a number or a string (else `name cannot be applied`)."""
    check = _is_num if kind == "number" else (lambda v: isinstance(v, str))

    def apply(v: object) -> object:
        if not check(v):
            raise JqError(f"{name} cannot be applied to: {_desc(v)}")
        return fn(v)
    return apply


def _thrown(value: object) -> JqError:
    """The error raised by jq's `error(value)`."""
    message = value if isinstance(value, str) else f"{_brief(value)} (not a string)"
    return JqError(message, value, thrown=True)


# -- builtins that take filters: their arguments arrive as ASTs ----------------------------------

@_native("empty", 0, paths=True)
def _empty(env, v, p, args):
    yield from ()


@_native("error", 0, paths=True)
def _error0(env, v, p, args):
    raise _thrown(v)
    yield  # pragma: no cover


@_native("error", 1, paths=True)
def _error1(env, v, p, args):
    for message in _values(args[0], env, v):
        raise _thrown(message)
    yield from ()


@_native("select", 1, paths=True)
def _select(env, v, p, args):
    for c in _values(args[0], env, v):
        if _truthy(c):
            yield v, p


@_native("path", 1)
def _path(env, v, p, args):
    for _, path in _ev(args[0], env, v, ()):
        yield list(path), None


@_native("getpath", 1, paths=True)
def _getpath_native(env, v, p, args):
    for path in _values(args[0], env, v):
        if not isinstance(path, list):
            raise JqError("path must be specified as an array")
        yield _getpath(v, path), (None if p is None else p + tuple(path))


@_native("debug", 0, paths=True)
@_native("stderr", 0, paths=True)
def _passthrough(env, v, p, args):
    yield v, p


@_native("debug", 1, paths=True)
def _debug1(env, v, p, args):
    yield v, p


_OUT, _CALL = object(), object()


def _trampoline(frame: Callable[[object, Path | None], Iterator], v: object, p: Path | None) -> Stream:
    """Run a recursive jq definition without Python recursion: a frame yields (_OUT, pair) for an
    output and (_CALL, pair) to recurse on pair; outputs come in depth-first order."""
    stack = [frame(v, p)]
    while stack:
        try:
            kind, item = next(stack[-1])
        except StopIteration:
            stack.pop()
            continue
        if kind is _OUT:
            yield item
        else:
            stack.append(frame(*item))


@_native("recurse", 0, paths=True)
def _recurse0(env, v, p, args):
    def frame(x, xp):
        yield _OUT, (x, xp)
        if isinstance(x, list):
            for i, child in enumerate(x):
                yield _CALL, (child, _extend(xp, i))
        elif isinstance(x, dict):
            for k in sorted(x):
                yield _CALL, (x[k], _extend(xp, k))
    return _trampoline(frame, v, p)


@_native("recurse", 1, paths=True)
def _recurse1(env, v, p, args):
    def frame(x, xp):
        yield _OUT, (x, xp)
        for pair in _ev(args[0], env, x, xp):
            yield _CALL, pair
    return _trampoline(frame, v, p)


@_native("while", 2, paths=True)
def _while(env, v, p, args):
    cond, update = args

    def frame(x, xp):
        for c in _values(cond, env, x):
            if _truthy(c):
                yield _OUT, (x, xp)
                for pair in _ev(update, env, x, xp):
                    yield _CALL, pair
    return _trampoline(frame, v, p)


@_native("until", 2, paths=True)
def _until(env, v, p, args):
    cond, step = args

    def frame(x, xp):
        for c in _values(cond, env, x):
            if _truthy(c):
                yield _OUT, (x, xp)
            else:
                for pair in _ev(step, env, x, xp):
                    yield _CALL, pair
    return _trampoline(frame, v, p)


def _count(name: str, n: object) -> int | float:
    if not _is_num(n):
        raise JqError(f"{name} count must be a number, not {_desc(n)}")
    if n < 0:  # type: ignore[operator]
        raise JqError(f"{name} doesn't support negative count")
    return n  # type: ignore[return-value]


@_native("limit", 2, paths=True)
def _limit(env, v, p, args):
    for n in _values(args[0], env, v):
        n = _count("limit", n)
        if n <= 0:
            continue
        for i, pair in enumerate(_ev(args[1], env, v, p), 1):
            yield pair
            if i >= n:
                break


@_native("skip", 2, paths=True)
def _skip(env, v, p, args):
    for n in _values(args[0], env, v):
        n = _count("skip", n)
        for i, pair in enumerate(_ev(args[1], env, v, p)):
            if i >= n:
                yield pair


@_native("first", 1, paths=True)
def _first(env, v, p, args):
    for pair in _ev(args[0], env, v, p):
        yield pair
        return


@_native("last", 1, paths=True)
def _last(env, v, p, args):
    last = None
    for pair in _ev(args[0], env, v, p):
        last = pair
    if last is not None:
        yield last


@_native("nth", 2, paths=True)
def _nth(env, v, p, args):
    for n in _values(args[0], env, v):
        n = _count("nth", n)
        for i, pair in enumerate(_ev(args[1], env, v, p)):
            if i >= n:
                yield pair
                break


@_native("isempty", 1)
def _isempty(env, v, p, args):
    for _ in _ev(args[0], env, v, None):
        yield False, None
        return
    yield True, None


@_native("any", 2)
def _any2(env, v, p, args):
    for x in _values(args[0], env, v):
        if any(_truthy(c) for c in _values(args[1], env, x)):
            yield True, None
            return
    yield False, None


@_native("all", 2)
def _all2(env, v, p, args):
    for x in _values(args[0], env, v):
        if not all(_truthy(c) for c in _values(args[1], env, x)):
            yield False, None
            return
    yield True, None


def _range(start: object, end: object, step: object) -> Stream:
    for x in (start, end, step):
        if not _is_num(x):
            raise JqError(f"range cannot be applied to: {_desc(x)}")
    x = start
    while (step > 0 and x < end) or (step < 0 and x > end):  # type: ignore[operator]
        yield x, None
        x += step  # type: ignore[operator]


@_native("range", 1)
def _range1(env, v, p, args):
    for end in _values(args[0], env, v):
        yield from _range(0, end, 1)


@_native("range", 2)
def _range2(env, v, p, args):
    for start, end in _arg_product(args, env, v):
        yield from _range(start, end, 1)


@_native("range", 3)
def _range3(env, v, p, args):
    for start, end, step in _arg_product(args, env, v):
        yield from _range(start, end, step)


def _keyed(env: _Env, v: object, f: tuple, name: str) -> list[tuple[list, object]]:
    """(sort key, item) for each array item; the key is `[f]` as in jq's `*_by` functions."""
    if not isinstance(v, list):
        raise JqError(f"{name} cannot be applied to: {_desc(v)}")
    pairs = [(list(_values(f, env, item)), item) for item in v]
    pairs.sort(key=lambda pair: _sort_key(pair[0]))
    return pairs


def _groups(pairs: list[tuple[list, object]]) -> list[list]:
    groups: list[list] = []
    previous: object = None
    for key, item in pairs:
        if not groups or not _equal(key, previous):
            groups.append([])
        groups[-1].append(item)
        previous = key
    return groups


@_native("sort_by", 1)
def _sort_by(env, v, p, args):
    yield [item for _, item in _keyed(env, v, args[0], "sort_by")], None


@_native("group_by", 1)
def _group_by(env, v, p, args):
    yield _groups(_keyed(env, v, args[0], "group_by")), None


@_native("unique_by", 1)
def _unique_by(env, v, p, args):
    yield [group[0] for group in _groups(_keyed(env, v, args[0], "unique_by"))], None


@_native("min_by", 1)
def _min_by(env, v, p, args):
    pairs = _keyed(env, v, args[0], "min_by")
    yield (pairs[0][1] if pairs else None), None


@_native("max_by", 1)
def _max_by(env, v, p, args):
    pairs = _keyed(env, v, args[0], "max_by")
    yield (pairs[-1][1] if pairs else None), None
