"""Escrowed groups, and users' failed manager links, are retried by the next incremental cycle whose
time has come, changed in the source or not, as escrowed users are; an escrowed object that is
settled (gone, deleted, out of scope with nothing to deprovision) ends its escrow; group member
failures are reference failures (entra-behaviour.md 2.8, 2.9)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.conftest import ENTERPRISE, GROUP, PATCH_OP
from tests.engine.test_cycle import person, run_cycle, users_of, world  # noqa: F401

from provisor.engine.memory_state import MemoryEngineState
from provisor.engine.model import ObjectKind
from provisor.engine.provision import MANAGER_PATH
from provisor.engine.state import CycleKind, LogQuery
from provisor.engine.targets import ScimTarget, TargetError


def engineering(directory: Any, members: list[dict[str, Any]]) -> dict[str, Any]:
    body = {
        "schemas": [GROUP],
        "displayName": "Engineering",
        "members": [{"value": m["id"]} for m in members],
    }
    return dict(directory.post("/Groups", json=body).json())


def app_members(app: Any) -> set[str]:
    groups = app.get("/Groups").json()["Resources"]
    assert [g["displayName"] for g in groups] == ["Engineering"]
    return {m["value"] for m in app.get(f"/Groups/{groups[0]['id']}").json().get("members") or []}


def refusing(
    monkeypatch: pytest.MonkeyPatch, name: str, times: int, code: str, when: Callable[..., bool]
) -> list[int]:
    """Make ``ScimTarget.<name>`` fail ``times`` times (where ``when(*args)``); count the calls."""
    original = getattr(ScimTarget, name)
    calls: list[int] = []

    async def refuse(self: ScimTarget, *args: Any) -> Any:
        if when(*args):
            calls.append(1)
            if len(calls) <= times:
                raise TargetError(f"the target refused {name}", code=code, status=400)
        return await original(self, *args)

    monkeypatch.setattr(ScimTarget, name, refuse)
    return calls


def test_failed_memberships_are_retried_without_a_source_change(world, monkeypatch) -> None:  # noqa: F811
    job, directory, app = world
    devs = [person(directory, f"m{i}.dev@example.com") for i in range(2)]
    group = engineering(directory, devs)
    refusing(monkeypatch, "add_members", 1, "ServiceUnavailable", lambda *a: True)
    state = MemoryEngineState()

    report = run_cycle(job, state)
    assert report.kind is CycleKind.INITIAL and report.result == "EntryLevelErrors", report
    assert app_members(app) == set()
    (escrow,) = state.escrows(job.name)
    assert (escrow.kind, escrow.anchor, escrow.reference) == (ObjectKind.GROUP, group["id"], False)

    report = run_cycle(job, state)  # nothing changed in the source
    assert report.kind is CycleKind.INCREMENTAL and report.result == "Succeeded", report
    assert app_members(app) == {u["id"] for u in users_of(app).values()}
    assert len(app_members(app)) == 2
    assert state.members(job.name, group["id"]) == {d["id"] for d in devs}
    assert state.escrows(job.name) == []
    assert report.counts.get("memberships") == 2


def test_a_group_whose_create_failed_is_created_by_the_next_cycle(world, monkeypatch) -> None:  # noqa: F811
    job, directory, app = world
    devs = [person(directory, f"c{i}.dev@example.com") for i in range(2)]
    group = engineering(directory, devs)
    refusing(monkeypatch, "create", 1, "InternalServerError", lambda kind, body: kind is ObjectKind.GROUP)
    state = MemoryEngineState()

    assert run_cycle(job, state).result == "EntryLevelErrors"
    assert app.get("/Groups").json()["totalResults"] == 0
    assert state.connection(job.name, ObjectKind.GROUP, group["id"]) is None

    report = run_cycle(job, state)
    assert report.kind is CycleKind.INCREMENTAL and report.result == "Succeeded", report
    assert len(app_members(app)) == 2
    creates = list(state.logs(job.name, LogQuery(cycle=report.cycle, action="Create")))
    assert [(r.kind, r.source_anchor) for r in creates] == [(ObjectKind.GROUP, group["id"])]
    assert state.escrows(job.name) == []
    assert not list(state.logs(job.name, LogQuery(cycle=report.cycle, action="Disable")))


def test_a_group_escrow_waits_for_its_retry_time(world, monkeypatch) -> None:  # noqa: F811
    job, directory, app = world
    engineering(directory, [person(directory, "w0.dev@example.com")])
    # An error the admin must fix: retried by the next cycle, then after 6 hours (escrow.py).
    calls = refusing(monkeypatch, "add_members", 2, "BadRequest", lambda *a: True)
    state = MemoryEngineState()

    run_cycle(job, state)
    assert run_cycle(job, state).result == "EntryLevelErrors"  # the retry, refused again
    assert len(calls) == 2
    (escrow,) = state.escrows(job.name)
    assert escrow.attempts == 2

    report = run_cycle(job, state)  # not due for 6 hours: the group is left alone
    assert report.result == "Succeeded" and len(calls) == 2
    assert app_members(app) == set()


# -- manager links (reference escrows) are retried like any escrow (2.8) -------------------------


def manager_links(*args: Any) -> bool:
    _, _, ops = args
    return any(op.path == MANAGER_PATH for op in ops)


def manager_of(app: Any, user_name: str) -> str | None:
    manager = users_of(app)[user_name].get(ENTERPRISE, {}).get("manager")
    return None if manager is None else str(manager["value"])


def test_a_failed_manager_link_is_retried_without_a_source_change(world, monkeypatch) -> None:  # noqa: F811
    job, directory, app = world
    boss = person(directory, "boss.lead@example.com")
    dev = person(directory, "ref.dev@example.com", manager=boss["id"])
    engineering(directory, [boss, dev])
    calls = refusing(monkeypatch, "patch", 1, "ServiceUnavailable", manager_links)
    state = MemoryEngineState()

    report = run_cycle(job, state)
    assert report.result == "EntryLevelErrors" and report.counts.get("reference_failures") == 1, report
    assert manager_of(app, "ref.dev@example.com") is None
    (escrow,) = state.escrows(job.name)
    assert (escrow.kind, escrow.anchor, escrow.reference) == (ObjectKind.USER, dev["id"], True)

    report = run_cycle(job, state)  # nothing changed in the source
    assert report.kind is CycleKind.INCREMENTAL and report.result == "Succeeded", report
    assert len(calls) == 2 and report.counts.get("references") == 1
    assert manager_of(app, "ref.dev@example.com") == users_of(app)["boss.lead@example.com"]["id"]
    assert state.escrows(job.name) == []


def test_a_manager_link_escrow_backs_off_across_its_retries(world, monkeypatch) -> None:  # noqa: F811
    """The user's own update succeeding does not end the link's escrow: attempts keep counting."""
    job, directory, app = world
    boss = person(directory, "boss.two@example.com")
    dev = person(directory, "ref.two@example.com", manager=boss["id"])
    engineering(directory, [boss, dev])
    calls = refusing(monkeypatch, "patch", 2, "BadRequest", manager_links)  # next cycle, then 6 h
    state = MemoryEngineState()

    run_cycle(job, state)
    assert run_cycle(job, state).result == "EntryLevelErrors"  # the retry, refused again
    assert len(calls) == 2
    (escrow,) = state.escrows(job.name)
    assert (escrow.anchor, escrow.reference, escrow.attempts) == (dev["id"], True, 2)

    report = run_cycle(job, state)  # not due for 6 hours
    assert report.result == "Succeeded" and len(calls) == 2
    assert manager_of(app, "ref.two@example.com") is None
    assert state.escrows(job.name) == [escrow]


# -- group member failures are reference failures (2.8, 2.9) ------------------------------------


def test_membership_failures_count_as_reference_failures(world, monkeypatch) -> None:  # noqa: F811
    job, directory, _ = world
    engineering(directory, [person(directory, "r0.dev@example.com")])
    refusing(monkeypatch, "add_members", 1, "ServiceUnavailable", lambda *a: True)
    state = MemoryEngineState()

    report = run_cycle(job, state)
    assert report.result == "EntryLevelErrors"
    # one failed record (the group's member update), and it is a reference failure: the quarantine
    # evaluation's object failures (Failure - reference_failures) do not count it
    assert report.counts.get("Failure") == 1 and report.counts.get("reference_failures") == 1, report


# -- settled objects end their escrows (2.8) ----------------------------------------------------


def refuse_user(user_name: str) -> Callable[..., bool]:
    return lambda kind, body: kind is ObjectKind.USER and body.get("userName") == user_name


def test_the_escrow_of_a_user_gone_from_the_source_without_an_account_ends(world, monkeypatch) -> None:  # noqa: F811
    job, directory, app = world
    gone = person(directory, "gone.soon@example.com")
    engineering(directory, [gone, person(directory, "stays.here@example.com")])
    refusing(monkeypatch, "create", 1, "BadRequest", refuse_user("gone.soon@example.com"))
    state = MemoryEngineState()
    run_cycle(job, state)
    assert [e.anchor for e in state.escrows(job.name)] == [gone["id"]]

    directory.delete(f"/Users/{gone['id']}")
    report = run_cycle(job, state)
    assert report.result == "Succeeded", report
    assert state.escrows(job.name) == []  # not looked up again every cycle
    assert set(users_of(app)) == {"stays.here@example.com"}


def test_the_escrow_of_a_user_ends_when_its_delete_succeeds(world, monkeypatch) -> None:  # noqa: F811
    job, directory, app = world
    doomed = person(directory, "doomed.dev@example.com")
    engineering(directory, [doomed])
    state = MemoryEngineState()
    run_cycle(job, state)
    target_id = users_of(app)["doomed.dev@example.com"]["id"]
    directory.patch(
        f"/Users/{doomed['id']}",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "Lead"}]},
    )
    refusing(monkeypatch, "patch", 1, "BadRequest", lambda kind, tid, ops: tid == target_id)
    assert run_cycle(job, state).result == "EntryLevelErrors"
    (escrow,) = state.escrows(job.name)
    assert escrow.anchor == doomed["id"]

    directory.delete(f"/Users/{doomed['id']}")
    report = run_cycle(job, state)
    assert report.counts.get("Delete") == 1 and report.result == "Succeeded", report
    assert "doomed.dev@example.com" not in users_of(app)
    assert state.escrows(job.name) == []


def test_the_escrow_of_a_user_out_of_scope_without_an_account_ends(world, monkeypatch) -> None:  # noqa: F811
    job, directory, app = world
    leaver = person(directory, "leaves.group@example.com")
    group = engineering(directory, [leaver, person(directory, "stays.two@example.com")])
    refusing(monkeypatch, "create", 1, "BadRequest", refuse_user("leaves.group@example.com"))
    state = MemoryEngineState()
    run_cycle(job, state)
    assert [e.anchor for e in state.escrows(job.name)] == [leaver["id"]]

    directory.patch(
        f"/Groups/{group['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "remove", "path": f'members[value eq "{leaver["id"]}"]'}],
        },
    )
    report = run_cycle(job, state)
    assert report.result == "Succeeded", report
    assert state.escrows(job.name) == []
    assert set(users_of(app)) == {"stays.two@example.com"}
