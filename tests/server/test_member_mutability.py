"""PATCH /Groups/{id} cannot change a member in place (members.value, .type and .$ref are immutable;
RFC 7644 section 3.5.2): 400 mutability on default and strict tenants, and the group, its members
and meta.version stay as they were. Adding and removing members keeps working in every form."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.conftest import GROUP, PATCH_OP, LiveServer, assert_scim_error, create_group, create_user


def patch(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(ops)}


@pytest.fixture(params=["default", "strict"])
def tenant_client(request: pytest.FixtureRequest, live: LiveServer) -> Iterator[httpx.Client]:
    _, token = live.new_tenant({"strict": True} if request.param == "strict" else None)
    with live.client(token) as c:
        yield c


def ok(r: httpx.Response) -> None:
    """200 with the group (strict), or 204 (default: group_patch_no_content, entra-behaviour.md 1.6)."""
    assert r.status_code in (200, 204), r.text


def member_ids(group: dict[str, Any]) -> set[str]:
    return {m["value"] for m in group.get("members", [])}


def filled(template: Any, **ids: str) -> Any:
    """``template`` with the ``{a}``, ``{b}`` placeholders of its strings replaced by member ids."""
    if isinstance(template, str):
        return template.format(**ids)
    if isinstance(template, dict):
        return {k: filled(v, **ids) for k, v in template.items()}
    return template


def refused_and_unchanged(c: httpx.Client, gid: str, *ops: dict[str, Any]) -> None:
    before = c.get(f"/Groups/{gid}").json()
    body = assert_scim_error(c.patch(f"/Groups/{gid}", json=patch(*ops)), 400, "mutability")
    assert "immutable" in body["detail"]
    after = c.get(f"/Groups/{gid}").json()
    assert after == before
    assert after["meta"]["version"] == before["meta"]["version"]


EVIL_REF = "http://evil/Users/x"


@pytest.mark.parametrize(
    "op",
    [
        {"op": "replace", "path": 'members[value eq "{a}"].value', "value": "{b}"},
        {"op": "replace", "path": "members.value", "value": "{b}"},
        {"op": "add", "path": 'members[value eq "{a}"].value', "value": "{b}"},
        {"op": "add", "path": 'members[value eq "{a}"]', "value": {"value": "{b}"}},
        {"op": "replace", "path": 'members[value eq "{a}"]', "value": {"value": "{b}"}},
        {"op": "replace", "path": 'members[value eq "{a}"].type', "value": "Group"},
        {"op": "replace", "path": 'members[value eq "{a}"].$ref', "value": EVIL_REF},
        {"op": "add", "path": 'members[value eq "{a}"].type', "value": "Group"},
        {"op": "add", "path": 'members[value eq "{a}"].$ref', "value": EVIL_REF},
        {"op": "remove", "path": 'members[value eq "{a}"].type'},
    ],
    ids=lambda op: f"{op['op']} {op['path']}",
)
def test_changing_a_member_in_place_is_refused(tenant_client: httpx.Client, op: dict[str, Any]) -> None:
    a, b = create_user(tenant_client, "a@x.com")["id"], create_user(tenant_client, "b@x.com")["id"]
    gid = create_group(tenant_client, "G", [a])["id"]
    refused_and_unchanged(tenant_client, gid, filled(op, a=a, b=b))
    assert member_ids(tenant_client.get(f"/Groups/{gid}").json()) == {a}


def test_replacing_a_members_type_with_its_own_is_no_change(tenant_client: httpx.Client) -> None:
    """The same value again modifies nothing (RFC 7644 section 3.5.2): the PATCH succeeds and the
    group, its version and the member's display (still its user's name) stay as they were."""
    a = create_user(tenant_client, "a@x.com")["id"]
    gid = create_group(tenant_client, "G", [a])["id"]
    before = tenant_client.get(f"/Groups/{gid}").json()
    ok(
        tenant_client.patch(
            f"/Groups/{gid}",
            json=patch({"op": "replace", "path": f'members[value eq "{a}"].type', "value": "User"}),
        )
    )
    assert tenant_client.get(f"/Groups/{gid}").json() == before
    renamed = tenant_client.patch(
        f"/Users/{a}", json=patch({"op": "replace", "path": "userName", "value": "renamed@x.com"})
    )
    assert renamed.status_code == 200, renamed.text
    assert tenant_client.get(f"/Groups/{gid}").json()["members"][0]["display"] == "renamed@x.com"


def test_replace_of_members_value_on_an_empty_group_creates_nothing(tenant_client: httpx.Client) -> None:
    b = create_user(tenant_client, "b@x.com")["id"]
    gid = create_group(tenant_client, "Empty")["id"]
    refused_and_unchanged(tenant_client, gid, {"op": "replace", "path": "members.value", "value": b})
    assert member_ids(tenant_client.get(f"/Groups/{gid}").json()) == set()


def test_a_refused_operation_undoes_the_whole_patch(tenant_client: httpx.Client) -> None:
    a, b, c = (create_user(tenant_client, f"{n}@x.com")["id"] for n in "abc")
    gid = create_group(tenant_client, "Atomic", [a])["id"]
    refused_and_unchanged(
        tenant_client,
        gid,
        {"op": "replace", "path": "displayName", "value": "Renamed"},
        {"op": "add", "path": "members", "value": [{"value": c}]},
        {"op": "replace", "path": f'members[value eq "{a}"].value', "value": b},
    )
    group = tenant_client.get(f"/Groups/{gid}").json()
    assert group["displayName"] == "Atomic" and member_ids(group) == {a}


def test_member_display_stays_writable(tenant_client: httpx.Client) -> None:
    a = create_user(tenant_client, "a@x.com")["id"]
    gid = create_group(tenant_client, "Shown", [a])["id"]
    ok(
        tenant_client.patch(
            f"/Groups/{gid}",
            json=patch({"op": "replace", "path": f'members[value eq "{a}"].display', "value": "Alice"}),
        )
    )
    (member,) = tenant_client.get(f"/Groups/{gid}").json()["members"]
    assert member["value"] == a and member["display"] == "Alice" and member["type"] == "User"


def test_adding_and_removing_members_still_works(tenant_client: httpx.Client) -> None:
    a, b, c, d = (create_user(tenant_client, f"{n}@x.com")["id"] for n in "abcd")
    gid = create_group(tenant_client, "Team", [a])["id"]

    def after(*ops: dict[str, Any]) -> set[str]:
        ok(tenant_client.patch(f"/Groups/{gid}", json=patch(*ops)))
        return member_ids(tenant_client.get(f"/Groups/{gid}").json())

    assert after({"op": "add", "path": "members", "value": [{"value": b}]}) == {a, b}
    assert after({"op": "add", "value": {"members": [{"value": c}]}}) == {a, b, c}
    assert after({"op": "remove", "path": f'members[value eq "{b}"]'}) == {a, c}
    assert after({"op": "replace", "path": "members", "value": [{"value": d}, {"value": a}]}) == {a, d}
    assert after({"op": "remove", "path": "members"}) == set()


def test_entra_remove_with_a_value_list_still_works(client: httpx.Client) -> None:
    a, b = create_user(client, "a@x.com")["id"], create_user(client, "b@x.com")["id"]
    gid = create_group(client, "Entra", [a, b])["id"]
    entra = {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": a}]}
    r = client.patch(f"/Groups/{gid}", json=patch(entra))
    assert r.status_code == 204, r.text
    assert member_ids(client.get(f"/Groups/{gid}").json()) == {b}


def test_adding_under_a_filter_that_names_another_member_is_refused(live: LiveServer) -> None:
    """``add members[value eq "A"]`` with the value ``{"value": "B"}``: on a default tenant the
    unmatched filter would make a member (``unmatched_filter_creates``), but the value names
    another one than the filter, so the request is refused (400 invalidValue) and B is not added;
    the same value under a filter naming B adds B."""
    _, token = live.new_tenant(None)
    with live.client(token) as client:
        a, b = create_user(client, "fa@x.com")["id"], create_user(client, "fb@x.com")["id"]
        g = create_group(client, "Filtered", [])
        url = f"/Groups/{g['id']}"
        op = {"op": "add", "path": f'members[value eq "{a}"]', "value": [{"value": b}]}
        assert_scim_error(client.patch(url, json=patch(op)), 400, "invalidValue")
        after = client.get(url).json()
        assert after.get("members", []) == [] and after["meta"]["version"] == g["meta"]["version"]
        op["path"] = f'members[value eq "{b}"]'
        ok(client.patch(url, json=patch(op)))
        assert [m["value"] for m in client.get(url).json()["members"]] == [b]


NULL_MEMBERS = [
    [{"value": None}],
    [{"value": None, "display": "Nobody"}],
    [{"value": None, "$ref": None, "type": "User"}],
    [{"value": "{a}"}, {"value": None}],
]


@pytest.mark.parametrize("members", NULL_MEMBERS, ids=str)
@pytest.mark.parametrize(
    "op",
    [
        {"op": "add", "path": "members"},
        {"op": "replace", "path": "members"},
        {"op": "add"},
    ],
    ids=lambda op: f"{op['op']} {op.get('path', '(no path)')}",
)
def test_a_member_with_a_null_value_is_refused(
    tenant_client: httpx.Client, op: dict[str, Any], members: list[dict[str, Any]]
) -> None:
    """A member is the id of a User or Group (RFC 7643 section 4.2): ``{"value": null}`` names
    none, so the PATCH is refused with 400 invalidValue, not answered 204 doing nothing."""
    a = create_user(tenant_client, f"nullmember-{uuid.uuid4().hex[:8]}@x.com")["id"]
    gid = create_group(tenant_client, f"null-{uuid.uuid4().hex[:8]}")["id"]
    value = [filled(m, a=a) for m in members]
    operation = {**op, "value": value if "path" in op else {"members": value}}
    before = tenant_client.get(f"/Groups/{gid}").json()
    body = assert_scim_error(
        tenant_client.patch(f"/Groups/{gid}", json=patch(operation)), 400, "invalidValue"
    )
    assert "members" in body["detail"] and "value" in body["detail"]
    assert tenant_client.get(f"/Groups/{gid}").json() == before


@pytest.mark.parametrize("members", NULL_MEMBERS, ids=str)
def test_a_group_body_with_a_null_member_value_is_refused(
    tenant_client: httpx.Client, members: list[dict[str, Any]]
) -> None:
    """POST and PUT: the same 400 invalidValue as PATCH, and nothing created or changed."""
    a = create_user(tenant_client, f"nullbody-{uuid.uuid4().hex[:8]}@x.com")["id"]
    name = f"nullbody-{uuid.uuid4().hex[:8]}"
    body = {"schemas": [GROUP], "displayName": name, "members": [filled(m, a=a) for m in members]}
    assert_scim_error(tenant_client.post("/Groups", json=body), 400, "invalidValue")
    found = tenant_client.get("/Groups", params={"filter": f'displayName eq "{name}"'}).json()
    assert found["totalResults"] == 0
    gid = create_group(tenant_client, name, [a])["id"]
    before = tenant_client.get(f"/Groups/{gid}").json()
    assert_scim_error(tenant_client.put(f"/Groups/{gid}", json=body), 400, "invalidValue")
    assert tenant_client.get(f"/Groups/{gid}").json() == before


VALUELESS_MEMBERS = [
    [{}],
    [{"$ref": None}],
    [{"display": "Nobody", "type": "User"}],
    [{"value": "{a}"}, {}],
]


@pytest.mark.parametrize("members", VALUELESS_MEMBERS, ids=str)
@pytest.mark.parametrize(
    "op",
    [
        {"op": "add", "path": "members"},
        {"op": "replace", "path": "members"},
        {"op": "replace"},
        {"op": "remove", "path": "members"},
    ],
    ids=lambda op: f"{op['op']} {op.get('path', '(no path)')}",
)
def test_a_member_without_a_value_is_refused(
    live: LiveServer, op: dict[str, Any], members: list[dict[str, Any]]
) -> None:
    """A member object with no ``value`` at all (``{}``, Entra's ``{"$ref": null}`` alone) names no
    User or Group: 400 invalidValue naming ``members[i].value``, and the group keeps its members.
    Before, ``{}`` was left out in silence: ``replace`` emptied the group with a 204. A ``remove``
    with such a value (Q3, the default tenant's reading) is refused the same way, not read as
    "remove nothing" or "remove all"."""
    _, token = live.new_tenant(None)
    with live.client(token) as c:
        a = create_user(c, f"novalue-{uuid.uuid4().hex[:8]}@x.com")["id"]
        gid = create_group(c, f"novalue-{uuid.uuid4().hex[:8]}", [a])["id"]
        value = [filled(m, a=a) for m in members]
        operation = {**op, "value": value if "path" in op else {"members": value}}
        before = c.get(f"/Groups/{gid}").json()
        body = assert_scim_error(c.patch(f"/Groups/{gid}", json=patch(operation)), 400, "invalidValue")
        assert "members[" in body["detail"] and ".value is required" in body["detail"]
        assert c.get(f"/Groups/{gid}").json() == before


@pytest.mark.parametrize("members", VALUELESS_MEMBERS, ids=str)
def test_a_group_body_with_a_member_without_a_value_is_refused(
    tenant_client: httpx.Client, members: list[dict[str, Any]]
) -> None:
    """POST and PUT, default and strict tenants: 400 invalidValue, nothing created, and a PUT
    with ``members: [{}]`` no longer empties the group."""
    a = create_user(tenant_client, f"novalue-{uuid.uuid4().hex[:8]}@x.com")["id"]
    name = f"novalue-{uuid.uuid4().hex[:8]}"
    body = {"schemas": [GROUP], "displayName": name, "members": [filled(m, a=a) for m in members]}
    detail = assert_scim_error(tenant_client.post("/Groups", json=body), 400, "invalidValue")["detail"]
    assert "members[" in detail and ".value is required" in detail
    found = tenant_client.get("/Groups", params={"filter": f'displayName eq "{name}"'}).json()
    assert found["totalResults"] == 0
    gid = create_group(tenant_client, name, [a])["id"]
    before = tenant_client.get(f"/Groups/{gid}").json()
    assert_scim_error(tenant_client.put(f"/Groups/{gid}", json=body), 400, "invalidValue")
    assert tenant_client.get(f"/Groups/{gid}").json() == before


def test_a_member_removed_and_added_back_in_one_patch_is_the_member_added(
    tenant_client: httpx.Client,
) -> None:
    """The operations apply in order (RFC 7644 section 3.5.2): a member removed and then added
    back with a display shows that display, and one added back without a display shows its own
    name again (found by tests/server/test_stateful_model.py: both kept the membership as it was)."""
    c = tenant_client
    a = create_user(c, f"a-{uuid.uuid4().hex[:6]}@x.com")
    b = create_user(c, f"b-{uuid.uuid4().hex[:6]}@x.com")
    members = [{"value": a["id"]}, {"value": b["id"], "display": "B"}]
    gid = c.post("/Groups", json={"schemas": [GROUP], "displayName": f"G {uuid.uuid4()}", "members": members})
    gid = gid.json()["id"]
    ok(
        c.patch(
            f"/Groups/{gid}",
            json=patch(
                {"op": "remove", "path": f'members[value eq "{a["id"]}"]'},
                {"op": "remove", "path": f'members[value eq "{b["id"]}"]'},
                {
                    "op": "add",
                    "path": "members",
                    "value": [{"value": a["id"], "display": "A"}, {"value": b["id"]}],
                },
            ),
        )
    )
    got = c.get(f"/Groups/{gid}").json()
    assert [(m["value"], m["display"]) for m in got["members"]] == [(a["id"], "A"), (b["id"], b["userName"])]


def test_a_member_added_back_with_the_name_shown_keeps_it_as_sent(tenant_client: httpx.Client) -> None:
    """A display sent is stored as sent even when it is the name the group showed: after the
    member's rename the group still shows it, as it would after a PUT sending it."""
    c = tenant_client
    a = create_user(c, f"a-{uuid.uuid4().hex[:6]}@x.com")
    b = create_user(c, f"b-{uuid.uuid4().hex[:6]}@x.com")
    gid = create_group(c, f"G {uuid.uuid4()}", [a["id"], b["id"]])["id"]
    readd = {"op": "add", "path": "members", "value": [{"value": a["id"], "display": a["userName"]}]}
    ok(
        c.patch(
            f"/Groups/{gid}", json=patch({"op": "remove", "path": f'members[value eq "{a["id"]}"]'}, readd)
        )
    )
    for u in (a, b):
        rename = {"op": "replace", "path": "displayName", "value": "Renamed"}
        assert c.patch(f"/Users/{u['id']}", json=patch(rename)).status_code == 200
    got = c.get(f"/Groups/{gid}").json()
    assert [m["display"] for m in got["members"]] == [a["userName"], "Renamed"]
