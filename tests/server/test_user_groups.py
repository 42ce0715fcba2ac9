"""A User's ``groups`` (RFC 7643 section 4.1.2) over HTTP: derived from group membership, direct
and through nested groups, read-only, projected, filterable, current after every membership
change, and so is the User's ETag."""

from __future__ import annotations

from typing import Any

import httpx
from tests.conftest import GROUP, PATCH_OP, USER, assert_scim_error, create_group, create_user, make_user


def patch(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(ops)}


def groups_of(client: httpx.Client, user_id: str, **params: str) -> list[dict[str, Any]] | None:
    r = client.get(f"/Users/{user_id}", params=params)
    assert r.status_code == 200, r.text
    return r.json().get("groups")  # type: ignore[no-any-return]


def ref(client: httpx.Client, group_id: str) -> str:
    return f"{str(client.base_url).rstrip('/')}/Groups/{group_id}"


def test_groups_are_rendered_from_direct_memberships(client: httpx.Client) -> None:
    u = create_user(client, "alice@contoso.com")
    loner = create_user(client, "bob@contoso.com")
    assert "groups" not in u  # a new User is in no group
    sales = create_group(client, "Sales", [u["id"]])
    eng = create_group(client, "Eng", [u["id"]])
    assert groups_of(client, u["id"]) == [
        {"value": sales["id"], "$ref": ref(client, sales["id"]), "display": "Sales", "type": "direct"},
        {"value": eng["id"], "$ref": ref(client, eng["id"]), "display": "Eng", "type": "direct"},
    ]
    assert groups_of(client, loner["id"]) is None  # omitted, not []
    listed = client.get("/Users", params={"filter": 'userName eq "alice@contoso.com"'}).json()
    assert [g["value"] for g in listed["Resources"][0]["groups"]] == [sales["id"], eng["id"]]
    everyone = client.get("/Users").json()["Resources"]
    assert {r["id"]: len(r.get("groups", [])) for r in everyone} == {u["id"]: 2, loner["id"]: 0}


def test_groups_reached_through_nested_groups_are_indirect(client: httpx.Client) -> None:
    """RFC 7643 section 4.1.2: groups "either through direct group membership, through nested
    groups"; ``type`` "direct" or "indirect". Each group once, direct when it is both."""
    u = create_user(client, "erin@contoso.com")
    other = create_user(client, "frank@contoso.com")
    eng = create_group(client, "Eng", [u["id"]])
    outer = create_group(client, "Outer", [eng["id"]])
    top = create_group(client, "Top", [outer["id"], u["id"]])  # u is in Top directly and via Outer
    world = create_group(client, "World", [top["id"], other["id"]])

    def shown(user_id: str, **params: str) -> list[tuple[str, str]]:
        return [(g["display"], g["type"]) for g in groups_of(client, user_id, **params) or []]

    expected = [("Eng", "direct"), ("Outer", "indirect"), ("Top", "direct"), ("World", "indirect")]
    assert shown(u["id"]) == expected
    full = groups_of(client, u["id"]) or []
    assert full[1] == {
        "value": outer["id"],
        "$ref": ref(client, outer["id"]),
        "display": "Outer",
        "type": "indirect",
    }
    assert shown(other["id"]) == [("World", "direct")]
    # the same in every read: an Entra match lookup, a compiled filter, a plain list, a projection
    r = client.get("/Users", params={"filter": 'userName eq "erin@contoso.com"'}).json()["Resources"][0]
    assert [(g["display"], g["type"]) for g in r["groups"]] == expected
    r = client.get("/Users", params={"filter": 'userName co "erin"'}).json()["Resources"][0]
    assert [(g["display"], g["type"]) for g in r["groups"]] == expected
    listed = {x["id"]: x for x in client.get("/Users").json()["Resources"]}
    assert len(listed[u["id"]]["groups"]) == 4 and len(listed[other["id"]]["groups"]) == 1
    only = client.get(f"/Users/{u['id']}", params={"attributes": "groups.type"}).json()
    assert only["groups"] == [{"type": t} for _, t in expected]
    # filters see the indirect ones too
    found = client.get(
        "/Users", params={"filter": f'groups[value eq "{world["id"]}" and type eq "indirect"]'}
    )
    assert [x["id"] for x in found.json()["Resources"]] == [u["id"]]
    found = client.get("/Users", params={"filter": f'groups.value eq "{world["id"]}"'})
    assert {x["id"] for x in found.json()["Resources"]} == {u["id"], other["id"]}
    found = client.get("/Users", params={"filter": f'groups[value eq "{top["id"]}" and type eq "indirect"]'})
    assert found.json()["totalResults"] == 0  # u is in Top directly: listed once, as direct
    # a cycle of groups (World in Eng) ends; every group of the cycle is reached
    r = client.patch(
        f"/Groups/{eng['id']}",
        json=patch({"op": "add", "path": "members", "value": [{"value": world["id"]}]}),
    )
    assert r.status_code in (200, 204), r.text
    assert shown(u["id"]) == expected
    assert shown(other["id"]) == [
        ("Eng", "indirect"),
        ("Outer", "indirect"),
        ("Top", "indirect"),
        ("World", "direct"),
    ]
    # taking a link out takes the indirect memberships through it with it
    r = client.patch(
        f"/Groups/{outer['id']}", json=patch({"op": "remove", "path": f'members[value eq "{eng["id"]}"]'})
    )
    assert r.status_code in (200, 204), r.text
    assert shown(u["id"]) == [("Eng", "direct"), ("Top", "direct"), ("World", "indirect")]
    assert client.delete(f"/Groups/{top['id']}").status_code == 204
    assert shown(u["id"]) == [("Eng", "direct")]


def test_groups_follow_membership_changes_and_so_does_the_user_etag(client: httpx.Client) -> None:
    u = create_user(client, "carol@contoso.com")
    etag = client.get(f"/Users/{u['id']}").headers["etag"]
    g = create_group(client, "Sales")
    r = client.patch(
        f"/Groups/{g['id']}", json=patch({"op": "add", "path": "members", "value": [{"value": u["id"]}]})
    )
    assert r.status_code in (200, 204), r.text
    assert [x["display"] for x in groups_of(client, u["id"]) or []] == ["Sales"]
    r = client.patch(
        f"/Groups/{g['id']}", json=patch({"op": "replace", "path": "displayName", "value": "Sales EU"})
    )
    assert r.status_code in (200, 204), r.text
    assert [x["display"] for x in groups_of(client, u["id"]) or []] == ["Sales EU"]
    r = client.patch(
        f"/Groups/{g['id']}", json=patch({"op": "remove", "path": f'members[value eq "{u["id"]}"]'})
    )
    assert r.status_code in (200, 204), r.text
    assert groups_of(client, u["id"]) is None
    h = create_group(client, "Ops", [u["id"]])
    assert [x["value"] for x in groups_of(client, u["id"]) or []] == [h["id"]]
    assert client.delete(f"/Groups/{h['id']}").status_code == 204
    assert groups_of(client, u["id"]) is None
    # groups is part of the User's representation, and so of its version (server/service.py)
    r = client.get(f"/Users/{u['id']}", headers={"If-None-Match": etag})
    assert r.status_code == 200 and r.headers["etag"] != etag


def test_groups_projection(client: httpx.Client) -> None:
    u = create_user(client, "dave@contoso.com", displayName="Dave")
    g = create_group(client, "Sales", [u["id"]])
    assert groups_of(client, u["id"], excludedAttributes="groups") is None
    assert groups_of(client, u["id"], attributes="userName") is None
    only = client.get(f"/Users/{u['id']}", params={"attributes": "groups"}).json()
    assert set(only) == {"schemas", "id", "groups"} and only["groups"][0]["value"] == g["id"]
    sub = client.get(f"/Users/{u['id']}", params={"attributes": "groups.display"}).json()
    assert sub["groups"] == [{"display": "Sales"}]
    assert groups_of(client, u["id"], excludedAttributes="groups.display") == [
        {"value": g["id"], "$ref": ref(client, g["id"]), "type": "direct"}
    ]
    q = {"filter": 'userName eq "dave@contoso.com"'}
    assert (
        "groups"
        not in client.get("/Users", params={**q, "excludedAttributes": "groups"}).json()["Resources"][0]
    )
    assert "groups" in client.get("/Users", params={**q, "attributes": "groups"}).json()["Resources"][0]
    searched = client.post(
        "/Users/.search",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": q["filter"],
            "excludedAttributes": ["groups"],
        },
    ).json()
    assert "groups" not in searched["Resources"][0]


def test_filter_users_by_groups(client: httpx.Client) -> None:
    a = create_user(client, "a@contoso.com")
    b = create_user(client, "b@contoso.com")
    create_user(client, "c@contoso.com")
    sales = create_group(client, "Sales", [a["id"], b["id"]])
    create_group(client, "Ops", [b["id"]])

    def found(text: str) -> set[str]:
        r = client.get("/Users", params={"filter": text})
        assert r.status_code == 200, r.text
        return {x["id"] for x in r.json()["Resources"]}

    assert found(f'groups.value eq "{sales["id"]}"') == {a["id"], b["id"]}
    assert found(f'groups eq "{sales["id"]}"') == {a["id"], b["id"]}
    assert found('groups[display eq "ops"]') == {b["id"]}
    assert found('groups[display eq "sales" and type eq "direct"] and not (groups.display eq "Ops")') == {
        a["id"]
    }
    assert len(found("not (groups pr)")) == 1
    # several groups comparisons in one filter share the statement's tables, each its own test
    assert found('groups.display eq "Sales" and groups.display eq "Ops"') == {b["id"]}
    assert found('groups.display eq "Ops" or not (groups.display eq "Sales")') == {
        b["id"],
        *found("not (groups pr)"),
    }
    # past filters.CACHED_TERMS the statement is compiled afresh: the same answer
    many = " or ".join(f'groups.display eq "nothing-{i}"' for i in range(12))
    assert found(f'{many} or groups[display eq "ops"]') == {b["id"]}
    assert found(f"({many}) and groups pr") == set()


def test_groups_are_read_only(client: httpx.Client) -> None:
    u = create_user(client, "erin@contoso.com")
    g = create_group(client, "Sales", [u["id"]])
    other = create_group(client, "Other")
    r = client.post("/Users", json=make_user("frank@contoso.com", groups=[{"value": g["id"]}]))
    assert r.status_code == 201, r.text
    assert "groups" not in r.json() and groups_of(client, r.json()["id"]) is None
    for op in (
        {"op": "add", "path": "groups", "value": [{"value": other["id"]}]},
        {"op": "replace", "path": "groups", "value": [{"value": other["id"]}]},
        {"op": "remove", "path": "groups"},
    ):
        assert_scim_error(client.patch(f"/Users/{u['id']}", json=patch(op)), 400, "mutability")
    # PUT and path-less PATCH ignore it, and answer with the groups the User really has
    put = client.put(
        f"/Users/{u['id']}", json={**make_user("erin@contoso.com"), "groups": [{"value": other["id"]}]}
    )
    assert put.status_code == 200, put.text
    assert [x["value"] for x in put.json()["groups"]] == [g["id"]]
    r = client.patch(
        f"/Users/{u['id']}",
        json=patch({"op": "replace", "value": {"title": "x", "groups": [{"value": other["id"]}]}}),
    )
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "x" and [x["value"] for x in r.json()["groups"]] == [g["id"]]
    assert [x["value"] for x in groups_of(client, u["id"]) or []] == [g["id"]]
    assert client.get(f"/Users/{u['id']}").json()["schemas"] == [USER]


def test_a_group_cannot_be_a_member_of_itself(client: httpx.Client) -> None:
    """Nested groups are members like users, but a group among its own members is refused
    (400 invalidValue) by PUT, PATCH and Bulk alike, and the group stays as it was."""
    user = create_user(client, "self@x.com")
    group = create_group(client, "Selfish", [user["id"]])
    gid = group["id"]
    put = {"schemas": [GROUP], "displayName": "Selfish", "members": [{"value": gid}, {"value": user["id"]}]}
    assert_scim_error(client.put(f"/Groups/{gid}", json=put), 400, "invalidValue")
    for op in (
        {"op": "add", "path": "members", "value": [{"value": gid}]},
        {"op": "replace", "path": "members", "value": [{"value": gid}]},
        {"op": "add", "value": {"members": [{"value": gid, "type": "Group"}]}},
    ):
        r = client.patch(f"/Groups/{gid}", json={"schemas": [PATCH_OP], "Operations": [op]})
        body = assert_scim_error(r, 400, "invalidValue")
        assert "member of itself" in body["detail"]
    bulk = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {
                "method": "POST",
                "bulkId": "me",
                "path": "/Groups",
                "data": {"schemas": [GROUP], "displayName": "Loop", "members": [{"value": "bulkId:me"}]},
            }
        ],
    }
    r = client.post("/Bulk", json=bulk)
    assert r.status_code == 200 and r.json()["Operations"][0]["status"][0] == "4", r.text
    assert client.get("/Groups", params={"filter": 'displayName eq "Loop"'}).json()["totalResults"] == 0
    after = client.get(f"/Groups/{gid}").json()
    assert [m["value"] for m in after["members"]] == [user["id"]]
    assert after["meta"]["version"] == group["meta"]["version"]
    other = create_group(client, "Other", [gid])  # a group in another group is fine
    assert [m["value"] for m in other["members"]] == [gid]


def test_a_group_display_name_is_unique_in_the_tenant(client: httpx.Client) -> None:
    """Entra and Okta match groups on displayName (entra-behaviour.md 1.6) and act on none when two
    answer: a second group of that name, in any case, is 409 uniqueness, by POST, PUT, PATCH
    and Bulk, and nothing changes."""
    sales = create_group(client, "Sales", [])
    other = create_group(client, "Other", [])
    body = assert_scim_error(client.post("/Groups", json={"schemas": [GROUP], "displayName": "SALES"}), 409)
    assert body["scimType"] == "uniqueness" and "displayName" in body["detail"]
    put = {"schemas": [GROUP], "displayName": "sales"}
    assert_scim_error(client.put(f"/Groups/{other['id']}", json=put), 409, "uniqueness")
    rename = {"op": "replace", "path": "displayName", "value": "Sales"}
    r = client.patch(f"/Groups/{other['id']}", json={"schemas": [PATCH_OP], "Operations": [rename]})
    assert_scim_error(r, 409, "uniqueness")
    bulk = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {
                "method": "POST",
                "bulkId": "s",
                "path": "/Groups",
                "data": {"schemas": [GROUP], "displayName": "sales"},
            }
        ],
    }
    assert client.post("/Bulk", json=bulk).json()["Operations"][0]["status"] == "409"
    found = client.get("/Groups", params={"filter": 'displayName eq "sales"'}).json()
    assert [g["id"] for g in found["Resources"]] == [sales["id"]]
    assert client.get(f"/Groups/{other['id']}").json()["meta"]["version"] == other["meta"]["version"]
    rename["value"] = "SALES"  # its own name in another case
    r = client.patch(f"/Groups/{sales['id']}", json={"schemas": [PATCH_OP], "Operations": [rename]})
    assert r.status_code in (200, 204), r.text
    assert client.get(f"/Groups/{sales['id']}").json()["displayName"] == "SALES"
