"""The engine against a third-party target (scim2-server), and a kill -9 in the middle of a cycle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from tests.conftest import GROUP, create_user

PROVISOR = [sys.executable, "-m", "provisor.cli.main"]
JOB = """name: {name}
source:
  type: scim
  url: {source}
  token: ${{DIRECTORY_TOKEN}}
target:
  url: {target}
  token: ${{APP_TOKEN}}
  patch_dialect: {dialect}
template: scim-default
scope:
  mode: assigned
  assignments:
    - group: Everyone
      role: User
state: sqlite:///{name}.state.db
"""


def fill(directory, n):
    users = [
        create_user(
            directory,
            f"p{i:04d}@example.com",
            displayName=f"Person {i}",
            emails=[{"type": "work", "value": f"p{i:04d}@example.com"}],
        )
        for i in range(n)
    ]
    r = directory.post(
        "/Groups",
        json={"schemas": [GROUP], "displayName": "Everyone", "members": [{"value": u["id"]} for u in users]},
    )
    assert r.status_code == 201
    return users


def sync(job, env, check=True):
    p = subprocess.run(
        [*PROVISOR, "sync", "--job", str(job), "--once"],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


@pytest.fixture
def peer():
    """scim2-server's ASGI app (a third-party SCIM implementation) on loopback."""
    scim2_server = pytest.importorskip("scim2_server")
    del scim2_server
    import importlib.util
    from pathlib import Path

    from provisor.cli.serving import BackgroundServer

    path = Path(__file__).resolve().parents[3] / "shared" / "bench" / "scim2_server_peer.py"
    if not path.is_file():
        pytest.skip("../shared/bench/scim2_server_peer.py is not there")
    os.environ["SCIM_ENTRA"] = "1"
    os.environ["SCIM_TOKEN"] = "peer-secret"
    spec = importlib.util.spec_from_file_location("scim2_server_peer", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = BackgroundServer(module.app).start()
    try:
        yield f"http://127.0.0.1:{server.port}/v2"
    finally:
        server.stop()


def test_a_cycle_into_scim2_server(live, peer, tmp_path):
    import httpx

    _, dir_token = live.new_tenant()
    with live.client(dir_token) as directory:
        users = fill(directory, 12)
        job = tmp_path / "peer.yaml"
        job.write_text(JOB.format(name="peer", source=live.base, target=peer, dialect="rfc"))
        env = {"DIRECTORY_TOKEN": dir_token, "APP_TOKEN": "peer-secret"}
        sync(job, env)
        headers = {"Authorization": "Bearer peer-secret"}
        got = httpx.get(f"{peer}/Users", params={"count": 100}, headers=headers).json()
        assert sorted(u["userName"] for u in got["Resources"]) == sorted(u["userName"] for u in users)
        groups = httpx.get(f"{peer}/Groups", headers=headers).json()["Resources"]
        assert [g["displayName"] for g in groups] == ["Everyone"] and len(groups[0]["members"]) == 12
        # an update flows as a PATCH the third-party server accepts
        directory.patch(
            f"/Users/{users[0]['id']}",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "displayName", "value": "Renamed"}],
            },
        )
        sync(job, env)
        found = httpx.get(
            f"{peer}/Users", params={"filter": f'userName eq "{users[0]["userName"]}"'}, headers=headers
        ).json()["Resources"][0]
        assert found["displayName"] == "Renamed"


def test_kill_9_mid_cycle_then_resume_without_duplicates(live, tmp_path):
    _, dir_token = live.new_tenant()
    _, app_token = live.new_tenant()
    with live.client(dir_token) as directory, live.client(app_token) as app:
        users = fill(directory, 250)
        job = tmp_path / "crash.yaml"
        job.write_text(JOB.format(name="crash", source=live.base, target=live.base, dialect="entra"))
        # a 10 s runner lease (renewed every 2.5 s), so that the killed sync's runs out soon
        env = {
            **os.environ,
            "DIRECTORY_TOKEN": dir_token,
            "APP_TOKEN": app_token,
            "PROVISOR_LEASE_SECONDS": "10",
        }
        proc = subprocess.Popen(
            [*PROVISOR, "sync", "--job", str(job), "--once"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while app.get("/Users", params={"count": 0}).json()["totalResults"] < 60:
            assert proc.poll() is None, "the cycle finished before it could be killed; raise the user count"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        proc.wait(timeout=30)
        partial = app.get("/Users", params={"count": 0}).json()["totalResults"]
        assert 0 < partial < 250
        # the dead process's lease holds the job a little longer, never forever
        busy = sync(job, env, check=False)
        if time.monotonic() - killed < 7:  # (the lease was renewed at most 2.5 s before the kill)
            assert busy.returncode == 75, busy.stdout + busy.stderr
            assert f"job crash is being run by provisor sync (pid {proc.pid} on " in busy.stderr
            assert "its lease runs out at" in busy.stderr and "Traceback" not in busy.stderr
        time.sleep(max(0.0, killed + 10.5 - time.monotonic()))
        sync(job, env)
        names = Counter(u["userName"] for u in app.get("/Users", params={"count": 1000}).json()["Resources"])
        assert len(names) == 250 and max(names.values()) == 1  # nothing skipped, nothing duplicated
        assert set(names) == {u["userName"] for u in users}
        group = app.get("/Groups").json()["Resources"]
        assert len(group) == 1 and len(group[0]["members"]) == 250
