"""The documented Entra ID request sequences (entra-behaviour.md section 1) against a live server."""

from __future__ import annotations

import json
import logging
import uuid

from tests.conftest import ENTERPRISE, GROUP, PATCH_OP, USER, assert_scim_error, create_user

ADSCIM = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


def patch(*ops: dict) -> dict:
    return {"schemas": [PATCH_OP], "Operations": list(ops)}


def entra_user(upn: str, manager: str | None = None, active: object = True) -> dict:
    """The create body of entra-behaviour.md 1.3 (meta and roles: [] included, as Entra sends them)."""
    ext: dict = {"department": "Sales"}
    if manager is not None:
        ext["manager"] = manager
    return {
        "schemas": [USER, ENTERPRISE],
        "externalId": upn.split("@")[0],
        "userName": upn,
        "active": active,
        "displayName": "Alice Smith",
        "emails": [{"primary": True, "type": "work", "value": upn}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Alice Smith", "familyName": "Smith", "givenName": "Alice"},
        "roles": [],
        ENTERPRISE: ext,
    }


def test_test_connection_answers_200_with_an_empty_list(client):
    """1.2 / Q14: a random-GUID query must be 200 + empty ListResponse, never 404."""
    r = client.get("/Users", params={"filter": f'userName eq "{uuid.uuid4()}"'})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/scim+json")
    body = r.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert body["totalResults"] == 0
    assert body["Resources"] == []
    r = client.get(
        "/Groups", params={"excludedAttributes": "members", "filter": f'displayName eq "{uuid.uuid4()}"'}
    )
    assert r.status_code == 200 and r.json()["totalResults"] == 0


def test_query_before_create_then_create_then_match(client):
    upn = "alice@contoso.com"
    r = client.get("/Users", params={"filter": f'userName eq "{upn}"'})
    assert r.json()["totalResults"] == 0
    r = client.post("/Users", json=entra_user(upn))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["id"] and created["meta"]["resourceType"] == "User"
    assert created["meta"]["location"].endswith(f"/Users/{created['id']}")
    assert r.headers["location"] == created["meta"]["location"]
    assert r.headers["etag"] == created["meta"]["version"]
    assert "roles" not in created  # roles: [] is "unassigned" (RFC 7643 section 2.5)
    sent = entra_user(upn)
    for attr in ("externalId", "userName", "displayName", "emails", "name", ENTERPRISE):
        assert created[attr] == sent[attr], attr
    assert created["active"] is True and created["schemas"] == [USER, ENTERPRISE]
    r = client.get("/Users", params={"filter": f'userName eq "{upn.upper()}"'})
    body = r.json()
    assert body["totalResults"] == 1 and body["Resources"][0]["id"] == created["id"]
    # the doc walkthrough's unquoted value (Q11)
    r = client.get("/Users", params={"filter": "externalId eq alice"})
    assert r.status_code == 200 and r.json()["totalResults"] == 1
    # e-mail as a matching attribute
    r = client.get("/Users", params={"filter": f'emails[type eq "work"].value eq "{upn}"'})
    assert r.status_code == 200 and r.json()["totalResults"] == 1
    # a second create of the same userName is a uniqueness conflict
    r = client.post("/Users", json=entra_user(upn))
    assert_scim_error(r, 409, "uniqueness")


def test_client_made_id_and_meta_are_ignored(client):
    """Q13: Entra sends ``meta`` (read-only) on POST; a client's ``id`` and every ``meta``
    sub-attribute (RFC 7643 section 3.1: assigned by the service provider) are ignored on POST and
    PUT, never stored or echoed."""
    forged = {
        "resourceType": "Group",
        "created": "2001-01-01T00:00:00Z",
        "lastModified": "2001-01-02T00:00:00Z",
        "version": 'W/"999"',
        "location": "https://elsewhere.example/Users/forged",
    }
    r = client.post("/Users", json={**entra_user("meta@contoso.com"), "id": "forged", "meta": forged})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["id"] != "forged"
    meta = created["meta"]
    assert meta["resourceType"] == "User"
    assert meta["location"] == r.headers["location"] and meta["location"].endswith(f"/Users/{created['id']}")
    assert not meta["created"].startswith("2001") and not meta["lastModified"].startswith("2001")
    assert meta["version"] == r.headers["etag"] != 'W/"999"'
    assert client.get("/Users/forged").status_code == 404

    body = {**entra_user("meta@contoso.com"), "id": "forged", "meta": forged, "nickName": "al"}
    r = client.put(f"/Users/{created['id']}", json=body)
    assert r.status_code == 200, r.text
    replaced = r.json()
    assert replaced["id"] == created["id"] and replaced["nickName"] == "al"
    assert replaced["meta"]["created"] == meta["created"]
    assert replaced["meta"]["location"] == meta["location"]
    assert replaced["meta"]["version"] not in (meta["version"], 'W/"999"')
    assert client.get(f"/Users/{created['id']}").json() == replaced


def test_string_active_and_bare_manager_on_create(client):
    boss = create_user(client, "boss@contoso.com")
    r = client.post("/Users", json=entra_user("worker@contoso.com", manager=boss["id"], active="True"))
    assert r.status_code == 201, r.text
    got = client.get(f"/Users/{r.json()['id']}").json()
    assert got["active"] is True
    assert got[ENTERPRISE]["manager"]["value"] == boss["id"]
    assert got[ENTERPRISE]["department"] == "Sales"


def test_update_default_dialect_patch(client):
    """1.4: capitalised ops, one op per attribute, filtered/dotted/URN paths, Add for a new value."""
    u = create_user(
        client,
        "bob@contoso.com",
        emails=[{"type": "work", "value": "bob@contoso.com", "primary": True}],
        name={"givenName": "Bob", "familyName": "Old"},
    )
    assert client.get(f"/Users/{u['id']}").status_code == 200
    r = client.patch(
        f"/Users/{u['id']}",
        json=patch(
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "robert@contoso.com"},
            {"op": "Replace", "path": "name.familyName", "value": "Smith"},
            {"op": "Replace", "path": "displayName", "value": "Bob Smith"},
            {"op": "Replace", "path": "externalId", "value": "bob"},
            {"op": "Replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "701984"},
            {"op": "Add", "path": "nickName", "value": "Bobby"},
        ),
    )
    assert r.status_code == 200, r.text
    got = client.get(f"/Users/{u['id']}").json()
    assert got["emails"] == [{"type": "work", "value": "robert@contoso.com", "primary": True}]
    assert got["name"] == {"givenName": "Bob", "familyName": "Smith"}
    assert got["displayName"] == "Bob Smith" and got["externalId"] == "bob" and got["nickName"] == "Bobby"
    assert got[ENTERPRISE]["employeeNumber"] == "701984"
    assert got["meta"]["version"] != u["meta"]["version"]


def test_customappsso_dotted_extension_names(live):
    """Q15: jobs set up before December 2018 (``customappsso``) write ``urn:...:User.department``
    for ``urn:...:User:department``, in PATCH paths, path-less keys and filters. With the switch
    off the same requests are 400s and nothing changes: never a silent 200 that drops the value."""
    for settings, tolerated in (({}, True), ({"compat": {"extension_dot_names": False}}, False)):
        _, token = live.new_tenant(settings)
        with live.client(token) as client:
            u = create_user(client, "old@contoso.com", **{ENTERPRISE: {"employeeNumber": "1"}})
            ops = [
                {"op": "Replace", "path": f"{ENTERPRISE}.department", "value": "Finance"},
                {"op": "Replace", "value": {f"{ENTERPRISE}.costCenter": "CC-7"}},
            ]
            query = {"filter": f'{ENTERPRISE}.employeeNumber eq "1"'}
            for op in ops:
                r = client.patch(f"/Users/{u['id']}", json=patch(op))
                if tolerated:
                    assert r.status_code == 200, r.text
                else:
                    assert_scim_error(r, 400, "invalidPath")
            r = client.get("/Users", params=query)
            got = client.get(f"/Users/{u['id']}").json()
            if tolerated:
                assert got[ENTERPRISE] == {
                    "employeeNumber": "1",
                    "department": "Finance",
                    "costCenter": "CC-7",
                }
                assert r.status_code == 200 and [x["id"] for x in r.json()["Resources"]] == [u["id"]]
            else:
                assert got == u
                assert_scim_error(r, 400, "invalidFilter")


def test_update_aadoptscim062020_dialect_patch(client):
    """1.4 with the flag: lowercase ops and one path-less replace with dotted and URN keys (Q6)."""
    u = create_user(client, "carol@contoso.com", emails=[{"type": "work", "value": "carol@contoso.com"}])
    r = client.patch(
        f"/Users/{u['id']}",
        json=patch(
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "caroline@contoso.com"},
            {
                "op": "replace",
                "value": {
                    "displayName": "Caroline Smith",
                    "name.givenName": "Caroline",
                    "name.familyName": "Smith",
                    f"{ENTERPRISE}:employeeNumber": "42",
                    "active": False,
                },
            },
            {"op": "replace", "path": 'emails[type eq "work"].primary', "value": True},
            {"op": "add", "path": f"{ENTERPRISE}:department", "value": "Finance"},
        ),
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["displayName"] == "Caroline Smith" and got["active"] is False
    assert got["name"]["givenName"] == "Caroline" and got["name"]["familyName"] == "Smith"
    assert got["emails"][0]["value"] == "caroline@contoso.com" and got["emails"][0]["primary"] is True
    assert got[ENTERPRISE] == {"employeeNumber": "42", "department": "Finance"}


def test_unmatched_value_filter_creates_the_element(client):
    u = create_user(client, "dan@contoso.com")
    r = client.patch(
        f"/Users/{u['id']}",
        json=patch(
            {"op": "Add", "path": 'addresses[type eq "work"].locality', "value": "Seattle"},
            {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 (999) 888-7777"},
        ),
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["addresses"] == [{"type": "work", "locality": "Seattle"}]
    assert got["phoneNumbers"] == [{"type": "mobile", "value": "+1 (999) 888-7777"}]  # stored exactly as sent


def test_manager_shapes(client):
    """Q5: every documented manager shape; GET always answers the RFC complex form."""
    m1 = create_user(client, "m1@contoso.com")
    m2 = create_user(client, "m2@contoso.com")
    u = create_user(client, "e@contoso.com")
    r = client.patch(
        f"/Users/{u['id']}",
        json=patch(
            {
                "op": "Add",
                "path": "manager",
                "value": [{"$ref": f"https://x/Users/{m1['id']}", "value": m1["id"]}],
            }
        ),
    )
    assert r.status_code == 200, r.text
    assert client.get(f"/Users/{u['id']}").json()[ENTERPRISE]["manager"]["value"] == m1["id"]
    r = client.patch(
        f"/Users/{u['id']}", json=patch({"op": "add", "path": f"{ENTERPRISE}:manager", "value": m2["id"]})
    )
    assert r.status_code == 200, r.text
    assert client.get(f"/Users/{u['id']}").json()[ENTERPRISE]["manager"]["value"] == m2["id"]
    r = client.patch(
        f"/Users/{u['id']}", json=patch({"op": "remove", "path": f'manager[value eq "{m2["id"]}"]'})
    )
    assert r.status_code == 200, r.text
    assert "manager" not in client.get(f"/Users/{u['id']}").json().get(ENTERPRISE, {})


def test_deleting_a_manager_takes_it_off_its_reports(client):
    """A reference to a deleted User is no manager: its reports lose it, with a new version, since
    Entra may clear a manager with no operation (1.4); their other attributes stay."""
    boss = client.post("/Users", json=entra_user("boss@contoso.com")).json()
    made = client.post("/Users", json=entra_user("rep@contoso.com", manager=boss["id"])).json()
    assert made[ENTERPRISE]["manager"]["value"] == boss["id"]

    assert client.delete(f"/Users/{boss['id']}").status_code == 204

    r = client.get(f"/Users/{made['id']}", headers={"If-None-Match": made["meta"]["version"]})
    assert r.status_code == 200, r.text
    assert r.json()[ENTERPRISE] == {"department": "Sales"}
    assert r.headers["etag"] != made["meta"]["version"]
    found = client.get("/Users", params={"filter": f'manager.value eq "{boss["id"]}"'}).json()
    assert found["totalResults"] == 0


def test_roles_as_json_encoded_strings(client):
    """Q8: SingleAppRoleAssignment sends the role object as a JSON string inside value."""
    u = create_user(client, "r@contoso.com")
    inner = json.dumps({"id": "9e1b", "value": "User", "displayName": "User"})
    r = client.patch(
        f"/Users/{u['id']}", json=patch({"op": "Add", "path": "roles", "value": [{"value": inner}]})
    )
    assert r.status_code == 200, r.text
    roles = client.get(f"/Users/{u['id']}").json()["roles"]
    assert [role["value"] for role in roles] == ["User"]


def test_disable_reenable_rename_and_delete(client):
    u = create_user(client, "eve@contoso.com")
    r = client.patch(f"/Users/{u['id']}", json=patch({"op": "Replace", "path": "active", "value": "False"}))
    assert r.status_code == 200 and r.json()["active"] is False
    # an inactive user is still found by GET and by filter (1.5)
    assert client.get(f"/Users/{u['id']}").json()["active"] is False
    assert (
        client.get("/Users", params={"filter": 'userName eq "eve@contoso.com"'}).json()["totalResults"] == 1
    )
    r = client.patch(f"/Users/{u['id']}", json=patch({"op": "Replace", "path": "active", "value": "True"}))
    assert r.json()["active"] is True
    r = client.patch(f"/Users/{u['id']}", json=patch({"op": "replace", "path": "active", "value": False}))
    assert r.json()["active"] is False
    r = client.patch(
        f"/Users/{u['id']}", json=patch({"op": "Replace", "path": "userName", "value": "eve2@contoso.com"})
    )
    assert r.status_code == 200 and r.json()["userName"] == "eve2@contoso.com"
    assert (
        client.get("/Users", params={"filter": 'userName eq "eve@contoso.com"'}).json()["totalResults"] == 0
    )
    r = client.delete(f"/Users/{u['id']}")
    assert r.status_code == 204 and r.content == b""
    assert_scim_error(client.get(f"/Users/{u['id']}"), 404)


def test_groups_and_memberships(client):
    """1.6: match without members, create empty with the ADSCIM schema, rename, add, remove, delete."""
    users = [create_user(client, f"g{i}@contoso.com") for i in range(4)]
    ids = [u["id"] for u in users]
    r = client.get("/Groups", params={"excludedAttributes": "members", "filter": 'displayName eq "Sales"'})
    assert r.json()["totalResults"] == 0
    r = client.post(
        "/Groups",
        json={
            "schemas": [GROUP, ADSCIM],
            "externalId": "8aa1",
            "displayName": "Sales",
            "meta": {"resourceType": "Group"},
        },
    )
    assert r.status_code == 201, r.text
    group = r.json()
    assert group.get("members", []) == []
    gid = group["id"]
    r = client.patch(
        f"/Groups/{gid}", json=patch({"op": "Replace", "path": "displayName", "value": "Sales EU"})
    )
    assert r.status_code == 204 and r.content == b""
    r = client.patch(
        f"/Groups/{gid}",
        json=patch({"op": "Add", "path": "members", "value": [{"$ref": None, "value": i} for i in ids]}),
    )
    assert r.status_code == 204, r.text
    got = client.get(f"/Groups/{gid}").json()
    assert got["displayName"] == "Sales EU"
    assert sorted(m["value"] for m in got["members"]) == sorted(ids)
    # Q10: excludedAttributes=members is honoured on GET and on queries
    assert "members" not in client.get(f"/Groups/{gid}", params={"excludedAttributes": "members"}).json()
    listed = client.get(
        "/Groups", params={"excludedAttributes": "members", "filter": 'displayName eq "Sales EU"'}
    ).json()
    assert listed["totalResults"] == 1 and "members" not in listed["Resources"][0]
    # Q3: remove with a value list removes ONLY the listed members
    r = client.patch(
        f"/Groups/{gid}",
        json=patch({"op": "Remove", "path": "members", "value": [{"$ref": None, "value": ids[0]}]}),
    )
    assert r.status_code == 204, r.text
    left = sorted(m["value"] for m in client.get(f"/Groups/{gid}").json()["members"])
    assert left == sorted(ids[1:])
    # the flag's form
    r = client.patch(f"/Groups/{gid}", json=patch({"op": "remove", "path": f'members[value eq "{ids[1]}"]'}))
    assert r.status_code == 204
    left = sorted(m["value"] for m in client.get(f"/Groups/{gid}").json()["members"])
    assert left == sorted(ids[2:])
    # deleting a user removes its memberships
    assert client.delete(f"/Users/{ids[2]}").status_code == 204
    assert [m["value"] for m in client.get(f"/Groups/{gid}").json()["members"]] == [ids[3]]
    assert client.delete(f"/Groups/{gid}").status_code == 204
    assert_scim_error(client.get(f"/Groups/{gid}"), 404)


def test_an_unknown_member_is_left_out_and_the_rest_of_the_change_is_made(client, caplog):
    """A member deleted in the app while Entra still holds its id (1.6: the member value is the
    cached target id): the batch's other members and changes go in, the unknown id is left out
    and logged (unknown_members_skipped), so one stale id cannot block a group every cycle."""
    u = create_user(client, "only@contoso.com")
    v = create_user(client, "other@contoso.com")
    gid = client.post(
        "/Groups",
        json={"schemas": [GROUP], "displayName": "G", "members": [{"value": u["id"]}, {"value": "gone"}]},
    ).json()["id"]
    with caplog.at_level(logging.INFO, logger="provisor.server"):
        r = client.patch(
            f"/Groups/{gid}",
            json=patch(
                {"op": "Replace", "path": "displayName", "value": "Changed"},
                {"op": "Add", "path": "members", "value": [{"value": "no-such-id"}, {"value": v["id"]}]},
            ),
        )
    assert r.status_code == 204, r.text
    got = client.get(f"/Groups/{gid}").json()
    assert got["displayName"] == "Changed" and [m["value"] for m in got["members"]] == [u["id"], v["id"]]
    assert any("no-such-id" in rec.getMessage() for rec in caplog.records)
    # a PUT (Okta) and a replace of the whole list alike
    r = client.put(
        f"/Groups/{gid}",
        json={
            "schemas": [GROUP],
            "displayName": "G",
            "members": [{"value": "no-such-id"}, {"value": v["id"]}],
        },
    )
    assert r.status_code == 200 and [m["value"] for m in r.json()["members"]] == [v["id"]]


def test_an_unknown_member_is_rejected_and_changes_nothing_with_the_switch_off(live):
    _, token = live.new_tenant({"compat": {"unknown_members_skipped": False}})
    with live.client(token) as client:
        u = create_user(client, "only@contoso.com")
        gid = client.post(
            "/Groups", json={"schemas": [GROUP], "displayName": "G", "members": [{"value": u["id"]}]}
        ).json()["id"]
        r = client.patch(
            f"/Groups/{gid}",
            json=patch(
                {"op": "Replace", "path": "displayName", "value": "Changed"},
                {"op": "Add", "path": "members", "value": [{"value": "no-such-id"}]},
            ),
        )
        body = assert_scim_error(r, 400, "invalidValue")
        assert "no-such-id" in body["detail"]
        got = client.get(f"/Groups/{gid}").json()
        assert got["displayName"] == "G" and [m["value"] for m in got["members"]] == [u["id"]]
        r = client.post("/Groups", json={"schemas": [GROUP], "displayName": "H", "members": [{"value": "x"}]})
        assert_scim_error(r, 400, "invalidValue")


def test_a_user_is_active_unless_told_otherwise(live, client):
    """active_by_default: a create without ``active`` is active (Okta's import and conformance
    test read it), a PUT without it keeps it; off, RFC 7643's reading: no active at all."""
    u = client.post("/Users", json={"schemas": [USER], "userName": "noactive@x.com"})
    assert u.status_code == 201 and u.json()["active"] is True
    uid = u.json()["id"]
    assert (
        client.patch(f"/Users/{uid}", json=patch({"op": "replace", "value": {"active": False}})).status_code
        == 200
    )
    r = client.put(f"/Users/{uid}", json={"schemas": [USER], "userName": "noactive@x.com", "title": "T"})
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["title"] == "T"
    _, token = live.new_tenant({"compat": {"active_by_default": False}})
    with live.client(token) as strict:
        u = strict.post("/Users", json={"schemas": [USER], "userName": "noactive@x.com"})
        assert u.status_code == 201 and "active" not in u.json()


def test_okta_shapes(client):
    """Okta: PUT updates, path-less replace {active:false} deactivates, replace members [] empties a group."""
    u = create_user(client, "okta@example.com", name={"givenName": "O", "familyName": "K"})
    body = {
        "schemas": [USER],
        "id": u["id"],
        "userName": "okta@example.com",
        "active": True,
        "name": {"givenName": "Okta", "familyName": "User"},
        "emails": [{"value": "okta@example.com", "primary": True}],
    }
    r = client.put(f"/Users/{u['id']}", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == {"givenName": "Okta", "familyName": "User"}
    r = client.patch(
        f"/Users/{u['id']}", json=patch({"op": "replace", "value": {"id": u["id"], "active": False}})
    )
    assert r.status_code == 200 and r.json()["active"] is False
    g = client.post(
        "/Groups", json={"schemas": [GROUP], "displayName": "Okta G", "members": [{"value": u["id"]}]}
    ).json()
    r = client.patch(f"/Groups/{g['id']}", json=patch({"op": "replace", "path": "members", "value": []}))
    assert r.status_code == 204
    assert client.get(f"/Groups/{g['id']}").json().get("members", []) == []
