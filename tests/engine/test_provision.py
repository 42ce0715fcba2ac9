"""Provisioning one object, shared by cycles and provisioning on demand (entra-behaviour.md 1.3,
2.4, 2.11, 2.12): one connection, one log vocabulary, whichever ran it."""

from __future__ import annotations

from tests.engine.test_cycle import run_cycle
from tests.engine.test_ondemand import on_demand, person, step, world  # noqa: F401

from provisor.engine.memory_state import MemoryEngineState
from provisor.engine.model import ObjectKind
from provisor.engine.state import CycleKind, LogQuery


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
