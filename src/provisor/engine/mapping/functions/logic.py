"""Conditions, tests and flow control (entra-behaviour.md sections 3.2, 3.3): comparisons, BitAnd,
CBool, Coalesce, IgnoreFlowIfNullOrEmpty, IIF, IsNull, IsNullOrEmpty, IsPresent, IsString, Not,
Redact, SelectUniqueValue, Switch.

IIF, Switch, Coalesce and SelectUniqueValue are lazy: only the branch taken is evaluated (so a
Guid() in an untaken branch draws nothing, and an error there does not fail the expression).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from provisor.engine.mapping.ast import CompareOp
from provisor.engine.mapping.context import EvalContext
from provisor.engine.mapping.errors import FunctionError, UniqueValueUnavailable
from provisor.engine.mapping.functions.spec import FunctionSpec, Thunk, eager, lazy
from provisor.engine.mapping.values import (
    IGNORE_FLOW,
    Redacted,
    Value,
    is_null,
    is_null_or_empty,
    to_bool,
    to_datetime,
    to_int,
    to_text,
)

__all__ = ["SPECS", "compare", "condition_holds"]


def _unwrap(value: Value) -> Value:
    return value.value if isinstance(value, Redacted) else value


def _comparable(left: Value, right: Value) -> tuple[Any, Any]:
    """Both sides as dates if either is a date, as numbers if either is a number, else as text
    (ordinal, case-sensitive); a side that does not convert makes it a text comparison."""
    pair: tuple[Any, Any] = (None, None)
    try:
        if isinstance(left, datetime) or isinstance(right, datetime):
            pair = to_datetime(left), to_datetime(right)
        elif any(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right)):
            pair = to_int(left), to_int(right)
    except FunctionError:
        pass
    if pair[0] is None or pair[1] is None:
        return to_text(left), to_text(right)
    return pair


def compare(left: Value, op: CompareOp, right: Value) -> bool:
    """An IIF condition ``left op right`` (section 3.2). If either side is null or empty the check
    fails (section 3.3 IIF): the result is False for every operator, ``<>`` included."""
    left, right = _unwrap(left), _unwrap(right)
    if is_null_or_empty(left) or is_null_or_empty(right):
        return False
    a, b = _comparable(left, right)
    if op is CompareOp.EQ:
        return bool(a == b)
    if op is CompareOp.NE:
        return bool(a != b)
    if op is CompareOp.GT:
        return bool(a > b)
    if op is CompareOp.GE:
        return bool(a >= b)
    if op is CompareOp.LT:
        return bool(a < b)
    return bool(a <= b)


def condition_holds(value: Value) -> bool:
    """Whether an IIF condition value is true: null/empty fails, else CBool."""
    value = _unwrap(value)
    return not is_null_or_empty(value) and to_bool(value)


def _bit_and(args: Sequence[Value], ctx: EvalContext) -> Value:
    a, b = to_int(args[0], "an integer"), to_int(args[1], "an integer")
    return None if a is None or b is None else a & b


def _cbool(args: Sequence[Value], ctx: EvalContext) -> Value:
    return to_bool(args[0])


def _coalesce(args: Sequence[Thunk], ctx: EvalContext) -> Value:
    for thunk in args:
        value = thunk()
        if not is_null(_unwrap(value)) and _unwrap(value) != []:
            return value
    return None


def _ignore_flow(args: Sequence[Value], ctx: EvalContext) -> Value:
    return IGNORE_FLOW if is_null_or_empty(args[0]) else args[0]


def _iif(args: Sequence[Thunk], ctx: EvalContext) -> Value:
    return args[1]() if condition_holds(args[0]()) else args[2]()


def _is_null(args: Sequence[Value], ctx: EvalContext) -> Value:
    return is_null(args[0])


def _is_null_or_empty(args: Sequence[Value], ctx: EvalContext) -> Value:
    return is_null_or_empty(args[0])


def _is_present(args: Sequence[Value], ctx: EvalContext) -> Value:
    return not is_null_or_empty(args[0])


def _is_string(args: Sequence[Value], ctx: EvalContext) -> Value:
    return isinstance(args[0], str)


def _not(args: Sequence[Value], ctx: EvalContext) -> Value:
    text = to_text(args[0])
    return not (text is not None and text.strip().lower() == "true")


def _redact(args: Sequence[Value], ctx: EvalContext) -> Value:
    return Redacted(args[0])


def _select_unique_value(args: Sequence[Thunk], ctx: EvalContext) -> Value:
    if ctx.is_unique is None:
        raise FunctionError("no uniqueness check is configured (SelectUniqueValue is for AD targets)")
    tried: list[str] = []
    for thunk in args:
        value = thunk()
        text = to_text(_unwrap(value))
        if text is None or text == "":
            continue
        if ctx.is_unique(text):
            return value
        tried.append(text)
    raise UniqueValueUnavailable("SelectUniqueValue", f"every candidate value is taken ({len(tried)} tried)")


def _switch_arity(count: int) -> str | None:
    if count % 2:
        return "Switch needs key/value pairs after source and defaultValue (an even number of arguments)"
    return None


def _switch(args: Sequence[Thunk], ctx: EvalContext) -> Value:
    subject = to_text(_unwrap(args[0]())) or ""
    for index in range(2, len(args) - 1, 2):
        if (to_text(_unwrap(args[index]())) or "") == subject:
            return args[index + 1]()
    return args[1]()


SPECS: list[FunctionSpec] = [
    eager("BitAnd(value1, value2)", 2, 2, _bit_and),
    eager("CBool(expression)", 1, 1, _cbool),
    lazy("Coalesce(source1, source2, ..., sourceN[, defaultValue])", 1, None, _coalesce),
    eager("IgnoreFlowIfNullOrEmpty(expression)", 1, 1, _ignore_flow),
    lazy("IIF(condition, valueIfTrue, valueIfFalse)", 3, 3, _iif),
    eager("IsNull(expression)", 1, 1, _is_null),
    eager("IsNullOrEmpty(expression)", 1, 1, _is_null_or_empty),
    eager("IsPresent(expression)", 1, 1, _is_present),
    eager("IsString(expression)", 1, 1, _is_string),
    eager("Not(source)", 1, 1, _not),
    eager("Redact(value)", 1, 1, _redact),
    lazy(
        "SelectUniqueValue(uniqueValueRule1, uniqueValueRule2, ...)",
        2,
        None,
        _select_unique_value,
        top_level_only=True,
    ),
    lazy(
        "Switch(source, defaultValue, key1, value1, key2, value2, ...)",
        4,
        None,
        _switch,
        check_arity=_switch_arity,
    ),
]
