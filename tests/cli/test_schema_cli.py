"""`provisor schema`: declared extension schemas, stored in the database, followed by running servers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.cli.test_cli import (
    PATCH_SCHEMA,
    USER_SCHEMA,
    assert_one_line_error,
    bearer,
    last_line,
    run,
    serving,
)

from provisor.store.sql import SqlStore

CUSTOM = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
SCIM_JSON = {"Content-Type": "application/scim+json"}


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A database that is there (a command other than schema add, serve and tenant create refuses
    one that is not)."""
    from provisor.store.sql import SqlStore

    url = f"sqlite:///{tmp_path / 'schema.db'}"
    SqlStore(url).close()
    return url


def definition(urn: str = CUSTOM, **attribute_overrides: Any) -> dict[str, Any]:
    cost_code = {"name": "costCode", "type": "string", **attribute_overrides}
    return {
        "id": urn,
        "name": "CustomExtensionName",
        "description": "Entra's custom attributes",
        "attributes": [cost_code, {"name": "badgeNumber", "type": "integer"}],
    }


def write(tmp_path: Path, content: object, name: str = "ext.json") -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), "utf-8")
    return str(path)


def add(
    tmp_path: Path, db: str, content: object, *extra: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return run("schema", "add", write(tmp_path, content), *extra, db=db, check=check)


def listed(db: str) -> list[list[str]]:
    return [line.split("\t") for line in run("schema", "list", db=db).stdout.splitlines() if line.strip()]


def headers(token: str) -> dict[str, str]:
    return {**bearer(token), **SCIM_JSON}


def entra_user(user_name: str, cost_code: str = "CC-1", badge: int = 42) -> dict[str, Any]:
    """A body shaped as Entra sends it: extension values present, their URN absent from schemas."""
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": user_name.split("@")[0],
        "userName": user_name,
        "active": True,
        "displayName": "Bob Smith",
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "name": {"formatted": "Bob Smith", "familyName": "Smith", "givenName": "Bob"},
        ENTERPRISE: {"department": "Finance"},
        CUSTOM: {"costCode": cost_code, "badgeNumber": badge},
    }


def test_add_list_show_round_trip(db, tmp_path):
    p = add(tmp_path, db, definition())
    assert last_line(p) == CUSTOM
    assert "within a few seconds" in p.stdout

    assert listed(db) == [[CUSTOM, "User", "optional", "costCode,badgeNumber"]]

    shown = json.loads(run("schema", "show", CUSTOM.lower(), db=db).stdout)
    assert shown["id"] == CUSTOM
    assert shown["name"] == "CustomExtensionName"
    types = {a["name"]: a["type"] for a in shown["attributes"]}
    assert types == {"costCode": "string", "badgeNumber": "integer"}
    cost_code = next(a for a in shown["attributes"] if a["name"] == "costCode")
    assert cost_code["multiValued"] is False and cost_code["mutability"] == "readWrite"

    group_urn = "urn:example:params:scim:schemas:extension:acme:2.0:Group"
    p = add(tmp_path, db, definition(group_urn), "--resource-type", "Group", "--required")
    assert last_line(p) == group_urn
    assert listed(db) == [
        [CUSTOM, "User", "optional", "costCode,badgeNumber"],
        [group_urn, "Group", "required", "costCode,badgeNumber"],
    ]

    assert_one_line_error(run("schema", "show", "urn:example:nothing:2.0:User", db=db, check=False))


def test_entra_extension_values_end_to_end_over_http(db, tmp_path):
    add(tmp_path, db, definition())
    token = last_line(run("tenant", "create", "entra", db=db))
    with serving(db) as base:
        r = httpx.post(f"{base}/Users", headers=headers(token), json=entra_user("bob@contoso.com"))
        assert r.status_code == 201, r.text
        created = r.json()
        assert CUSTOM in created["schemas"]
        assert created[CUSTOM] == {"costCode": "CC-1", "badgeNumber": 42}
        assert created[ENTERPRISE]["department"] == "Finance"
        user_id = created["id"]

        r = httpx.post(f"{base}/Users", headers=headers(token), json=entra_user("eve@contoso.com", "CC-2", 7))
        assert r.status_code == 201, r.text

        r = httpx.get(
            f"{base}/Users", headers=headers(token), params={"filter": f'{CUSTOM}:costCode eq "CC-1"'}
        )
        assert r.status_code == 200, r.text
        found = r.json()
        assert found["totalResults"] == 1
        assert [u["id"] for u in found["Resources"]] == [user_id]

        r = httpx.get(f"{base}/Schemas/{CUSTOM}", headers=headers(token))
        assert r.status_code == 200, r.text
        assert {a["name"]: a["type"] for a in r.json()["attributes"]} == {
            "costCode": "string",
            "badgeNumber": "integer",
        }

        patch = {
            "schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "Replace", "path": f"{CUSTOM}:costCode", "value": "CC-9"}],
        }
        r = httpx.patch(f"{base}/Users/{user_id}", headers=headers(token), json=patch)
        assert r.status_code in (200, 204), r.text
        r = httpx.get(f"{base}/Users/{user_id}", headers=headers(token))
        assert r.status_code == 200, r.text
        assert r.json()[CUSTOM] == {"costCode": "CC-9", "badgeNumber": 42}

        r = httpx.get(
            f"{base}/Users", headers=headers(token), params={"filter": f'{CUSTOM}:costCode eq "CC-1"'}
        )
        assert r.json()["totalResults"] == 0


def _until(status: int, url: str, token: str, seconds: float = 15.0) -> None:
    """Wait until GET ``url`` answers ``status`` (a server looks for schema changes every 2 s)."""
    deadline = time.monotonic() + seconds
    while (got := httpx.get(url, headers=headers(token)).status_code) != status:
        assert time.monotonic() < deadline, f"{url} still answers {got}, not {status}"
        time.sleep(0.2)


def test_a_running_server_follows_declarations_within_seconds(db, tmp_path):
    token = last_line(run("tenant", "create", "running", db=db))
    with serving(db) as base:
        r = httpx.post(f"{base}/Users", headers=headers(token), json=entra_user("early@contoso.com"))
        assert r.status_code == 201, r.text
        assert CUSTOM not in r.json() and CUSTOM not in r.json()["schemas"]  # undeclared: ignored
        early = r.json()["id"]

        add(tmp_path, db, definition())  # declared while the server runs
        _until(200, f"{base}/Schemas/{CUSTOM}", token)
        r = httpx.get(f"{base}/ResourceTypes/User", headers=headers(token))
        assert {"schema": CUSTOM, "required": False} in r.json()["schemaExtensions"]
        r = httpx.get(f"{base}/Users/{early}", headers=headers(token))
        assert r.status_code == 200 and CUSTOM not in r.json()  # dropped values stay dropped
        r = httpx.post(f"{base}/Users", headers=headers(token), json=entra_user("late@contoso.com"))
        assert r.status_code == 201, r.text
        assert r.json()[CUSTOM] == {"costCode": "CC-1", "badgeNumber": 42}
        late = r.json()["id"]

        p = run("schema", "remove", CUSTOM, "--purge", db=db)  # removed while it runs
        assert "1 resource" in p.stdout
        _until(404, f"{base}/Schemas/{CUSTOM}", token)
        r = httpx.get(f"{base}/Users/{late}", headers=headers(token))
        assert r.status_code == 200 and CUSTOM not in r.json() and CUSTOM not in r.json()["schemas"]
        r = httpx.get(
            f"{base}/Users", headers=headers(token), params={"filter": f'{CUSTOM}:costCode eq "CC-1"'}
        )
        assert r.status_code == 400 and r.json()["scimType"] == "invalidFilter"


FRESH = "urn:example:params:scim:schemas:extension:fresh:2.0:User"
BAD_DEFINITIONS: dict[str, tuple[object, tuple[str, ...], str]] = {
    # case: (file content, extra options, what stderr names)
    "not JSON": ("{not json", (), "not JSON"),
    "not an object": ("[1, 2]", (), "JSON object"),
    "bad URN": (definition("not-a-urn"), (), "not-a-urn"),
    "duplicate URN, other case": (definition(CUSTOM.upper()), (), "declared already"),
    "a core URN, other case": (definition(USER_SCHEMA.upper()), (), "declared already"),
    "unknown attribute type": (definition(FRESH, type="float"), (), "float"),
    "uniqueness server": (definition(FRESH, uniqueness="server"), (), "uniqueness"),
    "readOnly": (definition(FRESH, mutability="readOnly"), (), "readOnly"),
    "unknown resource type": (
        definition("urn:example:w:2.0:Widget"),
        ("--resource-type", "Widget"),
        "Widget",
    ),
    "overlaps the enterprise extension": (definition(ENTERPRISE + ":x"), (), "ambiguous"),
}


def test_bad_input_is_one_line_non_zero_and_declares_nothing(db, tmp_path):
    p = run("schema", "add", str(tmp_path / "nowhere.json"), db=db, check=False)
    assert_one_line_error(p)
    assert "nowhere.json" in p.stderr
    assert listed(db) == []

    add(tmp_path, db, definition())
    for case, (content, extra, mentions) in BAD_DEFINITIONS.items():
        p = add(tmp_path, db, content, *extra, check=False)
        assert p.returncode != 0, case
        assert_one_line_error(p)
        assert mentions in p.stderr, (case, p.stderr)
    assert listed(db) == [[CUSTOM, "User", "optional", "costCode,badgeNumber"]]


def test_an_empty_file_name_is_refused_saying_so(db, tmp_path):
    p = run("schema", "add", "", db=db, check=False)  # it was "cannot read : Is a directory"
    assert_one_line_error(p)
    assert p.returncode == 2 and "the schema file name is empty" in p.stderr


def test_json_nested_too_deeply_is_one_line(db, tmp_path):
    for deep in ("[" * 100_000, '{"a":' * 100_000):
        p = add(tmp_path, db, deep, check=False)
        assert_one_line_error(p)
        assert "nested too deeply" in p.stderr
    assert listed(db) == []


def test_a_definition_saved_with_a_byte_order_mark_is_read(db, tmp_path):
    """Windows editors write one; json refused it ("Unexpected UTF-8 BOM (decode using utf-8-sig)")."""
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(definition()).encode())
    assert last_line(run("schema", "add", str(path), db=db)) == CUSTOM


def test_add_reads_the_definition_from_stdin(db):
    urn = "urn:example:params:scim:schemas:extension:stdin:2.0:User"
    p = subprocess.run(
        [sys.executable, "-m", "provisor.cli.main", "schema", "add", "-", "--db", db],
        input=json.dumps(definition(urn)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    assert last_line(p) == urn
    assert listed(db) == [[urn, "User", "optional", "costCode,badgeNumber"]]


def test_remove_refuses_while_values_are_stored_and_purge_removes_them(db, tmp_path):
    p = run("schema", "remove", CUSTOM, db=db, check=False)
    assert_one_line_error(p)
    assert CUSTOM in p.stderr

    add(tmp_path, db, definition())
    token = last_line(run("tenant", "create", "purged", db=db))
    with serving(db) as base:
        r = httpx.post(f"{base}/Users", headers=headers(token), json=entra_user("bob@contoso.com"))
        assert r.status_code == 201, r.text
        user_id, version = r.json()["id"], r.json()["meta"]["version"]
        # a user without values of it is no holder
        r = httpx.post(
            f"{base}/Users",
            headers=headers(token),
            json={"schemas": [USER_SCHEMA], "userName": "plain@x.com"},
        )
        assert r.status_code == 201, r.text

    p = run("schema", "remove", CUSTOM, db=db, check=False)
    assert_one_line_error(p)
    assert p.returncode == 1
    assert "--purge" in p.stderr and "1 stored resource" in p.stderr
    assert listed(db)[0][0] == CUSTOM
    store = SqlStore(db)
    try:
        tenant = store.get_tenant("purged")
        assert store.get(tenant.id, "User", user_id).data[CUSTOM] == {"costCode": "CC-1", "badgeNumber": 42}
    finally:
        store.close()

    p = run("schema", "remove", CUSTOM.lower(), "--purge", db=db)
    assert "1 resource" in p.stdout
    assert listed(db) == []

    with serving(db) as base:
        r = httpx.get(f"{base}/Users/{user_id}", headers=headers(token))
        assert r.status_code == 200, r.text
        user = r.json()
        assert CUSTOM not in user and CUSTOM not in user["schemas"]
        assert user["userName"] == "bob@contoso.com" and user[ENTERPRISE]["department"] == "Finance"
        assert user["meta"]["version"] != version
        assert r.headers.get("etag") in (None, user["meta"]["version"])
        r = httpx.get(f"{base}/Schemas/{CUSTOM}", headers=headers(token))
        assert r.status_code == 404, r.text


def test_a_required_extension_is_refused_while_resources_of_its_type_exist(db, tmp_path):
    """Declared required over existing Users, it made every later write to them fail (Entra's
    disable included) until a write gave them its required attributes: refused, saying why;
    optional it is taken, and required over a type with no resources (Groups) too."""
    from provisor.store.sql import SqlStore

    token = last_line(run("tenant", "create", "acme", db=db))
    assert token
    store = SqlStore(db)
    tenant = store.get_tenant("acme")
    store.create(tenant.id, "User", {"userName": "held@x.com", "active": True})
    store.close()
    p = add(tmp_path, db, definition(), "--required", check=False)
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "1 stored User(s) do not carry" in p.stderr and "without --required" in p.stderr
    assert listed(db) == []
    assert last_line(add(tmp_path, db, definition())) == CUSTOM
    group_urn = "urn:example:params:scim:schemas:extension:acme:2.0:Group"
    assert (
        last_line(add(tmp_path, db, definition(group_urn), "--resource-type", "Group", "--required"))
        == group_urn
    )
