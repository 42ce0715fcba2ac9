"""Tenants and Secret Tokens: isolation (404, not 403), allowed roles, revocation, expiry, races."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from tests.conftest import (
    ENTERPRISE,
    GROUP,
    PATCH_OP,
    USER,
    assert_scim_error,
    create_group,
    create_user,
    make_user,
    serving,
)

from provisor.scim.compat import QUIRK_NAMES
from provisor.server.auth import hash_token, issue_token
from provisor.server.tenancy import CONTEXT_KEEP_SECONDS, TenantContexts, context_for
from provisor.store.base import Tenant

ADSCIM = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def patch_body(*ops: dict) -> dict:
    return {"schemas": [PATCH_OP], "Operations": list(ops)}


def bulk_body(*ops: dict) -> dict:
    return {"schemas": [BULK], "Operations": list(ops)}


def stored_tenant(settings: dict) -> Tenant:
    return Tenant(id="t-unit", name="unit", settings=settings, created=datetime.now(UTC))


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
        # A's user is no member B can name: left out (unknown_members_skipped), never linked
        assert r.status_code == 201 and r.json()["members"] == []
        groups_of_ua = [g["value"] for g in a.get(f"/Users/{ua['id']}").json().get("groups", [])]
        assert r.json()["id"] not in groups_of_ua
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


# -- a strict tenant over HTTP ------------------------------------------------------------------


def test_strict_tenant_refuses_string_booleans_on_create_and_stores_nothing(live):
    """strict: "active": "True" is a 400 invalidValue on POST and PUT, and nothing is created or changed."""
    _, token = live.new_tenant({"strict": True})
    with live.client(token) as c:
        r = c.post("/Users", json={"schemas": [USER], "userName": "sb@x.com", "active": "True"})
        assert_scim_error(r, 400, "invalidValue")
        assert c.get("/Users").json()["totalResults"] == 0
        user = create_user(c, "kept@x.com")
        r = c.put(
            f"/Users/{user['id']}", json={"schemas": [USER], "userName": "kept@x.com", "active": "False"}
        )
        assert_scim_error(r, 400, "invalidValue")
        assert c.get(f"/Users/{user['id']}").json() == user


def test_strict_tenant_refuses_capitalised_patch_ops_and_keeps_the_user(live):
    """strict: op "Replace" is a 400 invalidSyntax, on a User, a Group and inside /Bulk; nothing changes."""
    _, token = live.new_tenant({"strict": True})
    with live.client(token) as c:
        user = create_user(c, "cap@x.com", displayName="Before")
        group = create_group(c, "G")
        r = c.patch(
            f"/Users/{user['id']}",
            json=patch_body({"op": "Replace", "path": "displayName", "value": "After"}),
        )
        body = assert_scim_error(r, 400, "invalidSyntax")
        assert "Replace" in body["detail"]
        r = c.patch(
            f"/Groups/{group['id']}",
            json=patch_body({"op": "Add", "path": "members", "value": [{"value": user["id"]}]}),
        )
        assert_scim_error(r, 400, "invalidSyntax")
        r = c.post(
            "/Bulk",
            json=bulk_body(
                {
                    "method": "PATCH",
                    "path": f"/Users/{user['id']}",
                    "data": patch_body({"op": "Replace", "path": "active", "value": False}),
                }
            ),
        )
        assert r.status_code == 200, r.text
        (op,) = r.json()["Operations"]
        assert op["status"] == "400" and op["response"]["scimType"] == "invalidSyntax"
        assert c.get(f"/Users/{user['id']}").json() == user
        assert c.get(f"/Groups/{group['id']}").json() == group


def test_strict_tenant_refuses_a_bare_string_manager(live):
    """strict: the enterprise manager as a bare id is a 400 invalidValue on POST, PUT and PATCH."""
    _, token = live.new_tenant({"strict": True})
    with live.client(token) as c:
        boss = create_user(c, "boss@x.com")
        user = create_user(
            c, "emp@x.com", schemas=[USER, ENTERPRISE], **{ENTERPRISE: {"department": "Sales"}}
        )
        bare = {"schemas": [USER, ENTERPRISE], ENTERPRISE: {"manager": boss["id"]}}
        assert_scim_error(c.post("/Users", json={**bare, "userName": "new@x.com"}), 400, "invalidValue")
        r = c.put(f"/Users/{user['id']}", json={**bare, "userName": "emp@x.com"})
        assert_scim_error(r, 400, "invalidValue")
        r = c.patch(
            f"/Users/{user['id']}",
            json=patch_body({"op": "replace", "path": f"{ENTERPRISE}:manager", "value": boss["id"]}),
        )
        assert_scim_error(r, 400, "invalidValue")
        assert c.get(f"/Users/{user['id']}").json() == user
        assert c.get("/Users").json()["totalResults"] == 2


def test_strict_tenant_refuses_unquoted_filter_values(live):
    """strict: externalId eq jyoung is a 400 invalidFilter; the quoted form finds the user."""
    _, token = live.new_tenant({"strict": True})
    with live.client(token) as c:
        user = create_user(c, "jyoung@x.com", externalId="jyoung")
        assert_scim_error(c.get("/Users", params={"filter": "externalId eq jyoung"}), 400, "invalidFilter")
        r = c.get("/Users", params={"filter": 'externalId eq "jyoung"'})
        assert r.status_code == 200
        assert [u["id"] for u in r.json()["Resources"]] == [user["id"]]


def test_strict_tenant_refuses_remove_members_with_a_value_list(live):
    """strict: remove path "members" with a value is a 400 invalidSyntax, not "remove every member"."""
    _, token = live.new_tenant({"strict": True})
    with live.client(token) as c:
        u1 = create_user(c, "m1@x.com")
        u2 = create_user(c, "m2@x.com")
        group = create_group(c, "G", [u1["id"], u2["id"]])
        r = c.patch(
            f"/Groups/{group['id']}",
            json=patch_body({"op": "remove", "path": "members", "value": [{"value": u1["id"]}]}),
        )
        assert_scim_error(r, 400, "invalidSyntax")
        after = c.get(f"/Groups/{group['id']}").json()
        assert after == group
        assert {m["value"] for m in after["members"]} == {u1["id"], u2["id"]}


def test_strict_tenant_refuses_the_adscim_group_schema(live):
    """strict: the ADSCIM Group URI in schemas is a 400 invalidValue on POST and PUT."""
    _, token = live.new_tenant({"strict": True})
    with live.client(token) as c:
        r = c.post("/Groups", json={"schemas": [GROUP, ADSCIM], "displayName": "AD"})
        assert_scim_error(r, 400, "invalidValue")
        assert c.get("/Groups").json()["totalResults"] == 0
        group = create_group(c, "G")
        r = c.put(f"/Groups/{group['id']}", json={"schemas": [GROUP, ADSCIM], "displayName": "Renamed"})
        assert_scim_error(r, 400, "invalidValue")
        assert c.get(f"/Groups/{group['id']}").json() == group


# -- one switch off at a time -------------------------------------------------------------------


def add_member(c, group_id: str, user_id: str):
    return c.patch(
        f"/Groups/{group_id}",
        json=patch_body({"op": "add", "path": "members", "value": [{"value": user_id}]}),
    )


def test_group_patch_answers_200_with_members_when_group_patch_no_content_is_off(live):
    """group_patch_no_content off: a Group PATCH answers 200 with the group; on (default): 204, empty."""
    _, default_token = live.new_tenant()
    _, off_token = live.new_tenant({"compat": {"group_patch_no_content": False}})
    with live.client(default_token) as d, live.client(off_token) as o:
        du, dg = create_user(d, "u@x.com"), create_group(d, "G")
        r = add_member(d, dg["id"], du["id"])
        assert r.status_code == 204, r.text
        assert r.content == b""
        ou, og = create_user(o, "u@x.com"), create_group(o, "G")
        r = add_member(o, og["id"], ou["id"])
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["id"] == og["id"] and body["displayName"] == "G"
        assert [m["value"] for m in body["members"]] == [ou["id"]]
        assert body == o.get(f"/Groups/{og['id']}").json()


def test_string_booleans_off_refuses_active_false_string(live):
    """string_booleans off: "active": "False" is a 400 invalidValue; a default tenant stores false."""
    _, default_token = live.new_tenant()
    _, off_token = live.new_tenant({"compat": {"string_booleans": False}})
    with live.client(default_token) as d, live.client(off_token) as o:
        r = d.post("/Users", json={"schemas": [USER], "userName": "f@x.com", "active": "False"})
        assert r.status_code == 201, r.text
        assert r.json()["active"] is False
        r = o.post("/Users", json={"schemas": [USER], "userName": "f@x.com", "active": "False"})
        assert_scim_error(r, 400, "invalidValue")
        assert o.get("/Users").json()["totalResults"] == 0
        # other switches stay on: capitalised ops still work for this tenant
        user = create_user(o, "g@x.com")
        r = o.patch(
            f"/Users/{user['id']}", json=patch_body({"op": "Replace", "path": "active", "value": False})
        )
        assert r.status_code == 200, r.text
        assert r.json()["active"] is False


# -- context_for --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (None, 1000),
        (50, 50),
        (1000, 1000),
        (5000, 1000),
        (0, 1000),
        (-5, 1000),
        ("50", 1000),
        (50.0, 1000),
    ],
)
def test_context_for_caps_the_tenant_page_size_by_the_servers(stored, expected):
    """A tenant may lower max_page_size, never raise it; anything but a positive int is ignored."""
    settings = {} if stored is None else {"max_page_size": stored}
    assert context_for(stored_tenant(settings), 1000).max_page_size == expected


def test_context_for_defaults_turn_every_switch_on_without_role_restriction():
    """No settings at all: every compat switch on, server page size, no allowed_roles."""
    ctx = context_for(stored_tenant({}), 200)
    assert ctx.compat.enabled == QUIRK_NAMES
    assert ctx.max_page_size == 200
    assert ctx.allowed_roles is None
    assert ctx.networks is None
    assert ctx.id == "t-unit"


def test_context_for_settings_that_cannot_be_read_allows_no_network():
    """Not as none set, which would allow any address: the tenant's allowed networks are unknown."""
    unreadable = replace(stored_tenant({}), unreadable="they are not JSON")
    ctx = context_for(unreadable, 200)
    assert ctx.networks == () and ctx.compat.enabled == QUIRK_NAMES and ctx.trace == 0


@pytest.mark.parametrize(
    "settings",
    [
        {"compat": {"no_such_switch": False}},
        {"compat": {"string_booleans": False, "no_such_switch": True}},
        {"compat": ["string_booleans"]},
        {"compat": "string_booleans"},
        {"allowed_roles": "User"},
        {"allowed_roles": {"User": True}},
        {"allowed_roles": []},
        {"compat": 5},  # once a TypeError: every request of the tenant a 500
        {"compat": {"string_booleans": "false"}},  # a string is not a switch's value
        {"strict": "false"},
        {"strict": 1},
        {"allowed_roles": [None]},
        {"allowed_roles": ["User", 7]},
    ],
)
def test_context_for_falls_back_to_safe_defaults_on_bad_settings(settings):
    """Unknown switch names or a non-list allowed_roles do not fail: all switches on, no role limit."""
    ctx = context_for(stored_tenant(settings), 1000)
    assert ctx.compat.enabled == QUIRK_NAMES
    assert ctx.allowed_roles is None


def test_context_for_bad_switches_on_a_strict_tenant_stay_strict():
    """An unknown switch name on a strict tenant falls back to strict, not to all-on."""
    ctx = context_for(
        stored_tenant({"strict": True, "compat": {"string_booleans": True, "bogus": True}}), 1000
    )
    assert ctx.compat.enabled == frozenset()


@pytest.mark.parametrize("name", sorted(QUIRK_NAMES))
def test_context_for_strict_with_one_switch_on_enables_exactly_that_one(name):
    """strict: true plus {name: true} gives exactly {name}; the default plus {name: false} lacks only it."""
    strict = context_for(stored_tenant({"strict": True, "compat": {name: True}}), 1000)
    assert strict.compat.enabled == frozenset({name})
    assert strict.compat.on(name)
    lenient = context_for(stored_tenant({"compat": {name: False}}), 1000)
    assert lenient.compat.enabled == QUIRK_NAMES - {name}


@pytest.mark.parametrize("page", [True, False, 0, -3, "50", 50.0, None])
def test_context_for_a_page_size_that_is_not_a_positive_integer_is_the_servers(page):
    assert context_for(stored_tenant({"max_page_size": page}), 1000).max_page_size == 1000


def test_context_for_keeps_allowed_roles_in_order_as_strings():
    """A list of allowed_roles becomes a tuple of strings, in the stored order."""
    ctx = context_for(stored_tenant({"allowed_roles": ["User", "Reader"]}), 1000)
    assert ctx.allowed_roles == ("User", "Reader")


# -- isolation for PUT and /Bulk ----------------------------------------------------------------


def test_put_of_another_tenants_user_is_404_and_changes_nothing(live):
    """PUT with tenant A's token on tenant B's user id is 404 (not 403); B's user is unchanged."""
    _, token_a = live.new_tenant()
    _, token_b = live.new_tenant()
    with live.client(token_a) as a, live.client(token_b) as b:
        ub = create_user(b, "victim@x.com", displayName="Victim")
        r = a.put(f"/Users/{ub['id']}", json={"schemas": [USER], "userName": "pwned@x.com", "active": False})
        assert_scim_error(r, 404)
        assert b.get(f"/Users/{ub['id']}").json() == ub
        assert a.get("/Users").json()["totalResults"] == 0


def test_bulk_of_tenant_a_cannot_touch_tenant_b(live):
    """/Bulk PATCH, PUT and DELETE of another tenant's user id are each 404; the user is unchanged."""
    _, token_a = live.new_tenant()
    _, token_b = live.new_tenant()
    with live.client(token_a) as a, live.client(token_b) as b:
        ub = create_user(b, "victim@x.com", displayName="Victim")
        gb = create_group(b, "B group", [ub["id"]])
        ub = b.get(f"/Users/{ub['id']}").json()
        path = f"/Users/{ub['id']}"
        r = a.post(
            "/Bulk",
            json=bulk_body(
                {
                    "method": "PATCH",
                    "path": path,
                    "data": patch_body({"op": "replace", "path": "displayName", "value": "pwned"}),
                },
                {"method": "PUT", "path": path, "data": {"schemas": [USER], "userName": "pwned@x.com"}},
                {"method": "DELETE", "path": path},
                {
                    "method": "PATCH",
                    "path": f"/Groups/{gb['id']}",
                    "data": patch_body({"op": "remove", "path": "members"}),
                },
            ),
        )
        assert r.status_code == 200, r.text
        ops = r.json()["Operations"]
        assert [o["method"] for o in ops] == ["PATCH", "PUT", "DELETE", "PATCH"]
        assert [o["status"] for o in ops] == ["404", "404", "404", "404"]
        assert all(o["response"]["status"] == "404" for o in ops)
        assert b.get(path).json() == ub
        assert b.get(f"/Groups/{gb['id']}").json() == gb
        assert a.get("/Users").json()["totalResults"] == 0


def test_tenant_contexts_are_compiled_once_a_tenant_object_and_forgotten_later() -> None:
    """The server's compiled tenant settings: one entry a tenant, reused while the authenticator
    hands out the same Tenant; every CONTEXT_KEEP_SECONDS at most all go, so deleted or quiet
    tenants leave nothing behind."""
    now = [100.0]
    contexts = TenantContexts(1000, clock=lambda: now[0])
    created = datetime.now(UTC)
    tenants = [Tenant(f"{i:032x}", f"t{i}", {"max_page_size": 5}, created) for i in range(50)]
    first = [contexts.of(t) for t in tenants]
    assert len(contexts) == 50 and first[0].max_page_size == 5
    assert contexts.of(tenants[0]) is first[0]  # the same Tenant: the same context
    refreshed = Tenant(tenants[0].id, "t0", {"max_page_size": 7}, created)  # the token cache's next read
    assert contexts.of(refreshed).max_page_size == 7 and len(contexts) == 50
    now[0] += CONTEXT_KEEP_SECONDS
    assert contexts.of(refreshed).max_page_size == 7  # a hit: nothing is swept on the hot path
    assert len(contexts) == 50
    again = Tenant(tenants[1].id, "t1", {"max_page_size": 5}, created)
    assert contexts.of(again) is not first[1]  # a miss past the keep time: all others go
    assert len(contexts) == 1 and contexts.of(again).max_page_size == 5
    assert contexts.of(tenants[2]).max_page_size == 5 and len(contexts) == 2


def test_a_deleted_tenants_token_still_cached_gets_401_not_400(tmp_path):
    """A server's token cache keeps a token for a while after its tenant is deleted: a write in
    that while found the tenant gone and was answered 400 "no such tenant", a failed object to
    Entra rather than failed credentials."""
    from provisor.server import ServerConfig

    config = ServerConfig(access_log=False, token_cache_seconds=60.0)
    with serving(f"sqlite:///{tmp_path / 'deleted.db'}", config) as server:
        tenant_id, token = server.new_tenant()
        with server.client(token) as c:
            assert c.get("/Users").status_code == 200  # the token is cached now
            server.store.delete_tenant(tenant_id)
            body = assert_scim_error(c.post("/Users", json=make_user("late@x.com")), 401)
            assert "deleted" in body["detail"]
            assert_scim_error(c.post("/Groups", json={"schemas": [GROUP], "displayName": "late"}), 401)


def test_skipped_member_values_are_logged_without_secrets_or_forged_lines(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """The values a client sent are its text: a Secret Token pasted among them (another
    tenant's, say) is redacted, a newline cannot start a line of its own, each is cut short and
    a line names ten at most."""
    gid = create_group(client, "Logged")["id"]
    secret = "pvs_" + "S3cret" * 7
    forged = "y\n2099-01-01 00:00:00,000 ERROR provisor.server FORGED"
    values = [secret, forged, "x" * 500, *(f"zz-missing-{i}" for i in range(20))]
    body = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": v} for v in values]}],
    }
    with caplog.at_level(logging.INFO, logger="provisor.server"):
        r = client.patch(f"/Groups/{gid}", json=body)
    assert r.status_code in (200, 204), r.text
    [line] = [rec.getMessage() for rec in caplog.records if "skipped member values" in rec.getMessage()]
    assert secret not in line and "[redacted]" in line
    assert "\n" not in line and "FORGED" in line  # kept, as text inside its JSON quotes
    assert "x" * 65 not in line and "and 13 more" in line
