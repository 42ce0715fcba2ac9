"""Shared test helpers for the mapping expression language (entra-behaviour.md section 3)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from provisor.engine.mapping import EvalContext, Value, evaluate, export_value

#: The fixed "now" of every test context.
NOW = datetime(2024, 5, 6, 14, 3, 9, tzinfo=UTC)


def context(
    seed: int = 7, is_unique: Callable[[str], bool] | None = None, now: datetime = NOW
) -> EvalContext:
    return EvalContext(clock=lambda: now, random=random.Random(seed), is_unique=is_unique)


def ev(expression: str, source: Mapping[str, Any] | None = None, **kw: Any) -> Value:
    """The raw value of ``expression``."""
    return evaluate(expression, source or {}, context(**kw))


def out(expression: str, source: Mapping[str, Any] | None = None, **kw: Any) -> Any:
    """The exported value of ``expression`` (dates as Entra strings)."""
    return export_value(ev(expression, source, **kw))
