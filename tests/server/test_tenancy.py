"""Tenants and Secret Tokens: isolation (404, not 403), allowed roles, revocation, expiry, races."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from tests.conftest import PATCH_OP, USER, assert_scim_error, create_group, create_user

from provisor.server.auth import hash_token, issue_token


def test_a_token_of_tenant_a_never_reads_or_changes_tenant_b(live):
    _, token_a = live.new_tenant()
    _, token_b = live.new_tenant()
    with live.client(token_a) as a, live.client(token_b) as b:
        ua = create_user(a, "same@x.com")
        ga = create_group(a, "A group", [ua["id"]])
        # the same userName is free in another tenant
        ub = create_user(b, "same@x.com")
        assert ub["id"] != ua["id"]
        for path in (f"/Users/{ua['id']}", f"/Groups/{ga['id']}"):
            assert_scim_error(b.get(path), 404)
            assert_scim_error(b.delete(path), 404)
            assert_scim_error(
                b.patch(
                    path,
                    json={
                        "schemas": [PATCH_OP],
                        "Operations": [{"op": "replace", "path": "displayName", "value": "pwned"}],
                    },
                ),
                404,
            )
        assert b.get("/Users").json()["totalResults"] == 1
        assert b.get("/Groups").json()["totalResults"] == 0
        # B cannot add A's user to its own group either
        r = b.post(
            "/Groups",
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "B",
                "members": [{"value": ua["id"]}],
            },
        )
        assert_scim_error(r, 400, "invalidValue")
        assert a.get(f"/Users/{ua['id']}").json().get("displayName") is None


def test_clarizen_style_tenant_accepts_only_the_user_role(live):
    _, token = live.new_tenant({"allowed_roles": ["User"]})
    with live.client(token) as c:
        ok = c.post(
            "/Users",
            json={
                "schemas": [USER],
                "userName": "clz@x.com",
                "roles": [{"primary": True, "type": "WindowsAzureActiveDirectoryRole", "value": "User"}],
            },
        )
        assert ok.status_code == 201, ok.text
        body = assert_scim_error(
            c.post(
                "/Users",
                json={"schemas": [USER], "userName": "adm@x.com", "roles": [{"value": "Administrator"}]},
            ),
            400,
            "invalidValue",
        )
        assert "User" in body["detail"] and "Administrator" in body["detail"]
        r = c.patch(
            f"/Users/{ok.json()['id']}",
            json={
                "schemas": [PATCH_OP],
                "Operations": [{"op": "add", "path": "roles", "value": [{"value": "Superuser"}]}],
            },
        )
        assert_scim_error(r, 400, "invalidValue")
        assert c.get("/Users", params={"filter": 'userName eq "adm@x.com"'}).json()["totalResults"] == 0


def test_revoked_and_expired_tokens_are_refused(live):
    tenant_id, token = live.new_tenant()
    with live.client(token) as c:
        assert c.get("/Users").status_code == 200
    info = live.store.token_by_hash(hash_token(token))[0]
    live.store.revoke_token(info.id)
    time.sleep(0.3)  # the server's token cache lives 0.2 s in the test configuration
    with live.client(token) as c:
        assert_scim_error(c.get("/Users"), 401)
    expired, _ = issue_token(
        live.store, tenant_id, label="old", expires=datetime.now(UTC) - timedelta(seconds=1)
    )
    with live.client(expired) as c:
        body = assert_scim_error(c.get("/Users"), 401)
        assert "expired" in body["detail"]


def test_tokens_are_stored_only_as_hashes(live):
    _, token = live.new_tenant()
    import sqlite3

    db = str(live.store.url).removeprefix("sqlite:///") if hasattr(live.store, "url") else None
    if db:
        raw = sqlite3.connect(db).execute("select * from tokens").fetchall()
        assert token not in repr(raw)


def test_fifty_parallel_creates_of_one_user_name_give_exactly_one_201(live):
    _, token = live.new_tenant()

    def create(_: int) -> int:
        with live.client(token) as c:
            return c.post("/Users", json={"schemas": [USER], "userName": "race@x.com"}).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(create, range(50)))
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == 49, statuses
    with live.client(token) as c:
        assert c.get("/Users", params={"filter": 'userName eq "race@x.com"'}).json()["totalResults"] == 1
