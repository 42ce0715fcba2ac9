"""ETags (RFC 7644 section 3.14): meta.version, If-Match -> 412, If-None-Match -> 304."""

from __future__ import annotations

from datetime import datetime

import pytest
from tests.conftest import GROUP, PATCH_OP, USER, assert_scim_error, create_group, create_user


def test_etag_round_trip(client):
    u = create_user(client, "etag@x.com")
    v1 = u["meta"]["version"]
    assert v1.startswith('W/"')
    r = client.get(f"/Users/{u['id']}", headers={"If-None-Match": v1})
    assert r.status_code == 304 and r.content == b""
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "E"}]}
    r = client.patch(f"/Users/{u['id']}", json=body, headers={"If-Match": v1})
    assert r.status_code == 200
    v2 = r.headers["etag"]
    assert v2 != v1 and r.json()["meta"]["version"] == v2
    # a stale version is refused and nothing changes
    body["Operations"][0]["value"] = "Stale"
    assert_scim_error(client.patch(f"/Users/{u['id']}", json=body, headers={"If-Match": v1}), 412)
    assert_scim_error(
        client.put(
            f"/Users/{u['id']}",
            json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "etag@x.com"},
            headers={"If-Match": v1},
        ),
        412,
    )
    assert_scim_error(client.delete(f"/Users/{u['id']}", headers={"If-Match": v1}), 412)
    got = client.get(f"/Users/{u['id']}", headers={"If-None-Match": v1})
    assert got.status_code == 200 and got.json()["displayName"] == "E"
    assert client.delete(f"/Users/{u['id']}", headers={"If-Match": v2}).status_code == 204


def test_if_match_star_matches_any(client):
    u = create_user(client, "star@x.com")
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "S"}]}
    assert client.patch(f"/Users/{u['id']}", json=body, headers={"If-Match": "*"}).status_code == 200


def test_if_none_match_guards_writes(client):
    """RFC 7232 section 3.2: a write whose If-None-Match names the current version, or is ``*``
    (the resource exists), is refused with 412 and changes nothing; naming an older version lets
    it through."""
    u = create_user(client, "inm@x.com", displayName="Before")
    url, v1 = f"/Users/{u['id']}", u["meta"]["version"]
    rename = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "X"}]}
    put = {"schemas": [USER], "userName": "inm@x.com", "displayName": "X"}
    for tag in (v1, "*", f'W/"77", {v1}'):
        headers = {"If-None-Match": tag}
        assert_scim_error(client.patch(url, json=rename, headers=headers), 412)
        assert_scim_error(client.put(url, json=put, headers=headers), 412)
        assert_scim_error(client.delete(url, headers=headers), 412)
    after = client.get(url).json()
    assert after["displayName"] == "Before" and after["meta"]["version"] == v1
    r = client.patch(url, json=rename, headers={"If-None-Match": 'W/"77"'})
    assert r.status_code == 200 and r.json()["displayName"] == "X"
    r = client.put(url, json={**put, "displayName": "Y"}, headers={"If-None-Match": v1})  # v1 is old now
    assert r.status_code == 200 and r.json()["displayName"] == "Y"
    assert client.delete(url, headers={"If-None-Match": v1}).status_code == 204


def test_if_match_takes_a_list_of_tags_on_one_line_or_several(client):
    """If-Match holds when any tag it lists is current (RFC 7232 section 3.1), whether the list is
    sent on one line or split over repeated header lines (RFC 9110 section 5.3)."""
    u = create_user(client, "list@x.com")
    url, v1 = f"/Users/{u['id']}", u["meta"]["version"]
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "L1"}]}
    r = client.patch(url, json=body, headers={"If-Match": f'W/"90", {v1}, "other"'})
    assert r.status_code == 200, r.text
    v2 = r.headers["etag"]
    body["Operations"][0]["value"] = "L2"
    r = client.patch(url, json=body, headers=[("If-Match", 'W/"90"'), ("If-Match", v2)])
    assert r.status_code == 200, r.text
    assert_scim_error(client.patch(url, json=body, headers=[("If-Match", v1), ("If-Match", v2)]), 412)
    assert client.get(url).json()["displayName"] == "L2"


def test_if_match_on_a_read(client):
    """A GET whose If-Match names no current version answers 412 (RFC 7232 section 3.1)."""
    u = create_user(client, "readmatch@x.com")
    url, v1 = f"/Users/{u['id']}", u["meta"]["version"]
    assert client.get(url, headers={"If-Match": v1}).json()["id"] == u["id"]
    assert client.get(url, headers={"If-Match": "*"}).status_code == 200
    assert_scim_error(client.get(url, headers={"If-Match": 'W/"999"'}), 412)


@pytest.mark.parametrize(
    "tag",
    [
        *('W/"²"', '"¹"', f'W/"{"9" * 5000}"', 'W/"-1"', "W/", '""', '"1.0"', "W/'1'"),
        *('W/"01"', '"001"', 'W/""1""', 'W/"1', "W/1", '"0"'),  # another spelling of version 1 is another tag
    ],
)
def test_entity_tags_that_are_not_ours_never_match(client, tag):
    """Tags Provisor never makes (non-ASCII digits, a version past 64 bits, signs, empty quotes,
    leading zeros, doubled or missing quotes) fail If-Match with 412 and pass If-None-Match; none
    is ever a 500."""
    u = create_user(client, f"tag{abs(hash(tag)) % 10**8}@x.com")
    url, tag = f"/Users/{u['id']}", tag.encode("latin-1")  # as a client sends ² or ¹: one byte
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "T"}]}
    assert_scim_error(client.patch(url, json=body, headers={"If-Match": tag}), 412)
    assert_scim_error(client.get(url, headers={"If-Match": tag}), 412)
    assert client.get(url, headers={"If-None-Match": tag}).status_code == 200
    assert "title" not in client.get(url).json()
    assert client.patch(url, json=body, headers={"If-None-Match": tag}).json()["title"] == "T"


def test_group_etag_round_trip(client):
    """Groups carry meta.version as the ETag: If-None-Match -> 304, a stale If-Match -> 412."""
    a, b = create_user(client, "ga@x.com")["id"], create_user(client, "gb@x.com")["id"]
    g = create_group(client, "ETag G", [a])
    v1 = g["meta"]["version"]
    assert v1.startswith('W/"')
    r = client.get(f"/Groups/{g['id']}")
    assert r.headers["etag"] == r.json()["meta"]["version"] == v1
    r = client.get(f"/Groups/{g['id']}", headers={"If-None-Match": v1})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == v1
    add = {"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": [{"value": b}]}]}
    r = client.patch(f"/Groups/{g['id']}", json=add, headers={"If-Match": v1})
    assert r.status_code in (200, 204), r.text
    v2 = r.headers["etag"]
    assert v2 != v1
    assert client.get(f"/Groups/{g['id']}", headers={"If-None-Match": v1}).status_code == 200
    before = client.get(f"/Groups/{g['id']}").json()
    assert before["meta"]["version"] == v2 and len(before["members"]) == 2
    # a stale version is refused and nothing changes
    rename = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "S"}]}
    assert_scim_error(client.patch(f"/Groups/{g['id']}", json=rename, headers={"If-Match": v1}), 412)
    put = {"schemas": [GROUP], "displayName": "Stale", "members": []}
    assert_scim_error(client.put(f"/Groups/{g['id']}", json=put, headers={"If-Match": v1}), 412)
    assert_scim_error(client.delete(f"/Groups/{g['id']}", headers={"If-Match": v1}), 412)
    assert client.get(f"/Groups/{g['id']}").json() == before
    assert client.delete(f"/Groups/{g['id']}", headers={"If-Match": v2}).status_code == 204


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize("endpoint", ["Users", "Groups"])
def test_update_advances_last_modified_and_keeps_created(client, endpoint):
    """A change moves meta.lastModified strictly forward and bumps the version; created stays."""
    made = create_user(client, "lm@x.com") if endpoint == "Users" else create_group(client, "LM")
    url = f"/{endpoint}/{made['id']}"
    prev = made["meta"]
    for value in ("One", "Two"):
        body = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "displayName", "value": value}],
        }
        assert client.patch(url, json=body).status_code in (200, 204)
        meta = client.get(url).json()["meta"]
        assert meta["created"] == made["meta"]["created"]
        assert _instant(meta["lastModified"]) > _instant(prev["lastModified"])
        assert meta["version"] != prev["version"]
        prev = meta


def test_no_op_put_keeps_the_version_of_a_user(client):
    """A PUT of the same content changes nothing: same version, same lastModified."""
    u = create_user(client, "same@x.com", displayName="Same")
    same = {"schemas": [USER], "userName": "same@x.com", "displayName": "Same", "active": True}
    r = client.put(f"/Users/{u['id']}", json=same)
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == r.json()["meta"]["version"] == u["meta"]["version"]
    assert r.json()["meta"]["lastModified"] == u["meta"]["lastModified"]
    r = client.put(f"/Users/{u['id']}", json={**same, "displayName": "Other"})
    assert r.json()["meta"]["version"] != u["meta"]["version"]


def test_a_user_patch_that_changes_nothing_keeps_the_version(client):
    """Writing the values a User has, even with an element's keys in another order, is no change."""
    work = {"value": "still@x.com", "type": "work", "primary": True}
    u = create_user(client, "still@x.com", displayName="Still", emails=[work])
    for op in (
        {"op": "replace", "path": "displayName", "value": "Still"},
        {"op": "replace", "value": {"displayName": "Still"}},
        {"op": "replace", "path": 'emails[type eq "work"]', "value": dict(reversed(work.items()))},
        {
            "op": "replace",
            "path": "emails",
            "value": [{"primary": True, "type": "work", "value": "still@x.com"}],
        },
    ):
        r = client.patch(f"/Users/{u['id']}", json={"schemas": [PATCH_OP], "Operations": [op]})
        assert r.status_code == 200, r.text
        assert r.json()["meta"]["version"] == r.headers["etag"] == u["meta"]["version"], op
        assert r.json()["meta"]["lastModified"] == u["meta"]["lastModified"]
    op = {"op": "replace", "path": 'emails[type eq "work"].primary', "value": False}
    r = client.patch(f"/Users/{u['id']}", json={"schemas": [PATCH_OP], "Operations": [op]})
    assert r.json()["meta"]["version"] != u["meta"]["version"]


def test_no_op_put_keeps_the_version_of_a_group(client):
    """A PUT of a Group's same displayName and members keeps its version and lastModified."""
    a = create_user(client, "nop@x.com")["id"]
    g = create_group(client, "Same G", [a])
    put = {"schemas": [GROUP], "displayName": "Same G", "members": [{"value": a}]}
    r = client.put(f"/Groups/{g['id']}", json=put)
    assert r.status_code == 200, r.text
    assert [m["value"] for m in r.json()["members"]] == [a]
    assert r.headers["etag"] == r.json()["meta"]["version"] == g["meta"]["version"]
    assert r.json()["meta"]["lastModified"] == g["meta"]["lastModified"]


def test_a_put_that_changes_a_groups_members_moves_its_version(client):
    """The other side of the no-op PUT: another member, or a member's display, is a change."""
    a = create_user(client, "m1@x.com")["id"]
    b = create_user(client, "m2@x.com")["id"]
    g = create_group(client, "Moving G", [a])
    for members in ([{"value": b}], [{"value": b, "display": "Bee"}], [{"value": a}, {"value": b}]):
        r = client.put(
            f"/Groups/{g['id']}", json={"schemas": [GROUP], "displayName": "Moving G", "members": members}
        )
        assert r.status_code == 200, r.text
        assert r.json()["meta"]["version"] != g["meta"]["version"], members
        assert {m["value"] for m in r.json()["members"]} == {m["value"] for m in members}
        g = r.json()


def test_a_member_patch_that_changes_nothing_keeps_the_groups_version(live):
    """Entra re-sends membership changes (a retry, a drifted state): adding a member the group
    has, or removing one it has not, leaves the group as it was, version and lastModified
    included; adding a new member moves both."""
    _, token = live.new_tenant({"compat": {"group_patch_no_content": False}})  # 200 with the group
    with live.client(token) as client:
        a = create_user(client, "in@x.com")["id"]
        b = create_user(client, "out@x.com")["id"]
        g = create_group(client, "Steady", [a])
        for op in (
            {"op": "add", "path": "members", "value": [{"value": a}]},
            {"op": "remove", "path": f'members[value eq "{b}"]'},
            {"op": "replace", "path": "members", "value": [{"value": a}]},
            {"op": "replace", "value": {"members": [{"value": a}], "displayName": "Steady"}},
        ):
            r = client.patch(f"/Groups/{g['id']}", json={"schemas": [PATCH_OP], "Operations": [op]})
            assert r.status_code == 200, r.text
            assert r.json()["meta"]["version"] == g["meta"]["version"], op
            assert r.json()["meta"]["lastModified"] == g["meta"]["lastModified"]
            assert [m["value"] for m in r.json()["members"]] == [a]
        op = {"op": "add", "path": "members", "value": [{"value": a}, {"value": b}]}
        r = client.patch(f"/Groups/{g['id']}", json={"schemas": [PATCH_OP], "Operations": [op]})
        assert r.json()["meta"]["version"] != g["meta"]["version"]
        assert {m["value"] for m in r.json()["members"]} == {a, b}
        empty = create_group(client, "Empty", [])
        for op in (
            {"op": "replace", "path": "members", "value": []},
            {"op": "remove", "path": "members"},
        ):
            r = client.patch(f"/Groups/{empty['id']}", json={"schemas": [PATCH_OP], "Operations": [op]})
            assert r.status_code == 200, r.text
            assert r.json()["meta"]["version"] == empty["meta"]["version"], op


def test_a_same_members_replace_answered_204_keeps_the_groups_version(client):
    """With ``group_patch_no_content`` on (the default, 204 without the group), a PATCH replacing
    the members with the ones the group has keeps its version too; other members move it."""
    a = create_user(client, "keep1@x.com")["id"]
    b = create_user(client, "keep2@x.com")["id"]
    g = create_group(client, "Kept", [a, b])
    url = f"/Groups/{g['id']}"
    for op in (
        {"op": "replace", "path": "members", "value": [{"value": b}, {"value": a}]},
        {"op": "replace", "value": {"members": [{"value": a}, {"value": b}]}},
    ):
        r = client.patch(url, json={"schemas": [PATCH_OP], "Operations": [op]})
        assert r.status_code == 204, r.text
        assert r.headers["etag"] == g["meta"]["version"], op
        after = client.get(url).json()
        assert after["meta"]["version"] == g["meta"]["version"], op
        assert after["meta"]["lastModified"] == g["meta"]["lastModified"]
    op = {"op": "replace", "path": "members", "value": [{"value": a}]}
    r = client.patch(url, json={"schemas": [PATCH_OP], "Operations": [op]})
    assert r.status_code == 204 and r.headers["etag"] != g["meta"]["version"]
    assert [m["value"] for m in client.get(url).json()["members"]] == [a]
