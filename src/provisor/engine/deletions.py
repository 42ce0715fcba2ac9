"""Accidental-deletion prevention (entra-behaviour.md 2.7, ADP; 2.10 ``ForceDeletes``; CSYNC).

Pure rules. Every user or group a cycle would **disable or delete** (unassigned, out of scope,
soft- or hard-deleted in the source) is a *candidate*; the count is per cycle, not cumulative.

The engine first counts the cycle's candidates, then asks :func:`decide`:

- ``threshold == 0``: the guard is off; candidates are applied.
- ``candidates < threshold``: applied. A threshold of 500 allows at most 499 per cycle ("500 means
  at most 499 deletes per run", CSYNC).
- ``candidates >= threshold`` and the admin has not allowed deletes: **none** is applied. Each one
  is stored as a ``StagedDelete`` and logged with action ``StagedDelete``; the job is quarantined
  with reason ``TooManyDeletes`` (:func:`provisor.engine.quarantine.enter`) and the admin is
  e-mailed (2.14).
- ``allow`` (``provisor allow-deletes``, Graph restart scope ``ForceDeletes``): the next cycle
  applies every candidate whatever the count and the job is healthy again. ``allow`` is one-shot:
  the engine resets it once a cycle has run the deletion step, so a later mass deletion is held
  again.

All-or-nothing rather than "the first 499": applying part of a suspicious mass deletion would
still do damage, and which part would depend on source order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["STAGED_ACTION", "Decision", "DeletionGuard", "decide", "quarantine_error"]

#: The provisioning-log action of a disable or delete held back by the threshold (2.7, 2.12).
STAGED_ACTION: Final = "StagedDelete"


@dataclass(frozen=True, slots=True)
class Decision:
    """``apply``: carry out the cycle's disables and deletes; otherwise stage them all.
    ``quarantine``: quarantine the job with reason ``TooManyDeletes``."""

    apply: bool
    quarantine: bool

    @property
    def stage(self) -> bool:
        """Whether the candidates are staged instead of applied."""
        return not self.apply


def decide(candidates: int, threshold: int, allow: bool) -> Decision:
    """What to do with a cycle's ``candidates`` disables and deletes (see the module docstring)."""
    if candidates < 0 or threshold < 0:
        raise ValueError("candidates and threshold cannot be negative")
    if threshold == 0 or allow or candidates < threshold:
        return Decision(apply=True, quarantine=False)
    return Decision(apply=False, quarantine=True)


def quarantine_error(candidates: int, threshold: int) -> str:
    """The ``Quarantine.error`` text of a held mass deletion."""
    return (
        f"{candidates:,} disables or deletes in one cycle reach the accidental-deletion threshold of "
        f"{threshold:,} (at most {max(threshold - 1, 0):,} are applied without approval); none was applied"
    )


@dataclass(frozen=True, slots=True)
class DeletionGuard:
    """A job's deletion threshold (``Settings.deletion_threshold``; 0 disables it) and whether the
    admin allowed this cycle's deletes (``JobState.allow_deletes``)."""

    threshold: int
    allow: bool = False

    def __post_init__(self) -> None:
        if self.threshold < 0:
            raise ValueError("the deletion threshold cannot be negative")

    @property
    def enabled(self) -> bool:
        return self.threshold > 0

    @property
    def limit(self) -> int | None:
        """The most candidates a cycle may apply without approval; ``None``: no limit."""
        if not self.enabled or self.allow:
            return None
        return self.threshold - 1

    def admit(self, count_so_far: int) -> bool:
        """Whether a cycle that has counted ``count_so_far`` candidates may still apply them all.

        An engine counting while it plans can stop counting at the first ``False``: the cycle's
        candidates are then all staged.
        """
        return decide(count_so_far, self.threshold, self.allow).apply

    def decide(self, candidates: int) -> Decision:
        """:func:`decide` with this guard's threshold and ``allow``."""
        return decide(candidates, self.threshold, self.allow)
