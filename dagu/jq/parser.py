"""Parser: tokens -> AST of tuples `(tag, ...)`, by recursive descent over gojq's grammar."""
from __future__ import annotations

from dagu.jq.formats import _FORMATS
from dagu.jq.lexer import _KEYWORDS, _Lexer, _syntax_error

_UPDATE_OPS = frozenset({"=", "|=", "+=", "-=", "*=", "/=", "%=", "//="})
_COMPARE_OPS = frozenset({"==", "!=", "<", "<=", ">", ">="})


class _Parser(_Lexer):
    """Recursive descent over gojq's grammar; tokens are lexed on demand, one of lookahead."""

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
