"""Date functions and .NET date formats (entra-behaviour.md sections 3.2, 3.3)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from tests.engine.mapping.mapping_helpers import NOW, ev, out

from provisor.engine.mapping import ExpressionEvaluationError
from provisor.engine.mapping.dotnet_dates import ENTRA_FORMAT, format_datetime, parse_exact


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # CDate: offsets after a bare date, full timestamps, Z, no offset (UTC), Entra's own format
        ('CDate("2020-03-16-07:00")', "3/16/2020 7:00:00 AM"),
        ('CDate("2021-06-30+08:00")', "6/29/2021 4:00:00 PM"),
        ('CDate("2009-06-15T01:45:30-07:00")', "6/15/2009 8:45:30 AM"),
        ('CDate("2009-06-15T13:45:30Z")', "6/15/2009 1:45:30 PM"),
        ('CDate("2009-06-15 00:05")', "6/15/2009 12:05:00 AM"),
        ('CDate("2009-06-15T12:00:00.1234567+0530")', "6/15/2009 6:30:00 AM"),
        ('CDate("6/15/2009 8:45:30 AM")', "6/15/2009 8:45:30 AM"),
        ('CDate("12/31/1999 12:00:00 AM")', "12/31/1999 12:00:00 AM"),
        ('CDate(CDate("2020-03-16-07:00"))', "3/16/2020 7:00:00 AM"),
        ('CDate("  2020-03-16  ")', "3/16/2020 12:00:00 AM"),
        ("CDate([missing])", None),
        ("CDate([hireDate])", "8/18/2021 1:30:00 AM"),
        ("CDate([created])", "1/2/2023 3:04:05 AM"),
        # DateAdd: every interval, negative values, month-end clamping
        ('DateAdd("yyyy", 1, "2020-02-29")', "2/28/2021 12:00:00 AM"),
        ('DateAdd("m", 1, "2021-01-31")', "2/28/2021 12:00:00 AM"),
        ('DateAdd("m", -2, "2021-01-15")', "11/15/2020 12:00:00 AM"),
        ('DateAdd("d", -1, "2021-03-01")', "2/28/2021 12:00:00 AM"),
        ('DateAdd("ww", 2, "2021-03-01")', "3/15/2021 12:00:00 AM"),
        ('DateAdd("h", 13, "2021-03-01")', "3/1/2021 1:00:00 PM"),
        ('DateAdd("n", 90, "2021-03-01")', "3/1/2021 1:30:00 AM"),
        ('DateAdd("s", -1, "2021-03-01")', "2/28/2021 11:59:59 PM"),
        ('DateAdd("d", 7, [missing])', None),
        # DateDiff: positive when date2 is later, truncated toward zero
        ('DateDiff("d", "2021-08-31+08:00", "2021-08-18+08:00")', -13),
        ('DateDiff("d", "2021-08-18T00:00:00Z", "2021-08-19T23:59:59Z")', 1),
        ('DateDiff("d", "2021-08-19T23:59:59Z", "2021-08-18T00:00:00Z")', -1),
        ('DateDiff("ww", "2021-08-01", "2021-08-31")', 4),
        ('DateDiff("m", "2021-01-31", "2021-02-01")', 1),
        ('DateDiff("yyyy", "2020-12-31", "2021-01-01")', 1),
        ('DateDiff("s", CDate("2021-08-24"), DateAdd("s", 5, "2021-08-24"))', 5),
        ('DateDiff("d", [missing], "2021-01-01")', None),
        # DateFromNum / NumFromDate: AD FILETIME (100 ns ticks since 1601-01-01 UTC)
        ("DateFromNum(129699324000000000)", "1/1/2012 11:00:00 PM"),
        ('DateFromNum("129699324000000000")', "1/1/2012 11:00:00 PM"),
        ("DateFromNum(0)", "1/1/1601 12:00:00 AM"),
        ("DateFromNum([missing])", None),
        ('NumFromDate("2012-01-01T23:00:00Z")', 129699324000000000),
        ('NumFromDate("2012-01-01T15:00:00-08:00")', 129699324000000000),
        ("NumFromDate(DateFromNum(129699324000000010))", 129699324000000010),
        ("NumFromDate([missing])", None),
        # FormatDateTime: 3 or 4 arguments, styles, standard and custom formats
        ('FormatDateTime("20150123105347.1Z", , "yyyyMMddHHmmss.fZ", "yyyy-MM-dd")', "2015-01-23"),
        ('FormatDateTime("20150123105347.1Z", "yyyyMMddHHmmss.fZ", "yyyy-MM-dd")', "2015-01-23"),
        ('FormatDateTime("  20150123105347.1Z ", , "yyyyMMddHHmmss.fZ", "yyyy-MM-dd")', "2015-01-23"),
        (
            'FormatDateTime("20150123105347.1Z", "AdjustToUniversal, AssumeUniversal", "yyyyMMddHHmmss.fZ", '
            '"yyyy-MM-ddTHH:mm:ss.fffZ")',
            "2015-01-23T10:53:47.100Z",
        ),
        ('FormatDateTime("2021-08-18+08:00", , "yyyy-MM-ddzzz", "yyyy-MM-dd HH:mm")', "2021-08-17 16:00"),
        ('FormatDateTime("01/02/2023 3:04 PM", , "MM/dd/yyyy h:mm tt", "o")', "2023-01-02T15:04:00.0000000Z"),
        ('FormatDateTime("2023-01-02", , "yyyy-MM-dd", "s")', "2023-01-02T00:00:00"),
        ('FormatDateTime("2023-01-02", , "yyyy-MM-dd", "u")', "2023-01-02 00:00:00Z"),
        ('FormatDateTime("2023-01-02", , "yyyy-MM-dd", "D")', "Monday, 02 January 2023"),
        ('FormatDateTime("2 Jan 23", , "d MMM yy", "dddd d MMMM yyyy")', "Monday 2 January 2023"),
        ('FormatDateTime("15:04", , "HH:mm", "yyyy-MM-dd HH:mm")', "2024-05-06 15:04"),
        ('FormatDateTime("2023-01-02", , "yyyy-MM-dd", "\'Date: \'yyyy\\\\/MM")', "Date: 2023/01"),
        ('FormatDateTime(CDate("2023-01-02T03:04:05Z"), , , "yyyyMMddHHmmss")', "20230102030405"),
        ('FormatDateTime("2023-01-02T03:04:05Z", , , "yyyyMMddHHmmss")', "20230102030405"),
        ('FormatDateTime([missing], , "yyyy", "yyyy")', None),
    ],
)
def test_date_function(expression: str, expected: object) -> None:
    source = {"hireDate": "2021-08-18T09:30:00+08:00", "created": datetime(2023, 1, 2, 3, 4, 5)}
    assert out(expression, source) == expected


def test_now_reads_the_context_clock() -> None:
    assert ev("Now()") == NOW
    assert out("Now()") == "5/6/2024 2:03:09 PM"
    later = datetime(2030, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5)))
    assert out("Now()", now=later) == "1/1/2031 4:59:59 AM"
    assert out('DateDiff("d", "2024-05-01", Now())') == 5


@pytest.mark.parametrize(
    ("expression", "function", "fragment"),
    [
        ('CDate("not a date")', "CDate", "not a recognised date"),
        ('CDate("2021-02-30")', "CDate", "not a valid date"),
        ('CDate("13/01/2021")', "CDate", "not a valid date"),
        ('DateAdd("q", 1, "2021-01-01")', "DateAdd", "interval must be one of yyyy, m, d, ww, h, n, s"),
        ('DateAdd("D", 1, "2021-01-01")', "DateAdd", "interval"),
        ('DateAdd("d", "x", "2021-01-01")', "DateAdd", "expected value"),
        ('DateAdd("yyyy", 9000, "2021-01-01")', "DateAdd", "out of range"),
        ('DateAdd("d", 9999999, "2021-01-01")', "DateAdd", "out of range"),
        ('DateDiff("w", "2021-01-01", "2021-01-02")', "DateDiff", "interval"),
        ("DateFromNum(-1000000000000000000)", "DateFromNum", "outside the range"),
        ('FormatDateTime("2015-01-23", , "yyyyMMdd", "yyyy")', "FormatDateTime", "cannot read the date"),
        ('FormatDateTime("20150123", , "yyyyMMdd", )', "FormatDateTime", "outputFormat is required"),
        (
            'FormatDateTime("20150123", "Sideways", "yyyyMMdd", "yyyy")',
            "FormatDateTime",
            "unknown dateTimeStyles",
        ),
        ('FormatDateTime(" 20150123", "None", "yyyyMMdd", "yyyy")', "FormatDateTime", "cannot read the date"),
        ('FormatDateTime("20150123", , "yyyyMMdd", "\'open")', "FormatDateTime", "unterminated quoted"),
        ('FormatDateTime("13:00 PM", , "hh:mm tt", "HH")', "FormatDateTime", "not valid with AM/PM"),
    ],
)
def test_date_function_errors(expression: str, function: str, fragment: str) -> None:
    with pytest.raises(ExpressionEvaluationError) as info:
        ev(expression)
    assert info.value.function == function
    assert fragment in info.value.message


# --- the .NET format engine directly -------------------------------------------------------------

MOMENT = datetime(2009, 6, 5, 13, 4, 7, 120000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (ENTRA_FORMAT, "6/5/2009 1:04:07 PM"),
        ("yyyy-MM-dd HH:mm:ss", "2009-06-05 13:04:07"),
        ("yy y yyy yyyyy", "09 9 2009 02009"),
        ("M MM MMM MMMM", "6 06 Jun June"),
        ("d dd ddd dddd", "5 05 Fri Friday"),
        ("h hh H HH t tt", "1 01 13 13 P PM"),
        ("m mm s ss", "4 04 7 07"),
        ("f ff fff ffff fffffff", "1 12 120 1200 1200000"),
        ("ss.FFF", "07.12"),
        ("zzz zz z K", "+00:00 +00 +0 Z"),
        ("'quoted' \"dq\" \\y %d", "quoted dq y 5"),
        ("o", "2009-06-05T13:04:07.1200000Z"),
        ("R", "Fri, 05 Jun 2009 13:04:07 GMT"),
        ("T", "13:04:07"),
        ("Q!", "Q!"),
    ],
)
def test_format_datetime(fmt: str, expected: str) -> None:
    assert format_datetime(MOMENT, fmt) == expected


def test_format_drops_the_point_before_empty_fraction() -> None:
    assert format_datetime(MOMENT.replace(microsecond=0), "ss.FFF") == "07"


def test_midnight_and_noon_in_twelve_hour_clock() -> None:
    assert format_datetime(datetime(2020, 1, 1, 0, 0, tzinfo=UTC)) == "1/1/2020 12:00:00 AM"
    assert format_datetime(datetime(2020, 1, 1, 12, 0, tzinfo=UTC)) == "1/1/2020 12:00:00 PM"


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("20150123105347.1Z", "yyyyMMddHHmmss.fZ", datetime(2015, 1, 23, 10, 53, 47, 100000, tzinfo=UTC)),
        ("2015-01-23T10:53:47+02:00", "yyyy-MM-ddTHH:mm:sszzz", datetime(2015, 1, 23, 8, 53, 47, tzinfo=UTC)),
        ("2015-01-23T10:53:47Z", "yyyy-MM-ddTHH:mm:ssK", datetime(2015, 1, 23, 10, 53, 47, tzinfo=UTC)),
        ("2015-01-23T10:53:47", "yyyy-MM-ddTHH:mm:ssK", datetime(2015, 1, 23, 10, 53, 47, tzinfo=UTC)),
        ("1/2/99 12:30 AM", "M/d/yy h:mm tt", datetime(1999, 1, 2, 0, 30, tzinfo=UTC)),
        ("1/2/49", "M/d/yy", datetime(2049, 1, 2, tzinfo=UTC)),
        ("Friday, June 5", "dddd, MMMM d", datetime(2024, 6, 5, tzinfo=UTC)),
        ("10:53:47.12", "HH:mm:ss.FFF", datetime(2024, 5, 6, 10, 53, 47, 120000, tzinfo=UTC)),
        ("10:53:47", "HH:mm:ss.FFF".replace(".FFF", ""), datetime(2024, 5, 6, 10, 53, 47, tzinfo=UTC)),
    ],
)
def test_parse_exact(text: str, fmt: str, expected: datetime) -> None:
    assert parse_exact(text, fmt, default_date=date(2024, 5, 6)) == expected


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("2015-1-23", "yyyy-MM-dd"),
        ("20150123x", "yyyyMMdd"),
        ("2015", "yyyyMM"),
        ("10:53 XM", "HH:mm tt"),
        ("10", "HHzzz"),
        ("2015-01-23+0100", "yyyy-MM-ddzzz"),
    ],
)
def test_parse_exact_rejects(text: str, fmt: str) -> None:
    with pytest.raises(ValueError):
        parse_exact(text, fmt, default_date=date(2024, 5, 6))
