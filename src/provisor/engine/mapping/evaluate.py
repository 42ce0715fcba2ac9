"""Evaluation of mapping expressions against a source object (entra-behaviour.md section 3).

``[name]`` looks the attribute up case-insensitively in the source mapping (an exact match wins);
a missing attribute is null. Omitted arguments are null. Comparisons follow IIF's rule: a null
or empty side fails the check (section 3.3).

Two wrappers flow through calls:

* :class:`Redacted` taints: a function given a redacted argument sees the plain value and its
  result is redacted too, so ``ToLower(Redact([x]))`` still logs as ``[Redact]``.
* :data:`IGNORE_FLOW` propagates: a function given it returns it, so the whole mapping is left
  out of the export (section 3.3 IgnoreFlowIfNullOrEmpty). Lazy functions (IIF, Switch, Coalesce,
  SelectUniqueValue) treat it as null where they test a value, and return it only from a branch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import partial
from typing import Any

from provisor.engine.mapping.ast import (
    AttributeRef,
    Call,
    Comparison,
    Constant,
    Expr,
    NumberLiteral,
    Omitted,
    StringLiteral,
)
from provisor.engine.mapping.context import EvalContext
from provisor.engine.mapping.errors import ExpressionEvaluationError, FunctionError
from provisor.engine.mapping.functions import FUNCTIONS
from provisor.engine.mapping.functions.logic import compare
from provisor.engine.mapping.parser import parse_expression
from provisor.engine.mapping.values import IGNORE_FLOW, Redacted, Value, from_source

__all__ = ["evaluate", "lookup_attribute"]


def lookup_attribute(source: Mapping[str, Any], name: str) -> Value:
    """``source[name]`` matched case-insensitively (exact spelling first); None when absent."""
    if name in source:
        return from_source(source[name])
    folded = name.casefold()
    for key, raw in source.items():
        if isinstance(key, str) and key.casefold() == folded:
            return from_source(raw)
    return None


class _Evaluator:
    def __init__(self, source: Mapping[str, Any], ctx: EvalContext) -> None:
        self.source = source
        self.ctx = ctx

    def eval(self, node: Expr) -> Value:
        if isinstance(node, StringLiteral):
            return node.value
        if isinstance(node, NumberLiteral):
            return node.value
        if isinstance(node, AttributeRef):
            return lookup_attribute(self.source, node.name)
        if isinstance(node, Omitted):
            return None
        if isinstance(node, Constant):
            return node.name
        if isinstance(node, Comparison):
            return self.comparison(node)
        return self.call(node)

    def comparison(self, node: Comparison) -> Value:
        left, right = self.eval(node.left), self.eval(node.right)
        try:
            return compare(
                None if left is IGNORE_FLOW else left, node.op, None if right is IGNORE_FLOW else right
            )
        except FunctionError as exc:
            raise ExpressionEvaluationError(f"'{node.op.value}'", str(exc), node.position) from None

    def call(self, node: Call) -> Value:
        spec = FUNCTIONS.get(node.name)
        if spec is None:  # only for hand-built trees; the parser rejects unknown names
            raise ExpressionEvaluationError(node.name, "unknown function", node.position)
        try:
            if spec.lazy_impl is not None:
                return spec.lazy_impl([partial(self.eval, arg) for arg in node.args], self.ctx)
            assert spec.impl is not None
            values = [self.eval(arg) for arg in node.args]
            if any(v is IGNORE_FLOW for v in values):
                return IGNORE_FLOW
            redacted = any(isinstance(v, Redacted) for v in values)
            if redacted:
                values = [v.value if isinstance(v, Redacted) else v for v in values]
            result = spec.impl(values, self.ctx)
            if redacted and not isinstance(result, Redacted) and result is not IGNORE_FLOW:
                return Redacted(result)
            return result
        except ExpressionEvaluationError as exc:
            if exc.position is None:
                exc.position = node.position
            raise
        except (FunctionError, ValueError, OverflowError, re.error) as exc:
            raise ExpressionEvaluationError(node.name, str(exc), node.position) from None


def evaluate(expr: Expr | str, source: Mapping[str, Any], ctx: EvalContext) -> Value:
    """The value of ``expr`` (text or a parsed AST) for the ``source`` object (section 3.3).

    Raises :class:`ExpressionError` for invalid text and :class:`ExpressionEvaluationError` when
    a function fails; the engine logs the latter and escrows the object (section 2.8).
    """
    node = parse_expression(expr) if isinstance(expr, str) else expr
    return _Evaluator(source, ctx).eval(node)
