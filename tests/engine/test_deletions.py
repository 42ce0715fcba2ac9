"""Accidental-deletion prevention (entra-behaviour.md 2.7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisor.engine.deletions import STAGED_ACTION, Decision, DeletionGuard, decide, quarantine_error

APPLY = Decision(apply=True, quarantine=False)
HOLD = Decision(apply=False, quarantine=True)


def test_threshold_500_allows_at_most_499() -> None:
    assert decide(499, 500, allow=False) == APPLY
    assert decide(500, 500, allow=False) == HOLD
    assert decide(10_000, 500, allow=False) == HOLD


def test_below_threshold_applies_without_quarantine() -> None:
    assert decide(0, 500, allow=False) == APPLY
    assert decide(2, 3, allow=False) == APPLY


def test_threshold_zero_disables_the_guard() -> None:
    assert decide(1_000_000, 0, allow=False) == APPLY


def test_allow_deletes_applies_everything_once() -> None:
    assert decide(10_000, 500, allow=True) == APPLY


def test_threshold_one_holds_any_deletion() -> None:
    assert decide(0, 1, allow=False) == APPLY
    assert decide(1, 1, allow=False) == HOLD


def test_held_decision_stages_everything() -> None:
    assert HOLD.stage and not APPLY.stage
    assert STAGED_ACTION == "StagedDelete"


def test_negative_input_is_rejected() -> None:
    with pytest.raises(ValueError):
        decide(-1, 500, allow=False)
    with pytest.raises(ValueError):
        decide(1, -1, allow=False)
    with pytest.raises(ValueError):
        DeletionGuard(threshold=-5)


def test_guard_admits_until_the_threshold() -> None:
    guard = DeletionGuard(threshold=3)
    assert [guard.admit(n) for n in range(5)] == [True, True, True, False, False]
    assert guard.limit == 2 and guard.enabled
    assert guard.decide(3) == HOLD


def test_guard_with_allow_or_disabled_has_no_limit() -> None:
    assert DeletionGuard(threshold=3, allow=True).limit is None
    assert DeletionGuard(threshold=3, allow=True).admit(1_000)
    off = DeletionGuard(threshold=0)
    assert not off.enabled and off.limit is None and off.admit(10**9)


def test_quarantine_error_names_the_counts() -> None:
    text = quarantine_error(1_200, 500)
    assert "1,200" in text and "500" in text and "499" in text


@given(
    candidates=st.integers(min_value=0, max_value=10**6),
    threshold=st.integers(min_value=0, max_value=10**6),
    allow=st.booleans(),
)
def test_decision_is_all_or_nothing(candidates: int, threshold: int, allow: bool) -> None:
    d = decide(candidates, threshold, allow)
    assert d.apply != d.quarantine  # applied xor held with a quarantine
    if d.apply and threshold and not allow:
        assert candidates <= threshold - 1
    # The guard agrees with the function, and stopping at the first refusal is safe.
    guard = DeletionGuard(threshold=threshold, allow=allow)
    assert guard.decide(candidates) == d
    assert guard.admit(candidates) == d.apply
    if not d.apply:
        assert not guard.admit(candidates + 1)
