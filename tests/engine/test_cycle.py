"""Cycles end to end: a Provisor tenant as the directory, another as a Clarizen-One-style app."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest
from tests.conftest import ENTERPRISE, GROUP, USER, create_user

from provisor.engine.cycle import Cycle
from provisor.engine.jobs import parse_job
from provisor.engine.mapping import EvalContext
from provisor.engine.memory_state import MemoryEngineState
from provisor.engine.sources.scim import ScimSource
from provisor.engine.state import CycleKind, LogQuery
from provisor.engine.targets import ScimTarget
from provisor.engine.templates import template_for
from provisor.engine.templates.model import apply_overrides

JOB = """
name: clarizen-one
source:
  type: scim
  url: {base}
  token: ${{DIRECTORY_TOKEN}}
target:
  url: {base}
  token: ${{APP_TOKEN}}
template: clarizen-one
scope:
  mode: assigned
  assignments:
    - group: Engineering
      role: User
    - user: ada@example.com
      role: User
state: sqlite:///unused.db
"""


def person(client, upn, manager=None, **extra):
    ext = {"department": "R&D"}
    if manager:
        ext["manager"] = {"value": manager}
    first, last = upn.split("@")[0].split(".") if "." in upn.split("@")[0] else (upn.split("@")[0], "X")
    return create_user(
        client,
        upn,
        displayName=f"{first.title()} {last.title()}",
        name={"givenName": first.title(), "familyName": last.title()},
        emails=[{"type": "work", "value": upn, "primary": True}],
        title="Engineer",
        **{"schemas": [USER, ENTERPRISE], ENTERPRISE: ext},
        **extra,
    )


@pytest.fixture
def world(live):
    _, dir_token = live.new_tenant()
    _, app_token = live.new_tenant({"allowed_roles": ["User"]})
    job = parse_job(
        JOB.format(base=live.base),
        {"DIRECTORY_TOKEN": dir_token, "APP_TOKEN": app_token},
        source_name="job.yaml",
    )
    return job, live.client(dir_token), live.client(app_token)


def run_cycle(job, state):
    template = apply_overrides(template_for(job.template), job.mappings)

    async def go():
        async with ScimTarget.from_config(job.target) as target:
            ctx = EvalContext(clock=lambda: datetime.now(UTC), random=random.Random(7))
            cycle = Cycle(
                job,
                template,
                ScimSource.from_config(job.source),
                target,
                state,
                clock=lambda: datetime.now(UTC),
                ctx=ctx,
            )
            return await cycle.run()

    return asyncio.run(go())


def users_of(app):
    return {u["userName"]: u for u in app.get("/Users", params={"count": 1000}).json()["Resources"]}


def test_initial_then_incremental_cycle(world):
    job, directory, app = world
    boss = person(directory, "grace.hopper@example.com")
    eng = [person(directory, f"dev{i}.coder@example.com", manager=boss["id"]) for i in range(5)]
    person(directory, "ada@example.com")  # directly assigned
    outsider = person(directory, "out.sider@example.com")
    directory.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "Engineering",
            "members": [{"value": u["id"]} for u in [boss, *eng]],
        },
    )
    directory.post(
        "/Groups", json={"schemas": [GROUP], "displayName": "Sales", "members": [{"value": outsider["id"]}]}
    )
    state = MemoryEngineState()

    report = run_cycle(job, state)
    assert report.kind is CycleKind.INITIAL and report.result == "Succeeded", report
    users = users_of(app)
    assert set(users) == {"grace.hopper@example.com", "ada@example.com"} | {
        f"dev{i}.coder@example.com" for i in range(5)
    }
    dev0 = users["dev0.coder@example.com"]
    assert dev0["title"] == "Engineer" and dev0["active"] is True
    assert dev0["roles"][0]["value"] == "User"
    assert dev0[ENTERPRISE]["manager"]["value"] == users["grace.hopper@example.com"]["id"]
    groups = app.get("/Groups").json()["Resources"]
    assert [g["displayName"] for g in groups] == ["Engineering"]
    assert len(groups[0]["members"]) == 6
    creates = list(state.logs(job.name, LogQuery(action="Create")))
    assert len(creates) == 8  # 7 users + 1 group

    # a second cycle with no change exports nothing
    report = run_cycle(job, state)
    assert report.kind is CycleKind.INCREMENTAL and report.counts.get("exports", 0) == 0

    # changes: a title, a disabled user, a removal from the group, a new member, a deleted user
    directory.patch(
        f"/Users/{eng[0]['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": "Staff Engineer"}],
        },
    )
    directory.patch(
        f"/Users/{eng[1]['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    )
    gid = directory.get("/Groups", params={"filter": 'displayName eq "Engineering"'}).json()["Resources"][0][
        "id"
    ]
    newbie = person(directory, "new.bie@example.com")
    directory.patch(
        f"/Groups/{gid}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "remove", "path": f'members[value eq "{eng[2]["id"]}"]'},
                {"op": "add", "path": "members", "value": [{"value": newbie["id"]}]},
            ],
        },
    )
    directory.delete(f"/Users/{eng[3]['id']}")

    report = run_cycle(job, state)
    assert report.kind is CycleKind.INCREMENTAL, report
    users = users_of(app)
    assert users["dev0.coder@example.com"]["title"] == "Staff Engineer"
    assert users["dev1.coder@example.com"]["active"] is False
    assert users["dev2.coder@example.com"]["active"] is False  # left the assigned group
    assert "dev3.coder@example.com" not in users  # hard-deleted in the source
    assert users["new.bie@example.com"]["active"] is True
    members = {m["value"] for m in app.get(f"/Groups/{groups[0]['id']}").json()["members"]}
    assert users["new.bie@example.com"]["id"] in members
    assert users["dev2.coder@example.com"]["id"] not in members


def test_disables_read_the_account_first_and_log_the_old_value(world):
    job, directory, app = world
    users = [person(directory, f"d{i}.x@example.com") for i in range(2)]
    group = directory.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "Engineering",
            "members": [{"value": u["id"]} for u in users],
        },
    ).json()
    state = MemoryEngineState()
    run_cycle(job, state)
    directory.patch(
        f"/Groups/{group['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": f'members[value eq "{users[0]["id"]}"]'}],
        },
    )
    run_cycle(job, state)
    disables = list(state.logs(job.name, LogQuery(action="Disable")))
    assert len(disables) == 1 and disables[0].modified == (("active", "True", "False"),)
    assert users_of(app)["d0.x@example.com"]["active"] is False


def test_a_pause_written_while_the_cycle_runs_stands(world):
    """``provisor pause`` from another shell lands mid-cycle: the cycle's end must not undo it."""
    from dataclasses import replace

    from provisor.engine.state import JobStatus

    class PausedMidCycle(MemoryEngineState):
        def start_cycle(self, job, kind, started):
            cycle = super().start_cycle(job, kind, started)
            self.save_job_state(replace(self.job_state(job), status=JobStatus.PAUSED))
            return cycle

    job, directory, _ = world
    person(directory, "ada@example.com")
    state = PausedMidCycle()
    report = run_cycle(job, state)
    assert report.counts.get("Create") == 1  # the cycle itself ran to its end
    after = state.job_state(job.name)
    assert after.status is JobStatus.PAUSED and after.watermark is not None
