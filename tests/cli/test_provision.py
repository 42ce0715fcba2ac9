"""``provisor provision`` (provision on demand, 2.11) and the sync progress display (2.13)."""

from __future__ import annotations

import io
import json

import pytest
from tests.cli.test_jobs import provisor
from tests.conftest import GROUP, PATCH_OP, create_user

from provisor.engine.cycle import Progress
from provisor.engine.state import CycleKind


@pytest.fixture
def job(live, tmp_path):
    _, dir_token = live.new_tenant()
    _, app_token = live.new_tenant({"allowed_roles": ["User"]})
    directory = live.client(dir_token)
    users = [
        create_user(
            directory,
            f"user{i}@example.com",
            displayName=f"User {i}",
            title="Engineer",
            emails=[{"type": "work", "value": f"user{i}@example.com"}],
        )
        for i in range(7)
    ]
    directory.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "Engineering",
            "members": [{"value": u["id"]} for u in users[:3]],
        },
    )
    directory.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "Everyone",
            "members": [{"value": u["id"]} for u in users[:6]],
        },
    )
    path = tmp_path / "clarizen.yaml"
    path.write_text(f"""name: clarizen-one
source:
  type: scim
  url: {live.base}
  token: ${{DIRECTORY_TOKEN}}
target:
  url: {live.base}?aadOptscim062020
  token: ${{APP_TOKEN}}
template: clarizen-one
scope:
  mode: assigned
  assignments:
    - group: Engineering
      role: User
    - group: Everyone
      role: User
    - user: user6@example.com
      role: User
state: sqlite:///clarizen-one.state.db
""")
    env = {"DIRECTORY_TOKEN": dir_token, "APP_TOKEN": app_token}
    return path, env, directory, live.client(app_token), users


def test_provision_a_user_create_update_skip(job):
    path, env, directory, app, users = job
    out = provisor("provision", "--job", str(path), "--user", "user6@example.com", env=env).stdout
    assert ": Success" in out and "1. Import [success]" in out and "Perform action [success]" in out
    assert 'userName eq "user6@example.com" -> 0 result(s)' in out
    assert "Test connection" not in out  # shown only when it failed
    assert app.get("/Users").json()["totalResults"] == 1

    directory.patch(
        f"/Users/{users[6]['id']}",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "CTO"}]},
    )
    out = provisor(
        "provision", "--job", str(path), "--user", users[6]["id"], "--format", "json", env=env
    ).stdout
    doc = json.loads(out)
    assert doc["result"] == "Success" and doc["action"] == "Update"
    assert [s["type"] for s in doc["provisioningSteps"]] == ["import", "scoping", "matching", "export"]
    assert {"name", "type", "status", "description", "details"} == set(doc["provisioningSteps"][0])
    assert doc["modifiedProperties"] == [{"name": "title", "old": "Engineer", "new": "CTO"}]
    assert doc["provisioningSteps"][3]["details"]["title"] == "Engineer -> CTO"

    out = provisor("provision", "--job", str(path), "--user", "user6@example.com", env=env).stdout
    assert ": Skipped" in out and "RedundantExport" in out

    # the log has the three records, and the watermark was never set: the first sync is initial
    logs = provisor("logs", "--job", str(path), "--object", users[6]["id"], "--format", "json", env=env)
    assert [json.loads(line)["action"] for line in logs.stdout.splitlines()] == ["Create", "Update", "Skip"]
    status = json.loads(provisor("status", "--job", str(path), "--json", env=env).stdout)
    assert status["users"] == 1 and status["last_cycle"] is None
    assert "Initial" in provisor("sync", "--job", str(path), env=env).stdout


def test_provision_a_group_and_the_limit(job):
    path, env, directory, app, users = job
    doc = json.loads(
        provisor(
            "provision", "--job", str(path), "--group", "Engineering", "--format", "json", env=env
        ).stdout
    )
    assert doc["result"] == "Success" and len(doc["members"]) == 3
    assert {m["action"] for m in doc["members"]} == {"Create"}
    group = app.get(f"/Groups/{doc['targetId']}").json()
    assert len(group["members"]) == 3

    p = provisor("provision", "--job", str(path), "--group", "Everyone", env=env, check=False)
    assert p.returncode != 0 and "6 members" in p.stderr and "at most 5" in p.stderr


def test_provision_out_of_scope_and_errors(job, live):
    path, env, directory, app, users = job
    create_user(directory, "out@example.com")
    out = provisor("provision", "--job", str(path), "--user", "out@example.com", env=env).stdout
    assert ": Skipped" in out and "not assigned" in out and "Assigned to application: False" in out

    p = provisor("provision", "--job", str(path), "--user", "ghost@example.com", env=env, check=False)
    assert p.returncode != 0 and "no user" in p.stderr and "Traceback" not in p.stderr
    p = provisor("provision", "--job", str(path), env=env, check=False)
    assert p.returncode != 0 and "exactly one of" in p.stderr
    p = provisor("provision", "--job", str(path), "--user", "x", "--format", "xml", env=env, check=False)
    assert p.returncode != 0 and "--format" in p.stderr
    # bad target credentials: the Test connection step is shown, failed; nothing else runs
    p = provisor(
        "provision",
        "--job",
        str(path),
        "--user",
        "user6@example.com",
        "--format",
        "json",
        env={**env, "APP_TOKEN": "pvs_wrong"},
        check=False,
    )
    assert p.returncode != 0
    doc = json.loads(p.stdout)
    assert doc["result"] == "Failure" and [s["name"] for s in doc["provisioningSteps"]] == ["Test connection"]
    assert "pvs_wrong" not in p.stdout + p.stderr
    # the bad source token: a plain message
    p = provisor(
        "provision",
        "--job",
        str(path),
        "--user",
        "user6@example.com",
        env={**env, "DIRECTORY_TOKEN": "pvs_wrong"},
        check=False,
    )
    assert p.returncode != 0 and "source" in p.stderr and "Traceback" not in p.stderr


# -- the progress display (2.13) ----------------------------------------------------------------


def feed(show):
    progress = Progress("c1", CycleKind.INITIAL)
    for phase, done in [
        ("users", 0),
        ("users", 40),
        ("references", 40),
        ("groups", 45),
        ("deprovisioning", 50),
    ]:
        progress.phase, progress.done = phase, done
        show(progress)


def test_progress_plain_lines_when_not_a_terminal():
    from rich.console import Console

    from provisor.cli.jobs import ProgressDisplay

    out = io.StringIO()
    with ProgressDisplay(total=50, console=Console(file=out, force_terminal=False, width=200)) as show:
        feed(show)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Initial cycle: users: 0 of 50 objects")
    assert [line.split(":")[1].strip() for line in lines[:-1]] == [
        "users",
        "references",
        "groups",
        "deprovisioning",
    ]
    assert lines[-1].startswith("Initial cycle: done: 50 objects in ")
    assert "\x1b[" not in out.getvalue()  # no terminal escapes in a log file


def test_progress_bar_on_a_terminal_renders():
    from rich.console import Console

    from provisor.cli.jobs import ProgressDisplay

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=140, color_system="standard")
    with ProgressDisplay(console=console) as show:  # no total: indeterminate until the end
        assert show.tty
        feed(show)
    text = out.getvalue()
    assert "Initial cycle" in text and "50/50" in text and "done" in text
    out = io.StringIO()
    with ProgressDisplay(total=10, console=Console(file=out, force_terminal=True, width=140)) as show:
        feed(show)  # outgrows its estimate: the total follows
    assert "50/50" in out.getvalue()


def test_sync_prints_progress_lines_when_piped(job):
    path, env, *_ = job
    out = provisor("sync", "--job", str(path), env=env).stdout
    assert "Initial cycle: users:" in out and "Initial cycle: done:" in out
