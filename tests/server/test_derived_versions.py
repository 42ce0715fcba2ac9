"""``meta.version`` (the ETag) and ``meta.lastModified`` move with every change of the
representation, the attributes derived from memberships included (RFC 7232 section 2.1, RFC 7643
section 3.1): a Group's ``members[].display`` when a member is renamed, a User's ``groups`` when
it joins or leaves a group, when a group it is in (directly or through nesting) is renamed,
deleted or nested, and nothing else's.

Each check reads the resource as a client holding the old representation would: with
``If-None-Match`` naming the old ETag, which must answer 200 with the new content, not 304.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from tests.conftest import GROUP, PATCH_OP, create_group, create_user


def patch(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(ops)}


def add(*ids: str) -> dict[str, Any]:
    return patch({"op": "add", "path": "members", "value": [{"value": i} for i in ids]})


def remove(member: str) -> dict[str, Any]:
    return patch({"op": "remove", "path": f'members[value eq "{member}"]'})


def rename(name: str, attribute: str = "displayName") -> dict[str, Any]:
    return patch({"op": "replace", "path": attribute, "value": name})


def send(client: httpx.Client, method: str, path: str, body: dict[str, Any] | None = None) -> None:
    r = client.request(method, path, json=body)
    assert r.status_code in (200, 201, 204), r.text


def modified(r: httpx.Response) -> datetime:
    return datetime.fromisoformat(r.json()["meta"]["lastModified"].replace("Z", "+00:00"))


class Held:
    """The representations a client holds, by path: :meth:`changed` and :meth:`kept` read each
    one again with ``If-None-Match`` naming the ETag held."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.held: dict[str, httpx.Response] = {}

    def hold(self, *paths: str) -> None:
        for path in paths:
            r = self.client.get(path)
            assert r.status_code == 200, r.text
            assert r.headers["etag"] == r.json()["meta"]["version"]
            self.held[path] = r

    def changed(self, path: str) -> dict[str, Any]:
        """The representation is new: 200 to the old ETag, a new ETag that is meta.version, a
        later lastModified. It is held from now on; returns it."""
        old = self.held[path]
        r = self.client.get(path, headers={"If-None-Match": old.headers["etag"]})
        assert r.status_code == 200, (path, r.status_code)
        assert r.headers["etag"] == r.json()["meta"]["version"] != old.headers["etag"], path
        assert modified(r) > modified(old), path
        self.held[path] = r
        return r.json()  # type: ignore[no-any-return]

    def kept(self, *paths: str) -> None:
        """Each representation is as held: 304 to its ETag, the same version and lastModified."""
        for path in paths:
            old = self.held[path]
            r = self.client.get(path, headers={"If-None-Match": old.headers["etag"]})
            assert r.status_code == 304, (path, r.status_code)
            again = self.client.get(path).json()
            assert again["meta"] == old.json()["meta"], path


@pytest.fixture
def held(client: httpx.Client) -> Held:
    return Held(client)


def displays(group: dict[str, Any]) -> list[str]:
    return [m.get("display") for m in group.get("members", [])]


def shown(user: dict[str, Any]) -> list[tuple[str, str]]:
    return [(g["display"], g["type"]) for g in user.get("groups", [])]


def test_a_users_rename_moves_the_groups_showing_its_name(client: httpx.Client, held: Held) -> None:
    """Rule 1: a Group shows a member's displayName, else its userName, unless the client sent a
    display: a rename that changes what a group shows moves that group's version; a group
    showing a sent display, a group the User is not in, and the User's other readers keep theirs."""
    alice = create_user(client, "alice@contoso.com")["id"]
    bob = create_user(client, "bob@contoso.com")["id"]
    team = create_group(client, "Team", [alice])["id"]
    sent = client.post(
        "/Groups",
        json={"schemas": [GROUP], "displayName": "Sent", "members": [{"value": alice, "display": "A."}]},
    ).json()["id"]
    other = create_group(client, "Other", [bob])["id"]
    held.hold(f"/Groups/{team}", f"/Groups/{sent}", f"/Groups/{other}", f"/Users/{bob}")

    send(client, "PATCH", f"/Users/{alice}", rename("alice2@contoso.com", "userName"))
    assert displays(held.changed(f"/Groups/{team}")) == ["alice2@contoso.com"]
    held.kept(f"/Groups/{sent}", f"/Groups/{other}", f"/Users/{bob}")

    send(client, "PATCH", f"/Users/{alice}", rename("Alice"))
    assert displays(held.changed(f"/Groups/{team}")) == ["Alice"]
    # a userName rename, or any other change, no longer changes what the group shows
    send(client, "PATCH", f"/Users/{alice}", rename("alice3@contoso.com", "userName"))
    send(client, "PATCH", f"/Users/{alice}", rename("Engineer", "title"))
    held.kept(f"/Groups/{team}", f"/Groups/{sent}", f"/Groups/{other}", f"/Users/{bob}")
    assert displays(client.get(f"/Groups/{sent}").json()) == ["A."]


def test_a_nested_groups_rename_moves_the_groups_containing_it(client: httpx.Client, held: Held) -> None:
    """Rule 1 for a member that is a Group: its parents show its displayName; only the groups
    directly containing it move, not the groups above them."""
    inner = create_group(client, "Inner")["id"]
    parent = create_group(client, "Parent", [inner])["id"]
    top = create_group(client, "Top", [parent])["id"]
    held.hold(f"/Groups/{parent}", f"/Groups/{top}")
    send(client, "PATCH", f"/Groups/{inner}", rename("Inner 2"))
    assert displays(held.changed(f"/Groups/{parent}")) == ["Inner 2"]
    held.kept(f"/Groups/{top}")


def test_joining_and_leaving_a_group_moves_the_users_version(client: httpx.Client, held: Held) -> None:
    """Rule 2: a User's ``groups`` changes when it is added to or removed from a group, whichever
    way (POST with members, PATCH add/remove, PUT replacing the members); re-adding a member or
    removing a non-member changes nothing and keeps every version."""
    carol = create_user(client, "carol@contoso.com")["id"]
    dave = create_user(client, "dave@contoso.com")["id"]
    erin = create_user(client, "erin@contoso.com")["id"]
    users = {u: f"/Users/{u}" for u in (carol, dave, erin)}
    held.hold(*users.values())

    ops = create_group(client, "Ops", [carol])["id"]
    assert shown(held.changed(users[carol])) == [("Ops", "direct")]
    held.kept(users[dave], users[erin])

    send(client, "PATCH", f"/Groups/{ops}", add(dave))
    assert shown(held.changed(users[dave])) == [("Ops", "direct")]
    held.kept(users[carol], users[erin])

    held.hold(f"/Groups/{ops}")
    send(client, "PATCH", f"/Groups/{ops}", add(carol, dave))  # both in it already
    send(client, "PATCH", f"/Groups/{ops}", remove(erin))  # not in it
    held.kept(*users.values(), f"/Groups/{ops}")

    send(client, "PATCH", f"/Groups/{ops}", remove(carol))
    assert "groups" not in held.changed(users[carol])
    held.kept(users[dave], users[erin])

    put = {"schemas": [GROUP], "displayName": "Ops", "members": [{"value": dave}, {"value": erin}]}
    send(client, "PUT", f"/Groups/{ops}", put)  # erin joins, dave stays
    assert shown(held.changed(users[erin])) == [("Ops", "direct")]
    held.kept(users[carol], users[dave])


def test_renaming_or_deleting_a_group_moves_the_versions_of_its_users(
    client: httpx.Client, held: Held
) -> None:
    """Rule 2: ``groups[].display`` shows each group's name, for groups a User is in directly and
    through nesting: a rename moves all of their versions, a delete too (the group leaves their
    ``groups``); Users of other groups keep theirs, and so does a change of the group that leaves
    its name as it was."""
    frank = create_user(client, "frank@contoso.com")["id"]
    grace = create_user(client, "grace@contoso.com")["id"]
    outsider = create_user(client, "heidi@contoso.com")["id"]
    sales = create_group(client, "Sales", [frank])["id"]
    world = create_group(client, "World", [sales, grace])["id"]
    create_group(client, "Elsewhere", [outsider])
    paths = {u: f"/Users/{u}" for u in (frank, grace, outsider)}
    held.hold(*paths.values())

    send(client, "PATCH", f"/Groups/{world}", rename("Planet"))
    assert shown(held.changed(paths[frank])) == [("Sales", "direct"), ("Planet", "indirect")]
    assert shown(held.changed(paths[grace])) == [("Planet", "direct")]
    held.kept(paths[outsider])

    send(client, "PATCH", f"/Groups/{sales}", rename("Sales EU"))
    assert shown(held.changed(paths[frank])) == [("Sales EU", "direct"), ("Planet", "indirect")]
    held.kept(paths[grace], paths[outsider])

    send(client, "PATCH", f"/Groups/{world}", patch({"op": "replace", "path": "externalId", "value": "x"}))
    held.kept(*paths.values())

    send(client, "DELETE", f"/Groups/{world}")
    assert shown(held.changed(paths[frank])) == [("Sales EU", "direct")]
    assert "groups" not in held.changed(paths[grace])
    held.kept(paths[outsider])


def test_a_nesting_change_moves_the_versions_of_the_users_below(client: httpx.Client, held: Held) -> None:
    """Rule 2: when a group a User is in joins or leaves another group, the User's indirect groups
    change: every User below it, at any depth, gets a new version; Users elsewhere do not."""
    ivan = create_user(client, "ivan@contoso.com")["id"]
    judy = create_user(client, "judy@contoso.com")["id"]
    outsider = create_user(client, "mallory@contoso.com")["id"]
    team = create_group(client, "Team", [ivan])["id"]
    dept = create_group(client, "Dept", [team, judy])["id"]
    org = create_group(client, "Org")["id"]
    create_group(client, "Elsewhere", [outsider])
    paths = {u: f"/Users/{u}" for u in (ivan, judy, outsider)}
    held.hold(*paths.values())

    send(client, "PATCH", f"/Groups/{org}", add(dept))
    assert ("Org", "indirect") in shown(held.changed(paths[ivan]))
    assert shown(held.changed(paths[judy])) == [("Dept", "direct"), ("Org", "indirect")]
    held.kept(paths[outsider])

    send(client, "PATCH", f"/Groups/{org}", add(dept))  # nested already: nothing changes
    held.kept(*paths.values())

    send(client, "PATCH", f"/Groups/{dept}", remove(team))  # ivan leaves Dept and Org
    assert shown(held.changed(paths[ivan])) == [("Team", "direct")]
    held.kept(paths[judy], paths[outsider])

    put = {"schemas": [GROUP], "displayName": "Org", "members": [{"value": team}]}
    send(client, "PUT", f"/Groups/{org}", put)  # Dept leaves Org, Team joins it
    assert shown(held.changed(paths[ivan])) == [("Team", "direct"), ("Org", "indirect")]
    assert shown(held.changed(paths[judy])) == [("Dept", "direct")]
    held.kept(paths[outsider])


def test_a_users_own_no_op_writes_and_reads_keep_every_version(client: httpx.Client, held: Held) -> None:
    """Rule 4: a PUT of the same User, a PATCH setting what it has, and reads change nothing
    anywhere: not the User, not the groups it is in."""
    u = client.get(f"/Users/{create_user(client, 'kim@contoso.com', displayName='Kim')['id']}").json()
    group = create_group(client, "Kims", [u["id"]])["id"]
    held.hold(f"/Users/{u['id']}", f"/Groups/{group}")
    body = {k: v for k, v in u.items() if k not in ("meta", "groups")}
    send(client, "PUT", f"/Users/{u['id']}", body)
    send(client, "PATCH", f"/Users/{u['id']}", rename("Kim"))
    held.kept(f"/Users/{u['id']}", f"/Groups/{group}")


def test_setting_one_members_display_leaves_the_others_following_their_names(
    client: httpx.Client, held: Held
) -> None:
    """A PATCH of one member's display goes through the group's full member list; the other
    members still show their own names, sent by no client, so a rename still moves them and the
    group's version (found by tests/server/test_stateful_model.py: they were stored as sent)."""
    ann = create_user(client, "ann@contoso.com")["id"]
    bob = create_user(client, "bob@contoso.com")["id"]
    group = create_group(client, "Team", [ann, bob])["id"]
    op = {"op": "replace", "path": f'members[value eq "{ann}"].display', "value": "Ann (lead)"}
    send(client, "PATCH", f"/Groups/{group}", patch(op))
    assert displays(client.get(f"/Groups/{group}").json()) == ["Ann (lead)", "bob@contoso.com"]
    held.hold(f"/Groups/{group}")
    send(client, "PATCH", f"/Users/{bob}", rename("Bob"))
    assert displays(held.changed(f"/Groups/{group}")) == ["Ann (lead)", "Bob"]
    send(client, "PATCH", f"/Users/{ann}", rename("Ann"))
    held.kept(f"/Groups/{group}")


def test_a_display_set_to_the_name_shown_is_a_display_sent(client: httpx.Client, held: Held) -> None:
    """Setting a member's display to the name the group shows changes nothing shown (the group
    keeps its version), but the display is one sent: the member's rename no longer shows."""
    ann = create_user(client, "ann@contoso.com")["id"]
    bob = create_user(client, "bob@contoso.com")["id"]
    group = create_group(client, "Team", [ann, bob])["id"]
    held.hold(f"/Groups/{group}")
    op = {"op": "replace", "path": f'members[value eq "{ann}"].display', "value": "ann@contoso.com"}
    again = {"op": "add", "path": "members", "value": [{"value": bob}]}
    send(client, "PATCH", f"/Groups/{group}", patch(op, again))
    held.kept(f"/Groups/{group}")
    send(client, "PATCH", f"/Users/{ann}", rename("Ann"))
    held.kept(f"/Groups/{group}")
    send(client, "PATCH", f"/Users/{bob}", rename("Bob"))  # bob was only added again: not sent
    assert displays(held.changed(f"/Groups/{group}")) == ["ann@contoso.com", "Bob"]
