"""Escrow retry schedule (entra-behaviour.md 2.8, 1.8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisor.engine.escrow import RetryClass, backoff, due, next_escrow, retry_class
from provisor.engine.model import ObjectKind
from provisor.engine.state import Escrow

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
ZERO = timedelta(0)


CYCLE = timedelta(minutes=40)


def fail_repeatedly(code: str, times: int) -> list[timedelta]:
    """Fail one object at every cycle that retries it; the waits between failure and retry time."""
    waits: list[timedelta] = []
    previous: Escrow | None = None
    now = T0
    for attempt in range(1, times + 1):
        e = next_escrow(previous, kind=ObjectKind.USER, anchor="u1", code=code, message="boom", now=now)
        assert e.attempts == attempt
        waits.append(e.next_attempt - now)
        now += CYCLE
        while not due(e, now):  # the engine skips the object until a cycle starts after next_attempt
            now += CYCLE
        previous = e
    return waits


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("TooManyRequests", RetryClass.THROTTLED),
        ("InternalServerError", RetryClass.TRANSIENT),
        ("Timeout", RetryClass.TRANSIENT),
        ("WebExceptionProtocolError", RetryClass.TRANSIENT),
        ("InternalError", RetryClass.TRANSIENT),
        ("HTTP 503", RetryClass.TRANSIENT),
        ("502", RetryClass.TRANSIENT),
        ("HTTP 501", RetryClass.FIX_NEEDED),  # NotImplemented will not heal by itself
        ("EntryConflict", RetryClass.FIX_NEEDED),
        ("BadRequest", RetryClass.FIX_NEEDED),
        ("InvalidAnchor", RetryClass.FIX_NEEDED),
        ("MandatoryFieldsMissing", RetryClass.FIX_NEEDED),
    ],
)
def test_retry_class(code: str, expected: RetryClass) -> None:
    assert retry_class(code) is expected


def test_first_escrow_counts_one_attempt_and_is_due_next_cycle() -> None:
    e = next_escrow(None, kind=ObjectKind.GROUP, anchor="g1", code="Timeout", message="slow", now=T0)
    assert e == Escrow(
        kind=ObjectKind.GROUP, anchor="g1", attempts=1, next_attempt=T0, code="Timeout", message="slow"
    )
    assert due(e, T0 + 40 * timedelta(minutes=1))


def test_transient_errors_retry_three_cycles_then_back_off_to_daily() -> None:
    assert fail_repeatedly("InternalServerError", 9) == [
        ZERO,
        ZERO,
        ZERO,
        2 * H,
        6 * H,
        12 * H,
        24 * H,
        24 * H,
        24 * H,
    ]


def test_fix_needed_errors_back_off_faster() -> None:
    assert fail_repeatedly("EntryConflict", 6) == [ZERO, 6 * H, 12 * H, 24 * H, 24 * H, 24 * H]


def test_too_many_requests_is_always_retried_next_cycle() -> None:
    assert fail_repeatedly("TooManyRequests", 12) == [ZERO] * 12


def test_next_attempt_is_now_plus_backoff() -> None:
    previous = Escrow(ObjectKind.USER, "u1", attempts=4, next_attempt=T0, code="Timeout", message="x")
    e = next_escrow(
        previous, kind=ObjectKind.USER, anchor="u1", code="EntryConflict", message="dup", now=T0 + H
    )
    # The latest error decides the schedule: a 5th failure, now a conflict.
    assert (e.attempts, e.code, e.message, e.next_attempt) == (5, "EntryConflict", "dup", T0 + H + 24 * H)


def test_reference_flag_is_kept() -> None:
    e = next_escrow(
        None, kind=ObjectKind.USER, anchor="u1", code="BadRequest", message="m", now=T0, reference=True
    )
    assert e.reference


def test_due_compares_with_cycle_start() -> None:
    e = Escrow(ObjectKind.USER, "u1", attempts=4, next_attempt=T0 + 2 * H, code="Timeout", message="x")
    assert not due(e, T0 + 2 * H - timedelta(microseconds=1))
    assert due(e, T0 + 2 * H)
    assert due(e, T0 + 3 * H)


def test_previous_escrow_of_another_object_is_rejected() -> None:
    other = Escrow(ObjectKind.USER, "u2", attempts=1, next_attempt=T0, code="Timeout", message="x")
    with pytest.raises(ValueError, match="u2"):
        next_escrow(other, kind=ObjectKind.USER, anchor="u1", code="Timeout", message="x", now=T0)
    with pytest.raises(ValueError):
        next_escrow(other, kind=ObjectKind.GROUP, anchor="u2", code="Timeout", message="x", now=T0)


def test_backoff_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError):
        backoff("Timeout", 0)


@given(
    code=st.sampled_from(["TooManyRequests", "Timeout", "EntryConflict", "HTTP 500", "Whatever"]),
    attempts=st.integers(min_value=1, max_value=500),
)
def test_backoff_never_shrinks_and_is_capped_at_a_day(code: str, attempts: int) -> None:
    assert ZERO <= backoff(code, attempts) <= backoff(code, attempts + 1) <= 24 * H
