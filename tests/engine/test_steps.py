"""The steps provisioning on demand shows (entra-behaviour.md 2.11, G-STEP), as StepTrail words them."""

from __future__ import annotations

import pytest

from provisor.engine.matching import Match, MatchOutcome
from provisor.engine.model import ObjectKind
from provisor.engine.plan import Action, ModifiedProperty, Plan, Reason, skip
from provisor.engine.steps import OnDemandResult, StepTrail
from provisor.engine.trail import SILENT, Performed

UPDATE = Plan(Action.UPDATE, modified=(ModifiedProperty("title", "Engineer", "CTO"),))


def trail() -> StepTrail:
    return StepTrail(OnDemandResult(ObjectKind.USER, "u1", "Ada"))


@pytest.mark.parametrize(
    ("plan", "status", "performed", "code", "description"),
    [
        (Plan(Action.CREATE), "Success", Performed.CREATED, None, "Created the user in the target (id t1)"),
        (UPDATE, "Success", Performed.UPDATED, None, "Updated 1 attribute(s) of user t1"),
        (
            skip(Reason.REDUNDANT_EXPORT),
            "Skipped",
            Performed.UNCHANGED,
            None,
            "Skipped: nothing to change (RedundantExport)",
        ),
        (
            skip(Reason.OUT_OF_SCOPE, "not assigned"),
            "Skipped",
            Performed.SKIPPED,
            None,
            "Skipped: not assigned",
        ),
        (skip(Reason.IMPORT_SKIPPED, "no value"), "Skipped", Performed.NOTED, None, "no value"),
        (
            Plan(Action.DISABLE, Reason.OUT_OF_SCOPE),
            "Success",
            Performed.DEPROVISIONED,
            None,
            "Disable: OutOfScope",
        ),
        (Plan(Action.DELETE), "Success", Performed.DEPROVISIONED, None, "Delete"),
        (
            Plan(Action.SKIP, None, detail="boom"),
            "Failure",
            Performed.FAILED,
            "BadRequest",
            "BadRequest: boom",
        ),
    ],
)
def test_perform_action_step(
    plan: Plan, status: str, performed: Performed, code: str | None, description: str
) -> None:
    t = trail()
    t.acted(ObjectKind.USER, "t1", plan, status, performed, code, None)
    (step,) = t.result.steps
    assert (step.name, step.type, step.description) == ("Perform action", "export", description)
    assert step.status == status.lower()
    assert (t.result.result, t.result.action, t.result.target_id) == (status, plan.action.value, "t1")
    assert t.result.reason == (code or (plan.reason.value if plan.reason else ""))


def test_perform_action_details_show_old_and_new_values_and_notes() -> None:
    t = trail()
    t.acted(ObjectKind.USER, "t1", UPDATE, "Success", Performed.UPDATED, None, {"manager": "later"})
    assert t.result.steps[0].details == {"title": "Engineer -> CTO", "manager": "later"}
    assert t.result.modified == UPDATE.modified
    t = trail()
    t.acted(ObjectKind.USER, "t1", skip(Reason.REDUNDANT_EXPORT), "Skipped", Performed.UNCHANGED, None, None)
    assert t.result.steps[0].details == {"SkipReason": "RedundantExport"}


def test_match_steps_and_the_log_record_steps() -> None:
    t = trail()
    t.anchor_lost("old")
    t.queried("userName", "ada@example.com", [])
    t.queried('emails[type eq "work"].value', "ada@example.com", ["a", "b"])
    t.matched(ObjectKind.USER, Match(MatchOutcome.DUPLICATE_TARGET_ENTRIES, None, ("a", "b")))
    (step,) = t.result.steps
    assert step.status == "failure"
    assert step.description == (
        "the connected account old no longer exists (InvalidAnchor); 2 accounts match: a, b"
    )
    assert [q["results"] for q in step.details["queries"]] == ["0", "many"]
    assert step.details["queries"][0]["query"] == 'userName eq "ada@example.com"'
    (logged,) = t.log_steps()
    assert (logged.type, logged.status) == ("matching", "failure")
    assert logged.description.startswith("Match: the connected account old")


def test_the_silent_trail_keeps_nothing() -> None:
    SILENT.connected(ObjectKind.USER, "t1")
    SILENT.acted(ObjectKind.USER, "t1", UPDATE, "Success", Performed.UPDATED, None, None)
    assert SILENT.log_steps() == ()
