"""A read that takes several statements shows one state of the database, whatever another process
writes between them: each representation is the one its version stands for.

Another store on the same file (a second ``provisor serve``, the CLI) writes right after the read's
first statement (``Connections.observers``); the read must show either the state before that write
or the state after it, never a version with the members or groups of another (over HTTP: the
``contend`` step of tests/cli/test_servers_agree.py, two servers on one file).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provisor.scim.filter.ast import AttrPath, Compare, CompareOp
from provisor.store.base import Change, Member, MemberDelta, Query, StoredResource
from provisor.store.sql import SqlStore


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[SqlStore, SqlStore]]:
    url = f"sqlite:///{tmp_path / 'provisor.db'}"
    reader, writer = SqlStore(url), SqlStore(url)
    yield reader, writer
    reader.close()
    writer.close()


def after_the_first_statement(store: SqlStore, write: Callable[[], None]) -> None:
    """Run ``write`` (another process's) once, right after ``store``'s next statement."""
    done: list[bool] = []

    def between(sql: str, rowcount: int) -> None:
        if not done:
            done.append(True)
            write()

    store.connections.observers.append(between)


def members(res: StoredResource) -> set[str]:
    assert res.members is not None
    return {m.value for m in res.members}


def groups(res: StoredResource) -> set[str]:
    assert res.groups is not None
    return {g.value for g in res.groups}


def eq(attr: str, value: str) -> Query:
    return Query(filter=Compare(AttrPath(None, attr), CompareOp.EQ, value))


def test_a_group_found_by_name_shows_the_members_of_its_version(stores: tuple[SqlStore, SqlStore]) -> None:
    reader, writer = stores
    t = reader.create_tenant("t").id
    a = reader.create(t, "User", {"userName": "a"})
    b = reader.create(t, "User", {"userName": "b"})
    g = reader.create(t, "Group", {"displayName": "X"}, [Member(a.id)])

    def add_b() -> None:
        writer.update(t, "Group", g.id, lambda cur: Change(cur.data, MemberDelta(add=(Member(b.id),))))

    after_the_first_statement(reader, add_b)
    found = reader.search(t, "Group", eq("displayName", "X")).resources[0]
    states = {1: {a.id}, 2: {a.id, b.id}}
    assert members(found) == states[found.version]


def nested(store: SqlStore) -> tuple[str, StoredResource, StoredResource, StoredResource]:
    """A tenant with User u in group G, and G in group H: u is in H indirectly."""
    t = store.create_tenant("t").id
    u = store.create(t, "User", {"userName": "u", "externalId": "e"})
    g = store.create(t, "Group", {"displayName": "G"}, [Member(u.id)])
    h = store.create(t, "Group", {"displayName": "H"}, [Member(g.id, type="Group")])
    return t, u, g, h


def by_id(store: SqlStore, t: str, u: StoredResource) -> StoredResource:
    return store.get(t, "User", u.id)


def by_user_name(store: SqlStore, t: str, u: StoredResource) -> StoredResource:
    return store.search(t, "User", eq("userName", "u")).resources[0]  # one User at most


def by_external_id(store: SqlStore, t: str, u: StoredResource) -> StoredResource:
    return store.search(t, "User", eq("externalId", "e")).resources[0]  # a page of Users


@pytest.mark.parametrize("read", [by_id, by_user_name, by_external_id])
def test_a_user_in_nested_groups_shows_the_groups_of_its_version(
    stores: tuple[SqlStore, SqlStore], read: Callable[[SqlStore, str, StoredResource], StoredResource]
) -> None:
    reader, writer = stores
    t, u, g, h = nested(reader)
    version = reader.get(t, "User", u.id).version

    def unnest() -> None:  # G leaves H: u leaves H, and gets a new version
        writer.update(t, "Group", h.id, lambda cur: Change(cur.data, MemberDelta(remove=(g.id,))))

    after_the_first_statement(reader, unnest)
    found = read(reader, t, u)
    states = {version: {g.id, h.id}, version + 1: {g.id}}
    assert groups(found) == states[found.version]


def test_a_full_page_counts_what_it_read_from(stores: tuple[SqlStore, SqlStore]) -> None:
    reader, writer = stores
    t = reader.create_tenant("t").id
    first = reader.create(t, "User", {"userName": "a", "externalId": "e"})
    reader.create(t, "User", {"userName": "b", "externalId": "e"})

    after_the_first_statement(reader, lambda: writer.delete(t, "User", first.id))
    query = eq("externalId", "e")
    page = reader.search(t, "User", Query(filter=query.filter, count=1))
    # the page read before the deletion shows the first, of two; one read after it, the other, of one
    assert (page.total, page.resources[0].id == first.id) in ((2, True), (1, False))
