"""The CLI contract: tenant and token commands, clear errors, and `serve` over HTTP and HTTPS."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

PROVISOR = [sys.executable, "-m", "provisor.cli.main"]


def run(
    *args: str,
    db: str | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    cmd = [*PROVISOR, *args] + (["--db", db] if db else [])
    p = subprocess.run(
        cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env, cwd=cwd
    )
    if check:
        assert p.returncode == 0, p.stderr
    return p


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, verify: object = True, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, verify=verify, timeout=1).status_code == 200:  # type: ignore[arg-type]
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def last_line(p: subprocess.CompletedProcess[str]) -> str:
    return p.stdout.strip().splitlines()[-1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_one_line_error(p: subprocess.CompletedProcess[str]) -> None:
    assert p.returncode != 0, p.stdout
    assert "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert p.stderr.startswith("provisor: "), p.stderr


@contextmanager
def serving(db: str | None, *, env: dict[str, str] | None = None, cwd: Path | None = None) -> Iterator[str]:
    """Run `provisor serve` (access log off) and yield its SCIM base URL."""
    port = free_port()
    cmd = [*PROVISOR, "serve", "--port", str(port), "--no-access-log"] + (["--db", db] if db else [])
    server = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, cwd=cwd
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}/scim/v2"
    finally:
        server.terminate()
        server.communicate(timeout=20)


def test_tenant_create_prints_the_token_alone_on_the_last_line(db):
    out = run("tenant", "create", "acme", db=db).stdout.strip().splitlines()
    token = out[-1]
    assert token.startswith("pvs_") and " " not in token and len(token) > 40
    listed = run("tenant", "list", db=db).stdout
    assert "acme" in listed and token not in listed
    tokens = run("token", "list", "acme", db=db).stdout
    assert "active" in tokens and token not in tokens


def test_cli_errors_are_one_line_and_non_zero(db):
    run("tenant", "create", "acme", db=db)
    p = run("tenant", "create", "acme", db=db, check=False)
    assert p.returncode != 0 and "acme" in p.stderr and "Traceback" not in p.stderr
    p = run("token", "create", "nobody", db=db, check=False)
    assert p.returncode != 0 and "Traceback" not in p.stderr and p.stderr.strip()
    p = run("tenant", "create", "x", "--compat", "bogus=on", db=db, check=False)
    assert p.returncode != 0 and "bogus" in p.stderr
    p = run("token", "revoke", "no-such-token", db=db, check=False)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    p = run("tenant", "list", db="postgresql+nosuchdriver://x/y", check=False)
    assert p.returncode != 0 and "Traceback" not in p.stderr


def test_serve_and_create_a_tenant_while_it_runs(db, tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [*PROVISOR, "serve", "--db", db, "--port", str(port), "--no-access-log"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/healthz")
        token = run("tenant", "create", "live", db=db).stdout.strip().splitlines()[-1]
        assert "\tused never\t" in run("token", "list", "live", db=db).stdout
        base = f"http://127.0.0.1:{port}/scim/v2"
        r = httpx.post(
            f"{base}/Users",
            headers={"Authorization": f"Bearer {token}"},
            json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "cli@x.com"},
        )
        assert r.status_code == 201, r.text
        # the server recorded the token's use: an operator sees Entra (or this test) connect
        (listed,) = [
            json.loads(line) for line in run("token", "list", "live", "--json", db=db).stdout.splitlines()
        ]
        assert listed["state"] == "active" and listed["last_used"] is not None
        used = datetime.fromisoformat(listed["last_used"])
        assert abs((datetime.now(UTC) - used).total_seconds()) < 60
        assert "\tused never\t" not in run("token", "list", "live", db=db).stdout
        # revoke through the CLI while the server runs
        token_id = listed["id"]
        run("token", "revoke", token_id, db=db)
        time.sleep(1.2)
        r = httpx.get(f"{base}/Users", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401
    finally:
        server.terminate()
        _, err = server.communicate(timeout=20)
    assert token.encode() not in err
    assert b'"method"' not in err  # --no-access-log
    # it started on an empty database: it said how to make the first tenant
    assert b"no tenant yet" in err and f"provisor tenant create NAME --db {db}".encode() in err


def test_serve_logs_each_request_as_a_json_line_on_stderr(db, tmp_path):
    token = run("tenant", "create", "logged", db=db).stdout.strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen(
        [*PROVISOR, "serve", "--db", db, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/healthz")
        r = httpx.get(
            f"http://127.0.0.1:{port}/scim/v2/Users",
            params={"filter": 'userName eq "someone@x.com"'},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200, r.text
    finally:
        server.terminate()  # a graceful stop writes the lines still kept
        _, err = server.communicate(timeout=20)
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert [(x["method"], x["path"], x["status"]) for x in lines][-1] == ("GET", "/scim/v2/Users", 200)
    assert lines[-1]["tenant"] and lines[-1]["time"].endswith("Z")
    assert token.encode() not in err and b"someone" not in err
    assert b"no tenant yet" not in err


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
def test_serve_https_with_tls_12_or_newer(db, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    token = run("tenant", "create", "tls", db=db).stdout.strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen(
        [
            *PROVISOR,
            *("serve", "--db", db, "--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)),
            *("--shutdown-timeout", "1"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ},
    )
    try:
        ctx = ssl.create_default_context(cafile=str(cert))
        wait_ready(f"https://127.0.0.1:{port}/healthz", verify=ctx)
        r = httpx.get(
            f"https://127.0.0.1:{port}/scim/v2/Users",
            headers={"Authorization": f"Bearer {token}"},
            verify=ctx,
        )
        assert r.status_code == 200 and r.json()["totalResults"] == 0
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(str(cert))
        with warnings.catch_warnings():  # the point is to offer the deprecated versions
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises((httpx.ConnectError, ssl.SSLError)):
            httpx.get(f"https://127.0.0.1:{port}/healthz", verify=old)
        # a client closing politely (close_notify, as curl does) logged an asyncio warning each time
        with ctx.wrap_socket(
            socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1"
        ) as polite:
            polite.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert polite.recv(100).startswith(b"HTTP/1.1 200")
            with contextlib.suppress(ssl.SSLError, OSError):  # the close_notify is sent either way
                polite.unwrap()
        # a kept-alive client that never answers TLS's close held a stop 30 s: now --shutdown-timeout
        with ctx.wrap_socket(
            socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1"
        ) as idle:
            idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert idle.recv(100).startswith(b"HTTP/1.1 200")
            stopping = time.monotonic()
            server.terminate()
            _, err = server.communicate(timeout=20)
            assert time.monotonic() - stopping < 8
        # one line says where: https, not uvicorn's "running on http://" beside it
        assert (
            f"serving SCIM at https://127.0.0.1:{port}/scim/v2" in err.decode()
            and "http://" not in err.decode()
        )
        assert "eof_received" not in err.decode()
    finally:
        server.terminate()
        server.communicate(timeout=20)


def test_serve_rejects_half_a_tls_configuration(db, tmp_path):
    p = run("serve", "--tls-cert", str(tmp_path / "c.pem"), db=db, check=False)
    assert p.returncode != 0 and "--tls-key" in p.stderr


def test_demo_once(tmp_path):
    p = subprocess.run(
        [*PROVISOR, "demo", "--once", "--port", "0", "--db", f"sqlite:///{tmp_path / 'demo.db'}"],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert p.returncode == 0, p.stderr
    assert "Tenant URL:   http://127.0.0.1:" in p.stdout and "Secret Token: pvs_" in p.stdout
    assert "-> 201" in p.stdout and '"userName": "ada.' in p.stdout and '"members": [' in p.stdout
    # part 2: the engine story really happened
    from provisor.cli.demo import ASSIGNED_GROUPS, organisation
    from provisor.engine.model import ObjectKind
    from provisor.engine.state import LogQuery
    from provisor.store.sql.engine_state import SqlEngineState

    out = p.stdout
    org = organisation()
    assert len(org.people) == 1000 and len(org.groups) == 50
    assert all(person.manager for person in org.people[1:])
    assert "1000 users with managers" in out and "50 groups, loaded over /Bulk" in out
    assert "Initial cycle: done:" in out and "Incremental cycle: done:" in out  # progress (not a TTY)
    expected = len(org.in_scope())
    assert f"The app now holds {expected} users and {len(ASSIGNED_GROUPS)} groups." in out
    # the incremental cycle: the rename, the disable, the removal from the group, the new hire
    assert "-Okoye" in out and "new.hire@contoso.example" in out
    # its server stopped with --once: the hints say they need one that serves
    assert "While `provisor demo` serves (without --once), try it yourself:" in out
    job = tmp_path / "provisor-demo" / "clarizen-one.yaml"
    assert job.is_file() and "pvs_" not in job.read_text()  # tokens come from the environment
    state = SqlEngineState(f"sqlite:///{tmp_path / 'provisor-demo' / 'clarizen-one.state.db'}")
    try:
        cycles = state.cycles("clarizen-one")
        assert [c.kind.value for c in cycles] == ["Incremental", "Initial"]
        assert all(c.result == "Succeeded" for c in cycles)
        assert cycles[1].counts["Create"] == expected + len(ASSIGNED_GROUPS)
        records = list(state.logs("clarizen-one", LogQuery(cycle=cycles[0].id)))
        actions = sorted((r.action, r.display) for r in records if r.action != "Skip")
        assert [a for a, _ in actions] == ["Create", "Disable", "Disable", "Update"], actions
        assert "Nia Newton" in dict(actions).values()
        update = next(r for r in records if r.action == "Update")
        assert any(
            attr == "name.familyName" and new and new.endswith("-Okoye") for attr, _, new in update.modified
        )
        assert state.count_connections("clarizen-one", ObjectKind.USER) == expected + 1
    finally:
        state.close()
    assert f"app tenant         {expected + 1} users ({expected - 1} active), 3 groups" in out
    assert "status             Active" in out


def test_tenant_delete_removes_the_tenant_and_its_tokens_stop_working(db):
    gone = last_line(run("tenant", "create", "gone", db=db))
    kept = last_line(run("tenant", "create", "kept", db=db))
    with serving(db) as base:
        # both tokens work (and are now in the server's token cache)
        assert httpx.get(f"{base}/Users", headers=bearer(gone)).status_code == 200
        assert httpx.get(f"{base}/Users", headers=bearer(kept)).status_code == 200
        assert "gone" in run("tenant", "delete", "gone", "--yes", db=db).stdout
        time.sleep(1.2)  # the server caches tokens for about a second
        r = httpx.get(f"{base}/Users", headers=bearer(gone))
        assert r.status_code == 401, r.text
        assert httpx.get(f"{base}/Users", headers=bearer(kept)).status_code == 200
    listed = run("tenant", "list", db=db).stdout
    assert [line.split("\t")[0] for line in listed.splitlines()] == ["kept"]
    p = run("tenant", "delete", "gone", "--yes", db=db, check=False)  # unknown now
    assert_one_line_error(p)
    assert "gone" in p.stderr and "Deleted" not in p.stdout


def test_token_create_prints_a_working_token_and_token_list_hides_it(db):
    run("tenant", "create", "acme", db=db)
    out = run("token", "create", "acme", "--label", "ci", db=db).stdout.strip().splitlines()
    token = out[-1]
    assert token.startswith("pvs_") and " " not in token and len(token) > 40
    assert all(token not in line for line in out[:-1])
    expiring = last_line(run("token", "create", "acme", "--label", "soon", "--expires-in-days", "3", db=db))
    created = datetime.now(UTC)
    assert expiring != token
    listed = run("token", "list", "acme", db=db).stdout
    assert token not in listed and expiring not in listed
    rows = {cols[-1]: cols for cols in (line.split("\t") for line in listed.splitlines())}
    assert set(rows) == {"initial", "ci", "soon"}
    token_id, prefix, state, expires, used, _ = rows["ci"]
    assert f"({token_id})" in out[-2] and state == "active" and expires == "expires never"
    assert used == "used never"
    assert prefix.endswith("…") and token.startswith(prefix[:-1]) and len(prefix) < len(token) // 2
    assert rows["soon"][2] == "active"
    expiry = datetime.fromisoformat(rows["soon"][3].removeprefix("expires "))
    assert abs(expiry - (created + timedelta(days=3))) < timedelta(minutes=5)
    with serving(db) as base:
        for t in (token, expiring):
            r = httpx.get(f"{base}/Users", headers=bearer(t))
            assert r.status_code == 200, r.text
        assert httpx.get(f"{base}/Users", headers=bearer(token + "x")).status_code == 401
    used_now = {
        line.split("\t")[-1]: line.split("\t")[4]
        for line in run("token", "list", "acme", db=db).stdout.splitlines()
    }
    assert used_now["initial"] == "used never"  # only the tokens a server accepted
    assert used_now["ci"].startswith("used 20") and used_now["soon"].startswith("used 20")
    p = run("token", "create", "acme", "--expires-in-days", "0", db=db, check=False)
    assert_one_line_error(p)
    assert "--expires-in-days" in p.stderr
    # a non-number is rejected by the option parser (a usage error: one line, exit 2)
    p = run("token", "create", "acme", "--expires-in-days", "soon", db=db, check=False)
    assert_one_line_error(p)
    assert p.returncode == 2 and "--expires-in-days" in p.stderr
    assert not p.stdout.strip()
    assert len(run("token", "list", "acme", db=db).stdout.splitlines()) == 3  # no token was made


def test_tenant_create_options_are_stored_and_enforced(db):
    plain = last_line(run("tenant", "create", "plain", db=db))
    strict = last_line(run("tenant", "create", "strict", "--strict", db=db))
    nobools = last_line(run("tenant", "create", "nobools", "--compat", "string_booleans=off", db=db))
    limited = last_line(
        run("tenant", "create", "limited", "--allowed-role", "User", "--max-page-size", "2", db=db)
    )
    stored = {
        t["name"]: t["settings"]
        for t in map(json.loads, run("tenant", "list", "--json", db=db).stdout.splitlines())
    }
    assert stored == {
        "plain": {},
        "strict": {"strict": True},
        "nobools": {"compat": {"string_booleans": False}},
        "limited": {"allowed_roles": ["User"], "max_page_size": 2},
    }

    def user(name: str, **extra: object) -> dict[str, object]:
        return {"schemas": [USER_SCHEMA], "userName": f"{name}@x.com", **extra}

    with serving(db) as base:
        # --strict and --compat string_booleans=off: "True" is not a boolean
        r = httpx.post(f"{base}/Users", headers=bearer(plain), json=user("a", active="True"))
        assert r.status_code == 201 and r.json()["active"] is True, r.text
        for token in (strict, nobools):
            r = httpx.post(f"{base}/Users", headers=bearer(token), json=user("a", active="True"))
            assert r.status_code == 400 and r.json()["scimType"] == "invalidValue", r.text
        # --strict turns every switch off; --compat turns off only the one named
        patch = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "Replace", "path": "title", "value": "T"}]}
        for token, status in ((strict, 400), (nobools, 200)):
            r = httpx.post(f"{base}/Users", headers=bearer(token), json=user("b", active=True))
            assert r.status_code == 201, r.text
            r = httpx.patch(f"{base}/Users/{r.json()['id']}", headers=bearer(token), json=patch)
            assert r.status_code == status, r.text
        # --allowed-role User
        admin = user("boss", roles=[{"value": "Admin"}])
        assert httpx.post(f"{base}/Users", headers=bearer(plain), json=admin).status_code == 201
        r = httpx.post(f"{base}/Users", headers=bearer(limited), json=admin)
        assert r.status_code == 400 and r.json()["scimType"] == "invalidValue", r.text
        r = httpx.post(f"{base}/Users", headers=bearer(limited), json=user("u0", roles=[{"value": "User"}]))
        assert r.status_code == 201, r.text
        # --max-page-size 2: pages hold at most 2, and the tenant's ServiceProviderConfig says so
        for i in (1, 2):
            r = httpx.post(f"{base}/Users", headers=bearer(limited), json=user(f"u{i}"))
            assert r.status_code == 201, r.text
        page = httpx.get(f"{base}/Users", headers=bearer(limited), params={"count": 100}).json()
        assert page["totalResults"] == 3 and page["itemsPerPage"] == 2 and len(page["Resources"]) == 2
        rest = httpx.get(f"{base}/Users", headers=bearer(limited), params={"startIndex": 3}).json()
        seen = {u["userName"] for u in page["Resources"] + rest["Resources"]}
        assert seen == {"u0@x.com", "u1@x.com", "u2@x.com"}
        spc = httpx.get(f"{base}/ServiceProviderConfig", headers=bearer(limited)).json()
        assert spc["filter"]["maxResults"] == 2
        spc = httpx.get(f"{base}/ServiceProviderConfig", headers=bearer(plain)).json()
        assert spc["filter"]["maxResults"] == 1000
    p = run("tenant", "create", "zero", "--max-page-size", "0", db=db, check=False)
    assert_one_line_error(p)
    assert "--max-page-size" in p.stderr


def test_tenant_set_any_role_lifts_the_allowed_roles(db):
    token = last_line(run("tenant", "create", "acme", "--allowed-role", "User,Reader", db=db))
    admin = {"schemas": [USER_SCHEMA], "userName": "boss@x.com", "roles": [{"value": "Admin"}]}
    with serving(db) as base:
        r = httpx.post(f"{base}/Users", headers=bearer(token), json=admin)
        assert r.status_code == 400 and r.json()["scimType"] == "invalidValue", r.text
        shown = run("tenant", "set", "acme", "--any-role", db=db).stdout
        assert json.loads(shown) == {}  # the restriction is gone from the stored settings
        assert "roles:      any" in run("tenant", "show", "acme", db=db).stdout
        # the running server follows within its tenant cache's second; generous for a busy box
        deadline = time.monotonic() + 30
        while (r := httpx.post(f"{base}/Users", headers=bearer(token), json=admin)).status_code == 400:
            assert time.monotonic() < deadline, r.text
            time.sleep(0.1)
        assert r.status_code == 201 and r.json()["roles"] == [{"value": "Admin"}], r.text
    # again on a tenant without the restriction: nothing to remove, nothing changes
    assert json.loads(run("tenant", "set", "acme", "--any-role", db=db).stdout) == {}


def test_provisor_db_alone_chooses_the_database(tmp_path):
    path = tmp_path / "from-env.db"
    work = tmp_path / "cwd"  # where the default sqlite:///provisor.db would land
    work.mkdir()
    env = {**os.environ, "PROVISOR_DB": f"sqlite:///{path}"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run(*args, env=env, cwd=work)

    token = last_line(cli("tenant", "create", "x"))
    assert path.is_file() and list(work.iterdir()) == []
    assert [line.split("\t")[0] for line in cli("tenant", "list").stdout.splitlines()] == ["x"]
    # --db still wins over the environment
    other = run(
        "tenant", "list", "--db", f"sqlite:///{tmp_path / 'other.db'}", env=env, cwd=work, check=False
    )
    assert other.returncode == 1 and f"no database at {tmp_path / 'other.db'}" in other.stderr
    with serving(None, env=env, cwd=work) as base:
        r = httpx.get(f"{base}/Users", headers=bearer(token))
        assert r.status_code == 200, r.text
    assert list(work.iterdir()) == []


def test_tenant_and_token_commands_load_neither_the_engine_nor_alembic(db):
    """What a `provisor tenant ...` costs before it does anything: the engine's cycle is loaded by
    job commands only, and alembic only when a database needs migrating."""
    run("tenant", "create", "light", db=db)  # the database is at its newest revision from here on
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['provisor', 'tenant', 'list', '--db', {db!r}]\n"
        "try:\n"
        "    runpy.run_module('provisor.cli.main', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in sys.modules if m == 'provisor.engine.cycle' or m.split('.')[0] == 'alembic']\n"
        "print(sorted(heavy), file=sys.stderr)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "light" in p.stdout, p.stderr
    assert p.stderr.strip().splitlines()[-1] == "[]", p.stderr


def test_tenant_show_gives_settings_counts_and_tokens(db):
    from provisor.store.base import Member
    from provisor.store.sql import SqlStore

    run("tenant", "create", "acme", db=db)
    run("tenant", "create", "other", db=db)
    with SqlStore(db) as store:
        acme = store.get_tenant("acme")
        users = [store.create(acme.id, "User", {"userName": f"u{i}@x.com"}) for i in range(3)]
        store.create(acme.id, "Group", {"displayName": "Sales"}, [Member(users[0].id)])
        store.delete(acme.id, "User", users[2].id)
        (info,) = store.list_tokens(acme.id)
        store.touch_token(info.id, datetime(2026, 11, 30, 18, 0, tzinfo=UTC))
        other = store.get_tenant("other")
        store.create(other.id, "User", {"userName": "elsewhere@x.com"})
    run("token", "create", "acme", db=db)
    run("tenant", "set", "acme", "--compat", "string_booleans=off", "--max-page-size", "200", db=db)
    run("tenant", "set", "acme", "--allowed-role", "User", "--rate-limit", "5", "--trace", "10", db=db)
    run("tenant", "set", "acme", "--allow-network", "10.0.0.0/8", db=db)
    text = run("tenant", "show", "acme", db=db).stdout
    fields = dict(line.split(":", 1) for line in text.splitlines())
    assert {k: v.strip() for k, v in fields.items()} == {
        "name": "acme",
        "id": acme.id,
        "created": acme.created.isoformat(timespec="seconds"),
        "users": "2",  # three made, one deleted; the other tenant's user is not counted
        "groups": "1",
        "tokens": "2 active of 2, last used 2026-11-30T18:00:00+00:00",
        "compat": "off: string_booleans",
        "page size": "at most 200, or the server's --max-page-size when lower",
        "roles": "User",
        "rate limit": "5 a second, bursts of 5",
        "trace": "the last 10 requests (provisor tenant trace acme)",
        "networks": "10.0.0.0/8",
    }
    shown = json.loads(run("tenant", "show", acme.id, "--json", db=db).stdout)  # by id too
    assert shown["users"] == 2 and shown["groups"] == 1 and shown["allowed_roles"] == ["User"]
    assert shown["compat"]["string_booleans"] is False and shown["compat"]["capitalised_ops"] is True
    assert shown["rate_limit"] == {"per_second": 5.0, "burst": 5} and shown["trace"] == 10
    assert shown["tokens"] == {"active": 2, "all": 2, "last_used": "2026-11-30T18:00:00+00:00"}
    # a fresh tenant: defaults, nothing held, never used
    bare = json.loads(run("tenant", "show", "other", "--json", db=db).stdout)
    assert bare["users"] == 1 and bare["groups"] == 0 and bare["tokens"]["last_used"] is None
    assert all(bare["compat"].values()) and bare["strict"] is False
    assert bare["max_page_size"] is None and bare["rate_limit"] is None and bare["trace"] is None
    assert bare["allowed_networks"] is None and shown["allowed_networks"] == ["10.0.0.0/8"]
    run("tenant", "set", "other", "--strict", db=db)
    strict = run("tenant", "show", "other", db=db).stdout
    assert "compat:     off: " in strict and "string_booleans" in strict
    assert "last used never" in strict and "page size:  the server's" in strict
    p = run("tenant", "show", "nobody", db=db, check=False)
    assert_one_line_error(p)
    assert "nobody" in p.stderr


def test_tenant_trace_follow_prints_requests_as_they_come(tmp_path):
    """`tenant trace NAME --follow`: what is kept, then each new request while a server answers
    it, until Ctrl-C (exit 0): what an integrator watches while pressing Test Connection."""
    import queue
    import signal
    import threading

    from tests.conftest import serving

    db = f"sqlite:///{tmp_path / 'follow.db'}"
    token = last_line(run("tenant", "create", "acme", "--trace", "50", db=db))
    with serving(db) as live, live.client(token) as client:
        assert client.get("/Users", params={"filter": 'userName eq "before@x.com"'}).status_code == 200
        follower = subprocess.Popen(
            [*PROVISOR, "tenant", "trace", "acme", "--follow", "--json", "--db", db],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert follower.stdout is not None
        out = follower.stdout
        threading.Thread(target=lambda: [lines.put(line) for line in out], daemon=True).start()
        try:

            def next_trace() -> dict:
                return json.loads(lines.get(timeout=20))

            first = next_trace()  # the one kept before it started
            assert first["method"] == "GET" and first["target"].startswith("/scim/v2/Users?filter=")
            assert "before" in first["target"] and first["status"] == 200
            created = client.post("/Users", json={"schemas": [USER_SCHEMA], "userName": "live@x.com"})
            assert created.status_code == 201
            seen = next_trace()
            assert (seen["method"], seen["target"], seen["status"]) == ("POST", "/scim/v2/Users", 201)
            assert json.loads(seen["request"])["userName"] == "live@x.com"
            assert client.delete(f"/Users/{created.json()['id']}").status_code == 204
            gone = next_trace()
            assert (gone["method"], gone["status"]) == ("DELETE", 204)
            assert lines.empty()  # each request printed once
            # tracing stopped and started again: the traces' numbers restart, and it follows them
            tenant = live.store.get_tenant("acme")
            live.store.delete_traces(tenant.id)
            assert client.get("/Groups").status_code == 200
            again = next_trace()
            assert (again["method"], again["target"]) == ("GET", "/scim/v2/Groups")
        finally:
            follower.send_signal(signal.SIGINT)
            _, err = follower.communicate(timeout=20)
    assert follower.returncode == 0, err
    assert "Traceback" not in err


def test_tenant_trace_follow_ends_when_the_tenant_is_deleted(tmp_path):
    """It waited on, silently, for traces that could never come."""
    db = f"sqlite:///{tmp_path / 'follow.db'}"
    run("tenant", "create", "acme", "--trace", "5", db=db)
    follower = subprocess.Popen(
        [*PROVISOR, "tenant", "trace", "acme", "--follow", "--db", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        time.sleep(1.5)  # it is following
        run("tenant", "delete", "acme", "--yes", db=db)
        _, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 1, err
    assert err.strip().splitlines()[-1] == "provisor: tenant acme was deleted: no more traces will come"


def test_serve_takes_its_options_from_the_environment_and_logs_json(tmp_path):
    """A container sets PROVISOR_* instead of flags; PROVISOR_LOG_FORMAT=json makes every line on
    stderr, Provisor's and uvicorn's, one JSON object (the access log's already are)."""
    db = f"sqlite:///{tmp_path / 'env.db'}"
    token = last_line(run("tenant", "create", "acme", db=db))
    port = free_port()
    env = {
        **os.environ,
        "PROVISOR_DB": db,
        "PROVISOR_PORT": str(port),
        "PROVISOR_LOG_FORMAT": "json",
        "PROVISOR_MAX_PAGE_SIZE": "7",
        "PROVISOR_HEADER_TIMEOUT": "0.5",
    }
    server = subprocess.Popen(
        [*PROVISOR, "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/healthz")
        r = httpx.get(f"http://127.0.0.1:{port}/scim/v2/ServiceProviderConfig", headers=bearer(token))
        assert r.json()["filter"]["maxResults"] == 7  # PROVISOR_MAX_PAGE_SIZE
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:  # PROVISOR_HEADER_TIMEOUT
            slow.sendall(b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n")  # half a head, then nothing
            assert slow.recv(65536).startswith(b"HTTP/1.1 408 ")
    finally:
        server.terminate()
        _, err = server.communicate(timeout=20)
    lines = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
    messages = {(x.get("logger"), x.get("message")) for x in lines}
    assert ("provisor", f"serving SCIM at http://127.0.0.1:{port}/scim/v2") in messages
    assert any(logger == "uvicorn.error" for logger, _ in messages)
    assert all(set(x) >= {"time", "level", "logger", "message"} for x in lines if "logger" in x)
    assert any(x.get("method") == "GET" for x in lines)  # the access log, on by default
    assert token.encode() not in err


def test_a_bad_environment_value_is_a_usage_error(tmp_path):
    db = f"sqlite:///{tmp_path / 'env.db'}"
    for name, value, needle in (
        ("PROVISOR_PORT", "eighty", "PROVISOR_PORT"),
        ("PROVISOR_LOG_FORMAT", "xml", "--log-format"),
        ("PROVISOR_MAX_PAGE_SIZE", "0", "--max-page-size"),
    ):
        p = run("serve", db=db, check=False, env={**os.environ, name: value})
        assert_one_line_error(p)
        assert p.returncode == 2 and needle in p.stderr


def _tokens(db: str) -> dict[str, bool]:
    """Each token's id: whether it is revoked."""
    import sqlite3

    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        return {i: r is not None for i, r in conn.execute("SELECT id, revoked FROM tokens")}


@pytest.mark.parametrize("sink", ["/dev/full", "closed pipe"])
def test_a_secret_token_that_could_not_be_printed_does_not_stay_valid(db: str, sink: str) -> None:
    """It was stored and active, its secret seen by no one, and Python printed a traceback."""
    run("tenant", "create", "seen", db=db)

    def attempt(*args: str) -> subprocess.CompletedProcess[bytes]:
        cmd = [*PROVISOR, *args, "--db", db]
        if sink == "/dev/full":
            with open("/dev/full", "wb") as full:
                return subprocess.run(cmd, stdout=full, stderr=subprocess.PIPE, timeout=60)
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
            assert p.stdout is not None
            p.stdout.close()  # the reader is gone before anything is written
            _, err = p.communicate(timeout=60)
            return subprocess.CompletedProcess(cmd, p.returncode, b"", err)

    before = _tokens(db)
    p = attempt("token", "create", "seen")
    assert p.returncode == 1 and b"Traceback" not in p.stderr, p.stderr
    assert b"could not be printed, so it was revoked" in p.stderr
    after = _tokens(db)
    [new] = set(after) - set(before)
    assert after == {**before, new: True}
    p = attempt("tenant", "create", "unseen")
    assert p.returncode == 1 and b"Traceback" not in p.stderr, p.stderr
    assert b"tenant unseen was not kept" in p.stderr
    assert [line.split("\t")[0] for line in run("tenant", "list", db=db).stdout.splitlines()] == ["seen"]


def test_an_argument_that_is_not_utf8_is_one_line_and_exit_2(db: str) -> None:
    run("tenant", "create", "acme", db=db)
    for args in ([b"tenant", b"create", b"\xff"], [b"token", b"create", b"acme", b"--label", b"x\xfe"]):
        p = subprocess.run(
            [*map(os.fsencode, PROVISOR), *args, b"--db", os.fsencode(db)], capture_output=True, timeout=60
        )
        assert p.returncode == 2 and p.stderr.startswith(b"provisor: argument ") and b"UTF-8" in p.stderr, (
            p.stderr
        )
        assert b"Traceback" not in p.stderr


def test_serve_on_port_0_announces_the_port_it_listens_on(db: str) -> None:
    token = last_line(run("tenant", "create", "acme", db=db))
    server = subprocess.Popen(
        [*PROVISOR, "serve", "--db", db, "--port", "0", "--no-access-log"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stderr is not None
        deadline = time.monotonic() + 30
        while "serving SCIM at" not in (line := server.stderr.readline()):
            assert line and time.monotonic() < deadline, "the server never said where it serves"
        url = line.split("serving SCIM at ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:") and not url.startswith("http://127.0.0.1:0/"), url
        assert httpx.get(f"{url}/ServiceProviderConfig", headers=bearer(token)).status_code == 200
    finally:
        server.terminate()
        server.communicate(timeout=20)
