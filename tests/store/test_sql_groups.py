"""A User's ``groups`` in SqlStore: read in the same statement as the User, one statement per page,
never touching ``memberships`` when not wanted, on an index."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from tests.store.conftest import Recorder

from provisor.scim.filter.parser import parse_attr_path, parse_filter
from provisor.scim.schema.model import default_registry
from provisor.store.base import Change, GroupRef, Member, MemberDelta, Query
from provisor.store.sql import SqlStore
from provisor.store.sql.resources import PageReader
from provisor.store.sql.rows import Ancestry, DirectGroups, direct_groups, group_items

USER_RT = default_registry().resource_type("User")
assert USER_RT is not None


@pytest.fixture
def people(sql_store: SqlStore, tenant_id: str) -> tuple[list[str], list[str]]:
    """20 Users, 3 Groups; user i is in group j when (i + j) % 2 == 0 (so every User is in one)."""
    users = [sql_store.create(tenant_id, "User", {"userName": f"u{i}", "title": "t"}).id for i in range(20)]
    groups = []
    for j in range(3):
        members = tuple(Member(u) for i, u in enumerate(users) if (i + j) % 2 == 0)
        groups.append(sql_store.create(tenant_id, "Group", {"displayName": f"G{j}"}, members).id)
    return users, groups


def _queries() -> list[Query]:
    return [
        Query(filter=parse_filter('userName eq "u3"', USER_RT)),  # prepared lookup
        Query(filter=parse_filter('title eq "t"', USER_RT)),  # compiled filter
        Query(),  # plain list
        Query(sort_by=parse_attr_path("userName", USER_RT), count=7, start_index=3),
    ]


def test_groups_not_wanted_never_touch_memberships(
    sql_store: SqlStore, tenant_id: str, people: tuple[list[str], list[str]], recorder: Recorder
) -> None:
    users, _ = people
    recorder.clear()
    assert sql_store.get(tenant_id, "User", users[0], with_groups=False).groups is None
    for q in _queries():
        bare = Query(filter=q.filter, sort_by=q.sort_by, count=q.count, with_groups=False)
        assert all(r.groups is None for r in sql_store.search(tenant_id, "User", bare).resources)
    updated = sql_store.update(tenant_id, "User", users[0], lambda cur: Change({**cur.data, "title": "x"}))
    assert updated.groups is None
    assert recorder.statements  # the recorder saw the reads
    assert recorder.mentioning("memberships") == []


def test_groups_come_in_the_same_statement(
    sql_store: SqlStore, tenant_id: str, people: tuple[list[str], list[str]], recorder: Recorder
) -> None:
    users, groups = people
    recorder.clear()
    got = sql_store.get(tenant_id, "User", users[0])
    assert got.groups == (GroupRef(groups[0], "G0"), GroupRef(groups[2], "G2"))
    assert len(recorder.statements) == 1  # no extra round trip
    for q in _queries():
        recorder.clear()
        page = sql_store.search(tenant_id, "User", q)
        assert page.resources and all(r.groups for r in page.resources)
        # one statement reads the whole page with its groups (never one per User)
        assert len(recorder.mentioning("memberships")) == 1, recorder.statements
    recorder.clear()
    same = sql_store.update(
        tenant_id, "User", users[1], lambda cur: Change({**cur.data, "title": "x"}), with_groups=True
    )
    assert same.groups == (GroupRef(groups[1], "G1"),)
    assert len(recorder.mentioning("memberships")) == 1


def test_groups_subquery_uses_the_member_index(sql_store: SqlStore, db_url: str) -> None:
    sql = sql_store._lookups.get_groups.sql
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        plan = " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, ("t", "User", "x")))
    assert "COVERING INDEX ix_memberships_member" in plan, plan  # no second lookup in the table
    assert "SCAN" not in plan, plan


def test_order_is_by_group_creation_whatever_the_membership_order(
    sql_store: SqlStore, tenant_id: str
) -> None:
    a = sql_store.create(tenant_id, "User", {"userName": "a"}).id
    groups = [sql_store.create(tenant_id, "Group", {"displayName": f"G{i}"}).id for i in range(6)]
    for g in reversed(groups):  # joined newest first
        sql_store.update(tenant_id, "Group", g, lambda cur: Change(cur.data, MemberDelta(add=(Member(a),))))
    got = sql_store.get(tenant_id, "User", a).groups
    assert [r.value for r in got or ()] == groups


def test_group_items_decoding() -> None:
    assert group_items(None) == [] and group_items("[]") == [] and group_items([]) == []
    assert group_items('[[9,"b","B",1],[2,"a",null,0]]') == [[2, "a", None, 0], [9, "b", "B", 1]]
    assert group_items([[9, "b", "B", 0], [2, "a", "A", 1]]) == [[2, "a", "A", 1], [9, "b", "B", 0]]
    # none nested: the groups themselves; one nested: the items, to walk up from
    assert direct_groups('[[9,"b","B",0],[2,"a",null,0]]') == (GroupRef("a", None), GroupRef("b", "B"))
    assert direct_groups('[[9,"b","B",1],[2,"a",null,0]]') == [[2, "a", None, 0], [9, "b", "B", 1]]
    assert direct_groups(None) == ()


def test_ancestry_rows_become_each_members_groups() -> None:
    # groups 3 -> 5 -> 7 and 5 -> 3 (a cycle), 9 -> 7; (member group pk, group pk, id, display)
    ancestry = Ancestry([(3, 5, "g5", "Five"), (5, 7, "g7", None), (5, 3, "g3", "Three"), (9, 7, "g7", None)])
    # member 1: directly in 5 and 3 (5 nested), so indirectly in 7; 3 and 5 are direct both ways
    direct = group_items('[[5,"g5","Five",1],[3,"g3","Three",1]]')
    assert ancestry.member_groups(direct) == (
        GroupRef("g3", "Three"),
        GroupRef("g5", "Five"),
        GroupRef("g7", None, "indirect"),
    )
    # member 2: directly in 7 alone, at the top
    assert ancestry.member_groups(group_items('[[7,"g7",null,0]]')) == (GroupRef("g7", None),)
    assert ancestry.member_groups([]) == ()
    # a group reached only indirectly is one shared reference for every member
    one = ancestry.member_groups(group_items('[[9,"g9","Nine",1]]'))
    other = ancestry.member_groups(group_items('[[3,"g3","Three",1]]'))
    assert one[0] is other[2] and one[0] == GroupRef("g7", None, "indirect")
    assert Ancestry([]).member_groups(direct) == (GroupRef("g3", "Three"), GroupRef("g5", "Five"))


@pytest.fixture
def crowd(sql_store: SqlStore, tenant_id: str) -> list[str]:
    """9 Users with externalId "x": users 0-2 in Inner, which is in Outer (2 groups each, one
    indirect), users 3-5 in D1, D2 and D3 directly (3 each), users 6-8 in none."""
    users = [
        sql_store.create(tenant_id, "User", {"userName": f"c{i}", "externalId": "x"}).id for i in range(9)
    ]
    inner = sql_store.create(tenant_id, "Group", {"displayName": "Inner"}, [Member(u) for u in users[:3]])
    sql_store.create(tenant_id, "Group", {"displayName": "Outer"}, [Member(inner.id, "Group")])
    for j in range(3):
        sql_store.create(tenant_id, "Group", {"displayName": f"D{j}"}, [Member(u) for u in users[3:6]])
    return users


def _walk(sql_store: SqlStore, tenant_id: str, query: Query) -> list[tuple[int, int, bool, int]]:
    """Page through ``query`` by startIndex + itemsPerPage: (startIndex, resources, cut, total)
    of each page, checking each User's groups are whole (as a read by id gives them)."""
    pages, start = [], 1
    while True:
        page = sql_store.search(tenant_id, "User", Query(**{**_fields(query), "start_index": start}))
        pages.append((start, len(page.resources), page.cut, page.total))
        for r in page.resources:
            assert r.groups == sql_store.get(tenant_id, "User", r.id).groups
        if not page.resources:
            return pages
        start += len(page.resources)


def _fields(query: Query) -> dict[str, object]:
    return {name: getattr(query, name) for name in Query.__dataclass_fields__}


@pytest.mark.parametrize(
    "kind",
    [
        Query(filter=parse_filter('externalId eq "x"', USER_RT)),  # prepared lookup
        Query(filter=parse_filter('userName sw "c"', USER_RT)),  # compiled filter
        Query(),  # plain list (keyed deep pages)
        Query(sort_by=parse_attr_path("userName", USER_RT)),
    ],
    ids=["lookup", "filter", "list", "sorted"],
)
def test_a_page_ends_at_the_user_whose_groups_reach_the_budget(
    sql_store: SqlStore, tenant_id: str, crowd: list[str], kind: Query
) -> None:
    query = Query(**{**_fields(kind), "count": 5, "group_budget": 5})
    # users 0-1 carry 4 refs, user 2 reaches 6 (indirect ones count): cut after 3 of 5;
    # then 3 refs, 6: cut after 2; then users 5-8 carry 3: 4 users, the end (no cut)
    assert _walk(sql_store, tenant_id, query) == [
        (1, 3, True, 9),
        (4, 2, True, 9),
        (6, 4, False, 9),
        (10, 0, False, 9),
    ]
    seen = []
    for start in (1, 4, 6):
        page = sql_store.search(tenant_id, "User", Query(**{**_fields(query), "start_index": start}))
        seen += [r.id for r in page.resources]
    assert sorted(seen) == sorted(crowd) and len(seen) == len(crowd)
    # without groups, nothing to count: a full page
    bare = sql_store.search(tenant_id, "User", Query(**{**_fields(query), "with_groups": False}))
    assert len(bare.resources) == 5 and not bare.cut


def test_a_user_in_more_groups_than_the_budget_comes_whole(
    sql_store: SqlStore, tenant_id: str, crowd: list[str]
) -> None:
    page = sql_store.search(tenant_id, "User", Query(start_index=4, count=5, group_budget=1))
    assert [r.id for r in page.resources] == [crowd[3]] and page.cut and page.total == 9
    assert page.resources[0].groups is not None and len(page.resources[0].groups) == 3


def test_a_page_that_reaches_the_budget_at_its_end_is_not_cut(
    sql_store: SqlStore, tenant_id: str, crowd: list[str]
) -> None:
    # reached on the page's last row (count)
    page = sql_store.search(tenant_id, "User", Query(count=3, group_budget=6))
    assert len(page.resources) == 3 and not page.cut and page.total == 9
    # reached on the last User that matches
    last = Query(filter=parse_filter('userName le "c5"', USER_RT), start_index=5, count=5, group_budget=6)
    page = sql_store.search(tenant_id, "User", last)
    assert [r.id for r in page.resources] == crowd[4:6] and not page.cut and page.total == 6


def test_rows_past_the_budget_are_never_fetched() -> None:
    """The reader stops fetching once the direct groups reach the budget, but for one row more
    that tells whether the page is cut (SQLite computes a row, and its groups, as it is fetched)."""
    fetched: list[int] = []

    def rows() -> Iterator[tuple[object, ...]]:
        for pk in range(1, 10):
            fetched.append(pk)
            yield (pk, f"u{pk}", "{}", 0, 0, 1, f'[[{pk + 100},"g","G",0],[{pk + 200},"h",null,0]]')

    def expand(direct: list[DirectGroups]) -> list[tuple[GroupRef, ...]]:
        return [d if isinstance(d, tuple) else () for d in direct]

    reader = PageReader(expand, 4)
    reader.read(rows())
    kept, cut = reader.finish()
    assert [r[0] for r in kept] == [1, 2] and cut and fetched == [1, 2, 3]
    assert len(reader.groups) == 2
    # the last row reaches it: nothing follows, so not cut
    fetched.clear()
    reader = PageReader(expand, 18)
    reader.read(rows())
    assert reader.finish()[1] is False and fetched == list(range(1, 10))


def test_nested_groups_are_walked_up_to_the_budget_only(
    sql_store: SqlStore, tenant_id: str, crowd: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Users 0 and 1 are read (one direct group each reaches 2 only at user 1), but user 0's
    walk up (Inner, then Outer) reaches the budget: user 1 is never walked."""
    walked: list[object] = []
    original = Ancestry.member_groups

    def counting(self: Ancestry, items: list[list[object]]) -> tuple[GroupRef, ...]:
        walked.append(items)
        return original(self, items)

    monkeypatch.setattr(Ancestry, "member_groups", counting)
    page = sql_store.search(tenant_id, "User", Query(count=9, group_budget=2))
    assert [r.id for r in page.resources] == crowd[:1] and page.cut and page.total == 9
    assert len(walked) == 1
