"""Errors of the attribute-mapping expression language (entra-behaviour.md section 3.2).

    ExpressionError               the text is not a valid expression (parse time); has a position
    ExpressionEvaluationError     a function failed on the values it got (evaluation time); the
     |                            engine logs it and escrows the object (section 2.8)
     +-- UniqueValueUnavailable   SelectUniqueValue found every candidate taken (section 3.3)

:class:`FunctionError` is internal: function implementations raise it without knowing where they
were called from, and the evaluator re-raises it as :class:`ExpressionEvaluationError` naming the
function and its position.
"""

from __future__ import annotations

__all__ = [
    "ExpressionError",
    "ExpressionEvaluationError",
    "FunctionError",
    "UniqueValueUnavailable",
    "caret_snippet",
]

#: Characters of context shown on each side of the caret for long expressions.
_WINDOW = 60


def caret_snippet(text: str, position: int) -> str:
    """Two lines: ``text`` (or a window of it around ``position``) and a caret under ``position``.

    Control characters are shown as spaces so the caret stays aligned.
    """
    position = max(0, min(position, len(text)))
    start = max(0, position - _WINDOW)
    end = min(len(text), position + _WINDOW)
    prefix = "..." if start > 0 else ""
    suffix = "..." if end < len(text) else ""
    shown = "".join(c if c.isprintable() else " " for c in text[start:end])
    return f"{prefix}{shown}{suffix}\n{' ' * (len(prefix) + position - start)}^"


class ExpressionError(ValueError):
    """A syntax or static error in an expression: ``position`` is a 0-based character offset.

    ``str()`` gives the message, the expression and a caret line under the position::

        Expression error at position 14: expected ',' or ')' after an argument
        Join("@", [a] [b])
                      ^
    """

    def __init__(self, message: str, position: int, expression: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.expression = expression

    def __str__(self) -> str:
        head = f"Expression error at position {self.position}: {self.message}"
        if not self.expression:
            return head
        return f"{head}\n{caret_snippet(self.expression, self.position)}"

    def __repr__(self) -> str:
        return f"ExpressionError({self.message!r}, {self.position})"


class FunctionError(Exception):
    """Raised inside a function implementation; the evaluator adds the function name."""


class ExpressionEvaluationError(Exception):
    """A function could not compute its value (bad argument type, bad date, bad regex, ...).

    ``function`` is the failing function's name and ``position`` the offset of its call in the
    expression (``None`` when unknown).
    """

    def __init__(self, function: str, message: str, position: int | None = None) -> None:
        super().__init__(f"{function}: {message}")
        self.function = function
        self.message = message
        self.position = position


class UniqueValueUnavailable(ExpressionEvaluationError):
    """SelectUniqueValue: every rule produced a value that is taken (or none); the object is
    escrowed (entra-behaviour.md section 3.3, "all taken -> escrow")."""
