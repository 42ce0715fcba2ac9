"""Deep pages by key (``provisor.store.sql.paging``): the same pages as OFFSET, read after the key
where the previous page ended while nothing of that tenant and type was deleted."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from sqlalchemy import text
from tests.store.conftest import Recorder

from provisor.scim.filter.parser import parse_attr_path, parse_filter
from provisor.scim.schema.model import default_registry
from provisor.store.base import Query
from provisor.store.sql import SqlStore
from provisor.store.sql.paging import PageCursors

USER_RT = default_registry().resource_type("User")
assert USER_RT is not None


def offset_page(store: SqlStore, tenant: str, start: int, count: int) -> list[str]:
    """The oracle: the page as OFFSET reads it, straight from the table."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id FROM resources WHERE tenant_id = :t AND resource_type = 'User' "
                "ORDER BY pk LIMIT :n OFFSET :o"
            ),
            {"t": tenant, "n": count, "o": start - 1},
        )
        return [r[0] for r in rows]


def page_selects(recorder: Recorder) -> list[str]:
    return [s for s, _ in recorder.mentioning("from resources") if s.lstrip().upper().startswith("SELECT")]


def by_key(statement: str) -> bool:
    """Whether a page was read after a key (SQLAlchemy writes ``OFFSET ?`` either way)."""
    return "resources.pk >" in statement


def test_cursors_forget_a_note_once_a_deletion_happened() -> None:
    cursors = PageCursors(capacity=2)
    cursors.note("t", "User", 10, after_pk=42, removed=0)
    assert cursors.start("t", "User", 10, removed=0) == 42
    assert cursors.start("t", "Group", 10, removed=0) is None
    assert cursors.start("t", "User", 20, removed=0) is None
    assert cursors.start("t", "User", 10, removed=1) is None
    assert cursors.start("t", "User", 10, removed=0) is None  # a stale note is dropped, not kept


def test_cursors_keep_the_most_recently_used_notes() -> None:
    cursors = PageCursors(capacity=2)
    cursors.note("t", "User", 1, after_pk=1, removed=0)
    cursors.note("t", "User", 2, after_pk=2, removed=0)
    assert cursors.start("t", "User", 1, removed=0) == 1  # used: now the most recent
    cursors.note("t", "User", 3, after_pk=3, removed=0)
    assert len(cursors) == 2
    assert cursors.start("t", "User", 2, removed=0) is None
    assert cursors.start("t", "User", 1, removed=0) == 1
    assert cursors.start("t", "User", 3, removed=0) == 3


def test_a_deep_page_follows_the_previous_page_by_key(
    sql_store: SqlStore, tenant_id: str, recorder: Recorder
) -> None:
    for i in range(25):
        sql_store.create(tenant_id, "User", {"userName": f"u{i:02d}"})
    first = sql_store.search_ids(tenant_id, "User", Query(start_index=1, count=10))
    recorder.clear()
    second = sql_store.search_ids(tenant_id, "User", Query(start_index=11, count=10))
    selects = page_selects(recorder)
    assert second.ids == offset_page(sql_store, tenant_id, 11, 10)
    assert second.total == 25 and not set(first.ids) & set(second.ids)
    assert len(selects) == 1 and by_key(selects[0])
    # full documents page the same way
    recorder.clear()
    third = sql_store.search(tenant_id, "User", Query(start_index=21, count=10))
    selects = page_selects(recorder)
    assert [r.id for r in third.resources] == offset_page(sql_store, tenant_id, 21, 10)
    assert third.total == 25
    assert len(selects) == 1 and by_key(selects[0])


def test_a_deletion_sends_the_next_deep_page_back_to_offset(
    sql_store: SqlStore, tenant_id: str, recorder: Recorder
) -> None:
    made = [sql_store.create(tenant_id, "User", {"userName": f"u{i:02d}"}).id for i in range(20)]
    sql_store.search_ids(tenant_id, "User", Query(start_index=1, count=10))
    sql_store.delete(tenant_id, "User", made[3])  # before the cursor: every later row moves up one
    recorder.clear()
    second = sql_store.search_ids(tenant_id, "User", Query(start_index=11, count=10))
    selects = page_selects(recorder)
    assert second.ids == offset_page(sql_store, tenant_id, 11, 10) == made[11:]
    assert len(selects) == 1 and not by_key(selects[0])
    assert second.total == 19


def test_another_tenants_deletion_leaves_the_cursor_valid(
    sql_store: SqlStore, tenant_id: str, recorder: Recorder
) -> None:
    other = sql_store.create_tenant("fabrikam").id
    theirs = sql_store.create(other, "User", {"userName": "x"}).id
    for i in range(20):
        sql_store.create(tenant_id, "User", {"userName": f"u{i:02d}"})
    sql_store.search_ids(tenant_id, "User", Query(start_index=1, count=10))
    sql_store.delete(other, "User", theirs)
    recorder.clear()
    second = sql_store.search_ids(tenant_id, "User", Query(start_index=11, count=10))
    selects = page_selects(recorder)
    assert second.ids == offset_page(sql_store, tenant_id, 11, 10)
    assert len(selects) == 1 and by_key(selects[0])


def test_filtered_and_sorted_listings_page_by_offset(
    sql_store: SqlStore, tenant_id: str, recorder: Recorder
) -> None:
    for i in range(20):
        sql_store.create(tenant_id, "User", {"userName": f"u{i:02d}", "title": "x"})
    f = parse_filter('title eq "x"', USER_RT)
    by_name = parse_attr_path("userName", USER_RT)
    for query in (Query(filter=f, count=10), Query(sort_by=by_name, count=10)):
        sql_store.search_ids(tenant_id, "User", query)
        recorder.clear()
        page = sql_store.search_ids(tenant_id, "User", replace(query, start_index=11))
        selects = page_selects(recorder)
        assert page.ids == offset_page(sql_store, tenant_id, 11, 10)
        assert selects and not any(by_key(s) for s in selects)


@pytest.mark.parametrize("seed", range(8))
def test_pages_match_offset_under_creates_and_deletes(sql_store: SqlStore, tenant_id: str, seed: int) -> None:
    """Random interleavings of whole-tenant page walks, creates and deletes (of this tenant and
    another): every page equals what OFFSET reads at that moment, and so does its total."""
    rnd = random.Random(seed)
    other = sql_store.create_tenant("other").id
    mine = [sql_store.create(tenant_id, "User", {"userName": f"s{i}"}).id for i in range(30)]
    theirs = [sql_store.create(other, "User", {"userName": f"o{i}"}).id for i in range(5)]
    serial = 0
    for _ in range(120):
        roll = rnd.random()
        if roll < 0.15:
            serial += 1
            mine.append(sql_store.create(tenant_id, "User", {"userName": f"n{serial}"}).id)
        elif roll < 0.25 and mine:
            sql_store.delete(tenant_id, "User", mine.pop(rnd.randrange(len(mine))))
        elif roll < 0.3 and theirs:
            sql_store.delete(other, "User", theirs.pop())
        else:
            count = rnd.choice((1, 3, 7, 10))
            start = rnd.choice((1, 1 + count, 1 + 2 * count, rnd.randrange(1, 40)))
            page = sql_store.search_ids(tenant_id, "User", Query(start_index=start, count=count))
            assert page.ids == offset_page(sql_store, tenant_id, start, count)
            assert page.total == len(mine)


def test_a_page_without_its_total_skips_the_count(
    sql_store: SqlStore, tenant_id: str, recorder: Recorder
) -> None:
    """``Query.with_total=False`` (a cursor page after a key, whose total is read apart): no
    COUNT; the total is the rows up to the page's end, a lower bound."""
    for i in range(30):
        sql_store.create(tenant_id, "User", {"userName": f"t{i:02d}", "title": "x"})
    f = parse_filter('title eq "x"', USER_RT)
    recorder.clear()
    full = sql_store.search_ids(tenant_id, "User", Query(filter=f, count=10))
    assert full.total == 30 and any("count(" in s.lower() for s, _ in recorder.statements)
    recorder.clear()
    bare = sql_store.search_ids(tenant_id, "User", Query(filter=f, count=10, with_total=False))
    assert bare.ids == full.ids and bare.total == 10
    assert not any("count(" in s.lower() for s, _ in recorder.statements)
    last = sql_store.search(tenant_id, "User", Query(filter=f, start_index=25, count=10, with_total=False))
    assert last.total == 30  # a short last page still tells the total
