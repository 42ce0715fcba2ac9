"""Incremental cycles keep a user's role from every assigned group it is in, not just the changed one."""

from __future__ import annotations

from tests.conftest import GROUP
from tests.engine.test_cycle import person, run_cycle, users_of

from provisor.engine.jobs import parse_job
from provisor.engine.memory_state import MemoryEngineState
from provisor.engine.state import CycleKind, LogQuery

JOB = """
name: two-groups
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
    - group: Operations
      role: User
state: sqlite:///unused.db
"""

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def test_a_change_to_one_assigned_group_leaves_the_members_of_another_in_scope(live):
    job, directory, app = _world(live)
    eng = person(directory, "eng.one@example.com")
    ops = person(directory, "ops.one@example.com")
    both = person(directory, "both.one@example.com")
    directory.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "Engineering",
            "members": [{"value": eng["id"]}, {"value": both["id"]}],
        },
    )
    ops_group = directory.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "Operations",
            "members": [{"value": ops["id"]}, {"value": both["id"]}],
        },
    ).json()
    state = MemoryEngineState()
    assert run_cycle(job, state).result == "Succeeded"

    # Edit the Engineering-only user; change Operations (a new hire joins, "both" leaves).
    directory.patch(
        f"/Users/{eng['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": "title", "value": "Staff Engineer"}],
        },
    )
    hire = person(directory, "new.hire@example.com")
    directory.patch(
        f"/Groups/{ops_group['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [
                {"op": "add", "path": "members", "value": [{"value": hire["id"]}]},
                {"op": "remove", "path": f'members[value eq "{both["id"]}"]'},
            ],
        },
    )
    report = run_cycle(job, state)
    assert report.kind is CycleKind.INCREMENTAL and report.result == "Succeeded", report
    assert not list(state.logs(job.name, LogQuery(cycle=report.cycle, action="Disable")))
    users = users_of(app)
    assert users["eng.one@example.com"]["title"] == "Staff Engineer"
    assert users["eng.one@example.com"]["active"] is True
    assert users["both.one@example.com"]["active"] is True  # still assigned through Engineering
    assert users["new.hire@example.com"]["active"] is True


def _world(live):
    _, dir_token = live.new_tenant()
    _, app_token = live.new_tenant({"allowed_roles": ["User"]})
    job = parse_job(
        JOB.format(base=live.base),
        {"DIRECTORY_TOKEN": dir_token, "APP_TOKEN": app_token},
        source_name="j.yaml",
    )
    return job, live.client(dir_token), live.client(app_token)


def _set_active(directory, user, active):
    r = directory.patch(
        f"/Users/{user['id']}",
        json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": active}]},
    )
    assert r.status_code == 200, r.text


def _group(directory, name, *members):
    body = {"schemas": [GROUP], "displayName": name, "members": [{"value": m["id"]} for m in members]}
    r = directory.post("/Groups", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_a_member_disabled_at_the_initial_cycle_is_created_when_enabled(live):
    """The roles a group gives come from its source membership, not from the members the engine
    provisioned: a member that was out of scope keeps its group and is created once enabled."""
    job, directory, app = _world(live)
    on = person(directory, "on.duty@example.com")
    off = person(directory, "on.leave@example.com", active=False)
    _group(directory, "Engineering", on, off)
    state = MemoryEngineState()
    run_cycle(job, state)
    assert set(users_of(app)) == {"on.duty@example.com"}  # disabled source users are never created

    _set_active(directory, off, True)
    report = run_cycle(job, state)
    assert report.kind is CycleKind.INCREMENTAL and report.counts.get("Create") == 1, report
    assert users_of(app)["on.leave@example.com"]["active"] is True


def test_a_disabled_user_whose_group_changed_meanwhile_is_enabled_again(live):
    job, directory, app = _world(live)
    stays = person(directory, "stays.here@example.com")
    leaves = person(directory, "on.sabbatical@example.com")
    group = _group(directory, "Engineering", stays, leaves)
    state = MemoryEngineState()
    run_cycle(job, state)
    _set_active(directory, leaves, False)
    run_cycle(job, state)  # disabled in the app; its provisioned membership ends with the next group change
    assert users_of(app)["on.sabbatical@example.com"]["active"] is False
    hire = person(directory, "new.hire@example.com")
    directory.patch(
        f"/Groups/{group['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": hire["id"]}]}],
        },
    )
    run_cycle(job, state)
    assert users_of(app)["new.hire@example.com"]["active"] is True

    _set_active(directory, leaves, True)
    report = run_cycle(job, state)
    assert report.kind is CycleKind.INCREMENTAL, report
    assert users_of(app)["on.sabbatical@example.com"]["active"] is True


def test_the_members_of_a_deleted_assigned_group_lose_its_role(live):
    job, directory, app = _world(live)
    only_eng = person(directory, "only.eng@example.com")
    both = person(directory, "in.both@example.com")
    eng = _group(directory, "Engineering", only_eng, both)
    _group(directory, "Operations", both)
    state = MemoryEngineState()
    run_cycle(job, state)
    assert directory.delete(f"/Groups/{eng['id']}").status_code == 204
    report = run_cycle(job, state)
    assert report.kind is CycleKind.INCREMENTAL, report
    users = users_of(app)
    assert users["only.eng@example.com"]["active"] is False  # no assignment left
    assert users["in.both@example.com"]["active"] is True  # still assigned through Operations
