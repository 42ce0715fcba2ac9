"""The scanner for SCIM filters and paths (RFC 7644 sections 3.4.2.2 and 3.5.2), and literal decoding.

The grammar needs only four token kinds, told apart by their first character:

* ``"..."`` a JSON string (RFC 7159 section 7, which RFC 7644 section 3.4.2.2 ``compValue`` cites);
* ``(`` ``)`` ``[`` ``]`` punctuation;
* a *word*: any run of characters that are none of whitespace, quotes, parentheses or brackets.
  Attribute paths (``urn:...:User:name.givenName``), operators, keywords, numbers and -- with the
  Entra quirk Q11 -- unquoted values are all words; the parser decides what a word means from
  where it stands. A word after ``]`` that starts with ``.`` is a PATCH path's ``subAttr``.

Also here: the JSON number grammar and the ``xsd:dateTime`` reader (RFC 7643 section 2.3.5) that
both the parser (to reject bad literals) and the evaluator (to compare instants) use.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone

STRING = "s"
PUNCT = "p"
WORD = "w"
END = "$"

#: (kind, text, 0-based offset). Plain tuples: the scanner is on the hot path.
Token = tuple[str, str, int]

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[()\[\]]|[^\s()\[\]"]+|"', re.DOTALL)
_ESCAPE_OR_CONTROL = re.compile(r"[\\\x00-\x1f]")
#: Half of a UTF-16 surrogate pair: what a lone ``\ud800`` escape decodes to (``json`` joins a
#: whole pair into one character). It is no character, and no UTF-8 text can hold it.
_SURROGATE = re.compile("[\ud800-\udfff]")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)


class ScanError(Exception):
    """A lexical error; the parser re-raises it as InvalidFilter or InvalidPath."""

    def __init__(self, detail: str, position: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.position = position


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an END token at ``len(text)``.

    Raises :class:`ScanError` for an unterminated string; escapes are checked by :func:`decode_string`.
    """
    out: list[Token] = []
    append = out.append
    for m in _TOKEN.finditer(text):
        tok = m.group()
        c = tok[0]
        if c == '"':
            if len(tok) == 1:
                raise ScanError("unterminated string literal", m.start())
            append((STRING, tok, m.start()))
        elif c in "()[]":
            append((PUNCT, tok, m.start()))
        else:
            append((WORD, tok, m.start()))
    append((END, "", len(text)))
    return out


def decode_string(token: str, position: int) -> str:
    """The value of a quoted JSON string token (escapes ``\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX``)."""
    body = token[1:-1]
    if _ESCAPE_OR_CONTROL.search(body) is None:
        return body
    try:
        value = json.loads(token)
    except ValueError as exc:
        msg = getattr(exc, "msg", str(exc))
        raise ScanError(f"invalid string literal {token}: {msg}", position) from None
    assert isinstance(value, str)
    if not is_text(value):
        raise ScanError(
            f"invalid string literal {token}: a \\u escape is half a surrogate pair, not a character",
            position,
        )
    if "\x00" in value:
        raise ScanError(
            f"invalid string literal {token}: \\u0000 (NUL) is in no stored value, so nothing could match",
            position,
        )
    return value


def is_text(value: str) -> bool:
    """Whether ``value`` is Unicode text: no lone surrogate, which a JSON ``\\uXXXX`` escape can
    name but UTF-8 (the database's, the response's) cannot hold."""
    return _SURROGATE.search(value) is None


def parse_number(word: str) -> int | float | None:
    """A JSON number (RFC 7159 section 6) as int (no fraction or exponent) or float; None if not
    one, or one too large to hold (an exponent past a float's range, thousands of digits)."""
    m = _NUMBER.fullmatch(word)
    if m is None:
        return None
    if m.group(1) is None and m.group(2) is None:
        try:
            return int(word)
        except ValueError:  # more digits than int() reads (sys.get_int_max_str_digits)
            return None
    value = float(word)
    return value if math.isfinite(value) else None


def is_number(word: str) -> bool:
    """Whether ``word`` is written as a JSON number, whether or not :func:`parse_number` can hold it."""
    return _NUMBER.fullmatch(word) is not None


def parse_datetime(text: str) -> datetime | None:
    """An ``xsd:dateTime`` (RFC 7643 section 2.3.5) as an aware datetime; a naive value is taken as UTC.

    Any number of fractional digits is accepted (Entra sends seven: ``2015-10-10T14:38:21.8617979-07:00``);
    digits past microseconds are truncated. Returns None when ``text`` is not a dateTime, or is
    one past year 9999 even in UTC (``9999-12-31T24:00:00Z``), which no datetime holds.
    """
    m = _DATETIME.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, tz = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    tzinfo: timezone
    if tz is None or tz in "Zz":
        tzinfo = UTC
    else:
        sign = 1 if tz[0] == "+" else -1
        hh, mm = int(tz[1:3]), int(tz[4:6])
        if hh > 23 or mm > 59:
            return None
        tzinfo = timezone(sign * timedelta(hours=hh, minutes=mm))
    try:
        if hour == "24" and minute == "00" and second == "00" and micro == 0:  # xsd allows 24:00:00
            base = datetime(int(year), int(month), int(day), tzinfo=tzinfo)
            try:
                return base + timedelta(days=1)
            except OverflowError:  # the next day is in year 10000 there, perhaps not in UTC
                return base.astimezone(UTC) + timedelta(days=1)
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tzinfo
        )
    except (ValueError, OverflowError):
        return None


def to_datetime(value: object) -> datetime | None:
    """A resource value as an aware datetime (a ``datetime`` object or an ``xsd:dateTime`` string)."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        return parse_datetime(value)
    return None
