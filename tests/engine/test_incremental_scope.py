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
    _, dir_token = live.new_tenant()
    _, app_token = live.new_tenant({"allowed_roles": ["User"]})
    job = parse_job(
        JOB.format(base=live.base),
        {"DIRECTORY_TOKEN": dir_token, "APP_TOKEN": app_token},
        source_name="j.yaml",
    )
    directory, app = live.client(dir_token), live.client(app_token)
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
