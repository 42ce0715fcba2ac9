"""A User's ``groups`` in SqlStore: read in the same statement as the User, one statement per page,
never touching ``memberships`` when not wanted, on an index."""

from __future__ import annotations

import sqlite3

import pytest
from tests.store.conftest import Recorder

from provisor.scim.filter.parser import parse_attr_path, parse_filter
from provisor.scim.schema.model import default_registry
from provisor.store.base import Change, GroupRef, Member, MemberDelta, Query
from provisor.store.sql import SqlStore
from provisor.store.sql.rows import closure_groups, group_refs

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


def test_group_refs_decoding() -> None:
    none = ((), False)
    assert group_refs(None) == none and group_refs("[]") == none and group_refs([]) == none
    refs = (GroupRef("a", None), GroupRef("b", "B"))
    assert group_refs('[[9,"b","B",0],[2,"a",null,0]]') == (refs, False)
    assert group_refs('[[9,"b","B",1],[2,"a",null,0]]') == (refs, True)  # b is itself in a group
    assert group_refs([[9, "b", "B", 0], [2, "a", "A", 1]]) == (
        (GroupRef("a", "A"), GroupRef("b", "B")),
        True,
    )


def test_closure_rows_become_each_members_groups() -> None:
    rows = [
        # member 1: direct in 5 and 3, indirect in 7, and in 5 both ways (direct wins, whatever the order)
        (1, 5, "g5", "Five", 0),
        (1, 7, "g7", None, 0),
        (1, 5, "g5", "Five", 1),
        (1, 3, "g3", "Three", 1),
        (2, 7, "g7", None, 1),
    ]
    assert closure_groups(rows) == {
        1: (GroupRef("g3", "Three"), GroupRef("g5", "Five"), GroupRef("g7", None, "indirect")),
        2: (GroupRef("g7", None),),
    }
    assert closure_groups([]) == {}
