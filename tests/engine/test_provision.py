"""Provisioning one object, shared by cycles and provisioning on demand (entra-behaviour.md 1.3,
2.4, 2.11, 2.12): one connection, one log vocabulary, whichever ran it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.engine.test_cycle import run_cycle
from tests.engine.test_cycle_concurrency import ENV, JOB_FILE
from tests.engine.test_ondemand import on_demand, person, step, world  # noqa: F401

from provisor.engine.jobs import parse_job
from provisor.engine.mapping import EvalContext
from provisor.engine.memory_state import MemoryEngineState
from provisor.engine.model import ObjectKind, SourceObject
from provisor.engine.plan import plan_members
from provisor.engine.provision import Provisioner
from provisor.engine.state import CycleKind, EngineState, LogQuery, ObjectConnection
from provisor.engine.templates import template_for
from provisor.store.sql.engine_state import SqlEngineState


def test_on_demand_then_a_cycle_share_the_connection(world) -> None:  # noqa: F811
    job_of, directory, app = world
    job = job_of()
    ada = person(directory, "ada@example.com")
    state = MemoryEngineState()
    created = on_demand(job, state, "ada@example.com")
    assert created.action == "Create"

    report = run_cycle(job, state)
    assert report.kind is CycleKind.INITIAL and report.counts.get("Create", 0) == 0, report
    (record,) = state.logs(job.name, LogQuery(cycle=report.cycle, anchor=ada["id"]))
    assert (record.action, record.reason, record.target_id) == ("Skip", "RedundantExport", created.target_id)
    # a cycle's record keeps its export step only; on demand's has every step
    assert [s.type for s in record.steps] == ["export"]
    (first,) = state.logs(job.name, LogQuery(cycle=created.cycle))
    assert [s.type for s in first.steps] == ["import", "scoping", "matching", "export"]
    assert app.get("/Users").json()["totalResults"] == 1


def test_a_connected_account_gone_from_the_target_is_matched_again(world) -> None:  # noqa: F811
    job_of, directory, app = world
    job = job_of()
    person(directory, "ada@example.com")
    state = MemoryEngineState()
    first = on_demand(job, state, "ada@example.com")
    app.delete(f"/Users/{first.target_id}")

    again = on_demand(job, state, "ada@example.com")
    assert again.result == "Success" and again.action == "Create", again
    match = step(again, "Match")
    assert match.description == (
        f"the connected account {first.target_id} no longer exists (InvalidAnchor); "
        "No matching user in the target: it will be created"
    )
    conn = state.connection(job.name, ObjectKind.USER, again.anchor)
    assert conn is not None and conn.target_id == again.target_id != first.target_id


# -- a group's memberships (1.6) ------------------------------------------------------------------


class RecordingTarget:
    """The two membership calls of ScimTarget, recorded."""

    def __init__(self) -> None:
        self.added: list[str] = []
        self.removed: list[str] = []

    async def add_members(self, group_id: str, member_ids: Iterable[str]) -> int:
        self.added += member_ids
        return 1

    async def remove_members(self, group_id: str, member_ids: Iterable[str]) -> int:
        self.removed += member_ids
        return 1


@pytest.fixture(params=["memory", "sql"])
def any_state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineState]:
    if request.param == "memory":
        yield MemoryEngineState()
        return
    state = SqlEngineState(f"sqlite:///{tmp_path / 'state.db'}")
    yield state
    state.close()


@pytest.mark.parametrize("seed", range(12))
def test_memberships_read_only_newcomers_and_lapsed_members_yet_match_the_full_diff(
    any_state: EngineState, seed: int
) -> None:
    """Random provisioned members, source members and member connections (none, active,
    inactive): the update equals ``plan_members`` over every member's connection, the spec."""
    rnd = random.Random(seed)
    job = parse_job(JOB_FILE.format(name="j"), ENV, source_name="j.yaml")
    ctx = EvalContext(clock=lambda: datetime.now(UTC), random=random.Random(1))
    target = RecordingTarget()
    provisioner = Provisioner(
        job,
        template_for("scim-default"),
        target,  # type: ignore[arg-type]  # the two membership calls are all it needs
        any_state,
        clock=lambda: datetime.now(UTC),
        ctx=ctx,
    )
    users = [f"u{i:02d}" for i in range(30)]
    for anchor in users:
        roll = rnd.random()
        if roll < 0.7:
            any_state.save_connection(
                job.name, ObjectConnection(ObjectKind.USER, anchor, f"t-{anchor}", anchor, roll < 0.55)
            )
    have = {u for u in users if rnd.random() < 0.5}
    any_state.add_members(job.name, "g1", have)
    listed = [rnd.choice(users) for _ in range(rnd.randrange(0, 25))]
    group = SourceObject(ObjectKind.GROUP, "g1", {"displayName": "G", "members": listed})
    conns = {u: c for u in users if (c := any_state.connection(job.name, ObjectKind.USER, u)) is not None}
    wanted = {a: conns[a].target_id for a in listed if a in conns and conns[a].active}
    add, remove = plan_members(have, wanted)

    change = asyncio.run(provisioner.memberships(group, ObjectConnection(ObjectKind.GROUP, "g1", "tg1", "G")))
    assert (change.added, change.removed, change.members) == (add, remove, len(wanted))
    assert target.added == [wanted[a] for a in add]
    assert target.removed == [conns[a].target_id for a in remove if a in conns]
    assert any_state.members(job.name, "g1") == (have - set(remove)) | set(add)
    assert any_state.lapsed_members(job.name, "g1") == {
        a for a in (have - set(remove)) | set(add) if a not in conns or not conns[a].active
    } - set(wanted)
