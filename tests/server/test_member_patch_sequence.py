"""A Group PATCH applies its operations one after another (RFC 7644 section 3.5.2), each to the
group as the ones before it left it, as shown: a member an earlier operation added has the ``type``
(User or Group, by what its value names) and the name it is stored and shown with, so a later
``members[type eq "User"]`` or ``members[display eq "..."]`` finds it as it finds a member stored
before. The whole PATCH is still atomic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.conftest import PATCH_OP, LiveServer, assert_scim_error, create_group, create_user


def patch(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(ops)}


@pytest.fixture(params=["default", "strict"])
def c(request: pytest.FixtureRequest, live: LiveServer) -> Iterator[httpx.Client]:
    """A default tenant (Group PATCH answers 204, unknown members left out) and a strict one."""
    _, token = live.new_tenant({"strict": True} if request.param == "strict" else None)
    with live.client(token) as client:
        yield client


def members(c: httpx.Client, gid: str) -> dict[str, dict[str, Any]]:
    return {m["value"]: m for m in c.get(f"/Groups/{gid}").json().get("members", [])}


def ok(r: httpx.Response) -> None:
    assert r.status_code in (200, 204), r.text


def test_a_type_filter_finds_the_members_an_earlier_operation_added(c: httpx.Client) -> None:
    """The added User is removed with the stored one; the added and the stored Group stay."""
    old_user, new_user = create_user(c, "old@x.com")["id"], create_user(c, "new@x.com")["id"]
    old_group, new_group = create_group(c, "Old")["id"], create_group(c, "New")["id"]
    gid = create_group(c, "G", [old_user, old_group])["id"]
    ok(
        c.patch(
            f"/Groups/{gid}",
            json=patch(
                {"op": "add", "path": "members", "value": [{"value": new_user}, {"value": new_group}]},
                {"op": "remove", "path": 'members[type eq "User"]'},
            ),
        )
    )
    got = members(c, gid)
    assert set(got) == {old_group, new_group}
    assert {m["type"] for m in got.values()} == {"Group"}


def test_a_nested_group_added_earlier_is_a_group_to_a_later_filter(c: httpx.Client) -> None:
    user, nested = create_user(c, "u@x.com")["id"], create_group(c, "Nested")["id"]
    gid = create_group(c, "G")["id"]
    ok(
        c.patch(
            f"/Groups/{gid}",
            json=patch(
                {"op": "add", "path": "members", "value": [{"value": user}, {"value": nested}]},
                {"op": "remove", "path": 'members[type eq "Group"]'},
            ),
        )
    )
    assert list(members(c, gid)) == [user]
    # and a User's groups show the nesting only when it is there
    assert [g["value"] for g in c.get(f"/Users/{user}").json()["groups"]] == [gid]


def test_a_sub_attribute_write_through_a_type_filter_reaches_an_added_member(c: httpx.Client) -> None:
    stored, added = create_user(c, "s@x.com")["id"], create_user(c, "a@x.com")["id"]
    nested = create_group(c, "Nested")["id"]
    gid = create_group(c, "G", [stored])["id"]
    ok(
        c.patch(
            f"/Groups/{gid}",
            json=patch(
                {"op": "add", "path": "members", "value": [{"value": added}, {"value": nested}]},
                {"op": "replace", "path": 'members[type eq "User"].display', "value": "Staff"},
            ),
        )
    )
    got = members(c, gid)
    assert {v: m["display"] for v, m in got.items()} == {stored: "Staff", added: "Staff", nested: "Nested"}


def test_an_added_member_has_the_type_of_what_it_names_whatever_was_sent(c: httpx.Client) -> None:
    """A User sent with ``type: Group`` is stored and shown as a User, so a later filter treats
    it as one; its type, once it is in the group, cannot be written either."""
    user = create_user(c, "u@x.com")["id"]
    gid = create_group(c, "G")["id"]
    ok(
        c.patch(
            f"/Groups/{gid}",
            json=patch(
                {"op": "add", "path": "members", "value": [{"value": user, "type": "Group"}]},
                {"op": "remove", "path": 'members[type eq "Group"]'},
            ),
        )
    )
    assert [m["type"] for m in members(c, gid).values()] == ["User"]
    other = create_group(c, "H")["id"]
    before = c.get(f"/Groups/{other}").json()
    r = c.patch(
        f"/Groups/{other}",
        json=patch(
            {"op": "add", "path": "members", "value": [{"value": user}]},
            {"op": "add", "path": f'members[value eq "{user}"].type', "value": "Group"},
        ),
    )
    assert_scim_error(r, 400, "mutability")
    assert c.get(f"/Groups/{other}").json() == before


def test_a_display_filter_finds_an_added_member_by_the_name_it_shows(c: httpx.Client) -> None:
    """A member added without a display shows its own name: a later filter on that name finds
    it. One kept so still follows its renames (no display was sent for it)."""
    ann, bob = create_user(c, "ann@x.com")["id"], create_user(c, "bob@x.com")["id"]
    gid = create_group(c, "G")["id"]
    ok(
        c.patch(
            f"/Groups/{gid}",
            json=patch(
                {"op": "add", "path": "members", "value": [{"value": ann}, {"value": bob}]},
                {"op": "remove", "path": 'members[display eq "bob@x.com"]'},
            ),
        )
    )
    assert {v: m["display"] for v, m in members(c, gid).items()} == {ann: "ann@x.com"}
    ok(c.patch(f"/Users/{ann}", json=patch({"op": "replace", "path": "displayName", "value": "Ann"})))
    assert members(c, gid)[ann]["display"] == "Ann"


def _unknown_then_type_filter(c: httpx.Client) -> tuple[dict[str, Any], httpx.Response]:
    """A group of one User; a PATCH renaming it, adding another User and a value that names
    nothing, then removing the Users."""
    user, other = create_user(c, "u@x.com")["id"], create_user(c, "o@x.com")["id"]
    group = create_group(c, "G", [other])
    r = c.patch(
        f"/Groups/{group['id']}",
        json=patch(
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "add", "path": "members", "value": [{"value": "no-such-id"}, {"value": user}]},
            {"op": "remove", "path": 'members[type eq "User"]'},
        ),
    )
    return group, r


def test_a_value_that_names_nothing_has_no_type(live: LiveServer) -> None:
    """unknown_members_skipped off: the unknown member is no User, so the type filter leaves it
    and the PATCH is refused whole (the added User is removed, not named); on (the default), it
    is left out and the rest is made."""
    _, token = live.new_tenant({"compat": {"unknown_members_skipped": False}})
    with live.client(token) as c:
        group, r = _unknown_then_type_filter(c)
        assert_scim_error(r, 400, "invalidValue")
        assert r.json()["detail"].endswith("unknown: no-such-id")
        assert c.get(f"/Groups/{group['id']}").json() == group
    _, token = live.new_tenant()
    with live.client(token) as c:
        group, r = _unknown_then_type_filter(c)
        ok(r)
        got = c.get(f"/Groups/{group['id']}").json()
        assert got["displayName"] == "Changed" and got.get("members", []) == []
