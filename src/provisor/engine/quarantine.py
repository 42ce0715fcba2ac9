"""Quarantine: when a job stops trying every cycle, and when it gives up (entra-behaviour.md 2.9, 2.8).

Pure rules; the caller passes the time in. The engine, after every cycle::

    decision = deletions.decide(candidates, threshold, allow)       # 2.7, first
    if decision.quarantine:
        q = enter(QuarantineReason.TOO_MANY_DELETES, error, now=now, current=state.quarantine)
    elif prune_escrows(outcome, initial=initial):                   # G-STATUS escrowsPruned
        clear escrows, finish the initial cycle, pause the job for the admin; q = None
    else:
        q = evaluate(outcome, now=now, current=state.quarantine, initial=initial)
    if q is not None and should_disable(q, now): disable the job, clear escrows

**Triggers** (2.9, QUAR), checked in this order, the first that holds names the reason:

1. ``immediate`` - bad credentials (401/403) or a SCIM compliance problem (404 on a query):
   ``EncounteredQuarantineException`` at once, no minimum count.
2. failures + reference failures > 60,000: ``EncounteredTotalEscrowThreshold`` (the absolute cap,
   "40,000 + 21,000 manager failures"; it does not wait for the 5,000 gate).
3. Only when (non-reference) failures >= 5,000 ("4,000 -> no quarantine"):
   failures > 40,000: ``EncounteredBaseEscrowThreshold``;
   failures > 40 % of failures + successes: ``EncounteredEscrowProportionThreshold``.
   Reference failures (manager, group members) count in neither.

**Back-off** (2.9): the first quarantine of a series retries after 6 h, the second after 12 h, then
every 24 h (``Quarantine.series_count`` 1, 2, 3, ...). A job quarantined for 28 days since
``series_began`` is disabled (``should_disable``). Any cycle that reaches no trigger is a
successful retry: ``evaluate`` returns ``None`` - the release - and the job leaves quarantine
("leaves quarantine automatically and normal cadence resumes"); Restart with scope
``QuarantineState`` lifts it too (2.10: the engine stores ``None``).

**Initial cycle** (G-STATUS ``escrowsPruned``): when an *initial* cycle reaches an escrow threshold
(2 or 3 above), the job is not quarantined; the engine clears the escrows, finishes the cycle and
pauses for the admin to clean up. ``evaluate(..., initial=True)`` then returns ``None`` and
``prune_escrows`` says so. Credential and compliance problems (1) quarantine in any cycle: nothing
can succeed until they are fixed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from provisor.engine.state import Quarantine

__all__ = [
    "BASE_THRESHOLD",
    "DISABLE_AFTER",
    "EVALUATION_MINIMUM",
    "PROPORTION_THRESHOLD",
    "TOTAL_THRESHOLD",
    "CycleOutcome",
    "ImmediateReason",
    "QuarantineReason",
    "attempt_due",
    "enter",
    "evaluate",
    "prune_escrows",
    "retry_delay",
    "should_disable",
    "trigger",
]

#: Failures (reference failures excluded) below which the escrow thresholds are not evaluated.
EVALUATION_MINIMUM: Final = 5_000
#: More failures than this quarantine the job whatever the proportion.
BASE_THRESHOLD: Final = 40_000
#: More than this share of the cycle's events failing quarantines the job.
PROPORTION_THRESHOLD: Final = 0.40
#: The absolute cap: reference and non-reference failures together.
TOTAL_THRESHOLD: Final = 60_000
#: Quarantined this long (from ``series_began``) -> the job is disabled ("more than four weeks").
DISABLE_AFTER: Final = timedelta(days=28)
#: Retry delays of the 1st, 2nd, 3rd quarantine of a series; every later one waits the last.
RETRY_SCHEDULE: Final = (timedelta(hours=6), timedelta(hours=12), timedelta(hours=24))


class QuarantineReason(enum.StrEnum):
    """Graph ``synchronizationQuarantine.reason`` values (G-QUAR)."""

    QUARANTINE_EXCEPTION = "EncounteredQuarantineException"
    ESCROW_PROPORTION = "EncounteredEscrowProportionThreshold"
    BASE_ESCROW = "EncounteredBaseEscrowThreshold"
    TOTAL_ESCROW = "EncounteredTotalEscrowThreshold"
    TOO_MANY_DELETES = "TooManyDeletes"
    INGESTION_INTERRUPTED = "IngestionInterrupted"
    QUARANTINED_ON_DEMAND = "QuarantinedOnDemand"
    UNKNOWN = "Unknown"


class ImmediateReason(enum.StrEnum):
    """A problem that quarantines the job at once (2.9: "no minimum count")."""

    #: 401/403: the Secret Token is wrong, expired or lacks rights.
    INVALID_CREDENTIALS = "InvalidCredentials"
    #: The target answers a filter query with 404 instead of an empty ListResponse (1.2, 1.9).
    SCIM_COMPLIANCE = "ScimCompliance"


_IMMEDIATE_TEXT: Final = {
    ImmediateReason.INVALID_CREDENTIALS: "the target refused the credentials (Secret Token)",
    ImmediateReason.SCIM_COMPLIANCE: "the target is not SCIM compliant (404 on a filter query)",
}


@dataclass(frozen=True, slots=True)
class CycleOutcome:
    """What a finished cycle did to the target.

    ``failures`` are failed object operations (create, update, disable, delete); ``reference_failures``
    failed manager or membership updates (2.8, counted apart); ``successes`` operations that
    succeeded. ``immediate`` is set when a credential or compliance problem was met, ``detail``
    optionally says more about it (the target's message, never a secret).
    """

    failures: int = 0
    reference_failures: int = 0
    successes: int = 0
    immediate: ImmediateReason | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        if min(self.failures, self.reference_failures, self.successes) < 0:
            raise ValueError("cycle outcome counts cannot be negative")


def trigger(outcome: CycleOutcome) -> tuple[QuarantineReason, str] | None:
    """The first quarantine trigger ``outcome`` reaches, as (reason, error text), or ``None``."""
    if outcome.immediate is not None:
        text = _IMMEDIATE_TEXT[outcome.immediate]
        error = f"{outcome.immediate.value}: {text}"
        return (
            QuarantineReason.QUARANTINE_EXCEPTION,
            f"{error}: {outcome.detail}" if outcome.detail else error,
        )
    total = outcome.failures + outcome.reference_failures
    if total > TOTAL_THRESHOLD:
        return QuarantineReason.TOTAL_ESCROW, (
            f"{total:,} failures ({outcome.failures:,} objects + {outcome.reference_failures:,} "
            f"references) exceed the cap of {TOTAL_THRESHOLD:,}"
        )
    if outcome.failures < EVALUATION_MINIMUM:
        return None
    if outcome.failures > BASE_THRESHOLD:
        return QuarantineReason.BASE_ESCROW, (
            f"{outcome.failures:,} failed operations exceed the threshold of {BASE_THRESHOLD:,}"
        )
    events = outcome.failures + outcome.successes
    if outcome.failures > PROPORTION_THRESHOLD * events:
        share = outcome.failures / events
        return QuarantineReason.ESCROW_PROPORTION, (
            f"{outcome.failures:,} of {events:,} operations failed ({share:.0%}, more than "
            f"{PROPORTION_THRESHOLD:.0%})"
        )
    return None


def retry_delay(series_count: int) -> timedelta:
    """How long the ``series_count``-th quarantine of a series waits: 6 h, 12 h, then 24 h."""
    if series_count < 1:
        raise ValueError("series_count starts at 1")
    return RETRY_SCHEDULE[min(series_count, len(RETRY_SCHEDULE)) - 1]


def enter(reason: QuarantineReason, error: str, *, now: datetime, current: Quarantine | None) -> Quarantine:
    """Quarantine (again) at ``now``: a new series when ``current`` is ``None``, else its next step.

    Used by :func:`evaluate` and, with ``TooManyDeletes``, by the engine for the deletion threshold.
    """
    if current is None:
        return Quarantine(
            reason=reason.value,
            error=error,
            series_began=now,
            current_began=now,
            next_attempt=now + retry_delay(1),
            series_count=1,
        )
    count = current.series_count + 1
    return Quarantine(
        reason=reason.value,
        error=error,
        series_began=current.series_began,
        current_began=now,
        next_attempt=now + retry_delay(count),
        series_count=count,
    )


def evaluate(
    outcome: CycleOutcome, *, now: datetime, current: Quarantine | None, initial: bool = False
) -> Quarantine | None:
    """The job's quarantine after a cycle that ended at ``now``; ``None``: not (or no longer) quarantined.

    ``current`` is the quarantine the job was in when the cycle ran. ``initial`` marks an initial
    cycle, where escrow thresholds prune escrows instead of quarantining (see the module docstring).
    """
    found = trigger(outcome)
    if found is None:
        return None  # a successful retry leaves quarantine
    reason, error = found
    if initial and reason is not QuarantineReason.QUARANTINE_EXCEPTION:
        return None  # escrowsPruned: see prune_escrows
    return enter(reason, error, now=now, current=current)


def prune_escrows(outcome: CycleOutcome, *, initial: bool) -> bool:
    """G-STATUS ``escrowsPruned``: an initial cycle reached an escrow threshold, so the engine clears
    the escrows, finishes the cycle and pauses the job instead of quarantining it."""
    found = trigger(outcome)
    return initial and found is not None and found[0] is not QuarantineReason.QUARANTINE_EXCEPTION


def attempt_due(quarantine: Quarantine, now: datetime) -> bool:
    """Whether a quarantined job may run its next (retry) cycle at ``now``."""
    return quarantine.next_attempt <= now


def should_disable(quarantine: Quarantine, now: datetime) -> bool:
    """Quarantined for 28 days since the series began: disable the job and drop its escrows (2.9)."""
    return now - quarantine.series_began >= DISABLE_AFTER
