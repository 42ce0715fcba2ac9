"""Quarantine rules (entra-behaviour.md 2.9, 2.8 escrowsPruned)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisor.engine.quarantine import (
    CycleOutcome,
    ImmediateReason,
    QuarantineReason,
    attempt_due,
    enter,
    evaluate,
    prune_escrows,
    retry_delay,
    should_disable,
    trigger,
)
from provisor.engine.state import Quarantine

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)


def reason_of(outcome: CycleOutcome) -> str | None:
    q = evaluate(outcome, now=T0, current=None)
    return None if q is None else q.reason


# -- the documented examples (QUAR) ------------------------------------------------------------
def test_45000_failures_quarantine() -> None:
    assert reason_of(CycleOutcome(failures=45_000)) == QuarantineReason.BASE_ESCROW


def test_30000_failed_5000_ok_quarantines_on_proportion() -> None:
    assert reason_of(CycleOutcome(failures=30_000, successes=5_000)) == QuarantineReason.ESCROW_PROPORTION


def test_20000_failed_100000_ok_does_not_quarantine() -> None:
    assert reason_of(CycleOutcome(failures=20_000, successes=100_000)) is None


def test_4000_failures_do_not_quarantine_even_if_all_fail() -> None:
    assert reason_of(CycleOutcome(failures=4_000, successes=0)) is None


def test_40000_plus_21000_reference_failures_hit_the_total_cap() -> None:
    q = evaluate(
        CycleOutcome(failures=40_000, reference_failures=21_000, successes=200_000), now=T0, current=None
    )
    assert q is not None
    assert q.reason == QuarantineReason.TOTAL_ESCROW
    assert "61,000" in q.error


# -- boundaries ---------------------------------------------------------------------------------
def test_evaluation_starts_at_exactly_5000() -> None:
    assert reason_of(CycleOutcome(failures=4_999)) is None
    assert reason_of(CycleOutcome(failures=5_000)) == QuarantineReason.ESCROW_PROPORTION


def test_proportion_is_strictly_more_than_40_percent() -> None:
    assert reason_of(CycleOutcome(failures=6_000, successes=9_000)) is None  # exactly 40 %
    assert reason_of(CycleOutcome(failures=6_001, successes=9_000)) == QuarantineReason.ESCROW_PROPORTION


def test_base_threshold_is_strictly_more_than_40000() -> None:
    assert reason_of(CycleOutcome(failures=40_000, successes=1_000_000)) is None
    assert reason_of(CycleOutcome(failures=40_001, successes=1_000_000)) == QuarantineReason.BASE_ESCROW


def test_total_cap_is_strictly_more_than_60000() -> None:
    assert reason_of(CycleOutcome(failures=30_000, reference_failures=30_000, successes=10**6)) is None
    assert (
        reason_of(CycleOutcome(failures=30_000, reference_failures=30_001, successes=10**6))
        == QuarantineReason.TOTAL_ESCROW
    )


def test_reference_failures_count_in_neither_the_gate_nor_the_proportion() -> None:
    # 4,000 object failures + 50,000 manager failures: below the 5,000 gate and below the cap.
    assert reason_of(CycleOutcome(failures=4_000, reference_failures=50_000)) is None
    # 10,000 of 100,000 objects failed (10 %); 30,000 reference failures do not raise the share.
    assert reason_of(CycleOutcome(failures=10_000, reference_failures=30_000, successes=90_000)) is None


def test_total_cap_applies_without_object_failures() -> None:
    assert reason_of(CycleOutcome(reference_failures=60_001)) == QuarantineReason.TOTAL_ESCROW


@pytest.mark.parametrize("immediate", list(ImmediateReason))
def test_credential_and_compliance_problems_quarantine_immediately(immediate: ImmediateReason) -> None:
    q = evaluate(
        CycleOutcome(failures=1, successes=500, immediate=immediate, detail="HTTP 401"), now=T0, current=None
    )
    assert q is not None
    assert q.reason == "EncounteredQuarantineException"
    assert immediate.value in q.error and "HTTP 401" in q.error


def test_immediate_takes_precedence_over_thresholds() -> None:
    found = trigger(CycleOutcome(failures=50_000, immediate=ImmediateReason.INVALID_CREDENTIALS))
    assert found is not None and found[0] is QuarantineReason.QUARANTINE_EXCEPTION


def test_negative_counts_are_rejected() -> None:
    with pytest.raises(ValueError):
        CycleOutcome(failures=-1)


# -- series and back-off --------------------------------------------------------------------------
def test_first_quarantine_starts_a_series_and_retries_after_6_hours() -> None:
    q = evaluate(CycleOutcome(failures=45_000), now=T0, current=None)
    assert q == Quarantine(
        reason="EncounteredBaseEscrowThreshold",
        error=q.error if q else "",
        series_began=T0,
        current_began=T0,
        next_attempt=T0 + 6 * H,
        series_count=1,
    )


def test_retries_back_off_6_12_24_then_every_24_hours() -> None:
    failing = CycleOutcome(immediate=ImmediateReason.INVALID_CREDENTIALS)
    now, current, delays = T0, None, []
    for _ in range(6):
        q = evaluate(failing, now=now, current=current)
        assert q is not None
        delays.append(q.next_attempt - now)
        assert q.series_began == T0 and q.current_began == now
        current, now = q, q.next_attempt
    assert delays == [6 * H, 12 * H, 24 * H, 24 * H, 24 * H, 24 * H]
    assert current is not None and current.series_count == 6


def test_retry_delay_rejects_zero() -> None:
    assert retry_delay(1) == 6 * H and retry_delay(99) == 24 * H
    with pytest.raises(ValueError):
        retry_delay(0)


def test_reason_follows_the_latest_cycle_but_the_series_continues() -> None:
    first = evaluate(CycleOutcome(failures=45_000), now=T0, current=None)
    second = evaluate(CycleOutcome(immediate=ImmediateReason.SCIM_COMPLIANCE), now=T0 + 6 * H, current=first)
    assert second is not None
    assert second.reason == "EncounteredQuarantineException"
    assert second.series_began == T0 and second.series_count == 2


def test_a_successful_retry_releases_the_quarantine() -> None:
    current = evaluate(CycleOutcome(failures=45_000), now=T0, current=None)
    assert current is not None
    assert evaluate(CycleOutcome(failures=10, successes=10_000), now=T0 + 6 * H, current=current) is None


def test_too_many_deletes_enters_quarantine_through_enter() -> None:
    q = enter(QuarantineReason.TOO_MANY_DELETES, "600 deletes", now=T0, current=None)
    assert (q.reason, q.series_count, q.next_attempt) == ("TooManyDeletes", 1, T0 + 6 * H)


def test_attempt_due_at_next_attempt() -> None:
    q = enter(QuarantineReason.UNKNOWN, "x", now=T0, current=None)
    assert not attempt_due(q, T0 + 6 * H - timedelta(seconds=1))
    assert attempt_due(q, T0 + 6 * H)


def test_disabled_after_28_days_from_series_began() -> None:
    failing = CycleOutcome(immediate=ImmediateReason.INVALID_CREDENTIALS)
    now, q = T0, evaluate(failing, now=T0, current=None)
    assert q is not None
    retries = [T0]
    while not should_disable(q, now):
        now = q.next_attempt
        retries.append(now)
        nxt = evaluate(failing, now=now, current=q)
        assert nxt is not None
        q = nxt
    # Retries at +6 h, +18 h, +42 h, ... ; the first one 28 days or more after the first failure disables.
    assert retries[-2] - T0 < timedelta(days=28) <= retries[-1] - T0
    assert retries[-1] - T0 == timedelta(hours=18 + 24 * 28)
    assert not should_disable(q, T0 + timedelta(days=28) - timedelta(seconds=1))


# -- initial cycle: escrowsPruned (G-STATUS) ----------------------------------------------------
def test_initial_cycle_prunes_escrows_instead_of_quarantining() -> None:
    outcome = CycleOutcome(failures=30_000, successes=5_000)
    assert evaluate(outcome, now=T0, current=None, initial=True) is None
    assert prune_escrows(outcome, initial=True)
    assert not prune_escrows(outcome, initial=False)


def test_initial_cycle_still_quarantines_bad_credentials() -> None:
    outcome = CycleOutcome(immediate=ImmediateReason.INVALID_CREDENTIALS)
    q = evaluate(outcome, now=T0, current=None, initial=True)
    assert q is not None and q.reason == "EncounteredQuarantineException"
    assert not prune_escrows(outcome, initial=True)


def test_initial_cycle_below_thresholds_prunes_nothing() -> None:
    assert not prune_escrows(CycleOutcome(failures=4_000), initial=True)


# -- properties ---------------------------------------------------------------------------------
counts = st.integers(min_value=0, max_value=200_000)


@given(failures=counts, reference=counts, successes=counts)
def test_quarantine_iff_a_documented_rule_holds(failures: int, reference: int, successes: int) -> None:
    outcome = CycleOutcome(failures=failures, reference_failures=reference, successes=successes)
    expected = failures + reference > 60_000 or (
        failures >= 5_000 and (failures > 40_000 or failures > 0.4 * (failures + successes))
    )
    assert (trigger(outcome) is not None) == expected
    # More successes never turn a clean cycle into a quarantine.
    if trigger(outcome) is None:
        more = CycleOutcome(failures=failures, reference_failures=reference, successes=successes + 1)
        assert trigger(more) is None
