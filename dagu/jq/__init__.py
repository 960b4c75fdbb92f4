"""jq queries for Dagu's `jq` step executor: a subset of the jq language in pure Python.

A step with `executor: jq` decodes its `script:` as JSON and runs `command:` as a jq query over it;
Dagu embeds gojq and prints each result as JSON indented by four spaces, or with config
`raw: true` strings bare, null as an empty line and arrays/objects as compact JSON.

Where jq and gojq differ this module follows gojq, since that is what Dagu runs:
  * objects have no key order: everything that exposes one (`keys`, `.[]`, `to_entries`, printed
    output) sorts the keys, and `keys_unsorted` is `keys`;
  * `env` and `$ENV` are empty objects (Dagu does not hand the environment to gojq);
  * numbers decoded from the step input are floats (Go's float64) while integer results of
    `length`, `keys`, integer arithmetic and so on stay ints; printed JSON looks the same either
    way, raw output prints floats the way Go's fmt does (`1e+06`);
  * evaluation stops at the first uncaught error; results produced before it stand;
  * `?` drops the errors of the last suffix only (`[.[].a?]` keeps going), `//` ignores errors
    on its left, `try` stops its body at the first error.

Not supported: `?//` destructuring alternatives, modules (`import`, `include`), `input`,
`inputs`, `$__prog_args`, `halt`, paths through variables (`path($x)`),
`strptime`/`localtime` (dates: `now`, `todate`, `fromdate`, `strftime`, `gmtime`, `mktime`).
`debug` and `stderr` pass values through without printing. Regexes run on Python's `re`
(gojq uses Go's RE2; named groups `(?<n>...)` are translated). Recursion is Python recursion:
about 250 nested calls of a recursive jq function, or `walk` over ~90 levels of nesting.

Layout (each module imports only modules listed above it):
  errors         JqError and the internal exceptions
  values         type names, truthiness, jq's total order, JSON text
  output         printing results Dagu's way
  formats        the @formats (@csv, @base64 ...)
  lexer, parser  query text -> tokens -> AST of tuples `(tag, ...)`
  paths          indexing, slices, getpath/setpath/delpaths
  operators      + - * / % and the comparisons
  evaluate       the evaluator: every node is a generator of `(value, path)` pairs (the path is
                 None unless the node is evaluated as a path expression, for `path(f)`, `|=`,
                 `del` ...); the table of builtins implemented in Python
  builtins       registering those builtins; the ones taking filters (control flow, recursion)
  builtins_data  builtins on arrays, objects, paths, numbers and dates
  builtins_text  builtins on strings, regexes and @formats
  prelude        builtins written in jq
  check          undefined functions, variables and labels are errors before the query runs
  program        the API: compile, parse_input, run, execute
"""
from __future__ import annotations

from dagu.jq.errors import JqError

__all__ = ["JqError", "JqProgram", "compile", "execute", "format_result", "parse_input", "run"]

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; type checkers know it
if TYPE_CHECKING:
    from dagu.jq.output import format_result
    from dagu.jq.program import JqProgram, compile, execute, parse_input, run


def __getattr__(name: str) -> object:
    """Load the rest of the API on first use (PEP 562): importing the evaluator and builtins and
    parsing the prelude take milliseconds (tens without cached bytecode) that a CLI command
    running no jq step should not pay."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    program = importlib.import_module("dagu.jq.program")  # it re-exports format_result
    globals().update((api, getattr(program, api)) for api in __all__)
    return globals()[name]
