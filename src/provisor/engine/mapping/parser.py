"""Recursive-descent parser for mapping expressions (entra-behaviour.md section 3.2).

Grammar::

    expression := argument END
    argument   := operand [compareOp operand]          ; comparisons: = <> > >= < <=, no AND/OR
    operand    := NAME "(" [slot ("," slot)*] ")"       ; a function call (case-sensitive name)
                | NAME                                  ; a VBA constant: vbTextCompare, vbBinaryCompare
                | "[" attribute "]" | STRING | NUMBER
    slot       := argument | <nothing>                  ; an omitted argument: Replace([a], , "x", ...)

``Name()`` has no arguments; ``Name(,)`` has two omitted ones. The doc describes an expression as a
call tree; a bare operand (``[mail]``, ``"x"``) is accepted at the top too, so direct and constant
mappings share the evaluator. Calls are checked against the function registry while parsing:
unknown names (with the closest known name), argument counts (with the signature), Switch's
key/value pairs, SelectUniqueValue only at the top. Expressions are bounded: 10,000 characters
(section 3.2) and :data:`MAX_DEPTH` nested calls. Every error is an :class:`ExpressionError`
with a 0-based position.
"""

from __future__ import annotations

import difflib
from functools import lru_cache

from provisor.engine.mapping.ast import (
    AttributeRef,
    Call,
    CompareOp,
    Comparison,
    Constant,
    Expr,
    NumberLiteral,
    Omitted,
    Operand,
    StringLiteral,
)
from provisor.engine.mapping.errors import ExpressionError
from provisor.engine.mapping.functions import CONSTANTS, FUNCTIONS
from provisor.engine.mapping.lexer import ATTR, END, NAME, NUMBER, OP, PUNCT, STRING, Token, tokenize

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "closest_name", "parse_expression"]

#: Longest expression accepted (section 3.2: expressions are limited to 10,000 characters).
MAX_LENGTH = 10_000
#: Deepest nesting of function calls accepted.
MAX_DEPTH = 64


def closest_name(name: str, known: list[str]) -> str:
    """The known name ``name`` most likely meant: same letters in another case first, then the
    most similar spelling."""
    for candidate in known:
        if candidate.lower() == name.lower():
            return candidate
    return difflib.get_close_matches(name, known, n=1, cutoff=0.0)[0]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.k = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.k]

    def error(self, message: str, position: int) -> ExpressionError:
        return ExpressionError(message, position, self.text)

    def at(self, kind: str, text: str | None = None) -> bool:
        return self.tok.kind == kind and (text is None or self.tok.text == text)

    def expression(self) -> Expr:
        if self.at(END):
            raise self.error("empty expression", 0)
        node = self.argument(0)
        if not self.at(END):
            what = "a comparison operator" if self.at(OP) else repr(self.tok.text)
            raise self.error(f"unexpected {what} after the end of the expression", self.tok.position)
        return node

    def argument(self, depth: int) -> Operand | Comparison:
        left = self.operand(depth)
        if not self.at(OP):
            return left
        op_token = self.tok
        self.k += 1
        if self.at(END) or self.at(PUNCT) or self.at(OP):
            raise self.error(f"expected a value after '{op_token.text}'", self.tok.position)
        right = self.operand(depth)
        if self.at(OP):
            raise self.error(
                "comparisons cannot be chained (no AND/OR: nest IIF calls instead)", self.tok.position
            )
        return Comparison(left, CompareOp(op_token.text), right, left.position)

    def operand(self, depth: int) -> Operand:
        tok = self.tok
        if tok.kind == STRING:
            self.k += 1
            return StringLiteral(tok.text, tok.position)
        if tok.kind == NUMBER:
            self.k += 1
            return NumberLiteral(tok.number, tok.hex, tok.position)
        if tok.kind == ATTR:
            self.k += 1
            return AttributeRef(tok.text, tok.position)
        if tok.kind == NAME:
            self.k += 1
            if self.at(PUNCT, "("):
                return self.call(tok, depth)
            return self.constant(tok)
        if tok.kind == END:
            raise self.error("unexpected end of expression: expected a value", tok.position)
        if tok.kind == OP:
            raise self.error(f"expected a value before '{tok.text}'", tok.position)
        raise self.error(f"expected a value, found {tok.text!r}", tok.position)

    def constant(self, tok: Token) -> Constant:
        if tok.text in CONSTANTS:
            return Constant(tok.text, tok.position)
        if tok.text in FUNCTIONS:
            raise self.error(
                f"{tok.text} is a function: call it as {FUNCTIONS[tok.text].signature}", tok.position
            )
        guess = closest_name(tok.text, sorted(CONSTANTS | FUNCTIONS.keys()))
        raise self.error(
            f"unknown name {tok.text!r} (strings need double quotes, attributes square "
            f"brackets); did you mean {guess}?",
            tok.position,
        )

    def not_closed(self, name: Token) -> ExpressionError:
        return self.error(
            f"unexpected end of expression: {name.text}( is not closed; expected ',' or ')'",
            self.tok.position,
        )

    def call(self, name: Token, depth: int) -> Call:
        spec = FUNCTIONS.get(name.text)
        if spec is None:
            guess = closest_name(name.text, sorted(FUNCTIONS))
            raise self.error(
                f"unknown function {name.text!r} (names are case-sensitive); did you mean {guess}?",
                name.position,
            )
        if depth >= MAX_DEPTH:
            raise self.error(f"expression nests deeper than {MAX_DEPTH} function calls", name.position)
        if spec.top_level_only and depth > 0:
            raise self.error(f"{name.text} must be the outermost function of an expression", name.position)
        self.k += 1  # "("
        args: list[Expr] = []
        if self.at(PUNCT, ")"):
            self.k += 1
        else:
            while True:
                if self.at(END):
                    raise self.not_closed(name)
                if self.at(PUNCT, ",") or self.at(PUNCT, ")"):
                    args.append(Omitted(self.tok.position))
                else:
                    args.append(self.argument(depth + 1))
                if self.at(PUNCT, ","):
                    self.k += 1
                    continue
                if self.at(PUNCT, ")"):
                    self.k += 1
                    break
                if self.at(END):
                    raise self.not_closed(name)
                raise self.error("expected ',' or ')' after an argument", self.tok.position)
        problem = spec.arity_error(len(args))
        if problem is not None:
            raise self.error(problem, name.position)
        return Call(name.text, tuple(args), name.position)


@lru_cache(maxsize=1024)
def _parse(text: str) -> Expr:
    return _Parser(text).expression()


def parse_expression(text: str) -> Expr:
    """Parse an attribute-mapping expression into its frozen AST (section 3.2).

    Raises :class:`ExpressionError` (message, 0-based position, caret display) for any invalid
    input. Results are cached: the same mapping is evaluated for every object of a cycle.
    """
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_LENGTH:,} characters", MAX_LENGTH, text)
    return _parse(text)
