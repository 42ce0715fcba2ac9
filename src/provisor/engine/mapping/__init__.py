"""Attribute mappings' expression language (entra-behaviour.md sections 3.2 and 3.3).

    >>> from datetime import UTC, datetime
    >>> import random
    >>> ctx = EvalContext(clock=lambda: datetime(2024, 1, 1, tzinfo=UTC), random=random.Random(0))
    >>> source = {"givenName": "John", "surname": "Doe"}
    >>> evaluate("Append(Mid([givenName],1,3), Mid([surname],1,5))", source, ctx)
    'JohDoe'

Text is parsed once into a frozen AST (:func:`parse_expression`, cached) and evaluated against a
source object (:func:`evaluate`). Values are strings, booleans, integers, UTC datetimes, lists,
role objects and None, plus :class:`Redacted` and :data:`IGNORE_FLOW`; :func:`export_value` and
:func:`log_value` turn a result into what the target receives and what the logs show.
"""

from __future__ import annotations

from provisor.engine.mapping.ast import (
    AttributeRef,
    Call,
    CompareOp,
    Comparison,
    Constant,
    Expr,
    NumberLiteral,
    Omitted,
    StringLiteral,
    to_source,
)
from provisor.engine.mapping.context import EvalContext, RandomSource
from provisor.engine.mapping.errors import ExpressionError, ExpressionEvaluationError, UniqueValueUnavailable
from provisor.engine.mapping.evaluate import evaluate
from provisor.engine.mapping.functions import CONSTANTS, FUNCTIONS, FunctionSpec
from provisor.engine.mapping.functions.roles import roles_patch_op
from provisor.engine.mapping.parser import MAX_DEPTH, MAX_LENGTH, parse_expression
from provisor.engine.mapping.values import (
    IGNORE_FLOW,
    IgnoreFlow,
    Redacted,
    Value,
    export_value,
    log_value,
    to_text,
)

__all__ = [
    "CONSTANTS",
    "FUNCTIONS",
    "IGNORE_FLOW",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "AttributeRef",
    "Call",
    "CompareOp",
    "Comparison",
    "Constant",
    "EvalContext",
    "Expr",
    "ExpressionError",
    "ExpressionEvaluationError",
    "FunctionSpec",
    "IgnoreFlow",
    "NumberLiteral",
    "Omitted",
    "RandomSource",
    "Redacted",
    "StringLiteral",
    "UniqueValueUnavailable",
    "Value",
    "evaluate",
    "export_value",
    "log_value",
    "parse_expression",
    "roles_patch_op",
    "to_source",
    "to_text",
]
