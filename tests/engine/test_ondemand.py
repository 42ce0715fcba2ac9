"""Provision on demand (entra-behaviour.md 2.11) against the live server: a Provisor tenant as the
directory, another as a Clarizen-One-style app."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from tests.conftest import ENTERPRISE, GROUP, PATCH_OP, USER, create_user

import provisor.engine.targets.scim_client as client_module
from provisor.engine.jobs import parse_job
from provisor.engine.jobs.model import PatchDialect
from provisor.engine.memory_state import MemoryEngineState
from provisor.engine.model import ObjectKind
from provisor.engine.ondemand import ObjectNotFound, TooManyMembers, run_on_demand
from provisor.engine.state import LogQuery
from provisor.engine.templates import template_for
from provisor.engine.templates.model import apply_overrides

JOB = """
name: clarizen-one
source:
  type: scim
  url: {base}
  token: ${{DIRECTORY_TOKEN}}
target:
  url: {target}
  token: ${{APP_TOKEN}}
template: clarizen-one
scope:
  mode: assigned
  assignments:
    - group: Engineering
      role: User
    - user: ada@example.com
      role: User
{extra}
state: sqlite:///unused.db
"""


def person(client, upn, **extra):
    first = upn.split("@")[0]
    return create_user(
        client,
        upn,
        displayName=first.title(),
        name={"givenName": first.title(), "familyName": "Tester"},
        emails=[{"type": "work", "value": upn, "primary": True}],
        title="Engineer",
        **{"schemas": [USER, ENTERPRISE], ENTERPRISE: {"department": "R&D"}},
        **extra,
    )


@pytest.fixture
def world(live):
    _, dir_token = live.new_tenant()
    _, app_token = live.new_tenant({"allowed_roles": ["User"]})
    env = {"DIRECTORY_TOKEN": dir_token, "APP_TOKEN": app_token}

    def job(target=live.base, extra=""):
        return parse_job(JOB.format(base=live.base, target=target, extra=extra), env, source_name="job.yaml")

    return job, live.client(dir_token), live.client(app_token)


def on_demand(job, state, key, kind=ObjectKind.USER):
    template = apply_overrides(template_for(job.template), job.mappings)
    return asyncio.run(
        run_on_demand(job, template, state, kind=kind, key=key, clock=lambda: datetime.now(UTC))
    )


def step(result, name):
    return next(s for s in result.steps if s.name == name)


def test_create_update_then_redundant_export(world):
    job_of, directory, app = world
    job = job_of()
    ada = person(directory, "ada@example.com")
    state = MemoryEngineState()

    created = on_demand(job, state, "ada@example.com")
    assert created.result == "Success" and created.action == "Create", created
    assert [s.name for s in created.steps] == ["Import", "Scope evaluation", "Match", "Perform action"]
    assert [s.type for s in created.steps] == ["import", "scoping", "matching", "export"]
    imported = step(created, "Import").details
    assert imported["userPrincipalName"] == "ada@example.com" and imported["accountEnabled"] == "True"
    scope = step(created, "Scope evaluation").details
    assert scope["Assigned to application"] == "True" and scope["User has required role"] == "True"
    assert scope["Active in source system"] == "True" and scope["ScopeEvaluationResult"] == "InScope"
    queries = step(created, "Match").details["queries"]
    assert queries[0] == {
        "attribute": "userName",
        "value": "ada@example.com",
        "query": 'userName eq "ada@example.com"',
        "results": "0",
    }
    assert "userName" in step(created, "Perform action").details
    account = app.get(f"/Users/{created.target_id}").json()
    assert account["userName"] == "ada@example.com" and account["roles"][0]["value"] == "User"
    conn = state.connection(job.name, ObjectKind.USER, ada["id"])
    assert conn is not None and conn.target_id == created.target_id
    assert state.job_state(job.name).watermark is None  # never touches the watermark

    directory.patch(
        f"/Users/{ada['id']}",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "CTO"}]},
    )
    updated = on_demand(job, state, ada["id"])  # by anchor this time
    assert updated.result == "Success" and updated.action == "Update", updated
    assert step(updated, "Match").description.startswith("Matched through the object connection")
    assert [(m.attribute, m.old, m.new) for m in updated.modified] == [("title", "Engineer", "CTO")]
    assert step(updated, "Perform action").details["title"] == "Engineer -> CTO"
    assert app.get(f"/Users/{created.target_id}").json()["title"] == "CTO"

    again = on_demand(job, state, "ada@example.com")
    assert again.result == "Skipped" and again.action == "Skip" and again.reason == "RedundantExport"
    assert step(again, "Perform action").details["SkipReason"] == "RedundantExport"

    records = list(state.logs(job.name, LogQuery(anchor=ada["id"])))
    assert [r.action for r in records] == ["Create", "Update", "Skip"]
    assert all(r.cycle.startswith("on-demand-") for r in records)
    assert {s.type for s in records[0].steps} == {"import", "scoping", "matching", "export"}
    assert records[1].modified == (("title", "Engineer", "CTO"),)


def test_matches_an_existing_account(world):
    job_of, directory, app = world
    person(directory, "ada@example.com")
    existing = create_user(app, "ada@example.com", title="old")
    result = on_demand(job_of(), MemoryEngineState(), "ada@example.com")
    assert result.action == "Update" and result.target_id == existing["id"]
    assert step(result, "Match").details["queries"][0]["results"] == "1"
    assert app.get("/Users").json()["totalResults"] == 1


def test_out_of_scope_user_is_skipped_with_the_reason(world):
    job_of, directory, app = world
    person(directory, "out.sider@example.com")
    state = MemoryEngineState()
    result = on_demand(job_of(), state, "out.sider@example.com")
    assert result.result == "Skipped" and result.reason == "OutOfScope"
    scoping = step(result, "Scope evaluation")
    assert scoping.status == "skipped" and "not assigned" in scoping.description
    assert scoping.details["Assigned to application"] == "False"
    assert [s.name for s in result.steps] == ["Import", "Scope evaluation", "Perform action"]
    assert app.get("/Users").json()["totalResults"] == 0
    assert [r.status for r in state.logs("clarizen-one", LogQuery())] == ["Skipped"]


def test_scoping_filter_and_unassigned_connected_user_is_disabled(world):
    job_of, directory, app = world
    ada = person(directory, "ada@example.com")
    state = MemoryEngineState()
    assert on_demand(job_of(), state, "ada@example.com").action == "Create"
    filtered = job_of(
        extra="  filters:\n    users:\n      - - attribute: department\n          operator: EQUALS\n"
        "          value: Sales\n"
    )
    result = on_demand(filtered, state, ada["id"])
    scoping = step(result, "Scope evaluation")
    assert scoping.details["Scoping filter evaluation passed"] == "False"
    assert "department" in scoping.details["Scoping filters"]
    # the connected account is disabled (2.11: on demand disables users that left scope)
    assert result.action == "Disable" and result.result == "Success"
    assert app.get(f"/Users/{result.target_id}").json()["active"] is False


def test_group_with_three_members(world):
    job_of, directory, app = world
    members = [person(directory, f"dev{i}@example.com") for i in range(3)]
    group = directory.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "Engineering",
            "members": [{"value": m["id"]} for m in members],
        },
    ).json()
    state = MemoryEngineState()
    result = on_demand(job_of(), state, "Engineering", ObjectKind.GROUP)
    assert result.result == "Success" and result.action == "Create", result
    assert [m.action for m in result.members] == ["Create"] * 3
    assert step(result, "Memberships").description == "Added 3 and removed 0 member(s)"
    made = app.get(f"/Groups/{result.target_id}").json()
    assert len(made["members"]) == 3 and made["displayName"] == "Engineering"
    assert state.members("clarizen-one", group["id"]) == {m["id"] for m in members}
    # again: nothing to do
    again = on_demand(job_of(), state, group["id"], ObjectKind.GROUP)
    assert again.result == "Skipped" and {m.reason for m in again.members} == {"RedundantExport"}


def test_group_limits_and_errors(world):
    job_of, directory, _ = world
    many = [person(directory, f"m{i}@example.com") for i in range(6)]
    directory.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "Engineering",
            "members": [{"value": m["id"]} for m in many],
        },
    )
    with pytest.raises(TooManyMembers, match="at most 5"):
        on_demand(job_of(), MemoryEngineState(), "Engineering", ObjectKind.GROUP)
    with pytest.raises(ObjectNotFound):
        on_demand(job_of(), MemoryEngineState(), "nobody@example.com")
    with pytest.raises(ObjectNotFound):
        on_demand(job_of(), MemoryEngineState(), "No such group", ObjectKind.GROUP)


def test_the_flag_is_not_honoured_on_demand(world, live):
    """2.11 / 1.4: aadOptscim062020 does not apply to on-demand provisioning."""
    job_of, directory, app = world
    ada = person(directory, "ada@example.com")
    job = job_of(target=f"{live.base}?aadOptscim062020")
    flagged = replace(job, target=replace(job.target, patch_dialect=PatchDialect.AAD_OPT_SCIM_062020))
    state = MemoryEngineState()
    assert on_demand(flagged, state, "ada@example.com").action == "Create"
    directory.patch(
        f"/Users/{ada['id']}",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "CTO"}]},
    )
    sent: list[dict] = []
    original = client_module.render_patch

    def spy(operations, dialect):
        body = original(operations, dialect)
        sent.append({"dialect": str(dialect), "body": body})
        return body

    client_module.render_patch = spy
    try:
        assert on_demand(flagged, state, ada["id"]).action == "Update"
    finally:
        client_module.render_patch = original
    assert sent and all(s["dialect"] in ("entra", "PatchDialect.ENTRA") for s in sent), sent
    assert sent[0]["body"]["Operations"][0]["op"] == "Replace"  # Entra's capitalised default
