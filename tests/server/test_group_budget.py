"""A page of Users in very many groups ends at the server's budget of group references
(``ServerConfig.page_group_refs``): ``itemsPerPage`` below ``count`` (RFC 7644 section 3.4.2.4
lets a service provider return fewer), ``totalResults`` exact, and paging on by startIndex +
itemsPerPage or by cursor lists every User once. A small budget here stands for the default's
100,000 references."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import PATCH_OP, LiveServer, create_group, create_user, serving

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BUDGET = 10


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from provisor.server import ServerConfig

    db: Path = tmp_path_factory.mktemp("budget") / "provisor.db"
    with serving(f"sqlite:///{db}", ServerConfig(access_log=False, page_group_refs=BUDGET)) as live:
        yield live


@pytest.fixture(scope="module")
def crowd(budgeted: LiveServer) -> Iterator[tuple[httpx.Client, list[str]]]:
    """14 Users (in creation order): 0-5 in Inner, which is in Outer1 and Outer2 (3 groups each,
    2 indirect), 6-11 in D1 to D4 directly (4 each), 12-13 in none; 7 Groups."""
    _, token = budgeted.new_tenant()
    with budgeted.client(token) as client:
        users = [create_user(client, f"u{i:02d}@x.com", externalId="team")["id"] for i in range(14)]
        inner = create_group(client, "Inner", users[:6])["id"]
        for name in ("Outer1", "Outer2"):
            create_group(client, name, [inner])
        for name in ("D1", "D2", "D3", "D4"):
            create_group(client, name, users[6:12])
        yield client, users


def by_index(
    client: httpx.Client, path: str = "/Users", body: dict[str, Any] | None = None, **params: Any
) -> list[dict[str, Any]]:
    """Every page of a listing by startIndex + itemsPerPage (a SearchRequest POST with ``body``)."""
    pages: list[dict[str, Any]] = []
    start = 1
    while True:
        if body is None:
            r = client.get(path, params={**params, "startIndex": start})
        else:
            r = client.post(path, json={"schemas": [SEARCH], **body, "startIndex": start})
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["startIndex"] == start and page["itemsPerPage"] == len(page["Resources"])
        pages.append(page)
        if not page["Resources"]:
            return pages
        start += page["itemsPerPage"]
        assert len(pages) < 50, "the pages do not advance"


def listed(pages: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for p in pages for r in p["Resources"]]


def refs(page: dict[str, Any]) -> int:
    return sum(len(r.get("groups", ())) for r in page["Resources"])


def test_a_page_ends_at_the_user_whose_groups_reach_the_budget(crowd: tuple[httpx.Client, list[str]]) -> None:
    client, users = crowd
    first = client.get("/Users", params={"count": 100}).json()
    # users 0-2 carry 9 references, user 3 reaches 12: the page ends there, with user 3 whole
    assert (first["totalResults"], first["startIndex"], first["itemsPerPage"]) == (14, 1, 4)
    assert [r["id"] for r in first["Resources"]] == users[:4] and refs(first) == 12
    for r in first["Resources"]:
        assert r["groups"] == client.get(f"/Users/{r['id']}").json()["groups"]
    pages = by_index(client, count=100)
    assert [p["itemsPerPage"] for p in pages] == [4, 3, 3, 4, 0]
    assert all(p["totalResults"] == 14 for p in pages)
    assert listed(pages) == users  # every User once, in order


@pytest.mark.parametrize(
    "how",
    [
        {"filter": 'userName sw "u"'},  # a filter compiled to SQL
        {"filter": 'externalId eq "team"'},  # Entra's match lookup, a prepared statement
        {"sortBy": "userName", "sortOrder": "descending"},
        {"post": {}},  # POST /Users/.search
        {"post": {"filter": 'externalId eq "team"'}},
    ],
    ids=["filter", "lookup", "sorted", "search", "search-lookup"],
)
def test_filtered_sorted_and_searched_pages_end_there_too(
    crowd: tuple[httpx.Client, list[str]], how: dict[str, Any]
) -> None:
    client, users = crowd
    post = how.pop("post", None)
    if post is None:
        pages = by_index(client, count=100, **how)
    else:
        pages = by_index(client, "/Users/.search", {**post, "count": 100})
    assert pages[0]["itemsPerPage"] < 14 and all(p["totalResults"] == 14 for p in pages)
    assert all(refs(p) < BUDGET + 4 for p in pages)  # under the budget but for the last User's
    assert sorted(listed(pages)) == sorted(users) and len(listed(pages)) == 14


@pytest.mark.parametrize(
    "params",
    [{"excludedAttributes": "groups"}, {"attributes": "userName"}, {"attributes": "id"}],
)
def test_a_page_without_groups_is_full(crowd: tuple[httpx.Client, list[str]], params: dict[str, str]) -> None:
    client, users = crowd
    page = client.get("/Users", params={"count": 100, **params}).json()
    assert page["itemsPerPage"] == 14 and [r["id"] for r in page["Resources"]] == users
    assert all("groups" not in r for r in page["Resources"])
    body = {"schemas": [SEARCH], "count": 100, **params}
    assert client.post("/Users/.search", json=body).json()["itemsPerPage"] == 14


@pytest.mark.parametrize("params", [{}, {"sortBy": "userName"}], ids=["by-id", "sorted"])
def test_cursor_pages_go_on_after_a_page_cut_short(
    crowd: tuple[httpx.Client, list[str]], params: dict[str, str]
) -> None:
    client, users = crowd
    found: list[str] = []
    pages: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = client.get("/Users", params={**params, "count": 100, "cursor": cursor}).json()
        pages.append(page)
        found += [r["id"] for r in page["Resources"]]
        if "nextCursor" not in page:
            break
        cursor = page["nextCursor"]
        assert len(pages) < 20, "the cursor does not advance"
    assert len(pages) > 1 and pages[0]["itemsPerPage"] < 14 and pages[-1]["Resources"]
    assert all(p["totalResults"] == 14 for p in pages)
    assert sorted(found) == sorted(users) and len(found) == 14


def test_a_search_across_types_stops_at_a_page_cut_short(crowd: tuple[httpx.Client, list[str]]) -> None:
    """The root /.search pages over Users then Groups: a page cut among the Users does not go on
    with Groups, or the Users after the cut would never be listed."""
    client, users = crowd
    pages = by_index(client, "/.search", {"count": 100})
    assert pages[0]["itemsPerPage"] == 4 and all(p["totalResults"] == 21 for p in pages)
    assert all("userName" in r for r in pages[0]["Resources"])
    found = listed(pages)
    assert found[:14] == users and len(found) == len(set(found)) == 21


def test_a_user_in_more_groups_than_the_budget_is_listed_whole(budgeted: LiveServer) -> None:
    _, token = budgeted.new_tenant()
    with budgeted.client(token) as client:
        big = create_user(client, "big@x.com")["id"]
        small = create_user(client, "small@x.com")["id"]
        for i in range(BUDGET + 2):
            create_group(client, f"G{i}", [big, small] if i == 0 else [big])
        page = client.get("/Users", params={"count": 10}).json()
        assert (page["totalResults"], page["itemsPerPage"]) == (2, 1)
        assert len(page["Resources"][0]["groups"]) == BUDGET + 2
        assert len(client.get(f"/Users/{big}").json()["groups"]) == BUDGET + 2
        pages = by_index(client, count=10)
        assert listed(pages) == [big, small]


def members(page: dict[str, Any]) -> int:
    return sum(len(r.get("members", ())) for r in page["Resources"])


@pytest.mark.parametrize(
    "params",
    [{}, {"filter": "displayName pr"}, {"sortBy": "displayName"}, {"filter": 'externalId eq "g"'}],
    ids=["list", "filter", "sorted", "lookup"],
)
def test_a_page_of_groups_ends_at_the_group_whose_members_reach_the_budget(
    crowd: tuple[httpx.Client, list[str]], params: dict[str, str]
) -> None:
    """The same budget holds a page of Groups' members: 25 groups of 20,000 members made one
    GET /Groups 77 MiB of JSON. Each Group comes whole; excludedAttributes=members is not cut."""
    client, _ = crowd
    if "externalId" in params.get("filter", ""):
        for g in client.get("/Groups", params={"excludedAttributes": "members", "count": 100}).json()[
            "Resources"
        ]:
            patch = {"op": "replace", "path": "externalId", "value": "g"}
            ok = client.patch(f"/Groups/{g['id']}", json={"schemas": [PATCH_OP], "Operations": [patch]})
            assert ok.status_code in (200, 204), ok.text
    whole = client.get("/Groups", params={**params, "count": 100, "excludedAttributes": "members"}).json()
    assert whole["itemsPerPage"] == whole["totalResults"] == 7
    pages = by_index(client, "/Groups", **params, count=100)
    assert all(p["totalResults"] == 7 for p in pages)
    assert [r["id"] for p in pages for r in p["Resources"]] == [r["id"] for r in whole["Resources"]]
    for page in pages[:-1]:
        kept = page["Resources"]
        assert members(page) >= BUDGET or page is pages[-2]  # cut at the budget, but the last
        assert members({"Resources": kept[:-1]}) < BUDGET  # the Group before the cut was under it
        for r in kept:
            assert r["members"] == client.get(f"/Groups/{r['id']}").json()["members"]
    assert len(pages) > 2  # cut at least once: 32 members against a budget of 10
