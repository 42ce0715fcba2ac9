"""Declared extension schemas over HTTP: Entra's custom attributes stored, returned, patched,
filtered, sorted and advertised, on a real server on loopback (entra-behaviour.md 1.3, Q7)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import GROUP, PATCH_OP, LiveServer, assert_scim_error, serving

from provisor.scim.schema import USER, default_registry
from provisor.scim.schema.extensions import parse_extension

URN = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"
TEAM = "urn:example:scim:Team:2.0:Group"
CUSTOM = {
    "id": URN,
    "name": "CustomExtension",
    "description": "Clarizen-style custom attributes",
    "attributes": [
        {"name": "costCode", "type": "string"},
        {"name": "badgeNumber", "type": "integer"},
        {"name": "skills", "type": "string", "multiValued": True},
        {
            "name": "badge",
            "type": "complex",
            "subAttributes": [
                {"name": "number", "type": "string", "required": True},
                {"name": "issued", "type": "dateTime"},
            ],
        },
        {"name": "secretCode", "type": "string", "caseExact": True},
        {"name": "ratio", "type": "decimal"},
        {"name": "nums", "type": "integer", "multiValued": True},
        {
            "name": "certs",
            "type": "complex",
            "multiValued": True,
            "subAttributes": [
                {"name": "value", "type": "string", "required": True},
                {"name": "type", "type": "string"},
            ],
        },
    ],
}
TEAM_EXT = {"id": TEAM, "attributes": [{"name": "costCenter", "type": "string", "required": True}]}


@pytest.fixture(scope="module")
def live_ext(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server over a store whose database declares a User extension and a required Group one."""
    from provisor.store.sql import SqlStore

    url = f"sqlite:///{tmp_path_factory.mktemp('extensions') / 'provisor.db'}"
    setup = SqlStore(url)
    setup.add_schema_extension(parse_extension(CUSTOM, default_registry(), "User"))
    setup.add_schema_extension(parse_extension(TEAM_EXT, default_registry(), "Group", required=True))
    setup.close()
    with serving(url) as live:  # as `provisor serve` does, the store reads them when it opens
        yield live


@pytest.fixture
def c(live_ext: LiveServer) -> Iterator[httpx.Client]:
    _, token = live_ext.new_tenant()
    with live_ext.client(token) as client:
        yield client


def entra_user(user_name: str, **custom: Any) -> dict[str, Any]:
    """As Entra sends it: the custom URN's attributes present, the URN missing from ``schemas``."""
    return {"schemas": [USER], "userName": user_name, "active": True, URN: custom}


def patch(c: httpx.Client, uid: str, *ops: dict[str, Any]) -> httpx.Response:
    return c.patch(f"/Users/{uid}", json={"schemas": [PATCH_OP], "Operations": list(ops)})


def test_discovery_advertises_the_declared_extensions(c: httpx.Client) -> None:
    ids = [s["id"] for s in c.get("/Schemas").json()["Resources"]]
    assert URN in ids and TEAM in ids
    schema = c.get(f"/Schemas/{URN}").json()
    assert [a["name"] for a in schema["attributes"]] == [
        "costCode",
        "badgeNumber",
        "skills",
        "badge",
        "secretCode",
        "ratio",
        "nums",
        "certs",
    ]
    assert schema["attributes"][3]["subAttributes"][0] == {
        "name": "number",
        "type": "string",
        "multiValued": False,
        "description": "",
        "required": True,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
    }
    users = c.get("/ResourceTypes/User").json()["schemaExtensions"]
    assert users[-1] == {"schema": URN, "required": False}
    assert c.get("/ResourceTypes/Group").json()["schemaExtensions"] == [{"schema": TEAM, "required": True}]


def test_entra_create_without_the_urn_in_schemas_keeps_and_returns_the_values(c: httpx.Client) -> None:
    r = c.post("/Users", json=entra_user("alice@contoso.com", costCode="CC-1", badgeNumber=7, skills=["go"]))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["schemas"] == [USER, URN]
    assert body[URN] == {"costCode": "CC-1", "badgeNumber": 7, "skills": ["go"]}
    assert c.get(f"/Users/{body['id']}").json()[URN] == body[URN]


def test_entra_patch_shapes_on_custom_attributes(c: httpx.Client) -> None:
    uid = c.post("/Users", json=entra_user("bob@contoso.com", costCode="CC-1")).json()["id"]
    r = patch(c, uid, {"op": "Replace", "path": f"{URN}:costCode", "value": "CC-2"})
    assert r.status_code == 200, r.text
    assert r.json()[URN] == {"costCode": "CC-2"}
    as_text = {"op": "Add", "value": {f"{URN}:badgeNumber": "42", f"{URN}:badge.number": "B7"}}
    assert_scim_error(patch(c, uid, as_text), 400, "invalidValue")  # an integer is a JSON number
    r = patch(c, uid, {"op": "Add", "value": {f"{URN}:badgeNumber": 42, f"{URN}:badge.number": "B7"}})
    assert r.status_code == 200, r.text
    assert r.json()[URN] == {"costCode": "CC-2", "badgeNumber": 42, "badge": {"number": "B7"}}
    r = patch(c, uid, {"op": "Remove", "path": f"{URN}:costCode"})
    assert r.status_code == 200, r.text
    assert r.json()[URN] == {"badgeNumber": 42, "badge": {"number": "B7"}}


def test_path_less_add_and_remove_of_custom_attributes(c: httpx.Client) -> None:
    uid = c.post("/Users", json=entra_user("carol@contoso.com", costCode="CC-1")).json()["id"]
    r = patch(c, uid, {"op": "add", "value": {f"{URN}:badge.number": "B7", f"{URN}:skills": ["sql"]}})
    assert r.status_code == 200, r.text
    assert r.json()[URN] == {"costCode": "CC-1", "skills": ["sql"], "badge": {"number": "B7"}}
    r = patch(c, uid, {"op": "add", "path": f"{URN}:skills", "value": ["rust"]})
    assert r.json()[URN]["skills"] == ["sql", "rust"]
    r = patch(c, uid, {"op": "remove", "path": URN})
    assert r.status_code == 200, r.text
    assert URN not in r.json() and r.json()["schemas"] == [USER]


def test_wrong_values_are_refused_and_nothing_is_stored(c: httpx.Client, live_ext: LiveServer) -> None:
    for wrong in ({"badgeNumber": "seven"}, {"badge": {"issued": "2024-01-02T00:00:00Z"}}, {"skills": [1]}):
        body = entra_user("dave@contoso.com", **wrong)
        assert_scim_error(c.post("/Users", json=body), 400, "invalidValue")
    assert c.get("/Users", params={"filter": 'userName eq "dave@contoso.com"'}).json()["totalResults"] == 0
    uid = c.post("/Users", json=entra_user("dave@contoso.com", badgeNumber=1)).json()["id"]
    before = c.get(f"/Users/{uid}").json()
    wrong_type = {"op": "replace", "path": f"{URN}:badgeNumber", "value": 1.5}
    assert_scim_error(patch(c, uid, wrong_type), 400, "invalidValue")
    assert c.get(f"/Users/{uid}").json() == before
    # an attribute the extension does not declare: ignored by default, as Entra needs (1.3) ...
    unknown = {"op": "replace", "path": f"{URN}:nope", "value": 1}
    assert patch(c, uid, unknown).json()[URN] == {"badgeNumber": 1}
    # ... and refused on a strict tenant
    _, token = live_ext.new_tenant({"strict": True})
    with live_ext.client(token) as strict:
        body = entra_user("erin@contoso.com", badgeNumber=1)
        assert_scim_error(strict.post("/Users", json=body), 400, "invalidValue")  # URN not in schemas
        body["schemas"].append(URN)
        sid = strict.post("/Users", json=body).json()["id"]
        assert_scim_error(patch(strict, sid, unknown), 400, "invalidPath")


@pytest.mark.parametrize(
    "certs", [[{}], [{"type": "iso"}], [{"value": None}], [{"value": "c1"}, {}]], ids=str
)
def test_an_element_without_a_required_sub_attribute_is_refused(c: httpx.Client, certs: list[Any]) -> None:
    """``certs.value`` is required (RFC 7643 section 7): an element without it, even an empty
    ``{}`` or one whose value is null (Q12 makes the null unassigned), is 400 invalidValue on POST,
    PUT and PATCH, and nothing stored changes; before, ``{}`` was left out and a PUT emptied
    ``certs`` with a 200."""
    assert_scim_error(
        c.post("/Users", json=entra_user("certs@contoso.com", certs=certs)), 400, "invalidValue"
    )
    assert c.get("/Users", params={"filter": 'userName eq "certs@contoso.com"'}).json()["totalResults"] == 0
    created = c.post("/Users", json=entra_user("certs@contoso.com", certs=[{"value": "c0"}]))
    assert created.status_code == 201, created.text
    uid = created.json()["id"]
    before = c.get(f"/Users/{uid}").json()
    body = assert_scim_error(
        c.put(f"/Users/{uid}", json=entra_user("certs@contoso.com", certs=certs)), 400, "invalidValue"
    )
    assert "certs[" in body["detail"] and "value is required" in body["detail"]
    for op in (
        {"op": "add", "path": f"{URN}:certs", "value": certs},
        {"op": "replace", "path": f"{URN}:certs", "value": certs},
        {"op": "replace", "value": {f"{URN}:certs": certs}},
    ):
        assert_scim_error(patch(c, uid, op), 400, "invalidValue")
    assert c.get(f"/Users/{uid}").json() == before


def test_filters_sorting_and_projection_on_custom_attributes(c: httpx.Client) -> None:
    made = {}
    for n, (code, badge, skills, secret) in enumerate(
        [("CC-10", 3, ["go", "sql"], "Abc"), ("cc-20", 1, ["rust"], "abc"), ("CC-30", 2, [], "ABC")]
    ):
        body = entra_user(f"u{n}@contoso.com", costCode=code, badgeNumber=badge, secretCode=secret)
        if skills:
            body[URN]["skills"] = skills
        made[code] = c.post("/Users", json=body).json()["id"]

    def found(filter_: str, **params: str) -> list[str]:
        r = c.get("/Users", params={"filter": filter_, **params})
        assert r.status_code == 200, r.text
        return [u["id"] for u in r.json()["Resources"]]

    assert found(f'{URN}:costCode eq "CC-20"') == [made["cc-20"]]  # caseExact false: any case
    assert found(f'{URN}:secretCode eq "abc"') == [made["cc-20"]]  # caseExact true
    assert set(found(f"{URN}:badgeNumber gt 1")) == {made["CC-10"], made["CC-30"]}
    assert found(f'{URN}:skills co "us"') == [made["cc-20"]]
    assert set(found(f"{URN}:skills pr")) == {made["CC-10"], made["cc-20"]}
    assert found(f'not ({URN}:costCode sw "CC-") and {URN}:badgeNumber le 1') == []
    assert found(f"{URN}:badgeNumber pr", sortBy=f"{URN}:badgeNumber") == [
        made["cc-20"],
        made["CC-30"],
        made["CC-10"],
    ]
    assert_scim_error(c.get("/Users", params={"filter": f'{URN}:unknown eq "x"'}), 400, "invalidFilter")
    assert_scim_error(
        c.get("/Users", params={"filter": f'{URN}:badgeNumber eq "three"'}), 400, "invalidFilter"
    )
    one = c.get(f"/Users/{made['CC-10']}", params={"attributes": f"{URN}:costCode"}).json()
    assert one[URN] == {"costCode": "CC-10"} and "userName" not in one
    assert URN not in c.get(f"/Users/{made['CC-10']}", params={"excludedAttributes": URN}).json()


INT64 = "-9223372036854775808 to 9223372036854775807"


@pytest.mark.parametrize(
    "text",
    [
        f"{URN}:badgeNumber gt 9223372036854775808",
        f"{URN}:badgeNumber eq -9223372036854775809",
        f"{URN}:ratio gt 99999999999999999999999",
        f"{URN}:nums eq 9223372036854775808",
        f"{URN}:costCode pr and not ({URN}:badgeNumber lt 18446744073709551615)",
    ],
)
def test_integers_outside_signed_64_bits_in_a_filter_are_a_400_not_a_500(c: httpx.Client, text: str) -> None:
    """Audit finding: these were answered 500 (OverflowError binding the value for SQLite)."""
    c.post("/Users", json=entra_user("big@contoso.com", costCode="C", badgeNumber=5, ratio=0.5, nums=[1, 2]))
    value = text.rstrip(")").split()[-1]
    for params in ({"filter": text}, {"filter": text, "cursor": ""}, {"filter": text, "count": "1"}):
        body = assert_scim_error(c.get("/Users", params=params), 400, "invalidFilter")
        assert value in body["detail"] and INT64 in body["detail"], body
    search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": text}
    assert_scim_error(c.post("/Users/.search", json=search), 400, "invalidFilter")
    assert_scim_error(c.post("/.search", json=search), 400, "invalidFilter")


@pytest.mark.parametrize("word", ["1e999", "9" * 5000])
@pytest.mark.parametrize("name", ["ratio", "badgeNumber"])
def test_numbers_too_large_for_any_attribute_are_a_400_not_a_500(
    c: httpx.Client, word: str, name: str
) -> None:
    r = c.get("/Users", params={"filter": f"{URN}:{name} gt {word}", "cursor": ""})
    body = assert_scim_error(r, 400, "invalidFilter")
    assert "too large" in body["detail"] and len(body["detail"]) < 300, body
    found = c.get("/Users", params={"filter": f"{URN}:ratio lt 1e308", "cursor": ""})
    assert found.status_code == 200, found.text


@pytest.mark.parametrize("value", [2**63, 2**64 - 1, -(2**63) - 1])
def test_integers_outside_signed_64_bits_are_refused_on_every_write(c: httpx.Client, value: int) -> None:
    """Audit finding: 2**63 .. 2**64-1 were stored (201) and then no filter could name them; now
    every write refuses what a filter refuses, naming the attribute and the range."""
    body = entra_user("range@contoso.com", badgeNumber=value)
    detail = assert_scim_error(c.post("/Users", json=body), 400, "invalidValue")["detail"]
    assert "badgeNumber" in detail and INT64 in detail
    assert_scim_error(
        c.post("/Users", json=entra_user("range@contoso.com", nums=[1, value])), 400, "invalidValue"
    )
    if value > 0:  # below -2**63 the JSON reader gives a float: a decimal as good as any
        ratio = entra_user("range@contoso.com", ratio=value)
        assert_scim_error(c.post("/Users", json=ratio), 400, "invalidValue")
    made = c.post("/Users", json=entra_user("range@contoso.com", badgeNumber=2**63 - 1, ratio=-(2**63)))
    assert made.status_code == 201, made.text
    uid = made.json()["id"]
    assert_scim_error(c.put(f"/Users/{uid}", json=body), 400, "invalidValue")
    op = {"op": "replace", "path": f"{URN}:badgeNumber", "value": value}
    assert_scim_error(patch(c, uid, op), 400, "invalidValue")
    bulk = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "PATCH", "path": f"/Users/{uid}", "data": {"schemas": [PATCH_OP], "Operations": [op]}}
        ],
    }
    r = c.post("/Bulk", json=bulk)
    assert r.status_code == 200, r.text
    assert r.json()["Operations"][0]["status"] == "400", r.text
    # the largest integer is stored as sent and found by a filter naming it
    for text in (f"{URN}:badgeNumber eq 9223372036854775807", f"{URN}:ratio le -9223372036854775808"):
        assert [u["id"] for u in c.get("/Users", params={"filter": text}).json()["Resources"]] == [uid]


def test_a_required_group_extension_is_required(c: httpx.Client) -> None:
    body: dict[str, Any] = {"schemas": [GROUP], "displayName": "Sales"}
    assert_scim_error(c.post("/Groups", json=body), 400, "invalidValue")
    body[TEAM] = {"costCenter": "4130"}
    r = c.post("/Groups", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["schemas"] == [GROUP, TEAM] and r.json()[TEAM] == {"costCenter": "4130"}
    gid = r.json()["id"]
    gone = c.patch(
        f"/Groups/{gid}", json={"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": TEAM}]}
    )
    assert_scim_error(gone, 400, "mutability")  # RFC 7644 section 3.5.2.2: a required one removed
    assert c.get(f"/Groups/{gid}").json()[TEAM] == {"costCenter": "4130"}


@pytest.fixture
def following(tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    """A server on a fresh database with no extension yet, looking for declarations every 0.1 s."""
    from provisor.server import ServerConfig

    url = f"sqlite:///{tmp_path / 'provisor.db'}"
    with serving(url, ServerConfig(access_log=False, schema_check_seconds=0.1)) as live:
        yield live, url


def _eventually(check: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the server did not follow the declaration"
        time.sleep(0.05)


def test_a_running_server_follows_declarations_and_removals(following: tuple[LiveServer, str]) -> None:
    from provisor.store.sql import SqlStore

    live, url = following
    _, token = live.new_tenant()
    cli = SqlStore(url)  # another process's store, as `provisor schema add` opens
    try:
        with live.client(token) as c:
            assert c.get(f"/Schemas/{URN}").status_code == 404
            cli.add_schema_extension(parse_extension(CUSTOM, default_registry(), "User"))
            _eventually(lambda: c.get(f"/Schemas/{URN}").status_code == 200)
            made = c.post("/Users", json=entra_user("frank@contoso.com", costCode="CC-7"))
            assert made.status_code == 201 and made.json()[URN] == {"costCode": "CC-7"}
            found = c.get("/Users", params={"filter": f'{URN}:costCode eq "cc-7"'}).json()
            assert found["totalResults"] == 1
            assert cli.remove_schema_extension(URN, purge=True) == 1
            _eventually(lambda: c.get(f"/Schemas/{URN}").status_code == 404)
            user = c.get(f"/Users/{made.json()['id']}").json()
            assert URN not in user and user["schemas"] == [USER]
            gone = c.get("/Users", params={"filter": f'{URN}:costCode eq "cc-7"'})
            assert_scim_error(gone, 400, "invalidFilter")
    finally:
        cli.close()


NEVER = "urn:example:scim:Never:2.0:User"  # an extension no one declared


def test_once_a_removal_begins_the_server_speaks_as_if_the_extension_were_gone(
    following: tuple[LiveServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A purge stopped after its first step: the declaration is marked and most documents still
    hold values. Once the server has looked, discovery leaves the extension out, no read shows its
    values, and a write naming it is answered as one naming an extension never declared: refused
    on a strict tenant, its values dropped by default (``unknown_attributes_ignored``, 1.3)."""
    from provisor.store.sql import SqlStore, extension_purge, steps
    from provisor.store.sql.tables import resources

    monkeypatch.setattr(extension_purge, "SETTLE_SECONDS", 0.0)
    monkeypatch.setattr(extension_purge, "KEYS", 1)  # a key a step
    monkeypatch.setattr(steps, "STEP_SECONDS", 0.0)
    monkeypatch.setattr(steps, "PAUSE_SECONDS", 0.0)
    live, url = following
    _, token = live.new_tenant()
    _, strict_token = live.new_tenant({"strict": True})
    cli = SqlStore(url)

    def stored_holders() -> int:
        with cli.engine.connect() as conn:
            rows = conn.execute(resources.select().where(resources.c.data.like(f'%"{URN}":%'))).all()
        return len(rows)

    def stop(step: object) -> None:
        raise KeyboardInterrupt

    try:
        cli.add_schema_extension(parse_extension(CUSTOM, default_registry(), "User"))
        with live.client(token) as c, live.client(strict_token) as strict:
            _eventually(lambda: c.get(f"/Schemas/{URN}").status_code == 200)
            ids = [
                c.post("/Users", json=entra_user(f"u{i}@contoso.com", costCode=f"CC-{i}")).json()["id"]
                for i in range(3)
            ]
            strict_body = {"schemas": [USER, URN], "userName": "s@contoso.com", URN: {"costCode": "S"}}
            made = strict.post("/Users", json=strict_body)
            assert made.status_code == 201 and made.json()[URN] == {"costCode": "S"}
            sid = made.json()["id"]

            with pytest.raises(KeyboardInterrupt):
                cli.remove_schema_extension(URN, purge=True, progress=stop)
            assert stored_holders() == 3  # the first User's went in the first step
            _eventually(lambda: c.get(f"/Schemas/{URN}").status_code == 404)

            # discovery
            assert URN not in [x["id"] for x in c.get("/Schemas").json()["Resources"]]
            extensions = c.get("/ResourceTypes/User").json()["schemaExtensions"]
            assert URN not in [x["schema"] for x in extensions]
            # reads: by id, in a list, projected, and a filter naming it
            for uid in ids:
                user = c.get(f"/Users/{uid}").json()
                assert URN not in user and user["schemas"] == [USER]
            assert URN not in json.dumps(c.get("/Users").json())
            assert URN not in json.dumps(c.get("/Users", params={"excludedAttributes": "emails"}).json())
            user = strict.get(f"/Users/{sid}").json()
            assert URN not in user and user["schemas"] == [USER]
            gone = c.get("/Users", params={"filter": f'{URN}:costCode eq "CC-1"'})
            never = c.get("/Users", params={"filter": f'{NEVER}:costCode eq "CC-1"'})
            assert_scim_error(gone, 400, "invalidFilter")
            assert_scim_error(never, 400, "invalidFilter")

            # writes on a strict tenant: refused as for an extension never declared
            def as_never(method: str, path: str, body: dict[str, Any]) -> None:
                text = json.dumps(body)
                answer = strict.request(method, path, json=json.loads(text))
                expected = strict.request(method, path, json=json.loads(text.replace(URN, NEVER)))
                assert answer.status_code == expected.status_code == 400, answer.text
                assert answer.json()["scimType"] == expected.json()["scimType"]

            as_never("POST", "/Users", {**strict_body, "userName": "s2@contoso.com"})
            as_never("PUT", f"/Users/{sid}", strict_body)
            replace = {"op": "replace", "path": f"{URN}:costCode", "value": "T"}
            as_never("PATCH", f"/Users/{sid}", {"schemas": [PATCH_OP], "Operations": [replace]})
            # writes on a default tenant: its values dropped, as Entra's unknown attributes are
            late = c.post("/Users", json=entra_user("late@contoso.com", costCode="L"))
            assert late.status_code == 201 and URN not in late.json()
            shown = c.get(f"/Users/{ids[2]}").json()["meta"]
            unchanged = patch(c, ids[2], replace)  # drops the value: nothing shown changes
            assert unchanged.status_code == 200 and unchanged.json()["meta"] == shown
            renamed = patch(c, ids[1], {"op": "replace", "path": "displayName", "value": "One"})
            assert renamed.status_code == 200 and URN not in renamed.json()
            # a User written loses its stored values with the write; one that a write left as it
            # was shown keeps them until the purge reaches it, as the strict tenant's User does
            assert stored_holders() == 2

            # the first read without the values showed the next version, last modified when the
            # removal began: the purge gives the document that version and date, so the rewrite
            # changes nothing a client sees
            strict_shown = strict.get(f"/Users/{sid}").json()["meta"]
            assert strict_shown["version"] != made.json()["meta"]["version"]
            assert strict_shown["lastModified"] > made.json()["meta"]["lastModified"]
            old_tag, new_tag = made.json()["meta"]["version"], strict_shown["version"]
            assert strict.get(f"/Users/{sid}", headers={"If-None-Match": old_tag}).status_code == 200
            assert strict.get(f"/Users/{sid}", headers={"If-None-Match": new_tag}).status_code == 304
            rename = {"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "nickName", "value": "S"}]}
            stale = strict.patch(f"/Users/{sid}", json=rename, headers={"If-Match": old_tag})
            assert_scim_error(stale, 412)
            assert cli.remove_schema_extension(URN, purge=True) == 2  # finished
            assert stored_holders() == 0
            assert strict.get(f"/Users/{sid}").json()["meta"] == strict_shown
            assert c.get(f"/Users/{ids[2]}").json()["meta"] == shown
    finally:
        cli.close()


def test_a_failed_look_at_the_declarations_keeps_the_schemas_in_use(
    following: tuple[LiveServer, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    live, _ = following
    _, token = live.new_tenant()
    calls = []

    def broken() -> None:
        calls.append(1)
        raise OSError("disk I/O error")

    monkeypatch.setattr(live.store, "reload_schemas", broken)
    with live.client(token) as c:
        for _ in range(5):
            assert c.get("/Users", params={"count": "0"}).status_code == 200
            time.sleep(0.12)
    assert calls, "the server never looked"
    assert "could not read the declared extension schemas" in caplog.text


def test_put_replaces_custom_values_and_bulk_carries_them(c: httpx.Client) -> None:
    made = c.post("/Users", json=entra_user("gina@contoso.com", costCode="CC-1", badgeNumber=3)).json()
    # PUT replaces the whole resource: what it leaves out of the extension is gone (RFC 7644 3.5.1)
    replaced = c.put(f"/Users/{made['id']}", json=entra_user("gina@contoso.com", costCode="CC-2"))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()[URN] == {"costCode": "CC-2"}
    bare = c.put(f"/Users/{made['id']}", json={"schemas": [USER], "userName": "gina@contoso.com"})
    assert URN not in bare.json() and bare.json()["schemas"] == [USER]
    bulk = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "h",
                "data": entra_user("hal@contoso.com", costCode="CC-9"),
            },
            {
                "method": "PATCH",
                "path": "/Users/bulkId:h",
                "data": {
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "add", "path": f"{URN}:skills", "value": ["go"]}],
                },
            },
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "i",
                "data": entra_user("ida@contoso.com", badgeNumber="x"),
            },
        ],
    }
    r = c.post("/Bulk", json=bulk)
    assert r.status_code == 200, r.text
    assert [op["status"] for op in r.json()["Operations"]] == ["201", "200", "400"]
    hal = c.get("/Users", params={"filter": f'{URN}:skills eq "go"'}).json()["Resources"]
    assert [u["userName"] for u in hal] == ["hal@contoso.com"] and hal[0][URN] == {
        "costCode": "CC-9",
        "skills": ["go"],
    }


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_a_value_filter_selects_values_of_a_simple_multi_valued_attribute(
    live_ext: LiveServer, strict: bool
) -> None:
    """RFC 7644 section 3.5.2.2: "If the target location is a multi-valued attribute and a
    complex filter is specified comparing a 'value', the values matched by the filter are
    removed"; the same filter selects in a replace and in a search."""
    _, token = live_ext.new_tenant({"strict": True} if strict else {})
    skills = f"{URN}:skills"
    with live_ext.client(token) as c:

        def create(user_name: str, values: list[str]) -> str:
            body = {**entra_user(user_name, skills=values), "schemas": [USER, URN]}
            r = c.post("/Users", json=body)
            assert r.status_code == 201, r.text
            return str(r.json()["id"])

        uid, other = create("skilled@x.com", ["go", "Py", "rust"]), create("other@x.com", ["python"])

        def search(text: str) -> set[str]:
            r = c.get("/Users", params={"filter": text})
            assert r.status_code == 200, r.text
            return {u["id"] for u in r.json()["Resources"]}

        assert search(f'{skills}[value eq "py"]') == {uid}  # caseExact false, as the attribute
        assert search(f'{skills}[value sw "py" and not (value eq "py")]') == {other}
        assert search(f"{skills}[value pr]") == {uid, other}
        assert search(f'{skills}[value eq "go" and value eq "rust"]') == set()  # one value both

        r = patch(c, uid, {"op": "remove", "path": f'{skills}[value eq "go"]'})
        assert r.status_code == 200, r.text
        assert r.json()[URN]["skills"] == ["Py", "rust"]
        r = patch(c, uid, {"op": "replace", "path": f'{skills}[value ew "ust"]', "value": "Rust 2024"})
        assert r.status_code == 200, r.text
        assert c.get(f"/Users/{uid}").json()[URN]["skills"] == ["Py", "Rust 2024"]
        assert c.get(f"/Users/{other}").json()[URN]["skills"] == ["python"]
        # a value put in place of another that the attribute already holds in another case is
        # listed once, as an add of it would be (skills are not caseExact)
        dup = create("dup@x.com", ["Go", "python", "rust"])
        r = patch(c, dup, {"op": "replace", "path": f'{skills}[value eq "python"]', "value": "go"})
        assert r.status_code == 200, r.text
        assert c.get(f"/Users/{dup}").json()[URN]["skills"] == ["Go", "rust"]

        before = c.get(f"/Users/{uid}").json()
        refused = [
            ({"op": "replace", "path": f'{skills}[value eq "cobol"]', "value": "x"}, "noTarget"),
            ({"op": "replace", "path": f'{skills}[type eq "x"]', "value": "x"}, "invalidPath"),
            ({"op": "replace", "path": f'{skills}[value eq "Py"].value', "value": "x"}, "invalidPath"),
            ({"op": "replace", "path": f'{skills}[value eq "Py"]', "value": {"value": "x"}}, "invalidValue"),
            ({"op": "replace", "path": f'{skills}[value eq "Py"]', "value": 5}, "invalidValue"),
        ]
        if strict:  # a default tenant ignores a path it does not know (unknown_attributes_ignored)
            refused.append(({"op": "remove", "path": 'schemas[value eq "x"]'}, "invalidPath"))
        for op, scim_type in refused:
            assert_scim_error(patch(c, uid, op), 400, scim_type)
        assert c.get(f"/Users/{uid}").json() == before
        assert_scim_error(c.get("/Users", params={"filter": f'{skills}[type eq "x"]'}), 400, "invalidFilter")
