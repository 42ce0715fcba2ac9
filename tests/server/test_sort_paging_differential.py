"""Differential property tests of sorted and paged listings on a live server: for generated Users
(POSTed, so validated and stored as any client's), a ``sortBy``/``sortOrder`` (any attribute, in
any case, with or without its schema URN) and a filter, the pages of a walk by ``startIndex`` and
of one by cursor (RFC 9865) hold the Python model's order (``tests/store/sort_model.py``) and the
evaluator's matches, each once, with the right ``totalResults``; and an unsorted cursor walk keeps
what docs/user-guide.md ("Paging through a tenant") promises while Users are created, deleted and
modified between its pages: id order, no User twice, none that stayed (and kept matching) missed."""

from __future__ import annotations

import os
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import USER, LiveServer
from tests.scim.filter.filter_strategies import USER_RT, filters, render, render_path
from tests.store.populations import WORDS, text, user_bodies
from tests.store.sort_model import model_order, sortable_paths

from provisor.scim.filter.ast import AttrPath, Filter
from provisor.scim.filter.evaluate import matches
from provisor.scim.schema.model import ENTERPRISE_USER

EXAMPLES = int(os.environ.get("DIFF_EXAMPLES", "12"))
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
USER_PATHS = sortable_paths(USER_RT)
CASES = [str, str.upper, str.swapcase]
vocabulary = st.sampled_from([*WORDS, "@x.com", "work", "A@x.com"])
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def post_users(c: httpx.Client, bodies: list[dict[str, Any]]) -> None:
    for i, body in enumerate(bodies):
        body = {**body, "schemas": [USER, ENTERPRISE_USER], "userName": f"{body['userName']}#{i}"}
        r = c.post("/Users", json=body)
        assert r.status_code == 201, r.text


def everyone(c: httpx.Client) -> list[dict[str, Any]]:
    """Every User as rendered, in creation order (an unsorted listing's)."""
    body = c.get("/Users", params={"count": 1000}).json()
    assert body["totalResults"] == len(body["Resources"])
    return body["Resources"]  # type: ignore[no-any-return]


def sort_text(path: AttrPath, data: st.DataObject) -> str:
    case = data.draw(st.sampled_from(CASES), label="case")
    return render_path(path, case, core_urn=path.urn is None and data.draw(st.booleans(), label="core urn"))


def walk_by_cursor(c: httpx.Client, params: dict[str, Any], count: int) -> tuple[list[str], list[int]]:
    """The ids of every page of a cursor walk, and each page's totalResults."""
    ids: list[str] = []
    totals: list[int] = []
    cursor = ""
    while True:
        r = c.get("/Users", params={**params, "count": count, "cursor": cursor, "attributes": "id"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert "startIndex" not in body and body["itemsPerPage"] == len(body["Resources"]) <= count
        ids += [u["id"] for u in body["Resources"]]
        totals.append(body["totalResults"])
        if "nextCursor" not in body:
            return ids, totals
        assert body["itemsPerPage"] == count
        cursor = body["nextCursor"]
        assert len(totals) <= 100, "the cursor does not advance"


def walk_by_index(c: httpx.Client, params: dict[str, Any], count: int, total: int) -> list[str]:
    """The ids of the pages at startIndex 1, 1 + count, ... (a POST /.search every other page)."""
    ids: list[str] = []
    for first in range(1, total + 2, count):
        page = {**params, "startIndex": first, "count": count}
        if first % 2:
            r = c.get("/Users", params=page)
        else:
            r = c.post("/Users/.search", json={"schemas": [SEARCH], **page})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["totalResults"] == total and body["startIndex"] == first
        ids += [u["id"] for u in body["Resources"]]
    return ids


@SETTINGS
@given(data=st.data())
def test_sorted_pages_by_index_and_by_cursor_follow_the_model(live: LiveServer, data: st.DataObject) -> None:
    _, token = live.new_tenant()
    with live.client(token) as c:
        post_users(c, data.draw(st.lists(user_bodies, min_size=1, max_size=10), label="users"))
        docs = everyone(c)
        f: Filter | None = data.draw(st.none() | filters(vocabulary, max_leaves=2), label="filter")
        path = data.draw(st.sampled_from(USER_PATHS), label="sortBy")
        descending = data.draw(st.booleans(), label="descending")
        chosen = [d for d in docs if f is None or matches(f, d, USER_RT)]
        expected = model_order(chosen, path, descending, USER_RT)
        params: dict[str, Any] = {"sortBy": sort_text(path, data)}
        if descending or data.draw(st.booleans(), label="sortOrder given"):
            params["sortOrder"] = "descending" if descending else "ascending"
        if f is not None:
            params["filter"] = render(f)
        count = data.draw(st.integers(1, 4), label="count")
        ids, totals = walk_by_cursor(c, params, count)
        # a cursor walk breaks ties by id, a walk by index by creation
        assert ids == model_order(chosen, path, descending, USER_RT, ties_by_id=True), (params, count)
        assert set(totals) == {len(expected)}
        assert walk_by_index(c, params, count, len(expected)) == expected


def write_between_pages(c: httpx.Client, data: st.DataObject, made: int) -> tuple[int, str | None]:
    """Nothing, a new User, or a User deleted or modified (its title, maybe its displayName), as
    drawn: (how many Users were created, the one deleted or modified)."""
    ids = [d["id"] for d in everyone(c)]  # in creation order: ids differ between runs of the same draws
    action = data.draw(st.sampled_from(["none", "create", "delete", "modify"]), label="write")
    if action == "create":
        post_users(c, [{**data.draw(user_bodies, label="new user"), "userName": f"late{made + 1}"}])
        return 1, None
    if action == "none" or not ids:
        return 0, None
    target = data.draw(st.sampled_from(ids), label="target")
    if action == "delete":
        assert c.delete(f"/Users/{target}").status_code == 204
        return 0, target
    ops = [{"op": "replace", "path": "title", "value": data.draw(text, label="title")}]
    if data.draw(st.booleans(), label="displayName"):
        ops.append({"op": "replace", "path": "displayName", "value": data.draw(text)})
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}
    assert c.patch(f"/Users/{target}", json=patch).status_code in (200, 204)
    return 0, target


@SETTINGS
@given(data=st.data())
def test_an_unsorted_cursor_walk_under_writes_keeps_its_promises(
    live: LiveServer, data: st.DataObject
) -> None:
    """Between the pages of a walk Users are created, deleted, or modified (which may make them
    match the filter or stop matching). Each page is in id order after the last; no User comes
    twice; each returned User matches when its page is read; each page's totalResults counts the
    matches at that moment; and every User that existed and matched throughout is returned."""
    _, token = live.new_tenant()
    with live.client(token) as c:
        post_users(c, data.draw(st.lists(user_bodies, min_size=1, max_size=10), label="users"))
        f: Filter | None = data.draw(st.none() | filters(vocabulary, max_leaves=2), label="filter")
        params: dict[str, Any] = {} if f is None else {"filter": render(f)}
        count = data.draw(st.integers(1, 4), label="count")
        made = 0

        def matching() -> set[str]:
            return {d["id"] for d in everyone(c) if f is None or matches(f, d, USER_RT)}

        stayed = matching()  # what exists and matches at every page read, so far
        seen: list[str] = []
        cursor = ""
        for _ in range(100):
            now = matching()
            stayed &= now
            ask = {**params, "count": count, "cursor": cursor}
            how = data.draw(st.sampled_from(["get", "ids", "search"]), label="how")
            if how == "search":  # the same walk may go on in a .search body, or listing ids only
                r = c.post("/Users/.search", json={"schemas": [SEARCH], **ask})
            else:
                r = c.get("/Users", params=ask | ({"attributes": "id"} if how == "ids" else {}))
            assert r.status_code == 200, r.text
            body = r.json()
            page = [u["id"] for u in body["Resources"]]
            assert body["totalResults"] == len(now)
            assert set(page) <= now and page == sorted(page) and len(page) <= count
            assert not seen or not page or seen[-1] < page[0]
            seen += page
            if "nextCursor" not in body:
                break
            cursor = body["nextCursor"]
            made += write_between_pages(c, data, made)[0]
        else:
            raise AssertionError("the cursor does not advance")
        assert len(seen) == len(set(seen))
        assert stayed <= set(seen), stayed - set(seen)


@SETTINGS
@given(data=st.data())
def test_a_sorted_cursor_walk_under_writes_neither_repeats_nor_skips_what_stays(
    live: LiveServer, data: st.DataObject
) -> None:
    """A sorted walk by cursor (each holds the sort value and id of its page's last User), with
    Users created, deleted or modified between its pages: each page's totalResults counts the matches
    at that moment; no User left alone comes twice; every User left alone that matched
    throughout is returned; and those come in the model's order (ties by id). A modified User
    may move past the cursor or back, so it may come twice or not at all."""
    _, token = live.new_tenant()
    with live.client(token) as c:
        post_users(c, data.draw(st.lists(user_bodies, min_size=1, max_size=10), label="users"))
        f: Filter | None = data.draw(st.none() | filters(vocabulary, max_leaves=2), label="filter")
        path = data.draw(st.sampled_from(USER_PATHS), label="sortBy")
        descending = data.draw(st.booleans(), label="descending")
        params: dict[str, Any] = {"sortBy": sort_text(path, data)}
        params["sortOrder"] = "descending" if descending else "ascending"
        if f is not None:
            params["filter"] = render(f)
        count = data.draw(st.integers(1, 4), label="count")
        made = 0

        def matching() -> set[str]:
            return {d["id"] for d in everyone(c) if f is None or matches(f, d, USER_RT)}

        stayed = matching()
        touched: set[str] = set()
        seen: list[str] = []
        cursor = ""
        for _ in range(100):
            now = matching()
            stayed &= now
            r = c.get("/Users", params={**params, "count": count, "cursor": cursor, "attributes": "id"})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["totalResults"] == len(now) and len(body["Resources"]) <= count
            seen += [u["id"] for u in body["Resources"]]
            if "nextCursor" not in body:
                break
            cursor = body["nextCursor"]
            wrote, target = write_between_pages(c, data, made)
            made += wrote
            if target is not None:
                touched.add(target)
        else:
            raise AssertionError("the cursor does not advance")
        calm = [i for i in seen if i not in touched]
        assert len(calm) == len(set(calm)), "a User left alone came twice"
        assert stayed - touched <= set(calm), (stayed - touched) - set(calm)
        docs = {d["id"]: d for d in everyone(c)}
        left_alone = [docs[i] for i in sorted(docs) if i in set(calm)]
        assert calm == model_order(left_alone, path, descending, USER_RT, ties_by_id=True)
