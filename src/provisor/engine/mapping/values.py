"""The value model of mapping expressions and the coercions between its types.

Values are strings, booleans, whole numbers, UTC datetimes, lists (multi-valued attributes),
objects (app-role objects, section 1.4), ``None`` (null: the attribute is absent), plus two
wrappers: :class:`Redacted` (section 3.3 Redact: exported, but shown as ``[Redact]`` in logs) and
:data:`IGNORE_FLOW` (section 3.3 IgnoreFlowIfNullOrEmpty: drop the attribute from the export).

Entra shows values as strings (section 2.12: ``"True"``/``"False"``; section 3.2: dates as
``M/d/yyyy h:mm:ss tt`` in UTC): :func:`to_text` is that conversion, used wherever a function wants
a string.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeAlias

from provisor.engine.mapping.dotnet_dates import ENTRA_FORMAT, format_datetime
from provisor.engine.mapping.errors import FunctionError

__all__ = [
    "IGNORE_FLOW",
    "IgnoreFlow",
    "Redacted",
    "Value",
    "export_value",
    "from_source",
    "is_null",
    "is_null_or_empty",
    "log_value",
    "parse_date",
    "to_bool",
    "to_datetime",
    "to_int",
    "to_text",
]


class IgnoreFlow(enum.Enum):
    """The IgnoreFlowIfNullOrEmpty sentinel: the engine leaves the target attribute out."""

    IGNORE = "IgnoreFlow"

    def __repr__(self) -> str:
        return "IGNORE_FLOW"


#: Returned by IgnoreFlowIfNullOrEmpty for a null or empty value (section 3.3).
IGNORE_FLOW = IgnoreFlow.IGNORE


@dataclass(frozen=True, slots=True)
class Redacted:
    """A value produced under ``Redact()``: exported as ``value``, logged as ``[Redact]``.

    ``str()`` and ``repr()`` never show the value, so a stray f-string in a log line is safe.
    """

    value: Value

    def __str__(self) -> str:
        return "[Redact]"

    def __repr__(self) -> str:
        return "Redacted([Redact])"


Value: TypeAlias = (
    "str | bool | int | float | datetime | list[Value] | dict[str, Any] | Redacted | IgnoreFlow | None"
)


def from_source(raw: Any) -> Value:
    """A source attribute's value as an expression value (tuples become lists, naive datetimes and
    dates become UTC datetimes, anything unknown becomes its ``str()``)."""
    if raw is None or isinstance(raw, str | bool | int | float):
        return raw
    if isinstance(raw, datetime):
        return raw.replace(tzinfo=UTC) if raw.tzinfo is None else raw.astimezone(UTC)
    if isinstance(raw, date):
        return datetime(raw.year, raw.month, raw.day, tzinfo=UTC)
    if isinstance(raw, list | tuple):
        return [from_source(item) for item in raw]
    if isinstance(raw, Mapping):
        return {str(k): v for k, v in raw.items()}
    return str(raw)


def is_null(value: Value) -> bool:
    """Null for IsNull (section 3.3): the attribute is absent."""
    return value is None or value is IGNORE_FLOW


def is_null_or_empty(value: Value) -> bool:
    """Null, ``""`` or an empty multi-valued attribute (the inverse of IsPresent, section 3.3)."""
    if isinstance(value, Redacted):
        return is_null_or_empty(value.value)
    return is_null(value) or value == "" or value == []


def to_text(value: Value) -> str | None:
    """The string Entra shows for ``value``; ``None`` stays ``None``.

    A multi-valued value with one element is that element; with more it is an error (use Join).
    """
    if value is None or value is IGNORE_FLOW:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return format_datetime(value, ENTRA_FORMAT)
    if isinstance(value, Redacted):
        return to_text(value.value)
    if isinstance(value, list):
        if not value:
            return None
        if len(value) == 1:
            return to_text(value[0])
        raise FunctionError(f"expected a single value, got a multi-valued attribute with {len(value)} values")
    raise FunctionError("expected a string, got an object")


_INT = re.compile(r"\s*(-?\d+|&[Hh][0-9A-Fa-f]+)\s*")


def to_int(value: Value, what: str = "a number") -> int | None:
    """A whole number from an int, an integral float or a decimal/``&H`` hex string."""
    if isinstance(value, bool):
        raise FunctionError(f"expected {what}, got the boolean {to_text(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = to_text(value)
    if text is None:
        return None
    m = _INT.fullmatch(text)
    if m is None:
        raise FunctionError(f"expected {what}, got {text!r}")
    token = m.group(1)
    return int(token[2:], 16) if token.startswith("&") else int(token)


def to_bool(value: Value) -> bool:
    """VBA CBool: booleans as they are, ``"True"``/``"False"`` (any case), numbers non-zero;
    null and ``""`` are False (section 3.3 CBool, IIF)."""
    if isinstance(value, Redacted):
        return to_bool(value.value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    text = to_text(value)
    if text is None or text.strip() == "":
        return False
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    number = to_int(text, "a boolean or a number")
    return number != 0


_ISO = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,7}))?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE,
)
_US = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([AaPp][Mm]))?)?\s*(Z)?"
)


def parse_date(text: str) -> datetime:
    """Parse a date string as CDate does (section 3.3) and return it in UTC.

    Accepts ISO 8601 (``2009-06-15T01:45:30-07:00``, ``2020-03-16-07:00`` - an offset right after a
    date means midnight at that offset) and Entra's own output ``M/d/yyyy h:mm:ss tt``. A string
    without an offset is taken as UTC.
    """
    stripped = text.strip()
    m = _ISO.fullmatch(stripped)
    if m is not None:
        y, mo, d, h, mi, s, frac, zone = m.groups()
        micro = int((frac or "").ljust(6, "0")[:6])
        moment = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), micro, tzinfo=UTC)
        if zone and zone.upper() != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            moment -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
        return moment
    m = _US.fullmatch(stripped)
    if m is not None:
        mo, d, y, h, mi, s, marker, _z = m.groups()
        hour = int(h or 0)
        if marker:
            if not 1 <= hour <= 12:
                raise FunctionError(f"{text!r} is not a valid date: hour {hour} with {marker}")
            hour = hour % 12 + (12 if marker.upper() == "PM" else 0)
        return datetime(int(y), int(mo), int(d), hour, int(mi or 0), int(s or 0), tzinfo=UTC)
    raise FunctionError(f"{text!r} is not a recognised date")


def to_datetime(value: Value) -> datetime | None:
    """A UTC datetime from a datetime or a date string; ``None`` stays ``None``."""
    if isinstance(value, datetime):
        return value
    text = to_text(value)
    if text is None or text.strip() == "":
        return None
    try:
        return parse_date(text)
    except ValueError as exc:  # out-of-range fields
        raise FunctionError(f"{text!r} is not a valid date: {exc}") from None


def export_value(value: Value) -> Any:
    """The value to send to the target: Redacted unwrapped, datetimes as Entra's date strings,
    everything else as it is (``IGNORE_FLOW`` stays, for the engine to drop the attribute)."""
    if isinstance(value, Redacted):
        return export_value(value.value)
    if isinstance(value, datetime):
        return format_datetime(value, ENTRA_FORMAT)
    if isinstance(value, list):
        return [export_value(item) for item in value]
    return value


def log_value(value: Value) -> Any:
    """The value as provisioning logs show it (section 2.12): strings, ``[Redact]`` for redacted."""
    if isinstance(value, Redacted):
        return "[Redact]"
    if isinstance(value, list):
        return [log_value(item) for item in value]
    if isinstance(value, dict) or value is None or value is IGNORE_FLOW:
        return value
    return to_text(value)
