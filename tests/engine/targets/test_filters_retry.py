"""Filter quoting (RFC 7644 3.4.2.2) and the retry arithmetic (entra-behaviour.md 4.3)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisor.engine.targets.filters import eq_filter, quote_value
from provisor.engine.targets.retry import RetryPolicy, parse_retry_after


def test_quote_escapes_quote_and_backslash() -> None:
    assert eq_filter("userName", 'a"b\\c') == 'userName eq "a\\"b\\\\c"'
    assert eq_filter("userName", "alice@contoso.com") == 'userName eq "alice@contoso.com"'
    assert eq_filter('emails[type eq "work"].value', "x") == 'emails[type eq "work"].value eq "x"'


def test_non_string_values() -> None:
    assert quote_value(True) == "true"
    assert quote_value(False) == "false"
    assert quote_value(None) == "null"
    assert quote_value(42) == "42"
    assert quote_value("Zoë") == '"Zoë"'


@given(st.text())
def test_quoted_strings_round_trip_as_json(value: str) -> None:
    assert json.loads(quote_value(value)) == value


def test_bad_attribute_path_is_refused() -> None:
    for path in ("", "userName or 1", 'a"b', "x)"):
        with pytest.raises(ValueError):
            eq_filter(path, "v")


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(" 120 ", now) == 120.0
    later = format_datetime(datetime(2025, 1, 1, 12, 0, 30, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(later, now) == 30.0
    earlier = format_datetime(datetime(2025, 1, 1, 11, 0, 0, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(earlier, now) == 0.0
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-3", now) is None


def test_retry_after_is_capped() -> None:
    policy = RetryPolicy(retry_after_cap=300)
    assert policy.honour(7) == 7
    assert policy.honour(86400) == 300
    assert policy.honour(-1) == 0


@given(st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=2**32))
def test_backoff_is_full_jitter_within_the_exponential_bound(retry: int, seed: int) -> None:
    policy = RetryPolicy(base=0.5, cap=30.0)
    delay = policy.backoff(retry, random.Random(seed))
    assert 0.0 <= delay <= min(30.0, 0.5 * 2**retry)


def test_backoff_bound_grows_then_caps() -> None:
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    policy = RetryPolicy(base=0.5, cap=30.0)
    assert [policy.backoff(n, Top()) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


def test_negative_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)
