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

Layout: value helpers and JSON text; lexer and recursive-descent parser (query text -> AST of
tuples `(tag, ...)`); a checker for undefined functions, variables and labels; the evaluator, in
which every node is a generator of `(value, path)` pairs (the path is None unless the node is
evaluated as a path expression, for `path(f)`, `|=`, `del` ...); builtins, native ones in Python
and the rest in a jq prelude; the public API at the end.
"""
from __future__ import annotations

import base64
import binascii
import calendar
import functools
import json
import math
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

__all__ = ["JqError", "JqProgram", "compile", "execute", "format_result", "parse_input", "run"]


class JqError(ValueError):
    """A jq syntax or runtime error; str() reads `jq: <message>`.

    `value` is what `try ... catch .` receives: the argument of `error(v)`, else the message.
    """

    def __init__(self, message: str, value: object = None, *, thrown: bool = False) -> None:
        super().__init__(f"jq: {message}")
        self.message = message
        self.value = value if thrown else message


class _CompileError(JqError):
    """An undefined name or a missing query: gojq reports these when the query runs, so Dagu
    prints them on stderr instead of failing the step (unlike syntax errors)."""


def _thrown(value: object) -> JqError:
    """The error raised by jq's `error(value)`."""
    message = value if isinstance(value, str) else f"{_brief(value)} (not a string)"
    return JqError(message, value, thrown=True)


class _Break(Exception):
    """`break $label`: unwinds to the matching `label`, never caught by `try`."""

    def __init__(self, tag: object) -> None:
        super().__init__("break")
        self.tag = tag


# ---------------------------------------------------------------------------------------------
# Values: type names, truthiness, jq's total order, JSON text
# ---------------------------------------------------------------------------------------------

_ORDER = {"null": 0, "boolean": 1, "number": 2, "string": 3, "array": 4, "object": 5}
_MAX_FLOAT = 1.7976931348623157e308
_MAX_INDEX = 536870912  # gojq's limit on array indices created by assignment


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


# ---------------------------------------------------------------------------------------------
# Lexer and parser: query text -> AST
# ---------------------------------------------------------------------------------------------

_KEYWORDS = frozenset({"def", "as", "label", "break", "if", "then", "elif", "else", "end", "try",
                       "catch", "reduce", "foreach", "and", "or", "import", "include", "module",
                       "__loc__"})
_OPERATORS = ("//=", "|=", "+=", "-=", "*=", "/=", "%=", "==", "!=", "<=", ">=", "//", "..",
              ".", "[", "]", "{", "}", "(", ")", "|", ",", ":", ";", "?", "=", "<", ">", "+",
              "-", "*", "/", "%")
_UPDATE_OPS = frozenset({"=", "|=", "+=", "-=", "*=", "/=", "%=", "//="})
_COMPARE_OPS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_FORMATS = frozenset({"text", "json", "html", "uri", "csv", "tsv", "sh", "base64", "base64d",
                      "base32", "base32d"})
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_STRING_RUN = re.compile(r'[^"\\]+')
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_LINE_END = re.compile(r"[\r\n]")
_STRING_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
                   "t": "\t"}

Token = tuple  # (kind, value, start, end); kind: num str field var fmt ident op eof


def _syntax_error(pos: int, message: str) -> JqError:
    return JqError(f"syntax error at position {pos}: {message}")


class _Parser:
    """Recursive descent over gojq's grammar; tokens are lexed on demand, one of lookahead."""

    def __init__(self, src: str, pos: int = 0) -> None:
        self.src = src
        self.tok: Token = self._lex(pos)

    # -- tokens ---------------------------------------------------------------------------------

    def _lex(self, pos: int) -> Token:
        src, n = self.src, len(self.src)
        while pos < n and src[pos] in " \t\r\n#":
            pos = self._skip_comment(pos) if src[pos] == "#" else pos + 1
        if pos >= n:
            return ("eof", None, n, n)
        c, following = src[pos], src[pos + 1:pos + 2]
        if c == '"':
            parts, end = self._lex_string(pos + 1)
            return ("str", parts, pos, end)
        if "0" <= c <= "9" or (c == "." and "0" <= following <= "9"):
            m = _NUMBER.match(src, pos)
            text = m.group()  # type: ignore[union-attr]
            value = float(text) if any(ch in text for ch in ".eE") else int(text)
            return ("num", value, pos, m.end())  # type: ignore[union-attr]
        if c in ".$@":
            m = _IDENT.match(src, pos + 1)
            if m:
                kind = {".": "field", "$": "var", "@": "fmt"}[c]
                return (kind, m.group(), pos, m.end())
            if c != ".":
                raise _syntax_error(pos, f"expected a name after {c!r}")
        m = _IDENT.match(src, pos)
        if m:
            return ("ident", m.group(), pos, m.end())
        for op in _OPERATORS:
            if src.startswith(op, pos):
                return ("op", op, pos, pos + len(op))
        raise _syntax_error(pos, f"unexpected character {c!r}")

    def _skip_comment(self, pos: int) -> int:
        """The end of a `#` comment; an odd run of backslashes before the newline continues it."""
        src = self.src
        while True:
            m = _LINE_END.search(src, pos)
            if m is None:
                return len(src)
            backslashes = len(src[pos:m.start()]) - len(src[pos:m.start()].rstrip("\\"))
            if backslashes % 2 == 0:
                return m.end()
            pos = m.end() + (src[m.start():m.start() + 2] == "\r\n")

    def _lex_string(self, pos: int) -> tuple[tuple, int]:
        """The parts of a string literal starting after its quote: text and interpolated ASTs."""
        src, parts, buf = self.src, [], []
        while True:
            m = _STRING_RUN.match(src, pos)
            if m:
                buf.append(m.group())
                pos = m.end()
            if pos >= len(src):
                raise _syntax_error(pos, "unterminated string")
            if src[pos] == '"':
                if buf:
                    parts.append("".join(buf))
                return tuple(parts), pos + 1
            escape = src[pos + 1:pos + 2]
            if escape == "(":
                if buf:
                    parts.append("".join(buf))
                    buf = []
                sub = _Parser(src, pos + 2)
                parts.append(sub.parse_pipe())
                if not sub.is_op(")"):
                    raise sub.unexpected('expected ")" to close the interpolation')
                pos = sub.tok[3]
            elif escape in _STRING_ESCAPES:
                buf.append(_STRING_ESCAPES[escape])
                pos += 2
            elif escape == "u":
                char, pos = self._lex_unicode_escape(pos)
                buf.append(char)
            else:
                raise _syntax_error(pos, f"invalid escape \\{escape}")

    def _lex_unicode_escape(self, pos: int) -> tuple[str, int]:
        src = self.src
        if not _HEX4.fullmatch(src, pos + 2, pos + 6):
            raise _syntax_error(pos, "invalid \\u escape")
        code = int(src[pos + 2:pos + 6], 16)
        pos += 6
        if 0xD800 <= code < 0xDC00 and src.startswith("\\u", pos) and _HEX4.fullmatch(src, pos + 2, pos + 6):
            low = int(src[pos + 2:pos + 6], 16)
            if 0xDC00 <= low < 0xE000:
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                pos += 6
        return chr(code), pos

    def advance(self) -> Token:
        tok = self.tok
        self.tok = self._lex(tok[3])
        return tok

    def is_op(self, op: str) -> bool:
        return self.tok[0] == "op" and self.tok[1] == op

    def is_kw(self, word: str) -> bool:
        return self.tok[0] == "ident" and self.tok[1] == word

    def expect_op(self, op: str) -> None:
        if not self.is_op(op):
            raise self.unexpected(f'expected "{op}"')
        self.advance()

    def expect_kw(self, word: str) -> None:
        if not self.is_kw(word):
            raise self.unexpected(f'expected "{word}"')
        self.advance()

    def unexpected(self, hint: str = "") -> JqError:
        kind, _, start, end = self.tok
        if kind == "eof":
            what = "end of query"
        else:
            text = self.src[start:end]
            what = 'token "' + (text if len(text) <= 20 else text[:17] + "...") + '"'
        return _syntax_error(start, f"unexpected {what}" + (f" ({hint})" if hint else ""))

    # -- grammar, loosest binding first ------------------------------------------------------

    def parse_program(self) -> tuple:
        node = ("missing",) if self.tok[0] == "eof" else self.parse_pipe()
        if self.tok[0] != "eof":
            raise self.unexpected()
        return node

    def parse_pipe(self) -> tuple:
        if self.is_kw("label"):
            self.advance()
            if self.tok[0] != "var":
                raise self.unexpected("expected $name after label")
            name = self.advance()[1]
            self.expect_op("|")
            return ("label", name, self.parse_pipe())
        left = self.parse_comma()
        if self.is_op("|"):
            self.advance()
            return ("pipe", left, self.parse_pipe())
        return left

    def parse_def(self) -> tuple[str, tuple, tuple]:
        self.advance()
        if self.tok[0] != "ident" or self.tok[1] in _KEYWORDS:
            raise self.unexpected("expected a function name")
        name = self.advance()[1]
        params: list[str] = []
        if self.is_op("("):
            self.advance()
            while True:
                kind, value = self.tok[0], self.tok[1]
                if kind == "var":
                    params.append("$" + value)
                elif kind == "ident" and value not in _KEYWORDS:
                    params.append(value)
                else:
                    raise self.unexpected("expected a parameter name")
                self.advance()
                if not self.is_op(";"):
                    break
                self.advance()
            self.expect_op(")")
        self.expect_op(":")
        body = self.parse_pipe()
        self.expect_op(";")
        return name, tuple(params), body

    def parse_comma(self) -> tuple:
        left = self.parse_binding()
        while self.is_op(","):
            self.advance()
            left = ("comma", left, self.parse_binding())
        return left

    def parse_binding(self) -> tuple:
        """`expr as $pattern | body` or `def ...; body`: the body runs to the end of the pipe."""
        if self.is_kw("def"):
            name, params, body = self.parse_def()
            rest = ("missing",) if self.tok[0] == "eof" else self.parse_pipe()
            return ("def", name, params, body, rest)
        expr = self.parse_expr()
        if not self.is_kw("as"):
            return expr
        self.advance()
        pattern = self.parse_pattern()
        self.expect_op("|")
        return ("as", expr, pattern, self.parse_pipe())

    def parse_expr(self) -> tuple:
        left = self.parse_update()
        if self.is_op("//"):
            self.advance()
            return ("alt", left, self.parse_expr())
        return left

    def parse_update(self) -> tuple:
        left = self.parse_or()
        if self.tok[0] == "op" and self.tok[1] in _UPDATE_OPS:
            op = self.advance()[1]
            return ("update", op, left, self.parse_or())
        return left

    def parse_or(self) -> tuple:
        left = self.parse_and()
        while self.is_kw("or"):
            self.advance()
            left = ("or", left, self.parse_and())
        return left

    def parse_and(self) -> tuple:
        left = self.parse_compare()
        while self.is_kw("and"):
            self.advance()
            left = ("and", left, self.parse_compare())
        return left

    def parse_compare(self) -> tuple:
        left = self.parse_additive()
        if self.tok[0] == "op" and self.tok[1] in _COMPARE_OPS:
            op = self.advance()[1]
            return ("binop", op, left, self.parse_additive())
        return left

    def parse_additive(self) -> tuple:
        left = self.parse_multiplicative()
        while self.tok[0] == "op" and self.tok[1] in ("+", "-"):
            op = self.advance()[1]
            left = ("binop", op, left, self.parse_multiplicative())
        return left

    def parse_multiplicative(self) -> tuple:
        left = self.parse_postfix()
        while self.tok[0] == "op" and self.tok[1] in ("*", "/", "%"):
            op = self.advance()[1]
            left = ("binop", op, left, self.parse_postfix())
        return left

    def parse_postfix(self) -> tuple:
        """A term with its suffixes: `.a`, `."a"`, `[e]`, `[a:b]`, `[]`, `?`; or `-term`."""
        if self.tok[0] == "op" and self.tok[1] in ("-", "+"):
            sign = self.advance()[1]
            return ("unary", sign, self.parse_postfix())
        term = self.parse_primary()
        while True:
            kind, value = self.tok[0], self.tok[1]
            if kind == "field":
                self.advance()
                term = ("index", term, ("lit", value), False)
            elif kind == "op" and value == "[":
                term = self.parse_bracket(term)
            elif kind == "op" and value == "?":
                self.advance()
                term = self._optional(term)
            elif kind == "op" and value == ".":
                following = self._lex(self.tok[3])
                if following[0] == "str":
                    self.advance()
                    term = ("index", term, self._string_node(self.advance()[1], None), False)
                elif following[0] == "op" and following[1] == "[":
                    self.advance()
                    term = self.parse_bracket(term)
                else:
                    return term
            else:
                return term

    @staticmethod
    def _optional(term: tuple) -> tuple:
        """`term?`: errors of the last suffix are dropped (per input); otherwise `try term`."""
        if term[0] in ("index", "slice", "iter") and not term[-1]:
            return term[:-1] + (True,)
        return ("try", term, None)

    def parse_bracket(self, term: tuple) -> tuple:
        self.advance()
        if self.is_op("]"):
            self.advance()
            return ("iter", term, False)
        if self.is_op(":"):
            self.advance()
            high = self.parse_pipe()
            self.expect_op("]")
            return ("slice", term, None, high, False)
        low = self.parse_pipe()
        if self.is_op(":"):
            self.advance()
            high = None if self.is_op("]") else self.parse_pipe()
            self.expect_op("]")
            return ("slice", term, low, high, False)
        self.expect_op("]")
        return ("index", term, low, False)

    def parse_primary(self) -> tuple:
        kind, value, start, _ = self.tok
        if kind == "num":
            self.advance()
            return ("lit", value)
        if kind == "str":
            self.advance()
            return self._string_node(value, None)
        if kind == "fmt":
            if value not in _FORMATS:
                raise _syntax_error(start, f"format not defined: @{value}")
            self.advance()
            if self.tok[0] == "str":
                return self._string_node(self.advance()[1], value)
            return ("format", value)
        if kind == "field":
            self.advance()
            return ("index", ("id",), ("lit", value), False)
        if kind == "var":
            self.advance()
            if value == "__loc__":
                return ("lit", {"file": "<stdin>", "line": self.src.count("\n", 0, start) + 1})
            return ("var", value)
        if kind == "op":
            return self.parse_punctuation(value)
        if kind == "ident":
            return self.parse_word(value)
        raise self.unexpected()

    def parse_punctuation(self, value: str) -> tuple:
        if value == ".":
            self.advance()
            if self.tok[0] == "str":
                return ("index", ("id",), self._string_node(self.advance()[1], None), False)
            return ("id",)
        if value == "..":
            self.advance()
            return ("call", "recurse", ())
        if value == "(":
            self.advance()
            node = self.parse_pipe()
            self.expect_op(")")
            return node
        if value == "[":
            self.advance()
            if self.is_op("]"):
                self.advance()
                return ("array", None)
            node = self.parse_pipe()
            self.expect_op("]")
            return ("array", node)
        if value == "{":
            return self.parse_object()
        raise self.unexpected()

    def parse_word(self, value: str) -> tuple:
        if value in ("true", "false", "null"):
            self.advance()
            return ("lit", {"true": True, "false": False, "null": None}[value])
        if value == "if":
            return self.parse_if()
        if value == "try":
            self.advance()
            body = self.parse_postfix()
            handler = None
            if self.is_kw("catch"):
                self.advance()
                handler = self.parse_postfix()
            return ("try", body, handler)
        if value in ("reduce", "foreach"):
            return self.parse_fold(value)
        if value == "break":
            self.advance()
            if self.tok[0] != "var":
                raise self.unexpected("expected $name after break")
            return ("break", self.advance()[1])
        if value in _KEYWORDS:
            raise self.unexpected()
        self.advance()
        args = []
        if self.is_op("("):
            self.advance()
            args.append(self.parse_pipe())
            while self.is_op(";"):
                self.advance()
                args.append(self.parse_pipe())
            self.expect_op(")")
        return ("call", value, tuple(args))

    def parse_if(self) -> tuple:
        self.advance()  # `if` or `elif`
        cond = self.parse_pipe()
        self.expect_kw("then")
        then = self.parse_pipe()
        if self.is_kw("elif"):
            return ("if", cond, then, self.parse_if())
        other: tuple = ("id",)
        if self.is_kw("else"):
            self.advance()
            other = self.parse_pipe()
        self.expect_kw("end")
        return ("if", cond, then, other)

    def parse_fold(self, word: str) -> tuple:
        """`reduce SRC as $p (INIT; UPDATE)` and `foreach SRC as $p (INIT; UPDATE[; EXTRACT])`."""
        self.advance()
        source = self.parse_expr()
        self.expect_kw("as")
        pattern = self.parse_pattern()
        self.expect_op("(")
        init = self.parse_pipe()
        self.expect_op(";")
        update = self.parse_pipe()
        extract = None
        if word == "foreach" and self.is_op(";"):
            self.advance()
            extract = self.parse_pipe()
        self.expect_op(")")
        if word == "reduce":
            return ("reduce", source, pattern, init, update)
        return ("foreach", source, pattern, init, update, extract)

    def parse_pattern(self) -> tuple:
        if self.tok[0] == "var":
            return ("pvar", self.advance()[1])
        if self.is_op("["):
            self.advance()
            items = [self.parse_pattern()]
            while self.is_op(","):
                self.advance()
                items.append(self.parse_pattern())
            self.expect_op("]")
            return ("parray", tuple(items))
        if self.is_op("{"):
            self.advance()
            entries = [self.parse_pattern_entry()]
            while self.is_op(","):
                self.advance()
                entries.append(self.parse_pattern_entry())
            self.expect_op("}")
            return ("pobject", tuple(entries))
        raise self.unexpected("expected a $variable, [...] or {...} pattern")

    def parse_pattern_entry(self) -> tuple:
        kind, value = self.tok[0], self.tok[1]
        if kind == "var":
            self.advance()
            if not self.is_op(":"):
                return (("lit", value), ("pvar", value))
            self.advance()
            return (("lit", value), ("pboth", value, self.parse_pattern()))
        if kind == "ident":
            self.advance()
            key: tuple = ("lit", value)
        elif kind == "str":
            self.advance()
            key = self._string_node(value, None)
        elif self.is_op("("):
            self.advance()
            key = self.parse_pipe()
            self.expect_op(")")
        else:
            raise self.unexpected("expected an object pattern key")
        self.expect_op(":")
        return (key, self.parse_pattern())

    def parse_object(self) -> tuple:
        self.advance()
        entries = []
        while not self.is_op("}"):
            entries.append(self.parse_object_entry())
            if not self.is_op(","):
                break
            self.advance()
        self.expect_op("}")
        return ("object", tuple(entries))

    def parse_object_entry(self) -> tuple:
        """`key: value`, `(expr): value`, `$var`, `$var: value`; shorthand `{a}` is `{a: .a}`."""
        kind, value = self.tok[0], self.tok[1]
        if kind == "var":
            self.advance()
            if self.is_op(":"):
                self.advance()
                return (("var", value), self.parse_object_value())
            return (("lit", value), ("var", value))
        if self.is_op("("):
            self.advance()
            key = self.parse_pipe()
            self.expect_op(")")
            self.expect_op(":")
            return (key, self.parse_object_value())
        if kind == "ident":
            self.advance()
            key = ("lit", value)
        elif kind == "str":
            self.advance()
            key = self._string_node(value, None)
        else:
            raise self.unexpected("expected an object key")
        if self.is_op(":"):
            self.advance()
            return (key, self.parse_object_value())
        return (key, None)  # `{a}`, `{"a"}`, `{"\(.k)"}`: the value is `.[key]`

    def parse_object_value(self) -> tuple:
        node = self.parse_expr()
        while self.is_op("|"):
            self.advance()
            node = ("pipe", node, self.parse_expr())
        return node

    @staticmethod
    def _string_node(parts: tuple, fmt: str | None) -> tuple:
        """A literal, or a template `("str", parts, format)` whose text parts are `("text", s)`."""
        if all(isinstance(part, str) for part in parts):
            return ("lit", "".join(parts))
        return ("str", tuple(("text", part) if isinstance(part, str) else part for part in parts), fmt)


# ---------------------------------------------------------------------------------------------
# Checker: undefined names are errors before the query runs (as in jq and gojq)
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# Evaluator: each AST tag has a generator of (value, path) pairs
# ---------------------------------------------------------------------------------------------

Path = tuple  # keys from the root: strings, integers, {"start": s, "end": e} slices
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


# ---------------------------------------------------------------------------------------------
# Indexing, paths and operators
# ---------------------------------------------------------------------------------------------

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


def _add(a: object, b: object) -> object:
    if a is None:
        return b
    if b is None:
        return a
    if _is_num(a) and _is_num(b):
        return a + b  # type: ignore[operator]
    if type(a) is type(b) and isinstance(a, (str, list)):
        return a + b  # type: ignore[operator]
    if isinstance(a, dict) and isinstance(b, dict):
        return {**a, **b}
    raise JqError(f"{_desc(a)} and {_desc(b)} cannot be added")


def _subtract(a: object, b: object) -> object:
    if _is_num(a) and _is_num(b):
        return a - b  # type: ignore[operator]
    if isinstance(a, list) and isinstance(b, list):
        return [x for x in a if not any(_equal(x, y) for y in b)]
    raise JqError(f"{_desc(a)} and {_desc(b)} cannot be subtracted")


def _multiply(a: object, b: object) -> object:
    if _is_num(a) and _is_num(b):
        return a * b  # type: ignore[operator]
    if isinstance(a, dict) and isinstance(b, dict):
        return _deep_merge(a, b)
    if isinstance(b, str) and _is_num(a):
        a, b = b, a
    if isinstance(a, str) and _is_num(b):
        if b != b or b < 0:  # type: ignore[operator]
            return None
        count = int(min(b, 2**31))  # type: ignore[type-var]
        if len(a) * count >= 2**28:
            raise JqError(f"repeat string result too large: {_brief(a)} * {_num_text(b)}")  # type: ignore[arg-type]
        return a * count
    raise JqError(f"{_desc(a)} and {_desc(b)} cannot be multiplied")


def _deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            v = _deep_merge(out[k], v)
        out[k] = v
    return out


def _divide(a: object, b: object) -> object:
    if _is_num(a) and _is_num(b):
        if b == 0:
            raise JqError(f"cannot divide {_desc(a)} by: {_desc(b)}")
        if isinstance(a, int) and isinstance(b, int) and a % b == 0:
            return a // b
        try:
            return a / b  # type: ignore[operator]
        except OverflowError:
            return math.copysign(math.inf, a) * math.copysign(1, b)  # type: ignore[arg-type]
    if isinstance(a, str) and isinstance(b, str):
        return _split(a, b) if a else []
    raise JqError(f"{_desc(a)} and {_desc(b)} cannot be divided")


def _modulo(a: object, b: object) -> object:
    if _is_num(a) and _is_num(b):
        if a != a or b != b:
            return math.nan
        x, y = _to_int(a), _to_int(b)  # type: ignore[arg-type]
        if y == 0:
            raise JqError(f"cannot modulo {_desc(a)} by: {_desc(b)}")
        r = abs(x) % abs(y)
        return -r if x < 0 else r  # the sign of the dividend, as in Go and C
    raise JqError(f"{_desc(a)} and {_desc(b)} cannot be divided")


_BINOPS: dict[str, Callable[[object, object], object]] = {
    "+": _add, "-": _subtract, "*": _multiply, "/": _divide, "%": _modulo,
    "==": lambda a, b: _compare(a, b) == 0, "!=": lambda a, b: _compare(a, b) != 0,
    "<": lambda a, b: _compare(a, b) < 0, "<=": lambda a, b: _compare(a, b) <= 0,
    ">": lambda a, b: _compare(a, b) > 0, ">=": lambda a, b: _compare(a, b) >= 0,
}


# ---------------------------------------------------------------------------------------------
# Builtins implemented in Python
# ---------------------------------------------------------------------------------------------

Native = Callable[[_Env, object, "Path | None", tuple], Stream]
_NATIVE: dict[tuple[str, int], tuple[Native, bool]] = {}


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


def _reject_constant(name: str) -> object:
    raise JqError(f"{name} is not valid JSON")


@_function("fromjson")
def _fromjson(v):
    _need_str("fromjson", v)
    try:
        return json.loads(v, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise JqError(f"{_brief(v)} cannot be parsed as JSON: {e.msg}") from None


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


def _split(s: str, sep: str) -> list:
    return list(s) if sep == "" else s.split(sep)


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


def _on(kind: str, name: str, fn: Callable[[object], object]) -> Callable[[object], object]:
    """fn behind a check that the input is a number or a string (else `name cannot be applied`)."""
    check = _is_num if kind == "number" else (lambda v: isinstance(v, str))

    def apply(v: object) -> object:
        if not check(v):
            raise JqError(f"{name} cannot be applied to: {_desc(v)}")
        return fn(v)
    return apply


_ASCII_DOWN = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_ASCII_UP = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}

_SIMPLE: dict[str, Callable[[object], object]] = {
    "not": lambda v: not _truthy(v),
    "type": _type,
    "tostring": _tostring,
    "tojson": _dumps,
    "any": lambda v: any(_truthy(x) for x in _items(v)),
    "all": lambda v: all(_truthy(x) for x in _items(v)),
    "flatten": lambda v: _flatten(v, math.inf),
    "infinite": lambda v: math.inf,
    "nan": lambda v: math.nan,
    "isinfinite": lambda v: _is_num(v) and math.isinf(v),
    "isfinite": lambda v: _is_num(v) and not math.isinf(v),
    "isnormal": lambda v: _is_num(v) and math.isfinite(v) and abs(v) >= 2.2250738585072014e-308,
    "abs": _on("number", "abs", abs),
    "utf8bytelength": _on("string", "utf8bytelength", lambda s: len(s.encode("utf-8", "surrogatepass"))),
    "explode": _on("string", "explode", lambda s: [ord(c) for c in s]),
    "ascii_downcase": _on("string", "ascii_downcase", lambda s: s.translate(_ASCII_DOWN)),
    "ascii_upcase": _on("string", "ascii_upcase", lambda s: s.translate(_ASCII_UP)),
    "trim": _on("string", "trim", str.strip),
    "ltrim": _on("string", "ltrim", str.lstrip),
    "rtrim": _on("string", "rtrim", str.rstrip),
    "env": lambda v: {},  # Dagu gives gojq no environment
    "input_filename": lambda v: None,
    "now": lambda v: time.time(),
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


# -- @formats ----------------------------------------------------------------------------------

def _row(name: str, v: object, sep: str, quote: Callable[[str], str]) -> str:
    if not isinstance(v, list):
        raise JqError(f"@{name} cannot be applied to: {_desc(v)}")
    cells = []
    for x in v:
        if isinstance(x, (list, dict)):
            raise JqError(f"@{name} cannot format an array including: {_desc(x)}")
        if isinstance(x, str):
            cells.append(quote(x.replace("\x00", "\\0") if name != "tsv" else x))
        else:
            text = _dumps(x)  # null and NaN ("null") make empty cells, except for @sh
            cells.append("" if text == "null" and name != "sh" else text)
    return sep.join(cells)


def _decode_base(v: object, name: str, decode: Callable[[bytes], bytes], block: int) -> str:
    text = _tostring(v).split("=", 1)[0]
    try:
        data = decode((text + "=" * (-len(text) % block)).encode("ascii"))
    except (binascii.Error, ValueError):
        raise JqError(f"{_brief(v)} is not valid {name} data") from None
    return data.decode("utf-8", "replace")


def _format(name: str, v: object) -> str:
    """Apply `@name` to a value."""
    if name == "text":
        return _tostring(v)
    if name == "json":
        return _dumps(v)
    if name == "html":
        return (_tostring(v).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                .replace("'", "&apos;").replace('"', "&quot;"))
    if name == "uri":
        return urllib.parse.quote(_tostring(v), safe="~")
    if name == "csv":
        return _row("csv", v, ",", lambda s: '"' + s.replace('"', '""') + '"')
    if name == "tsv":
        return _row("tsv", v, "\t", lambda s: s.replace("\\", "\\\\").replace("\t", "\\t")
                    .replace("\r", "\\r").replace("\n", "\\n").replace("\x00", "\\0"))
    if name == "sh":
        return _row("sh", v if isinstance(v, list) else [v], " ",
                    lambda s: "'" + s.replace("'", "'\\''") + "'")
    if name == "base64":
        return base64.b64encode(_tostring(v).encode("utf-8", "surrogatepass")).decode("ascii")
    if name == "base64d":
        return _decode_base(v, "base64", lambda b: base64.b64decode(b, validate=True), 4)
    if name == "base32":
        return base64.b32encode(_tostring(v).encode("utf-8", "surrogatepass")).decode("ascii")
    if name == "base32d":
        return _decode_base(v, "base32", base64.b32decode, 8)
    raise JqError(f"format not defined: @{name}")


@_function("format", arity=1)
def _format_fn(v, name):
    _need_str("format", name)
    if name not in _FORMATS:
        raise JqError(f"format not defined: @{name}")
    return _format(name, v)


# ---------------------------------------------------------------------------------------------
# Builtins written in jq
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# API
# ---------------------------------------------------------------------------------------------

class JqProgram:
    """A parsed and checked jq query; run it against decoded JSON values."""

    __slots__ = ("query", "_ast")

    def __init__(self, query: str, ast: tuple) -> None:
        self.query = query
        self._ast = ast

    def iter(self, value: object) -> Iterator[object]:
        """The query's outputs one by one; the first uncaught error raises JqError."""
        try:
            for x, _ in _ev(self._ast, _PRELUDE_ENV, value, None):
                yield x
        except RecursionError:
            raise JqError("query nested too deeply") from None

    def run(self, value: object) -> list[object]:
        return list(self.iter(value))

    def __repr__(self) -> str:
        return f"JqProgram({self.query!r})"


@functools.lru_cache(maxsize=256)
def compile(query: str) -> JqProgram:  # noqa: A001 -- the jq module's natural verb
    """Parse and check a query (JqError on a syntax error or an undefined name)."""
    try:
        ast = _Parser(query).parse_program()
        _check(ast, frozenset({"ENV"}), frozenset())
    except RecursionError:
        raise JqError("query nested too deeply") from None
    return JqProgram(query, ast)


def parse_input(text: str) -> object:
    """Decode a step's JSON input as Dagu does (Go's encoding/json into `any`): numbers become
    floats; NaN, Infinity and trailing data are errors."""
    try:
        return json.loads(text, parse_int=float, parse_constant=_reject_constant)
    except RecursionError:
        raise JqError("invalid JSON input: nested too deeply") from None
    except json.JSONDecodeError as e:
        raise JqError(f"invalid JSON input: {e.msg} at line {e.lineno} column {e.colno}") from None
    except JqError as e:
        raise JqError(f"invalid JSON input: {e.message}") from None


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


def run(query: str, input_text: str, raw: bool = False) -> str:
    """Run a query over JSON text and return the printed results joined by newlines.

    JqError for invalid JSON input (checked first, as Dagu does), an invalid query, or a
    runtime error."""
    value = parse_input(input_text)
    program = compile(query)
    return "\n".join(format_result(x, raw) for x in program.iter(value))


def execute(query: str, input_text: str, raw: bool = False) -> tuple[str, str]:
    """(stdout, stderr) as Dagu's jq executor writes them: each result plus a newline. A runtime
    error, or an undefined function/variable, ends the stream and is reported on stderr as
    `failed to run jq query: <error>` without failing the step (gojq hands those out through
    the result iterator). Invalid JSON input or a syntax error raise JqError: the step fails."""
    value = parse_input(input_text)
    try:
        program = compile(query)
    except _CompileError as e:
        return "", f"failed to run jq query: {e.message}"
    lines: list[str] = []
    try:
        for x in program.iter(value):
            lines.append(format_result(x, raw) + "\n")
    except JqError as e:
        return "".join(lines), f"failed to run jq query: {e.message}"
    return "".join(lines), ""
