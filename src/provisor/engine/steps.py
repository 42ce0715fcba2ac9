"""Provisioning steps as provisioning on demand shows them (entra-behaviour.md 2.11, G-POD, G-STEP).

One object's answer (:class:`OnDemandResult`) lists its steps in Entra's order: Import (the
source attributes), Scope evaluation, Match (each matching attribute in precedence order, its
query and how many accounts answered) and Perform action (the action with the modified
attributes old -> new, or Skip with its reason). :class:`StepTrail` is the
:class:`~provisor.engine.provision.Trail` that writes them while the
:class:`~provisor.engine.provision.Provisioner` works, and gives the log record the same steps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from provisor.engine.matching import Match, MatchOutcome, filter_text
from provisor.engine.model import ObjectKind, SourceObject
from provisor.engine.plan import Action, ModifiedProperty, Plan
from provisor.engine.state import LogStep
from provisor.engine.trail import Performed, Trail

__all__ = ["OnDemandResult", "Step", "StepTrail", "display_of", "log_text"]


@dataclass(frozen=True, slots=True)
class Step:
    """One provisioning step as Entra's on-demand answer shows it (G-POD, G-STEP)."""

    name: str
    type: str  # import / scoping / matching / export
    status: str  # success / skipped / failure / warning
    description: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "status": self.status,
            "description": self.description,
            "details": dict(self.details),
        }


@dataclass(slots=True)
class OnDemandResult:
    """What happened to one object: ``result`` is Success, Skipped or Failure."""

    kind: ObjectKind
    anchor: str
    display: str
    result: str = "Success"
    action: str = ""
    reason: str = ""
    target_id: str | None = None
    steps: list[Step] = field(default_factory=list)
    modified: tuple[ModifiedProperty, ...] = ()
    members: list[OnDemandResult] = field(default_factory=list)
    cycle: str = ""

    @property
    def failed(self) -> bool:
        """This object or one of its members failed."""
        return self.result == "Failure" or any(m.failed for m in self.members)

    def as_json(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "object": {"type": self.kind.value.title(), "id": self.anchor, "displayName": self.display},
            "action": self.action,
            "reason": self.reason,
            "targetId": self.target_id,
            "provisioningSteps": [s.as_json() for s in self.steps],
            "modifiedProperties": [{"name": m.attribute, "old": m.old, "new": m.new} for m in self.modified],
            "members": [m.as_json() for m in self.members],
            "logCycle": self.cycle,
        }


def log_text(value: Any) -> str:
    """A value as the on-demand details show it (2.12): ``"True"``/``"False"``, JSON for objects."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def display_of(obj: SourceObject) -> str:
    """The name an on-demand answer shows for an object."""
    return str(obj.get("displayName") or obj.get("userPrincipalName") or obj.anchor)


_STEP_STATUS = {"Success": "success", "Skipped": "skipped", "Failure": "failure"}


class StepTrail(Trail):
    """Writes every step of one object into its :class:`OnDemandResult`."""

    __slots__ = ("_note", "_tried", "result")

    def __init__(self, result: OnDemandResult) -> None:
        self.result = result
        self._note = ""  # why matching runs although the object had a connection
        self._tried: list[dict[str, str]] = []

    def add(self, step: Step) -> None:
        self.result.steps.append(step)

    def imported(self, obj: SourceObject) -> None:
        """The Import step: the source attributes, normalised."""
        what = _what(obj.kind)
        details = {
            name: log_text(value) for name, value in sorted(obj.attributes.items()) if value is not None
        }
        self.add(
            Step(
                "Import",
                "import",
                "success",
                f"Retrieved {what} {display_of(obj)} ({obj.anchor}) from the source system",
                details,
            )
        )

    # -- the provisioner's hooks -----------------------------------------------------------------

    def connected(self, kind: ObjectKind, target_id: str) -> None:
        self.add(
            Step(
                "Match",
                "matching",
                "success",
                f"Matched through the object connection to {_what(kind)} {target_id}",
                {"objectConnection": target_id, "results": "1"},
            )
        )

    def anchor_lost(self, target_id: str) -> None:
        self._note = f"the connected account {target_id} no longer exists (InvalidAnchor); "

    def unmatchable(self, message: str) -> None:
        self.add(Step("Match", "matching", "skipped", message, {}))

    def queried(self, path: str, value: str, ids: Sequence[str]) -> None:
        count = "0" if not ids else "1" if len(ids) == 1 else "many"
        self._tried.append(
            {"attribute": path, "value": value, "query": filter_text(path, value), "results": count}
        )

    def matched(self, kind: ObjectKind, match: Match) -> None:
        details: dict[str, Any] = {"queries": self._tried}
        what = _what(kind)
        if match.outcome is MatchOutcome.DUPLICATE_TARGET_ENTRIES:
            text = f"{len(match.candidates)} accounts match: {', '.join(match.candidates)}"
            self.add(Step("Match", "matching", "failure", self._note + text, details))
        elif match.outcome is MatchOutcome.CREATE:
            text = f"No matching {what} in the target: it will be created"
            self.add(Step("Match", "matching", "success", self._note + text, details))
        else:
            text = f"Matched {what} {match.target_id} in the target"
            self.add(Step("Match", "matching", "success", self._note + text, details))

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
        details: dict[str, Any] = {
            m.attribute: f"{m.old if m.old is not None else '(none)'} -> {m.new}" for m in plan.modified
        }
        if plan.reason is not None:
            details["SkipReason" if plan.action is Action.SKIP else "Reason"] = plan.reason.value
        details.update(note or {})
        description = _describe(kind, target_id, plan, performed, code)
        self.add(Step("Perform action", "export", _STEP_STATUS[status], description, details))
        res = self.result
        res.result = status
        res.action = plan.action.value
        res.reason = code or (plan.reason.value if plan.reason else "")
        res.target_id = target_id
        res.modified = plan.modified

    def log_steps(self) -> tuple[LogStep, ...]:
        return tuple(
            LogStep(s.type, s.status, f"{s.name}: {s.description}", dict(s.details))
            for s in self.result.steps
        )


def _what(kind: ObjectKind) -> str:
    return "user" if kind is ObjectKind.USER else "group"


def _describe(
    kind: ObjectKind, target_id: str | None, plan: Plan, performed: Performed, code: str | None
) -> str:
    """The Perform action step's description."""
    reason = plan.reason.value if plan.reason else ""
    match performed:
        case Performed.CREATED:
            return f"Created the {_what(kind)} in the target (id {target_id})"
        case Performed.UPDATED:
            return f"Updated {len(plan.modified)} attribute(s) of {_what(kind)} {target_id}"
        case Performed.UNCHANGED:
            return f"Skipped: nothing to change ({reason or 'Skip'})"
        case Performed.SKIPPED:
            return f"Skipped: {plan.detail}"
        case Performed.DEPROVISIONED:
            return f"{plan.action.value}: {plan.detail or reason}".rstrip(": ")
        case Performed.FAILED:
            return f"{code}: {plan.detail}"
        case _:
            return plan.detail
