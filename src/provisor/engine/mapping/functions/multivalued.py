"""Multi-valued attribute functions (entra-behaviour.md section 3.3): Count, Item, Join,
RemoveDuplicates, Split. A single value counts as a one-element list; null as no elements."""

from __future__ import annotations

from collections.abc import Sequence

from provisor.engine.mapping.context import EvalContext
from provisor.engine.mapping.errors import FunctionError
from provisor.engine.mapping.functions.spec import FunctionSpec, eager
from provisor.engine.mapping.values import Value, is_null, to_int, to_text

__all__ = ["SPECS", "elements"]


def elements(value: Value) -> list[Value]:
    """The values of a (possibly single-valued or null) attribute, nested lists flattened."""
    if is_null(value):
        return []
    if isinstance(value, list):
        out: list[Value] = []
        for item in value:
            out.extend(elements(item))
        return out
    return [value]


def _count(args: Sequence[Value], ctx: EvalContext) -> Value:
    return len(elements(args[0]))


def _item(args: Sequence[Value], ctx: EvalContext) -> Value:
    index = to_int(args[1], "index")
    if index is None:
        raise FunctionError("index is required")
    if index < 1:
        raise FunctionError(f"index is 1-based and must be 1 or more, got {index}")
    values = elements(args[0])
    return values[index - 1] if index <= len(values) else None


def _join(args: Sequence[Value], ctx: EvalContext) -> Value:
    separator = to_text(args[0]) or ""
    parts = [to_text(v) for source in args[1:] for v in elements(source)]
    present = [p for p in parts if p is not None]
    return separator.join(present) if present else None


def _remove_duplicates(args: Sequence[Value], ctx: EvalContext) -> Value:
    if is_null(args[0]):
        return None
    if not isinstance(args[0], list):
        return args[0]
    unique: list[Value] = []
    for value in elements(args[0]):
        if value not in unique:
            unique.append(value)
    return unique


def _split(args: Sequence[Value], ctx: EvalContext) -> Value:
    text, delimiter = to_text(args[0]), to_text(args[1])
    if text is None:
        return None
    if not delimiter:
        return [text]
    result: list[Value] = list(text.split(delimiter))
    return result


SPECS: list[FunctionSpec] = [
    eager("Count(attribute)", 1, 1, _count),
    eager("Item(attribute, index)", 2, 2, _item),
    eager("Join(separator, source1, source2, ...)", 2, None, _join),
    eager("RemoveDuplicates(attribute)", 1, 1, _remove_duplicates),
    eager("Split(source, delimiter)", 2, 2, _split),
]
