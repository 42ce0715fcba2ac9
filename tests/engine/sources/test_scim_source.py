"""ScimSource against a real Provisor tenant on loopback (docs/sources.md, "SCIM source")."""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.conftest import ENTERPRISE, PATCH_OP, USER, LiveServer, create_group, create_user

from provisor.engine.model import ObjectKind, SourceError, SourceObject
from provisor.engine.sources.scim import ScimSource

pytestmark = pytest.mark.slow

USERS = 1200
MANAGERS = 20
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def _bulk_users(client: httpx.Client, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST users 50 at a time through /Bulk (RFC 7644 section 3.7); returns id + userName."""
    made: list[dict[str, Any]] = []
    for start in range(0, len(bodies), 50):
        chunk = bodies[start : start + 50]
        ops = [
            {"method": "POST", "path": "/Users", "bulkId": f"b{start + i}", "data": body}
            for i, body in enumerate(chunk)
        ]
        r = client.post("/Bulk", json={"schemas": [BULK], "Operations": ops})
        assert r.status_code == 200, r.text
        for op, body in zip(r.json()["Operations"], chunk, strict=True):
            assert op["status"] == "201", op
            made.append({"id": op["location"].rsplit("/", 1)[1], "userName": body["userName"]})
    return made


def _user_body(i: int, manager: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemas": [USER, ENTERPRISE],
        "userName": f"user{i:04d}@contoso.com",
        "active": i % 7 != 0,
        "displayName": f"User {i}",
        "name": {"givenName": f"Given{i}", "familyName": f"Family{i}"},
        "emails": [{"value": f"user{i:04d}@contoso.com", "type": "work", "primary": True}],
        ENTERPRISE: {"employeeNumber": f"E{i:05d}", "department": f"Dept{i % 5}"},
    }
    if manager is not None:
        body[ENTERPRISE]["manager"] = {"value": manager}
    return body


class Directory:
    def __init__(self, token: str, users: list[dict[str, Any]], groups: list[dict[str, Any]], rich: str):
        self.token = token
        self.users = users
        self.groups = groups
        self.rich = rich


@pytest.fixture(scope="module")
def directory(live: LiveServer) -> Directory:
    """1,200 users (20 managers, everyone else reporting to one), one fully populated user, and
    three groups, one nested in another."""
    _, token = live.new_tenant()
    with live.client(token) as c:
        managers = _bulk_users(c, [_user_body(i, None) for i in range(MANAGERS)])
        rest = _bulk_users(
            c, [_user_body(i, managers[i % MANAGERS]["id"]) for i in range(MANAGERS, USERS - 1)]
        )
        rich = create_user(
            c,
            "alice@contoso.com",
            schemas=[USER, ENTERPRISE],
            externalId="alice.w",
            displayName="Alice Wong",
            title="Engineer",
            preferredLanguage="en-GB",
            userType="Member",
            name={"givenName": "Alice", "familyName": "Wong"},
            emails=[
                {"value": "alice.home@example.com", "type": "home"},
                {"value": "alice@contoso.com", "type": "work", "primary": True},
            ],
            phoneNumbers=[
                {"value": "+44 20 1111", "type": "work"},
                {"value": "+44 77 2222", "type": "mobile"},
                {"value": "+44 20 3333", "type": "fax"},
            ],
            addresses=[
                {
                    "type": "work",
                    "streetAddress": "1 Main St",
                    "locality": "London",
                    "region": "Greater London",
                    "postalCode": "N1 9GU",
                    "country": "GB",
                    "formatted": "Building 4",
                }
            ],
            **{
                ENTERPRISE: {
                    "employeeNumber": "E99999",
                    "department": "R&D",
                    "costCenter": "CC-7",
                    "division": "Cloud",
                    "organization": "Contoso",
                    "manager": {"value": managers[0]["id"]},
                }
            },
        )
        users = [*managers, *rest, {"id": rich["id"], "userName": rich["userName"]}]
        sales = create_group(c, "Sales Team", [u["id"] for u in users[:10]])
        emea = create_group(c, "EMEA", [u["id"] for u in users[10:15]])
        r = c.patch(
            f"/Groups/{emea['id']}",
            json={
                "schemas": [PATCH_OP],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": sales["id"]}]}],
            },
        )
        assert r.status_code in (200, 204), r.text
        empty = create_group(c, "Nobody")
    return Directory(token, users, [sales, emea, empty], rich["id"])


def _counting(requests: list[httpx.Request]) -> httpx.Client:
    return httpx.Client(timeout=30, event_hooks={"request": [requests.append]})


def test_read_all_yields_every_user_then_every_group(live: LiveServer, directory: Directory) -> None:
    source = ScimSource(live.base, directory.token, page_size=500)
    changes = source.read_all()
    objects = list(changes.objects)
    kinds = [o.kind for o in objects]
    assert kinds == [ObjectKind.USER] * USERS + [ObjectKind.GROUP] * 3
    assert Counter(o.anchor for o in objects[:USERS]) == Counter(u["id"] for u in directory.users)
    assert {o.anchor for o in objects[USERS:]} == {g["id"] for g in directory.groups}
    assert not any(o.deleted for o in objects)
    by_anchor = {o.anchor: o for o in objects}
    manager_ids = {u["id"] for u in directory.users[:MANAGERS]}
    reporting = [o for o in objects[:USERS] if o.anchor not in manager_ids]
    assert all(o.attributes["manager"] in manager_ids for o in reporting)
    disabled = by_anchor[directory.users[7]["id"]]
    assert disabled.attributes["accountEnabled"] is False and disabled.attributes["IsSoftDeleted"] is True


def test_a_user_is_normalised_to_entra_names(live: LiveServer, directory: Directory) -> None:
    source = ScimSource(live.base, directory.token)
    alice = next(o for o in source.read_all().objects if o.anchor == directory.rich)
    assert dict(alice.attributes) == {
        "objectId": directory.rich,
        "userPrincipalName": "alice@contoso.com",
        "mailNickname": "alice.w",  # externalId, as Entra's default mapping wrote it
        "externalId": "alice.w",
        "displayName": "Alice Wong",
        "givenName": "Alice",
        "surname": "Wong",
        "jobTitle": "Engineer",
        "preferredLanguage": "en-GB",
        "userType": "Member",
        "mail": "alice@contoso.com",
        "telephoneNumber": "+44 20 1111",
        "mobile": "+44 77 2222",
        "facsimileTelephoneNumber": "+44 20 3333",
        "streetAddress": "1 Main St",
        "city": "London",
        "state": "Greater London",
        "postalCode": "N1 9GU",
        "country": "GB",
        "physicalDeliveryOfficeName": "Building 4",
        "employeeId": "E99999",
        "department": "R&D",
        "costCenter": "CC-7",
        "division": "Cloud",
        "organization": "Contoso",
        "manager": directory.users[0]["id"],
        "accountEnabled": True,
        "IsSoftDeleted": False,
    }
    assert alice.get("userprincipalname") == "alice@contoso.com"


def test_groups_carry_direct_user_members_and_nested_groups(live: LiveServer, directory: Directory) -> None:
    source = ScimSource(live.base, directory.token)
    groups = {o.attributes["displayName"]: o for o in source.read_all().objects if o.kind is ObjectKind.GROUP}
    sales, emea, empty = directory.groups
    team = dict(groups["Sales Team"].attributes)
    team["members"] = sorted(team["members"])  # member order is the server's
    assert team == {
        "objectId": sales["id"],
        "displayName": "Sales Team",
        "mailNickname": "salesteam",
        "securityEnabled": True,
        "members": sorted(u["id"] for u in directory.users[:10]),
        "memberGroups": [],
    }
    assert set(groups["EMEA"].attributes["members"]) == {u["id"] for u in directory.users[10:15]}
    assert groups["EMEA"].attributes["memberGroups"] == [sales["id"]]
    assert groups["Nobody"].attributes["members"] == [] and groups["Nobody"].anchor == empty["id"]


def test_paging_is_lazy_and_bounded_by_one_page(live: LiveServer, directory: Directory) -> None:
    requests: list[httpx.Request] = []
    source = ScimSource(live.base, directory.token, page_size=100, client=_counting(requests))
    objects = source.read_all().objects
    assert requests == []  # nothing is read before the engine asks
    first = next(objects)
    assert first.kind is ObjectKind.USER
    assert len(requests) == 1 and requests[0].url.params["count"] == "100"
    for _ in range(99):
        next(objects)
    assert len(requests) == 1  # the whole first page came from one response
    next(objects)
    assert len(requests) == 2 and 'id gt "' in requests[1].url.params["filter"]
    rest = list(objects)
    assert len(rest) == USERS - 101 + 3
    user_pages = [r for r in requests if r.url.path.endswith("/Users")]
    assert len(user_pages) == USERS // 100  # keyset stops when a page holds all that is left
    assert all(r.url.params["sortBy"] == "id" for r in requests)


def test_offset_paging_yields_the_same_objects(live: LiveServer, directory: Directory) -> None:
    requests: list[httpx.Request] = []
    source = ScimSource(
        live.base, directory.token, page_size=300, paging="offset", client=_counting(requests)
    )
    anchors = [o.anchor for o in source.read_all().objects]
    assert len(anchors) == len(set(anchors)) == USERS + 3
    starts = [r.url.params["startIndex"] for r in requests if r.url.path.endswith("/Users")]
    assert starts == ["1", "301", "601", "901"]


@pytest.fixture
def small(live: LiveServer) -> Iterator[tuple[str, httpx.Client, list[dict[str, Any]]]]:
    """A tenant of 130 users (two pages of 100) and a group of the first three."""
    _, token = live.new_tenant()
    with live.client(token) as c:
        users = _bulk_users(c, [_user_body(i, None) for i in range(130)])
        create_group(c, "Team", [u["id"] for u in users[:3]])
        yield token, c, users


def _rename(client: httpx.Client, user_id: str, name: str) -> None:
    r = client.patch(
        f"/Users/{user_id}",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": name}]},
    )
    assert r.status_code in (200, 204), r.text


def test_read_changes_yields_modified_new_and_deleted_users(live: LiveServer, small: Any) -> None:
    token, c, users = small
    source = ScimSource(live.base, token, page_size=100)
    first = source.read_all()
    assert len(list(first.objects)) == 131
    watermark = first.final_watermark()
    time.sleep(2.1)  # the HTTP Date has one-second resolution (and uvicorn caches it for a second)
    for u in users[10:13]:
        _rename(c, u["id"], f"Renamed {u['id']}")
    gone = users[50]["id"]
    assert c.delete(f"/Users/{gone}").status_code == 204
    added = create_user(c, "newcomer@contoso.com")["id"]

    known = {ObjectKind.USER: [u["id"] for u in users], ObjectKind.GROUP: []}
    asked: list[ObjectKind] = []

    def known_anchors(kind: ObjectKind) -> list[str]:
        asked.append(kind)
        return known[kind]

    changes = source.read_changes(watermark, known_anchors)
    got = list(changes.objects)
    assert {(o.anchor, o.deleted) for o in got} == {
        *((u["id"], False) for u in users[10:13]),
        (added, False),
        (gone, True),
    }
    assert len(got) == 5 and asked == [ObjectKind.USER, ObjectKind.GROUP]
    renamed = next(o for o in got if o.anchor == users[10]["id"])
    assert renamed.attributes["displayName"] == f"Renamed {users[10]['id']}"
    assert next(o for o in got if o.deleted) == SourceObject(ObjectKind.USER, gone, {}, deleted=True)
    advanced = changes.final_watermark()
    assert json.loads(advanced)["since"] > json.loads(watermark)["since"]
    # The engine drops the deleted connection and adds the new one. Nothing changed since: the
    # overlap window is de-duplicated by (anchor, version).
    known[ObjectKind.USER] = [u["id"] for u in users if u["id"] != gone] + [added]
    assert list(source.read_changes(advanced, known_anchors).objects) == []


def test_deletions_confirms_what_the_id_listing_misses_and_lists_nothing_for_nothing_known(
    live: LiveServer, small: Any
) -> None:
    token, c, users = small
    requests: list[httpx.Request] = []
    client = httpx.Client(event_hooks={"request": [requests.append]})
    source = ScimSource(live.base, token, page_size=100, id_page_size=50, client=client)
    assert source.deletions(ObjectKind.USER, []) == [] and requests == []  # nothing known: no listing
    gone = users[7]["id"]
    assert c.delete(f"/Users/{gone}").status_code == 204
    known = [u["id"] for u in users[:20]] + ["never-there"]
    got = source.deletions(ObjectKind.USER, iter(known))
    assert got == [
        SourceObject(ObjectKind.USER, gone, {}, deleted=True),
        SourceObject(ObjectKind.USER, "never-there", {}, deleted=True),
    ]
    listing = [
        r for r in requests if r.url.path.endswith("/Users") and r.url.params.get("attributes") == "id"
    ]
    assert len(listing) == 3  # 129 users in pages of 50
    confirmed = sorted(r.url.path.rsplit("/", 1)[-1] for r in requests if not r.url.path.endswith("/Users"))
    assert confirmed == sorted([gone, "never-there"])  # each missing id is confirmed by a GET
    client.close()


def test_a_change_made_while_a_page_is_being_read_is_not_missed(live: LiveServer, small: Any) -> None:
    token, c, users = small
    # No overlap: only the clamp to the server's Date at the first page protects the first user,
    # whose change is older than the latest lastModified the read saw.
    source = ScimSource(live.base, token, page_size=100, overlap_seconds=0)
    full = source.read_all()
    seen = next(full.objects)  # page 1 is read: this user's state is now old news
    _rename(c, seen.anchor, "Changed during the read")
    later = max(users, key=lambda u: u["id"])  # on the last page, read after the change
    _rename(c, later["id"], "Also changed")
    rest = list(full.objects)
    assert any(o.attributes.get("displayName") == "Also changed" for o in rest)
    changes = list(source.read_changes(full.final_watermark()).objects)
    assert {o.anchor: o.attributes["displayName"] for o in changes}[seen.anchor] == "Changed during the read"


def test_group_membership_change_is_a_group_change(live: LiveServer, small: Any) -> None:
    """The group is read again with its members; on Provisor the User who left is too (its
    ``groups`` changed, and with them its version and lastModified), and no other object."""
    token, c, users = small
    source = ScimSource(live.base, token)
    full = source.read_all()
    list(full.objects)
    group = next(g for g in c.get("/Groups").json()["Resources"])
    r = c.patch(
        f"/Groups/{group['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "remove", "path": f'members[value eq "{users[0]["id"]}"]'}],
        },
    )
    assert r.status_code in (200, 204), r.text
    got = list(source.read_changes(full.final_watermark()).objects)
    assert [(o.kind, o.anchor) for o in got] == [
        (ObjectKind.USER, users[0]["id"]),
        (ObjectKind.GROUP, group["id"]),
    ]
    assert set(got[1].attributes["members"]) == {users[1]["id"], users[2]["id"]}


def test_the_settled_watermark_needs_a_finished_read(live: LiveServer, small: Any) -> None:
    source = ScimSource(live.base, small[0])
    changes = source.read_all()
    next(changes.objects)
    with pytest.raises(RuntimeError):
        changes.final_watermark()
    assert json.loads(changes.watermark) == {"v": 1, "since": None, "seen": []}


def test_a_foreign_watermark_is_refused(live: LiveServer, small: Any) -> None:
    with pytest.raises(SourceError, match="full read"):
        ScimSource(live.base, small[0]).read_changes("42")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_test_connection(live: LiveServer, small: Any) -> None:
    ScimSource(live.base, small[0]).test()
    with pytest.raises(SourceError) as refused:
        ScimSource(live.base, "not-the-token-s3cret").test()
    assert "refused the token (HTTP 401)" in str(refused.value) and "s3cret" not in str(refused.value)
    with pytest.raises(SourceError, match=r"no SCIM endpoint at .*/nowhere/Users \(HTTP 404\)"):
        ScimSource(live.root + "/nowhere", small[0]).test()
    with pytest.raises(SourceError, match="cannot reach the SCIM source at http://127.0.0.1:") as down:
        ScimSource(f"http://127.0.0.1:{_free_port()}/scim/v2", "tok-s3cret").test()
    assert "s3cret" not in str(down.value) and "ConnectError" in str(down.value)


def test_auto_paging_falls_back_to_offset_when_the_server_ignores_sortby() -> None:
    """A server that returns its own order (here: descending) and ignores ``id gt``."""
    ids = [f"{n:03d}" for n in range(7, 0, -1)]
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        path = request.url.path
        if path.endswith("/Groups"):
            return httpx.Response(200, json={"totalResults": 0, "Resources": []})
        start, count = int(request.url.params["startIndex"]), int(request.url.params["count"])
        page = [{"id": i, "userName": f"u{i}@x"} for i in ids[start - 1 : start - 1 + count]]
        return httpx.Response(200, json={"totalResults": len(ids), "Resources": page})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    source = ScimSource("http://directory.test/scim", "t", page_size=3, client=client)
    got = [o.anchor for o in source.read_all().objects]
    assert got == ids
    users = [r for r in requests if r.url.path.endswith("/Users")]
    assert "sortBy" in users[0].url.params  # the keyset probe, discarded
    assert [r.url.params["startIndex"] for r in users[1:]] == ["1", "4", "7"]
    assert all("sortBy" not in r.url.params for r in users[1:])


def test_deletion_detection_lists_ids_in_pages_of_id_page_size(live: LiveServer, small: Any) -> None:
    token, _, users = small
    requests: list[httpx.Request] = []
    source = ScimSource(live.base, token, page_size=100, id_page_size=50, client=_counting(requests))
    watermark = source.read_all()
    list(watermark.objects)
    requests.clear()
    known = {ObjectKind.USER: [u["id"] for u in users], ObjectKind.GROUP: []}
    assert list(source.read_changes(watermark.final_watermark(), known.__getitem__).objects) == []
    id_pages = [r.url.params["count"] for r in requests if r.url.params.get("attributes") == "id"]
    user_id_pages = [r for r in requests if r.url.params.get("attributes") == "id" and "/Users" in r.url.path]
    assert set(id_pages) == {"50"} and len(user_id_pages) == 3  # 130 users
    # in the server's order (startIndex), not sorted by id: cheaper for the server
    assert [r.url.params["startIndex"] for r in user_id_pages] == ["1", "51", "101"]
    assert not any("sortBy" in r.url.params for r in user_id_pages)
    assert all(r.url.params["count"] == "100" for r in requests if "attributes" not in r.url.params)


def test_id_page_size_defaults() -> None:
    from provisor.engine.jobs.model import Secret, SourceConfig, SourceType

    def ids(**options: str) -> int:
        config = SourceConfig(
            SourceType("scim"), url="http://x.test/scim", token=Secret("t"), options=tuple(options.items())
        )
        return ScimSource.from_config(config)._id_page_size

    assert ScimSource("http://x.test", "t")._id_page_size == 1000
    assert ScimSource("http://x.test", "t", page_size=2000)._id_page_size == 2000
    assert ids() == 1000
    assert ids(page_size="100") == 100  # a server that allows no more than page_size
    assert ids(page_size="100", id_page_size="400") == 400


@pytest.mark.parametrize("body", [b"<html>gateway</html>", b"[1, 2]", b""])
def test_a_source_answering_without_a_json_object_is_a_source_error(body: bytes) -> None:
    """A proxy's HTML page or a JSON array, on a listing and on a single read: a SourceError naming
    the URL, never a decoding traceback."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": "text/html"})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    source = ScimSource("http://directory.test/scim", "t", client=client)
    with pytest.raises(SourceError, match=r"http://directory.test/scim/Users did not answer with"):
        list(source.read_all().objects)
    with pytest.raises(SourceError, match=r"http://directory.test/scim/Users/u1 did not answer with"):
        source.get(ObjectKind.USER, "u1")
