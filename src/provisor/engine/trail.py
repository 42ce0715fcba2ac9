"""What a provisioning records of its steps besides the log record (entra-behaviour.md 2.11,
2.12, G-STEP).

The :class:`~provisor.engine.provision.Provisioner` tells a :class:`Trail` each step as it goes:
the object connection followed or lost, each match query and the match decision, then the Perform
action (what was :class:`Performed`, the plan with its modified attributes, the status). A cycle
passes :data:`SILENT`, whose hooks do nothing, for every object; provisioning on demand passes a
:class:`~provisor.engine.steps.StepTrail`, which words each step as Entra's answer shows it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

from provisor.engine.matching import Match
from provisor.engine.model import ObjectKind
from provisor.engine.plan import Plan
from provisor.engine.state import LogStep

__all__ = ["SILENT", "Performed", "Trail"]


class Performed(enum.Enum):
    """What the Perform action step says was done (2.11); a trail words it."""

    CREATED = enum.auto()  # a new account
    UPDATED = enum.auto()  # a PATCH of the modified attributes
    UNCHANGED = enum.auto()  # nothing to change (RedundantExport)
    SKIPPED = enum.auto()  # left alone, e.g. out of scope: "Skipped: <detail>"
    NOTED = enum.auto()  # left alone; the plan's detail says it all
    DEPROVISIONED = enum.auto()  # disabled, deleted, staged or left alone (2.6, 2.7)
    FAILED = enum.auto()  # the error code and message


class Trail:
    """Where a provisioning records its steps (G-STEP) besides the log record: nowhere.

    Subclasses keep them (:class:`~provisor.engine.steps.StepTrail`); this one is what a cycle
    passes for every object, so its hooks must stay free.
    """

    __slots__ = ()

    def connected(self, kind: ObjectKind, target_id: str) -> None:
        """Matched through the object connection: the account is there."""

    def anchor_lost(self, target_id: str) -> None:
        """The connected account no longer exists (InvalidAnchor): matching again."""

    def unmatchable(self, message: str) -> None:
        """No matching attribute has a value (ImportSkipped, 2.4)."""

    def queried(self, path: str, value: str, ids: Sequence[str]) -> None:
        """One match query (1.3 step 1) and the ids it found."""

    def matched(self, kind: ObjectKind, match: Match) -> None:
        """The match decision: create, matched, or duplicates."""

    def acted(
        self,
        kind: ObjectKind,
        target_id: str | None,
        plan: Plan,
        status: str,
        performed: Performed,
        code: str | None,
        note: Mapping[str, str] | None,
    ) -> None:
        """The Perform action step: the plan (modified attributes old -> new) and its status."""

    def log_steps(self) -> tuple[LogStep, ...]:
        """The steps for the log record; empty: the record keeps its export step only."""
        return ()


#: The trail of a cycle's objects.
SILENT = Trail()
