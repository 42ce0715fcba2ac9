"""Cursor-based pagination (RFC 9865) on a live server: every page, no repeats and no gaps under
concurrent writes, the errors, discovery, and scim2-models / scim2-client as third-party oracles."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from scim2_models import ListResponse, ServiceProviderConfig, User
from tests.conftest import assert_scim_error, create_group, create_user

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def walk(client: httpx.Client, **params: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every page of a cursor-paged listing: (the resources, the pages' bodies)."""
    found: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    cursor = ""
    while True:
        r = client.get("/Users", params={**params, "cursor": cursor})
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body)
        found += body["Resources"]
        if "nextCursor" not in body:
            return found, pages
        cursor = body["nextCursor"]
        assert len(pages) < 100, "the cursor does not advance"


def test_cursor_pages_list_every_user_once(client: httpx.Client) -> None:
    made = {create_user(client, f"c{i:02d}@x.com")["id"] for i in range(23)}
    found, pages = walk(client, count=5)
    assert [u["id"] for u in found] == sorted(made)  # unsorted queries page in id order
    assert [p["itemsPerPage"] for p in pages] == [5, 5, 5, 5, 3]
    assert all(p["totalResults"] == 23 and "startIndex" not in p for p in pages)
    assert "nextCursor" not in pages[-1] and all("nextCursor" in p for p in pages[:-1])
    # an exact multiple of count: the last full page says there is no next one
    exact, exact_pages = walk(client, count=23)
    assert len(exact_pages) == 1 and len(exact) == 23


def test_cursor_pages_with_a_filter_sort_and_projection(client: httpx.Client) -> None:
    for i in range(12):
        create_user(client, f"s{i:02d}@x.com", title="odd" if i % 2 else "even")
    odd, pages = walk(client, filter='title eq "odd"', count=4)
    assert sorted(u["userName"] for u in odd) == [f"s{i:02d}@x.com" for i in range(1, 12, 2)]
    assert all(p["totalResults"] == 6 for p in pages)
    by_name, _ = walk(client, sortBy="userName", sortOrder="descending", count=5)
    assert [u["userName"] for u in by_name] == sorted((u["userName"] for u in by_name), reverse=True)
    assert len(by_name) == 12
    ids, _ = walk(client, attributes="id", count=5)
    assert all(set(u) == {"schemas", "id"} for u in ids) and len(ids) == 12


def test_writes_between_pages_neither_repeat_nor_skip_what_stays(client: httpx.Client) -> None:
    """Keyset pages by id: resources created or deleted mid-walk only appear or vanish
    themselves; every resource that exists throughout is listed exactly once."""
    users = [create_user(client, f"w{i:02d}@x.com")["id"] for i in range(20)]
    first = client.get("/Users", params={"cursor": "", "count": 6}).json()
    seen = [u["id"] for u in first["Resources"]]
    for gone in sorted(users)[:3] + sorted(users)[-2:]:  # before and after the cursor
        assert client.delete(f"/Users/{gone}").status_code == 204
    added = [create_user(client, f"late{i}@x.com")["id"] for i in range(4)]
    cursor = first["nextCursor"]
    while cursor:
        body = client.get("/Users", params={"cursor": cursor, "count": 6}).json()
        seen += [u["id"] for u in body["Resources"]]
        cursor = body.get("nextCursor")
    assert len(seen) == len(set(seen))
    stayed = set(sorted(users)[3:-2])
    assert stayed <= set(seen)
    assert set(seen) <= set(users) | set(added)


def test_search_requests_page_by_cursor_too(client: httpx.Client) -> None:
    for i in range(7):
        create_user(client, f"p{i}@x.com")
    body: dict[str, Any] = {"schemas": [SEARCH], "cursor": "", "count": 3, "filter": 'userName sw "p"'}
    names: list[str] = []
    while True:
        page = client.post("/Users/.search", json=body).json()
        names += [u["userName"] for u in page["Resources"]]
        if "nextCursor" not in page:
            break
        body["cursor"] = page["nextCursor"]
    assert sorted(names) == [f"p{i}@x.com" for i in range(7)]
    across = client.post("/.search", json={"schemas": [SEARCH], "cursor": ""})
    assert_scim_error(across, 400, "invalidValue")


def test_pagination_errors(client: httpx.Client) -> None:
    for i in range(4):
        create_user(client, f"e{i}@x.com")
    page = client.get("/Users", params={"cursor": "", "count": 2, "filter": 'userName sw "e"'}).json()
    cursor = page["nextCursor"]
    before = client.get("/Users", params={"count": 0}).json()["totalResults"]
    cases = [
        ({"cursor": "not-a-cursor"}, "invalidCursor"),
        ({"cursor": cursor}, "invalidCursor"),  # another query's (no filter here)
        ({"cursor": cursor, "filter": 'userName sw "x"'}, "invalidCursor"),
        ({"cursor": "", "count": 0}, "invalidCount"),
        ({"cursor": "", "count": -3}, "invalidCount"),
        ({"cursor": "", "count": "ten"}, "invalidCount"),
        ({"cursor": "", "startIndex": 2}, "invalidValue"),
    ]
    for params, scim_type in cases:
        error = assert_scim_error(client.get("/Users", params=params), 400, scim_type)
        assert error["detail"], params
    assert client.get("/Users", params={"count": 0}).json()["totalResults"] == before
    # above the maximum page size the page is just smaller, as with startIndex
    big = client.get("/Users", params={"cursor": "", "count": 10**9}).json()
    assert big["itemsPerPage"] == before


def test_cursors_stay_in_their_tenant(live: Any) -> None:
    _, token_a = live.new_tenant()
    _, token_b = live.new_tenant()
    with live.client(token_a) as a, live.client(token_b) as b:
        for i in range(3):
            create_user(a, f"a{i}@x.com")
        create_user(b, "b0@x.com")
        cursor = a.get("/Users", params={"cursor": "", "count": 1}).json()["nextCursor"]
        other = b.get("/Users", params={"cursor": cursor, "count": 1}).json()  # same query shape
        assert [u["userName"] for u in other["Resources"]] in ([], ["b0@x.com"])
        assert other["totalResults"] == 1


def test_discovery_and_responses_satisfy_scim2_models(client: httpx.Client) -> None:
    spc = client.get("/ServiceProviderConfig").json()
    assert spc["pagination"] == {
        "cursor": True,
        "index": True,
        "defaultPaginationMethod": "index",
        "defaultPageSize": spc["pagination"]["defaultPageSize"],
        "maxPageSize": spc["filter"]["maxResults"],
    }
    config = ServiceProviderConfig.model_validate(spc)
    assert config.pagination is not None and config.pagination.cursor is True
    for i in range(3):
        create_user(client, f"m{i}@x.com")
    create_group(client, "g")
    body = client.get("/Users", params={"cursor": "", "count": 2}).json()
    parsed = ListResponse[User].model_validate(body)
    assert parsed.next_cursor == body["nextCursor"] and parsed.items_per_page == 2


def test_scim2_client_walks_the_cursor_pages(live: Any) -> None:
    """A third-party client (scim2-client) pages through with the cursors the server hands out."""
    httpx2 = pytest.importorskip("httpx2", reason="scim2-client's httpx2 engine is not installed")
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_models import SearchRequest

    _, token = live.new_tenant()
    with live.client(token) as c:
        made = {create_user(c, f"k{i}@x.com")["userName"] for i in range(7)}
    with httpx2.Client(base_url=live.base, headers={"Authorization": f"Bearer {token}"}) as http:
        scim = SyncSCIMClient(http)
        scim.discover()
        names: list[str] = []
        cursor: str | None = ""
        while cursor is not None:
            page = scim.query(User, query_parameters=SearchRequest(cursor=cursor, count=3))
            assert isinstance(page, ListResponse), page
            names += [u.user_name for u in page.resources or []]
            cursor = page.next_cursor
    assert sorted(names) == sorted(made)


@pytest.mark.parametrize("count", [1, 2, 7])
def test_groups_page_by_cursor(client: httpx.Client, count: int) -> None:
    made = {create_group(client, f"grp{i}")["id"] for i in range(5)}
    seen: list[str] = []
    cursor = ""
    while True:
        body = client.get(
            "/Groups", params={"cursor": cursor, "count": count, "excludedAttributes": "members"}
        ).json()
        seen += [g["id"] for g in body["Resources"]]
        if "nextCursor" not in body:
            break
        cursor = body["nextCursor"]
    assert seen == sorted(made)


def test_a_sorted_cursor_holds_the_last_users_position_and_an_older_offset_one_still_works(
    client: httpx.Client,
) -> None:
    """A sorted page's nextCursor holds the sort value and id of its last User; one issued by an
    older Provisor (the offset of the next page) still pages, from that offset."""
    import base64
    import json

    for i, title in enumerate(["b", "a", "c", "A", "B"]):
        create_user(client, f"t{i}@x.com", title=title)
    sorted_by = {"sortBy": "title", "count": 2, "attributes": "title"}
    first = client.get("/Users", params={**sorted_by, "cursor": ""}).json()
    version, digest, kind, key = base64.urlsafe_b64decode(first["nextCursor"] + "==").decode().split(".", 3)
    assert (version, kind) == ("1", "k")
    last = first["Resources"][-1]
    assert last["title"] == "A" and json.loads(key) == ["a", last["id"]]  # folded, as the store sorts
    whole, _ = walk(client, sortBy="title", count=100)
    older = base64.urlsafe_b64encode(f"1.{digest}.o.2".encode()).decode().rstrip("=")
    rest = client.get("/Users", params={**sorted_by, "cursor": older}).json()
    assert [u["id"] for u in rest["Resources"]] == [u["id"] for u in whole[2:4]]
    assert rest["totalResults"] == 5 and "nextCursor" in rest
