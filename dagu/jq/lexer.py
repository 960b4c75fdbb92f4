"""Lexer: query text -> tokens `(kind, value, start, end)`, lexed on demand."""
from __future__ import annotations

import re

from dagu.jq.errors import JqError

_KEYWORDS = frozenset({"def", "as", "label", "break", "if", "then", "elif", "else", "end", "try",
                       "catch", "reduce", "foreach", "and", "or", "import", "include", "module",
                       "__loc__"})
_OPERATORS = ("//=", "|=", "+=", "-=", "*=", "/=", "%=", "==", "!=", "<=", ">=", "//", "..",
              ".", "[", "]", "{", "}", "(", ")", "|", ",", ":", ";", "?", "=", "<", ">", "+",
              "-", "*", "/", "%")
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


class _Lexer:
    """The tokens of a query, lexed on demand with one of lookahead; the parser subclasses it
    (a string's `\\(...)` interpolations are parsed while lexing, by the subclass's grammar)."""

    def __init__(self, src: str, pos: int = 0) -> None:
        self.src = src
        self.tok: Token = self._lex(pos)


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
                sub = type(self)(src, pos + 2)
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

    def parse_pipe(self) -> tuple:
        """A pipeline, as in the body of an interpolation (defined by the parser)."""
        raise NotImplementedError
