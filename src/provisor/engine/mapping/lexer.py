"""Tokens of the expression language (entra-behaviour.md section 3.2).

``[attribute]``, ``"string"`` (``\\"`` and ``\\\\`` escapes; any other backslash is kept as
written, so ``"\\d+"`` is the regex ``\\d+``), whole numbers (``-7``, hex ``&HF``), names,
``( ) ,`` and the comparison operators ``= <> > >= < <=``. Whitespace separates tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisor.engine.mapping.errors import ExpressionError

__all__ = ["ATTR", "END", "NAME", "NUMBER", "OP", "PUNCT", "STRING", "Token", "tokenize"]

NAME, ATTR, STRING, NUMBER, OP, PUNCT, END = (
    "name",
    "attribute",
    "string",
    "number",
    "operator",
    "punct",
    "end",
)
#: Longest number literal accepted, in characters (keeps int() away from huge digit strings).
MAX_NUMBER_LENGTH = 32
_OPERATORS = ("<>", "<=", ">=", "=", "<", ">")
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str  # the value: unescaped string, attribute name, operator, punctuation, name
    position: int
    number: int = 0
    hex: bool = False


def _is_digit(c: str) -> bool:
    return len(c) == 1 and "0" <= c <= "9"


def _is_name_start(c: str) -> bool:
    return c.isascii() and (c.isalpha() or c == "_")


def _is_name_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def error(self, message: str, position: int) -> ExpressionError:
        return ExpressionError(message, position, self.text)

    def string(self) -> Token:
        start, text = self.i, self.text
        out: list[str] = []
        i = start + 1
        while i < len(text):
            c = text[i]
            if c == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
                out.append(text[i + 1])
                i += 2
            elif c == '"':
                self.i = i + 1
                return Token(STRING, "".join(out), start)
            else:
                out.append(c)
                i += 1
        raise self.error("unterminated string literal: expected a closing '\"'", start)

    def attribute(self) -> Token:
        start = self.i
        end = self.text.find("]", start + 1)
        if end < 0:
            raise self.error("unterminated attribute reference: expected ']'", start)
        raw = self.text[start + 1 : end]
        if "[" in raw:
            raise self.error("'[' inside an attribute reference", start + 1 + raw.index("["))
        if raw.strip() == "":
            raise self.error("empty attribute name in '[]'", start)
        self.i = end + 1
        return Token(ATTR, raw.strip(), start)

    def number(self) -> Token:
        start, text = self.i, self.text
        i = start + 1 if text[start] == "-" else start
        while i < len(text) and _is_digit(text[i]):
            i += 1
        return self._finish_number(
            start, i, int(text[start:i]) if i - start <= MAX_NUMBER_LENGTH else 0, False
        )

    def hex_number(self) -> Token:
        start, text = self.i, self.text
        i = start + 2
        while i < len(text) and text[i] in _HEX:
            i += 1
        if i == start + 2:
            raise self.error("expected hexadecimal digits after '&H'", i)
        value = int(text[start + 2 : i], 16) if i - start <= MAX_NUMBER_LENGTH else 0
        return self._finish_number(start, i, value, True)

    def _finish_number(self, start: int, end: int, value: int, hex_: bool) -> Token:
        if end - start > MAX_NUMBER_LENGTH:
            raise self.error(f"number literal longer than {MAX_NUMBER_LENGTH} characters", start)
        if end < len(self.text) and (_is_name_char(self.text[end]) or self.text[end] == "."):
            raise self.error("malformed number: only whole numbers (or &H hex) are allowed", end)
        self.i = end
        return Token(NUMBER, self.text[start:end], start, value, hex_)

    def next(self) -> Token:
        text = self.text
        while self.i < len(text) and text[self.i].isspace():
            self.i += 1
        if self.i >= len(text):
            return Token(END, "", len(text))
        c, start = text[self.i], self.i
        if c == '"':
            return self.string()
        if c == "[":
            return self.attribute()
        if c in "(),":
            self.i += 1
            return Token(PUNCT, c, start)
        if _is_digit(c) or (c == "-" and _is_digit(text[start + 1 : start + 2])):
            return self.number()
        if text.startswith(("&H", "&h"), start):
            return self.hex_number()
        if _is_name_start(c):
            end = start
            while end < len(text) and _is_name_char(text[end]):
                end += 1
            self.i = end
            return Token(NAME, text[start:end], start)
        for op in _OPERATORS:
            if text.startswith(op, start):
                self.i += len(op)
                return Token(OP, op, start)
        if c == "]":
            raise self.error("']' without a matching '['", start)
        if c == "'":
            raise self.error('strings use double quotes ("..."), not single quotes', start)
        raise self.error(f"unexpected character {c!r}", start)


def tokenize(text: str) -> list[Token]:
    """All tokens of ``text``, ending with an END token. Raises :class:`ExpressionError`."""
    scanner = _Scanner(text)
    tokens: list[Token] = []
    while True:
        token = scanner.next()
        tokens.append(token)
        if token.kind == END:
            return tokens
