""".NET date and time format strings, invariant culture, as Entra's date functions use them.

Entra renders dates as ``M/d/yyyy h:mm:ss tt`` in UTC (entra-behaviour.md section 3.2) and
FormatDateTime takes .NET custom format strings for input and output (section 3.3). This module
implements the subset that matters: ``y yy yyy yyyy``, ``M MM MMM MMMM``, ``d dd ddd dddd``,
``h hh H HH m mm s ss``, ``f``..``fffffff``, ``F``..``FFFFFFF``, ``t tt``, ``z zz zzz``, ``K``,
quoted literals ``'..'``/``".."``, ``\\c`` escapes, ``%c``, the invariant separators ``:`` and
``/``, the literal ``Z`` (read as "UTC" when parsing), and the one-letter standard formats.

Every datetime here is timezone-aware UTC; a parsed offset is converted to UTC (the service has
no local zone: "local" is UTC). Pure: a format without a date part takes ``default_date``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

__all__ = ["ENTRA_FORMAT", "format_datetime", "parse_exact"]

#: The format of every date string Entra's functions return (section 3.2).
ENTRA_FORMAT = "M/d/yyyy h:mm:ss tt"

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

#: One-letter standard formats, invariant culture.
_STANDARD = {
    "d": "MM/dd/yyyy",
    "D": "dddd, dd MMMM yyyy",
    "f": "dddd, dd MMMM yyyy HH:mm",
    "F": "dddd, dd MMMM yyyy HH:mm:ss",
    "g": "MM/dd/yyyy HH:mm",
    "G": "MM/dd/yyyy HH:mm:ss",
    "m": "MMMM dd",
    "M": "MMMM dd",
    "o": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "O": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "r": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "R": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "s": "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
    "t": "HH:mm",
    "T": "HH:mm:ss",
    "u": "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
    "y": "yyyy MMMM",
    "Y": "yyyy MMMM",
}
_SPECIFIERS = frozenset("yMdhHmsfFtzK")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # a specifier letter, or "" for literal text
    count: int
    text: str


def _tokens(fmt: str) -> list[_Token]:
    """Split a .NET custom format string into specifier runs and literal text."""
    if len(fmt) == 1 and fmt in _STANDARD:
        fmt = _STANDARD[fmt]
    out: list[_Token] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c in _SPECIFIERS:
            j = i
            while j < len(fmt) and fmt[j] == c:
                j += 1
            out.append(_Token(c, j - i, fmt[i:j]))
            i = j
        elif c in "'\"":
            end = fmt.find(c, i + 1)
            if end < 0:
                raise ValueError(f"unterminated quoted literal in date format {fmt!r}")
            out.append(_Token("", 0, fmt[i + 1 : end]))
            i = end + 1
        elif c == "\\":
            if i + 1 >= len(fmt):
                raise ValueError(f"date format {fmt!r} ends with a backslash")
            out.append(_Token("", 0, fmt[i + 1]))
            i += 2
        elif c == "%":
            i += 1
        else:
            out.append(_Token("", 0, c))
            i += 1
    return out


def _format_field(value: datetime, kind: str, count: int) -> str:
    """The text of one specifier run (``yyyy``, ``MMM``, ``tt``, ...) for ``value``."""
    if kind == "y":
        if count <= 2:
            return str(value.year % 100).zfill(count)
        return str(value.year).zfill(count)
    if kind == "M":
        name = _MONTHS[value.month - 1]
        return name if count >= 4 else name[:3] if count == 3 else str(value.month).zfill(count)
    if kind == "d":
        name = _DAYS[value.weekday()]
        return name if count >= 4 else name[:3] if count == 3 else str(value.day).zfill(count)
    if kind in "hHms":
        number = {"h": (value.hour % 12) or 12, "H": value.hour, "m": value.minute, "s": value.second}[kind]
        return str(number).zfill(min(count, 2))
    if kind in "fF":
        digits = f"{value.microsecond:06d}0"[: min(count, 7)]
        return digits.rstrip("0") if kind == "F" else digits
    if kind == "t":
        return ("AM" if value.hour < 12 else "PM")[: min(count, 2)]
    if kind == "z":
        return {1: "+0", 2: "+00"}.get(count, "+00:00")
    return "Z"  # K: every value here is UTC


def format_datetime(value: datetime, fmt: str = ENTRA_FORMAT) -> str:
    """``value.ToString(fmt, InvariantCulture)`` for a UTC ``value``."""
    value = value.astimezone(UTC)
    parts: list[str] = []
    for tok in _tokens(fmt):
        if tok.kind == "":
            parts.append(tok.text)
            continue
        text = _format_field(value, tok.kind, tok.count)
        if tok.kind == "F" and not text and parts and parts[-1].endswith("."):
            parts[-1] = parts[-1][:-1]  # .NET drops the point before an all-zero F fraction
        parts.append(text)
    return "".join(parts)


_DIGITS = re.compile(r"\d+")


class _Reader:
    """A cursor over the input of :func:`parse_exact`."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def fail(self, what: str) -> ValueError:
        return ValueError(f"{self.text!r} does not match the format: expected {what} at offset {self.i}")

    def digits(self, lo: int, hi: int, what: str) -> int:
        m = _DIGITS.match(self.text, self.i)
        run = m.group() if m else ""
        if len(run) < lo:
            raise self.fail(what)
        run = run[:hi]
        self.i += len(run)
        return int(run)

    def word(self, choices: list[str], what: str) -> int:
        for index, choice in enumerate(choices):
            if self.text[self.i : self.i + len(choice)].lower() == choice.lower():
                self.i += len(choice)
                return index
        raise self.fail(what)

    def literal(self, text: str) -> None:
        if not self.text.startswith(text, self.i):
            raise self.fail(repr(text))
        self.i += len(text)

    def offset(self, count: int) -> timedelta:
        if self.i >= len(self.text) or self.text[self.i] not in "+-":
            raise self.fail("a UTC offset")
        sign = -1 if self.text[self.i] == "-" else 1
        self.i += 1
        hours = self.digits(1 if count == 1 else 2, 2, "offset hours")
        minutes = 0
        if count >= 3:
            self.literal(":")
            minutes = self.digits(2, 2, "offset minutes")
        return sign * timedelta(hours=hours, minutes=minutes)


def parse_exact(
    text: str, fmt: str, *, default_date: date, trim: tuple[bool, bool] = (True, True)
) -> datetime:
    """``DateTime.ParseExact(text, fmt, InvariantCulture, styles)`` converted to UTC.

    ``trim`` = (AllowLeadingWhite, AllowTrailingWhite). Raises ValueError on a mismatch.
    """
    if trim[0]:
        text = text.lstrip()
    if trim[1]:
        text = text.rstrip()
    r = _Reader(text)
    year, month, day = default_date.year, default_date.month, default_date.day
    hour = minute = second = micro = 0
    pm: bool | None = None
    offset: timedelta | None = None
    for tok in _tokens(fmt):
        k, n = tok.kind, tok.count
        if k == "":
            if tok.text == "Z" and text.startswith("Z", r.i):
                offset = timedelta(0)
            r.literal(tok.text)
        elif k == "y":
            if n <= 2:  # two-digit years: 00-49 -> 20xx, 50-99 -> 19xx (.NET TwoDigitYearMax 2049)
                value = r.digits(n, 2, "a year")
                year = 2000 + value if value < 50 else 1900 + value
            else:
                year = r.digits(n, n, "a year")
        elif k == "M":
            if n >= 3:
                names = _MONTHS if n >= 4 else [m[:3] for m in _MONTHS]
                month = r.word(names, "a month name") + 1
            else:
                month = r.digits(n, 2, "a month")
        elif k == "d":
            if n >= 3:
                r.word(_DAYS if n >= 4 else [d[:3] for d in _DAYS], "a day name")
            else:
                day = r.digits(n, 2, "a day")
        elif k in "hHms":
            number = r.digits(
                min(n, 2), 2, {"h": "an hour", "H": "an hour", "m": "minutes", "s": "seconds"}[k]
            )
            if k in "hH":
                hour = number
            elif k == "m":
                minute = number
            else:
                second = number
        elif k in "fF":
            width = min(n, 7)
            start = r.i
            r.digits(width if k == "f" else 0, width, "a fraction of a second")
            micro = int((text[start : r.i] + "000000")[:6] or "0")
        elif k == "t":
            pm = r.word(["AM", "PM"] if n >= 2 else ["A", "P"], "AM or PM") == 1
        else:  # z or K
            if k == "K" and text.startswith("Z", r.i):
                r.i += 1
                offset = timedelta(0)
            elif k == "K" and (r.i >= len(text) or text[r.i] not in "+-"):
                pass
            else:
                offset = r.offset(n if k == "z" else 3)
    if r.i != len(text):
        raise r.fail("the end of the input")
    if pm is not None:
        if not 1 <= hour <= 12:
            raise ValueError(f"{text!r}: hour {hour} is not valid with AM/PM")
        hour = hour % 12 + (12 if pm else 0)
    result = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    return result - offset if offset is not None else result
