"""Value conversions shared by the SQL store: case folding, timestamps, JSON text.

Timestamps are stored as integer microseconds since the Unix epoch, UTC: exact, compact,
index-friendly and ordered the same in every database. They come back as tz-aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from provisor.scim.filter.evaluate import fold as _evaluator_fold
from provisor.scim.filter.lexer import parse_number, to_datetime

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


#: Case folding for attributes that are not caseExact (RFC 7643 section 2.1): ``fold(text)``.
#: It is the in-memory evaluator's itself (``str.lower``), so the same filter selects the same
#: resources in SQL; no wrapper, as every write folds its keys and every lookup its value.
fold: Callable[[str], str] = _evaluator_fold


def to_micros(when: datetime) -> int:
    """A datetime as integer microseconds since the epoch; naive datetimes are taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """Integer microseconds since the epoch as a tz-aware UTC datetime."""
    return EPOCH + timedelta(0, 0, micros)  # (days, seconds, microseconds): no keyword to parse


def opt_from_micros(micros: int | None) -> datetime | None:
    return None if micros is None else from_micros(micros)


def instant_or_none(value: object) -> int | None:
    """``scim_instant``: microseconds for an xsd:dateTime string (RFC 7643 section 2.3.5), else None.

    The parsing is the filter lexer's, as the in-memory evaluator uses.
    """
    when = to_datetime(value) if isinstance(value, str) else None
    return None if when is None else to_micros(when)


def number_or_none(value: object) -> int | float | None:
    """``scim_number``: a JSON number written as a string (``"42"``), as the evaluator coerces it."""
    return parse_number(value.strip()) if isinstance(value, str) else None


def dumps(data: Any) -> str:
    """JSON text of a resource's attributes, as stored in ``resources.data``."""
    return orjson.dumps(data).decode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)
