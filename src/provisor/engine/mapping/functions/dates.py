"""Date functions (entra-behaviour.md sections 3.2, 3.3): CDate, DateAdd, DateDiff, DateFromNum,
FormatDateTime, Now, NumFromDate.

Dates are UTC datetimes inside an evaluation and become ``M/d/yyyy h:mm:ss tt`` strings where
text is needed (:func:`provisor.engine.mapping.values.to_text`). A date argument may be a date
value or a date string (ISO 8601 or Entra's own format).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from provisor.engine.mapping.context import EvalContext
from provisor.engine.mapping.dotnet_dates import format_datetime, parse_exact
from provisor.engine.mapping.errors import FunctionError
from provisor.engine.mapping.functions.spec import FunctionSpec, eager
from provisor.engine.mapping.values import Value, to_datetime, to_int, to_text

__all__ = ["FILETIME_EPOCH", "SPECS", "add_months"]

#: Active Directory FILETIME counts 100-nanosecond ticks from this instant.
FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_INTERVALS = ("yyyy", "m", "d", "ww", "h", "n", "s")
_FIXED = {
    "d": timedelta(days=1),
    "ww": timedelta(weeks=1),
    "h": timedelta(hours=1),
    "n": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}


def _interval(value: Value) -> str:
    name = to_text(value)
    if name not in _INTERVALS:
        raise FunctionError(f"interval must be one of {', '.join(_INTERVALS)}; got {name!r}")
    return name


def add_months(moment: datetime, months: int) -> datetime:
    """.NET AddMonths: the day is clamped to the target month's length (Jan 31 + 1 -> Feb 28/29)."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise FunctionError("the resulting date is out of range")
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _cdate(args: Sequence[Value], ctx: EvalContext) -> Value:
    return to_datetime(args[0])


def _date_add(args: Sequence[Value], ctx: EvalContext) -> Value:
    interval = _interval(args[0])
    amount = to_int(args[1], "value")
    moment = to_datetime(args[2])
    if amount is None or moment is None:
        return None
    try:
        if interval == "yyyy":
            return add_months(moment, 12 * amount)
        if interval == "m":
            return add_months(moment, amount)
        return moment + _FIXED[interval] * amount
    except OverflowError:
        raise FunctionError("the resulting date is out of range") from None


def _date_diff(args: Sequence[Value], ctx: EvalContext) -> Value:
    interval = _interval(args[0])
    first, second = to_datetime(args[1]), to_datetime(args[2])
    if first is None or second is None:
        return None
    if interval == "yyyy":
        return second.year - first.year
    if interval == "m":
        return (second.year - first.year) * 12 + second.month - first.month
    span = second - first
    unit = _FIXED[interval]
    whole = abs(span) // unit  # truncate toward zero, as VB.NET's DateDiff does
    return whole if span >= timedelta(0) else -whole


def _date_from_num(args: Sequence[Value], ctx: EvalContext) -> Value:
    ticks = to_int(args[0], "a FILETIME number")
    if ticks is None:
        return None
    try:
        return FILETIME_EPOCH + timedelta(microseconds=ticks // 10)
    except OverflowError:
        raise FunctionError(f"{ticks} is outside the range of dates") from None


def _num_from_date(args: Sequence[Value], ctx: EvalContext) -> Value:
    moment = to_datetime(args[0])
    if moment is None:
        return None
    return ((moment - FILETIME_EPOCH) // timedelta(microseconds=1)) * 10


_STYLES = frozenset(
    {
        "none",
        "allowleadingwhite",
        "allowtrailingwhite",
        "allowinnerwhite",
        "allowwhitespaces",
        "nocurrentdatedefault",
        "adjusttouniversal",
        "assumelocal",
        "assumeuniversal",
        "roundtripkind",
    }
)


def _trim_flags(styles: str | None) -> tuple[bool, bool]:
    """(AllowLeadingWhite, AllowTrailingWhite) from a DateTimeStyles list like
    ``"AdjustToUniversal, AllowWhiteSpaces"``; the default is RoundtripKind + both (section 3.3).
    The zone styles have nothing to change: every date here is UTC and "local" is UTC."""
    if styles is None or styles.strip() == "":
        return True, True
    names = {part.strip().lower() for part in styles.replace("|", ",").split(",") if part.strip()}
    unknown = sorted(names - _STYLES)
    if unknown:
        raise FunctionError(f"unknown dateTimeStyles {unknown}")
    every = "allowwhitespaces" in names
    return every or "allowleadingwhite" in names, every or "allowtrailingwhite" in names


def _format_date_time(args: Sequence[Value], ctx: EvalContext) -> Value:
    if len(args) == 3:
        source, styles, input_format, output_format = args[0], None, args[1], args[2]
    else:
        source, styles, input_format, output_format = args
    out_fmt = to_text(output_format)
    if out_fmt is None or out_fmt == "":
        raise FunctionError("outputFormat is required")
    trim = _trim_flags(to_text(styles))
    if isinstance(source, datetime):
        moment: datetime | None = source
    else:
        text = to_text(source)
        if text is None:
            return None
        in_fmt = to_text(input_format)
        if in_fmt is None or in_fmt == "":
            moment = to_datetime(text)
        else:
            try:
                moment = parse_exact(text, in_fmt, default_date=ctx.clock().astimezone(UTC).date(), trim=trim)
            except ValueError as exc:
                raise FunctionError(f"cannot read the date: {exc}") from None
    if moment is None:
        return None
    try:
        return format_datetime(moment, out_fmt)
    except ValueError as exc:
        raise FunctionError(str(exc)) from None


def _now(args: Sequence[Value], ctx: EvalContext) -> Value:
    return ctx.clock().astimezone(UTC)


SPECS: list[FunctionSpec] = [
    eager("CDate(expression)", 1, 1, _cdate),
    eager("DateAdd(interval, value, dateTime)", 3, 3, _date_add),
    eager("DateDiff(interval, date1, date2)", 3, 3, _date_diff),
    eager("DateFromNum(value)", 1, 1, _date_from_num),
    eager("FormatDateTime(source, [dateTimeStyles], inputFormat, outputFormat)", 3, 4, _format_date_time),
    eager("Now()", 0, 0, _now),
    eager("NumFromDate(value)", 1, 1, _num_from_date),
]
