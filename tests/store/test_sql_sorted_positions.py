"""Sorted listings with ties by id, resumed after a position (``sorting.after_position``): the
pages of a walk after each page's last position are the whole listing's, in order, for every kind
of sort key (text folded or exact, "" and none, booleans, instants, multi-valued), both ways."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import event

from provisor.scim.filter.parser import parse_attr_path, parse_filter
from provisor.scim.schema.model import default_registry
from provisor.store.base import Query, SortKey
from provisor.store.sql import SqlStore

USER_RT = default_registry().resource_type("User")
assert USER_RT is not None
TITLES = ["b", "A", None, "a", "", "B", None, "c", "", "a"]


@pytest.fixture
def users(sql_store: SqlStore, tenant_id: str) -> list[str]:
    ids = []
    for i, title in enumerate(TITLES):
        data: dict[str, object] = {"userName": f"u{i}@x.com", "active": i % 3 != 0}
        if title is not None:
            data["title"] = title
        if i % 4:
            data["emails"] = [{"value": f"{'zyx'[i % 3]}{i}@x.com", "primary": i % 2 == 0}]
        ids.append(sql_store.create(tenant_id, "User", data).id)
    return ids


def walk(store: SqlStore, tenant: str, query: Query, count: int, *, ids_only: bool) -> list[str]:
    seen: list[str] = []
    position: SortKey | None = None
    for _ in range(50):
        page = replace(query, after=position, count=count)
        if ids_only:
            listing = store.search_ids(tenant, "User", page)
            found, positions, total = listing.ids, listing.positions, listing.total
        else:
            result = store.search(tenant, "User", page)
            found, positions, total = [r.id for r in result.resources], result.positions, result.total
        assert positions is not None and [p.id for p in positions] == found
        assert total == whole_total(store, tenant, query)  # every match, not those after the position
        seen += found
        if len(found) < count:
            return seen
        position = positions[-1]
    raise AssertionError("the walk does not advance")


def whole_total(store: SqlStore, tenant: str, query: Query) -> int:
    return store.search(tenant, "User", replace(query, count=0, after=None)).total


@pytest.mark.parametrize(
    "sort_by", ["title", "active", "meta.created", "emails.value", "emails", "id", "userName"]
)
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("filter_text", [None, 'userName sw "u"', "active eq true"])
def test_a_walk_after_positions_is_the_whole_listing(
    sql_store: SqlStore,
    tenant_id: str,
    users: list[str],
    sort_by: str,
    descending: bool,
    filter_text: str | None,
) -> None:
    assert USER_RT is not None
    query = Query(
        filter=parse_filter(filter_text, USER_RT) if filter_text else None,
        sort_by=parse_attr_path(sort_by, USER_RT),
        descending=descending,
        ties_by_id=True,
    )
    whole = [r.id for r in sql_store.search(tenant_id, "User", replace(query, count=100)).resources]
    assert len(whole) == whole_total(sql_store, tenant_id, query) > 0
    for count in (1, 2, 3):
        assert walk(sql_store, tenant_id, query, count, ids_only=False) == whole, (sort_by, count)
        assert walk(sql_store, tenant_id, query, count, ids_only=True) == whole, (sort_by, count)


def test_ties_and_values_follow_the_rfc_order_with_ties_by_id(
    sql_store: SqlStore, tenant_id: str, users: list[str]
) -> None:
    """Titles fold ("A" with "a"), "" is the least value, none come last ascending and first
    descending, and ties (equal folded values, and all of those without one) go by id."""
    assert USER_RT is not None
    query = Query(sort_by=parse_attr_path("title", USER_RT), ties_by_id=True, count=100)
    page = sql_store.search(tenant_id, "User", query)
    assert page.positions is not None
    keys = [(p.value, p.id) for p in page.positions]
    present = sorted((k for k in keys if k[0] is not None), key=lambda k: (k[0], k[1]))
    missing = sorted(k for k in keys if k[0] is None)
    assert keys == present + missing
    assert [v for v, _ in present] == ["", "", "a", "a", "a", "b", "b", "c"]
    down = sql_store.search(tenant_id, "User", replace(query, descending=True))
    assert down.positions is not None
    expected = missing + sorted(present, key=lambda k: (-ord(k[0][0]) if k[0] else 0, k[1]))
    assert [(p.value, p.id) for p in down.positions] == expected


def test_a_position_whose_resource_is_gone_still_resumes_after_it(
    sql_store: SqlStore, tenant_id: str, users: list[str]
) -> None:
    assert USER_RT is not None
    query = Query(sort_by=parse_attr_path("title", USER_RT), ties_by_id=True, count=4)
    first = sql_store.search(tenant_id, "User", query)
    assert first.positions is not None
    last = first.positions[-1]
    sql_store.delete(tenant_id, "User", last.id)
    rest = sql_store.search(tenant_id, "User", replace(query, after=last, count=100))
    whole = [r.id for r in sql_store.search(tenant_id, "User", replace(query, count=100)).resources]
    assert [r.id for r in first.resources[:-1]] + [r.id for r in rest.resources] == whole


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("resume", [False, True])
def test_users_sorted_by_username_are_read_off_its_unique_index(
    sql_store: SqlStore, tenant_id: str, users: list[str], descending: bool, resume: bool
) -> None:
    """userName is never missing and unique (case-folded) in a tenant: a page sorted on it, from
    the start or after a position, walks the partial unique index instead of sorting every User."""
    assert USER_RT is not None
    query = Query(
        sort_by=parse_attr_path("userName", USER_RT), descending=descending, ties_by_id=True, count=3
    )
    first = sql_store.search(tenant_id, "User", query)
    assert first.positions is not None
    if resume:
        query = replace(query, after=first.positions[-1])
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(sql_store.engine, "before_cursor_execute", seen)
    try:
        page = sql_store.search(tenant_id, "User", query)
    finally:
        event.remove(sql_store.engine, "before_cursor_execute", seen)
    names = sorted((f"u{i}@x.com" for i in range(len(TITLES))), reverse=descending)
    assert [r.data["userName"] for r in page.resources] == (names[3:6] if resume else names[:3])
    page_sql, params = next((s, p) for s, p in statements if "ORDER BY" in s)
    with sql_store.engine.connect() as conn:
        plan = " | ".join(r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + page_sql, params))
    assert "ux_resources_user_name" in plan and "TEMP B-TREE" not in plan, plan
