"""Cycles over a CSV source: objects the file did not change are read by anchor (``get_many``), so
escrow retries and scope changes through a group work as with a SCIM source (entra-behaviour.md
2.5, 2.8)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.engine.test_cycle import users_of
from tests.engine.test_escrow_retry import refuse_user, refusing

from provisor.engine.cycle import Cycle, CycleReport
from provisor.engine.jobs import Job, parse_job
from provisor.engine.mapping import EvalContext
from provisor.engine.memory_state import MemoryEngineState
from provisor.engine.model import ObjectKind
from provisor.engine.sources.files import CsvSource
from provisor.engine.state import CycleKind
from provisor.engine.targets import ScimTarget
from provisor.engine.templates import apply_overrides, template_for

JOB = """
name: hr-file
source:
  type: csv
  path: {path}
target:
  url: {base}
  token: ${{APP_TOKEN}}
template: clarizen-one
scope:
  mode: assigned
  assignments:
    - group: Engineering
      role: User
state: sqlite:///unused.db
"""

HEADER = "objectId,objectType,userPrincipalName,displayName,givenName,surname,mail,department,members"


def user(anchor: str) -> str:
    name = anchor.title()
    return f"{anchor},user,{anchor}@example.com,{name} X,{name},X,{anchor}@example.com,R&D,"


def write(path: Path, members: list[str], users: tuple[str, ...] = ("u1", "u2")) -> None:
    rows = [HEADER, *(user(u) for u in users), f"g1,group,,Engineering,,,,,{';'.join(members)}"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture
def hr(live: Any, tmp_path: Path) -> tuple[Job, CsvSource, Any]:
    _, app_token = live.new_tenant({"allowed_roles": ["User"]})
    path = tmp_path / "hr.csv"
    job = parse_job(JOB.format(path=path, base=live.base), {"APP_TOKEN": app_token}, source_name="j.yaml")
    return job, CsvSource(path, snapshot_path=tmp_path / "hr.snapshot"), live.client(app_token)


def run(job: Job, source: CsvSource, state: MemoryEngineState) -> CycleReport:
    async def go() -> CycleReport:
        async with ScimTarget.from_config(job.target) as target:
            clock = lambda: datetime.now(UTC)  # noqa: E731
            ctx = EvalContext(clock=clock, random=random.Random(7))
            template = apply_overrides(template_for(job.template), job.mappings)  # the job's own mappings too
            cycle = Cycle(job, template, source, target, state, clock=clock, ctx=ctx)
            return await cycle.run()

    return asyncio.run(go())


def test_a_user_whose_group_changed_but_whose_row_did_not_enters_and_leaves_scope(hr) -> None:
    job, source, app = hr
    write(source.path, ["u1"])
    state = MemoryEngineState()
    assert run(job, source, state).kind is CycleKind.INITIAL
    assert set(users_of(app)) == {"u1@example.com"}

    write(source.path, ["u1", "u2"])  # only the group's row changes
    report = run(job, source, state)
    assert report.kind is CycleKind.INCREMENTAL and report.counts.get("Create") == 1, report
    assert users_of(app)["u2@example.com"]["active"] is True

    write(source.path, ["u2"])
    run(job, source, state)
    assert users_of(app)["u1@example.com"]["active"] is False  # left the assigned group


def test_an_escrowed_user_is_retried_though_its_row_did_not_change(hr, monkeypatch) -> None:
    job, source, app = hr
    write(source.path, ["u1", "u2"])
    refusing(monkeypatch, "create", 1, "ServiceUnavailable", lambda kind, body: kind is ObjectKind.USER)
    state = MemoryEngineState()
    assert run(job, source, state).result == "EntryLevelErrors"
    assert len(state.escrows(job.name)) == 1

    report = run(job, source, state)  # the file is unchanged
    assert report.kind is CycleKind.INCREMENTAL and report.result == "Succeeded", report
    assert set(users_of(app)) == {"u1@example.com", "u2@example.com"}
    assert state.escrows(job.name) == []


def test_an_escrowed_user_gone_from_the_file_ends_its_escrow(hr, monkeypatch) -> None:
    job, source, app = hr
    write(source.path, ["u1", "u2"])
    refusing(monkeypatch, "create", 1, "BadRequest", refuse_user("u2@example.com"))
    state = MemoryEngineState()
    run(job, source, state)
    assert [e.anchor for e in state.escrows(job.name)] == ["u2"]

    write(source.path, ["u1"], users=("u1",))
    assert run(job, source, state).result == "Succeeded"
    assert state.escrows(job.name) == []
    assert set(users_of(app)) == {"u1@example.com"}
