"""Builtins written in jq, on top of the ones in Python (importing this module registers both)."""
from __future__ import annotations

from dagu.jq import builtins, builtins_data, builtins_text  # noqa: F401 -- they register themselves
from dagu.jq.evaluate import _Env, _FuncDef
from dagu.jq.parser import _Parser

_PRELUDE = r"""
def in(xs): . as $x | xs | has($x);
def inside(xs): . as $x | xs | contains($x);
def map(f): [.[] | f];
def map_values(f): .[] |= f;
def add(f): reduce f as $x (null; . + $x);
def to_entries: [keys[] as $k | {key: $k, value: .[$k]}];
def with_entries(f): to_entries | map(f) | from_entries;
def recurse(f; cond): def r: ., (f | select(cond) | r); r;
def values: select(. != null);
def nulls: select(. == null);
def booleans: select(type == "boolean");
def numbers: select(type == "number");
def strings: select(type == "string");
def arrays: select(type == "array");
def objects: select(type == "object");
def iterables: select(type | . == "array" or . == "object");
def scalars: select(type | . != "array" and . != "object");
def finites: select(isinfinite | not);
def normals: select(isnormal);
def first: .[0];
def last: .[-1];
def nth($n): .[$n];
def any(f): any(.[]; f);
def all(f): all(.[]; f);
def paths: path(..) | select(length > 0);
def paths(node_filter): . as $dot | paths | select(. as $p | $dot | getpath($p) | node_filter);
def leaf_paths: paths(scalars);
def del(f): delpaths([path(f)]);
def pick(f): . as $v | reduce path(f) as $p (null; setpath($p; $v | getpath($p)));
def walk(f): def w: if type == "object" then map_values(w) elif type == "array" then map(w) end | f; w;
def tostream: path(def r: (.[]? | r), .; r) as $p | getpath($p) | reduce path(.[]?) as $q ([$p, .]; [$p + $q]);
def splits($re): splits($re; null);
def splits($re; flags): split($re; flags) | .[];
def todate: todateiso8601;
def fromdate: fromdateiso8601;
def IN(s): any(s == .; .);
def IN(src; s): any(src == s; .);
def INDEX(stream; idx_expr): reduce stream as $row ({}; .[$row | idx_expr | tostring] = $row);
def INDEX(idx_expr): INDEX(.[]; idx_expr);
.
"""


def _load_prelude() -> _Env:
    """One scope holding every prelude definition (they may refer to each other)."""
    env = _Env(_Env(None, {"ENV": {}}), None, {})
    node = _Parser(_PRELUDE).parse_program()
    while node[0] == "def":
        _, name, params, body, node = node
        env.funcs[(name, len(params))] = _FuncDef(params, body, env)  # type: ignore[index]
    return env


_PRELUDE_ENV = _load_prelude()
