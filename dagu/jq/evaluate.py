"""Evaluator: each AST tag has a generator of `(value, path)` pairs.

The path is None unless the node is evaluated as a path expression (for `path(f)`, `|=`, `del`
...): then it is the path of the value from the root. The builtins implemented in Python are in
_NATIVE, which the builtins modules fill in as they are imported.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

from dagu.jq.errors import JqError, _Break
from dagu.jq.formats import _format
from dagu.jq.operators import _BINOPS
from dagu.jq.paths import Path, _delpaths, _getpath, _index, _setpath, _slice
from dagu.jq.values import _brief, _desc, _is_num, _truthy, _type

Stream = Iterator[tuple[object, "Path | None"]]


class _Env:
    """One scope: variables (and labels, as "*label name") and functions keyed by (name, arity)."""

    __slots__ = ("parent", "vars", "funcs")

    def __init__(self, parent: _Env | None, vars: dict | None = None, funcs: dict | None = None) -> None:
        self.parent = parent
        self.vars = vars
        self.funcs = funcs


class _Closure:
    """A filter argument: its AST and the caller's scope."""

    __slots__ = ("node", "env")

    def __init__(self, node: tuple, env: _Env) -> None:
        self.node = node
        self.env = env


class _FuncDef:
    """A jq `def`: parameter names (`f` filters, `$x` values), body, and the defining scope."""

    __slots__ = ("params", "body", "env")

    def __init__(self, params: tuple, body: tuple, env: _Env) -> None:
        self.params = params
        self.body = body
        self.env = env


def _lookup_var(env: _Env | None, name: str) -> object:
    while env is not None:
        if env.vars is not None and name in env.vars:
            return env.vars[name]
        env = env.parent
    raise JqError(f"variable not defined: ${name}")


def _lookup_func(env: _Env | None, key: tuple[str, int]) -> _Closure | _FuncDef | None:
    while env is not None:
        if env.funcs is not None:
            found = env.funcs.get(key)
            if found is not None:
                return found
        env = env.parent
    return None


def _ev(node: tuple, env: _Env, v: object, p: Path | None) -> Stream:
    if p is not None and node[0] not in _PATH_TAGS:
        return _not_a_path(_EVAL[node[0]](node, env, v, None))
    return _EVAL[node[0]](node, env, v, p)


def _not_a_path(stream: Stream) -> Stream:
    for x, _ in stream:
        raise JqError(f"invalid path expression with result {_brief(x)}")
    yield from ()


def _values(node: tuple, env: _Env, v: object) -> Iterator[object]:
    for x, _ in _ev(node, env, v, None):
        yield x


def _arg_product(args: tuple, env: _Env, v: object) -> Iterator[tuple]:
    """Every combination of the arguments' outputs, the first argument varying slowest."""
    if not args:
        yield ()
        return
    for x, _ in _ev(args[0], env, v, None):
        for rest in _arg_product(args[1:], env, v):
            yield (x,) + rest


def _ev_id(node, env, v, p):
    yield v, p


def _ev_lit(node, env, v, p):
    yield node[1], None


def _ev_var(node, env, v, p):
    yield _lookup_var(env, node[1]), None


def _extend(p: Path | None, key: object) -> Path | None:
    return None if p is None else p + (key,)


def _ev_index(node, env, v, p):
    """`t[k]` (and `t.k`); the key varies slowest, as in gojq. Optional (`t[k]?`) drops the
    indexing errors only, one target output at a time."""
    _, target, key, optional = node
    keys = (key[1],) if key[0] == "lit" else _values(key, env, v)
    for k in keys:
        for t, tp in _ev(target, env, v, p):
            try:
                x = _index(t, k)
            except JqError:
                if optional:
                    continue
                raise
            yield x, _extend(tp, k)


def _optional_values(node: tuple | None, env: _Env, v: object) -> Iterator[object]:
    if node is None:
        yield None
    else:
        yield from _values(node, env, v)


def _ev_slice(node, env, v, p):
    _, target, low, high, optional = node
    for lo in _optional_values(low, env, v):
        for hi in _optional_values(high, env, v):
            for t, tp in _ev(target, env, v, p):
                try:
                    x = _slice(t, lo, hi)
                except JqError:
                    if optional:
                        continue
                    raise
                yield x, _extend(tp, {"start": lo, "end": hi})


def _ev_iter(node, env, v, p):
    _, target, optional = node
    for t, tp in _ev(target, env, v, p):
        if isinstance(t, list):
            for i, x in enumerate(t):
                yield x, _extend(tp, i)
        elif isinstance(t, dict):
            for k in sorted(t):
                yield t[k], _extend(tp, k)
        elif not optional:
            raise JqError(f"cannot iterate over {_desc(t)}")


def _ev_pipe(node, env, v, p):
    for x, xp in _ev(node[1], env, v, p):
        yield from _ev(node[2], env, x, xp)


def _ev_comma(node, env, v, p):
    yield from _ev(node[1], env, v, p)
    yield from _ev(node[2], env, v, p)


def _ev_unary(node, env, v, p):
    _, sign, term = node
    for x in _values(term, env, v):
        if not _is_num(x):
            raise JqError(f"cannot {'negate' if sign == '-' else 'apply unary plus to'} {_desc(x)}")
        yield (-x if sign == "-" else x), None


def _ev_binop(node, env, v, p):
    _, op, left, right = node
    fn = _BINOPS[op]
    for r in _values(right, env, v):  # the right operand varies slowest, as in jq
        for lv in _values(left, env, v):
            yield fn(lv, r), None


def _ev_and(node, env, v, p):
    for lv in _values(node[1], env, v):
        if not _truthy(lv):
            yield False, None
            continue
        for r in _values(node[2], env, v):
            yield _truthy(r), None


def _ev_or(node, env, v, p):
    for lv in _values(node[1], env, v):
        if _truthy(lv):
            yield True, None
            continue
        for r in _values(node[2], env, v):
            yield _truthy(r), None


def _ev_alt(node, env, v, p):
    """`a // b`: the truthy outputs of a (its errors ignored), else all outputs of b."""
    found = False
    try:
        for x, xp in _ev(node[1], env, v, p):
            if _truthy(x):
                found = True
                yield x, xp
    except JqError:
        pass
    if not found:
        yield from _ev(node[2], env, v, p)


def _ev_if(node, env, v, p):
    _, cond, then, other = node
    for c in _values(cond, env, v):
        yield from _ev(then if _truthy(c) else other, env, v, p)


def _ev_try(node, env, v, p):
    """`try body catch handler`: the body's outputs up to its first error, then the handler's."""
    _, body, handler = node
    caught = None
    try:
        for x in _ev(body, env, v, p):
            yield x
    except JqError as e:
        caught = e
    if caught is not None and handler is not None:
        stream = _ev(handler, env, caught.value, None)
        yield from stream if p is None else _not_a_path(stream)


def _ev_reduce(node, env, v, p):
    """The state becomes the update's last output (it stays put when the update is empty)."""
    _, source, pattern, init, update = node
    for state in _ev(init, env, v, p):
        for x in _values(source, env, v):
            for bound in _destructure(pattern, x, env):
                for out in _ev(update, _Env(env, bound), state[0], state[1]):
                    state = out
        yield state


def _ev_foreach(node, env, v, p):
    """Like reduce, but every update output is emitted (through extract when given)."""
    _, source, pattern, init, update, extract = node
    for state in _ev(init, env, v, p):
        for x in _values(source, env, v):
            for bound in _destructure(pattern, x, env):
                scope = _Env(env, bound)
                for out in _ev(update, scope, state[0], state[1]):
                    state = out
                    if extract is None:
                        yield out
                    else:
                        yield from _ev(extract, scope, out[0], out[1])


def _ev_as(node, env, v, p):
    _, source, pattern, body = node
    for x in _values(source, env, v):
        for bound in _destructure(pattern, x, env):
            yield from _ev(body, _Env(env, bound), v, p)


def _destructure(pattern: tuple, value: object, env: _Env) -> Iterator[dict]:
    """The variable bindings a pattern makes from a value (several if a key expression forks)."""
    kind = pattern[0]
    if kind == "pvar":
        yield {pattern[1]: value}
    elif kind == "pboth":
        for bound in _destructure(pattern[2], value, env):
            yield {pattern[1]: value, **bound}
    elif kind == "parray":
        if value is not None and not isinstance(value, list):
            raise JqError(f"cannot index {_type(value)} with number")
        yield from _destructure_all([(sub, _index(value, i)) for i, sub in enumerate(pattern[1])], env)
    else:
        yield from _destructure_object(pattern[1], value, env)


def _destructure_all(pairs: list, env: _Env) -> Iterator[dict]:
    if not pairs:
        yield {}
        return
    (pattern, value), rest = pairs[0], pairs[1:]
    for bound in _destructure(pattern, value, env):
        for more in _destructure_all(rest, env):
            yield {**bound, **more}


def _destructure_object(entries: tuple, value: object, env: _Env) -> Iterator[dict]:
    if not entries:
        yield {}
        return
    (key_node, pattern), rest = entries[0], entries[1:]
    for key in _values(key_node, env, value):
        if not isinstance(key, str):
            raise JqError(f"cannot index object with {_type(key)}")
        for bound in _destructure(pattern, _index(value, key), env):
            for more in _destructure_object(rest, value, env):
                yield {**bound, **more}


def _ev_label(node, env, v, p):
    tag = object()
    scope = _Env(env, {"*label " + node[1]: tag})
    try:
        for x in _ev(node[2], scope, v, p):
            yield x
    except _Break as b:
        if b.tag is not tag:
            raise


def _ev_break(node, env, v, p):
    raise _Break(_lookup_var(env, "*label " + node[1]))
    yield  # pragma: no cover -- makes this a generator


def _ev_def(node, env, v, p):
    _, name, params, body, rest = node
    scope = _Env(env, None, {})
    scope.funcs[(name, len(params))] = _FuncDef(params, body, scope)  # type: ignore[index]
    yield from _ev(rest, scope, v, p)


def _ev_call(node, env, v, p):
    _, name, args = node
    key = (name, len(args))
    found = _lookup_func(env, key)
    if found is None:
        impl, path_ok = _NATIVE[key]
        if p is not None and not path_ok:
            yield from _not_a_path(impl(env, v, None, args))
        else:
            yield from impl(env, v, p, args)
    elif isinstance(found, _Closure):
        yield from _ev(found.node, found.env, v, p)
    else:
        yield from _call_def(found, args, env, v, p)


def _call_def(fn: _FuncDef, args: tuple, env: _Env, v: object, p: Path | None) -> Stream:
    if not args:
        yield from _ev(fn.body, fn.env, v, p)
        return
    funcs, value_params = {}, []
    for param, arg in zip(fn.params, args):
        funcs[(param.lstrip("$"), 0)] = _Closure(arg, env)
        if param[0] == "$":
            value_params.append((param[1:], arg))
    if not value_params:
        yield from _ev(fn.body, _Env(fn.env, None, funcs), v, p)
        return
    names = [name for name, _ in value_params]
    for values in _arg_product(tuple(arg for _, arg in value_params), env, v):
        yield from _ev(fn.body, _Env(fn.env, dict(zip(names, values)), funcs), v, p)


def _ev_array(node, env, v, p):
    yield ([] if node[1] is None else list(_values(node[1], env, v))), None


def _ev_object(node, env, v, p):
    for obj in _build_object(node[1], 0, env, v):
        yield obj, None


def _build_object(entries: tuple, i: int, env: _Env, v: object) -> Iterator[dict]:
    """Objects from entries i.., earlier entries varying slowest (a key before its value)."""
    if i == len(entries):
        yield {}
        return
    key_node, value_node = entries[i]
    for key in _values(key_node, env, v):
        if not isinstance(key, str):
            raise JqError(f"object keys must be strings, not {_desc(key)}")
        values = (_index(v, key),) if value_node is None else _values(value_node, env, v)
        for value in values:
            for rest in _build_object(entries, i + 1, env, v):
                obj = {key: value}
                obj.update(rest)
                yield obj


def _ev_str(node, env, v, p):
    _, parts, fmt = node
    for text in _interpolate(parts, env, v, fmt or "text"):
        yield text, None


def _interpolate(parts: tuple, env: _Env, v: object, fmt: str) -> Iterator[str]:
    """The strings a template makes; the last interpolation varies slowest, as in gojq."""
    if not parts:
        yield ""
        return
    head, last = parts[:-1], parts[-1]
    if last[0] == "text":
        for text in _interpolate(head, env, v, fmt):
            yield text + last[1]
        return
    for x in _values(last, env, v):
        piece = _format(fmt, x)
        for text in _interpolate(head, env, v, fmt):
            yield text + piece


def _ev_format(node, env, v, p):
    yield _format(node[1], v), None


def _ev_missing(node, env, v, p):
    raise JqError('missing query (try ".")')
    yield  # pragma: no cover


def _ev_update(node, env, v, p):
    """`lhs |= f`, `lhs = rhs`, `lhs op= rhs` (rhs runs on `.`, one result per rhs output)."""
    _, op, lhs, rhs = node
    if op == "|=":
        yield _modify(env, v, lhs, lambda x: _values(rhs, env, x)), None
        return
    for r in _values(rhs, env, v):
        if op == "=":
            out = v
            for _, path in _ev(lhs, env, v, ()):
                out = _setpath(out, path, 0, r)
            yield out, None
        elif op == "//=":
            yield _modify(env, v, lhs, lambda x, r=r: (x if _truthy(x) else r,)), None
        else:
            fn = _BINOPS[op[:-1]]
            yield _modify(env, v, lhs, lambda x, r=r, fn=fn: (fn(x, r),)), None


def _modify(env: _Env, v: object, lhs: tuple, update: Callable[[object], Iterator[object]]) -> object:
    """Replace the value at each path of lhs with update's first output; none deletes the path."""
    out, doomed = v, []
    for _, path in _ev(lhs, env, v, ()):
        for new in update(_getpath(out, path)):
            out = _setpath(out, path, 0, new)
            break
        else:
            doomed.append(list(path))
    return _delpaths(out, doomed) if doomed else out


_EVAL: dict[str, Callable[..., Stream]] = {
    "id": _ev_id, "lit": _ev_lit, "var": _ev_var, "index": _ev_index, "slice": _ev_slice,
    "iter": _ev_iter, "pipe": _ev_pipe, "comma": _ev_comma, "unary": _ev_unary, "binop": _ev_binop,
    "and": _ev_and, "or": _ev_or, "alt": _ev_alt, "if": _ev_if, "try": _ev_try,
    "reduce": _ev_reduce, "foreach": _ev_foreach, "as": _ev_as, "label": _ev_label,
    "break": _ev_break, "def": _ev_def, "call": _ev_call, "array": _ev_array,
    "object": _ev_object, "str": _ev_str, "format": _ev_format, "update": _ev_update,
    "missing": _ev_missing,
}
_PATH_TAGS = frozenset({"id", "index", "slice", "iter", "pipe", "comma", "if", "alt", "try",
                        "reduce", "foreach", "as", "label", "break", "def", "call"})


Native = Callable[[_Env, object, "Path | None", tuple], Stream]
_NATIVE: dict[tuple[str, int], tuple[Native, bool]] = {}
