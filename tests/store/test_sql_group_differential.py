"""Differential property test for Groups: SQL filtering selects exactly the Groups the in-memory
evaluator (RFC 7644 section 3.4.2.2) accepts on the Group as rendered, and ``sortBy`` over a
Group's attributes orders them as the Python model does (``tests/store/sort_model.py``).

A fixed quirky population: display names that differ in case from each other's members' names,
LIKE wildcards and non-ASCII, a Group without a displayName (the store allows it), externalIds
that differ only in case, Users and Groups as members (nested groups, a cycle), members with a
``display`` the client sent (``""`` among them) and without one (the member's own name shown), an
empty Group; the filters are generated as text and parsed, so they are what a client can send."""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tests.scim.filter.filter_strategies import GROUP_RT, datetimes, render, safe_text
from tests.store.sort_model import model_order, rendered, sortable_paths

from provisor.scim.errors import InvalidFilter
from provisor.scim.filter.ast import And, AttrPath, Compare, CompareOp, Filter, Not, Or, Present, ValuePath
from provisor.scim.filter.evaluate import matches
from provisor.scim.filter.parser import parse_filter
from provisor.scim.schema.model import GROUP
from provisor.store.base import Change, Member, MemberDelta, Query
from provisor.store.sql import SqlStore

EXAMPLES = int(os.environ.get("DIFF_EXAMPLES", "120"))
T0 = datetime(2024, 1, 1, tzinfo=UTC)
NAMES = [
    "alice",
    "Alice",
    "ALICE@contoso.com",
    "bob",
    "bø",
    "BØB",
    "a%_b",
    "a%xb",
    "back\\slash",
    "",
    "x",
    "İx",
]
TYPES = ["User", "user", "Group", "GROUP", "direct"]
VERSIONS = ['W/"1"', 'W/"2"', 'W/"3"', '"1"', "1"]


@pytest.fixture(scope="module")
def population(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SqlStore, str, list[dict[str, Any]], list[str]]]:
    """(store, tenant, the Groups as rendered in creation order, the ids of Users and Groups)."""
    times = iter(T0 + timedelta(seconds=(i * 7) % 5) for i in range(10_000))  # instants that tie
    store = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('groups') / 'g.db'}", clock=lambda: next(times))
    tenant = store.create_tenant("t").id
    rng = random.Random(9865)
    users = []
    for i in range(16):
        doc: dict[str, Any] = {"userName": f"{rng.choice(NAMES)}{i}"}
        if rng.random() < 0.6:
            doc["displayName"] = rng.choice(NAMES)
        users.append(store.create(tenant, "User", doc).id)
    # unique when case is folded, as a tenant's group names must be; one without a name
    names: list[str | None] = [
        "alice",
        "BØB",
        "a%_b",
        "a%xb",
        "back\\slash",
        "x",
        "İx",
        "Team",
        None,
        "empty",
    ]
    groups: list[str] = []
    for name in names:
        members = []
        for u in users:
            if rng.random() < 0.3:
                display = rng.choice([None, None, *NAMES])
                members.append(Member(u, None, display))
        for g in groups:  # nested: earlier groups as members
            if rng.random() < 0.2:
                members.append(Member(g, None, rng.choice([None, *NAMES])))
        doc = {} if name is None else {"displayName": name}
        if rng.random() < 0.7:
            doc["externalId"] = rng.choice(["E-1", "e-1", "E-2", "", "x"])
        groups.append(store.create(tenant, "Group", doc, members if name != "empty" else ()).id)
    # a cycle (alice <-> BØB), the Group without a name in another, a renamed member (the
    # display it shows moves) and a modified group
    store.update(
        tenant, "Group", groups[0], lambda cur: Change(cur.data, MemberDelta(add=(Member(groups[1]),)))
    )
    store.update(
        tenant, "Group", groups[1], lambda cur: Change(cur.data, MemberDelta(add=(Member(groups[0]),)))
    )
    store.update(
        tenant, "Group", groups[7], lambda cur: Change(cur.data, MemberDelta(add=(Member(groups[8]),)))
    )
    store.update(tenant, "User", users[0], lambda cur: Change({**cur.data, "displayName": "Renamed"}))
    store.update(tenant, "Group", groups[5], lambda cur: Change({**cur.data, "externalId": "E-1"}))
    found = store.search(tenant, "Group", Query(count=1000)).resources
    docs = [rendered(GROUP_RT, g) for g in found]
    assert any(d.get("members") for d in docs) and any(not d.get("members") for d in docs)
    shown = [m for d in docs for m in d.get("members", ())]
    assert {m["type"] for m in shown} == {"User", "Group"} and any("display" not in m for m in shown)
    yield store, tenant, docs, users + groups
    store.close()


def compare(
    path: AttrPath, values: st.SearchStrategy[Any], ops: list[CompareOp]
) -> st.SearchStrategy[Filter]:
    return st.builds(Compare, st.just(path), st.sampled_from(ops), values) | st.builds(
        Compare, st.just(path), st.sampled_from([CompareOp.EQ, CompareOp.NE]), st.none()
    )


@functools.cache
def group_filters(ids: tuple[str, ...]) -> st.SearchStrategy[Filter]:
    """Group filter ASTs over every attribute a Group shows; rendered and parsed before use."""
    everything = list(CompareOp)
    ordering = [CompareOp.EQ, CompareOp.NE, CompareOp.GT, CompareOp.GE, CompareOp.LT, CompareOp.LE]
    id_text = st.sampled_from(
        [*ids, *(i.upper() for i in ids), *(i[:6] for i in ids), *(i[-4:] for i in ids)]
    )
    words = st.sampled_from([*NAMES, "al", "B", "ø", "%", "_", "\\", "E-1", "e-", "1"]) | safe_text
    member_subs = {
        "value": id_text | words,
        "display": words,
        "type": st.sampled_from(TYPES) | words,
    }
    member_leaf = st.one_of(
        *(compare(AttrPath(None, "members", s), v, everything) for s, v in member_subs.items()),
        st.sampled_from(["value", "display", "type", "$ref"]).map(
            lambda s: Present(AttrPath(None, "members", s))
        ),
    )
    inner = st.recursive(
        member_leaf,
        lambda c: st.builds(And, c, c) | st.builds(Or, c, c) | st.builds(Not, c),
        max_leaves=3,
    )
    leaf = st.one_of(
        compare(AttrPath(None, "displayName"), words, everything),
        compare(AttrPath(None, "externalId"), words, everything),
        compare(AttrPath(None, "id"), id_text | words, everything),
        member_leaf,
        compare(AttrPath(None, "members"), id_text, [CompareOp.EQ, CompareOp.NE, CompareOp.SW]),
        compare(AttrPath(None, "meta", "created"), datetimes | st.sampled_from(INSTANTS), ordering),
        compare(AttrPath(None, "meta", "lastModified"), datetimes | st.sampled_from(INSTANTS), ordering),
        compare(
            AttrPath(None, "meta", "resourceType"), st.sampled_from(["Group", "group", "User"]), everything
        ),
        compare(AttrPath(None, "meta", "version"), st.sampled_from(VERSIONS), everything),
        compare(AttrPath(None, "schemas"), st.sampled_from([GROUP, GROUP.upper(), "urn:x"]), everything),
        st.sampled_from(
            [
                AttrPath(None, "displayName"),
                AttrPath(None, "externalId"),
                AttrPath(None, "members"),
                AttrPath(None, "meta"),
                AttrPath(None, "meta", "location"),
                AttrPath(None, "meta", "version"),
                AttrPath(None, "meta", "created"),
            ]
        ).map(Present),
        st.builds(ValuePath, st.just(AttrPath(None, "members")), inner),
    )
    return st.recursive(
        leaf, lambda c: st.builds(And, c, c) | st.builds(Or, c, c) | st.builds(Not, c), max_leaves=4
    )


INSTANTS = [(T0 + timedelta(seconds=s)).isoformat().replace("+00:00", "Z") for s in range(5)]


def parsed(f: Filter) -> Filter:
    """``f`` as a client sends it: rendered to text and parsed (the parser's own rewrites applied)."""
    try:
        return parse_filter(render(f), GROUP_RT)
    except InvalidFilter:
        assume(False)
        raise


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_sql_group_filters_agree_with_the_evaluator(
    population: tuple[SqlStore, str, list[dict[str, Any]], list[str]], data: st.DataObject
) -> None:
    store, tenant, docs, ids = population
    f = parsed(data.draw(group_filters(tuple(ids)), label="filter"))
    expected = {d["id"] for d in docs if matches(f, d, GROUP_RT)}
    page = store.search(tenant, "Group", Query(filter=f, count=1000, with_members=False))
    assert {r.id for r in page.resources} == expected, render(f)
    assert page.total == len(expected)


GROUP_PATHS = sortable_paths(GROUP_RT)


@pytest.mark.parametrize("path", GROUP_PATHS, ids=str)
def test_sql_group_sort_agrees_with_the_model(
    population: tuple[SqlStore, str, list[dict[str, Any]], list[str]], path: AttrPath
) -> None:
    store, tenant, docs, _ = population
    for descending in (False, True):
        found = store.search(tenant, "Group", Query(sort_by=path, descending=descending, count=1000))
        assert [r.id for r in found.resources] == model_order(docs, path, descending, GROUP_RT), descending
