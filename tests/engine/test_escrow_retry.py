"""Escrowed groups are retried by the next incremental cycle whose time has come, changed in the
source or not, as escrowed users are (entra-behaviour.md 2.8)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.conftest import GROUP
from tests.engine.test_cycle import person, run_cycle, users_of, world  # noqa: F401

from provisor.engine.memory_state import MemoryEngineState
from provisor.engine.model import ObjectKind
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
