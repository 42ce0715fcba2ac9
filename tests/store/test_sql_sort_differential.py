"""Differential property test of ``sortBy`` (RFC 7644 section 3.4.2.3): for generated populations of
Users (validated as the server validates a POST, so stored as the server stores them), the SQL
store's order over every sortable attribute, both ways, with and without a filter, is the Python
model's (``tests/store/sort_model.py``), and paging by ``startIndex``/``count`` over it yields each
match once with the right ``totalResults``.

The populations are made to tie: few distinct values, the same text in other cases, several
Users created or modified at the same instant, values missing, multi-valued attributes with and
without a primary, and elements without the sub-attribute sorted on."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.scim.filter.filter_strategies import USER_RT, filters
from tests.store.populations import WORDS, fixed_bodies, text, user_bodies
from tests.store.sort_model import model_order, rendered, sortable_paths

from provisor.scim.compat import CompatSettings
from provisor.scim.filter.ast import AttrPath, Filter
from provisor.scim.filter.evaluate import matches
from provisor.scim.filter.parser import parse_attr_path
from provisor.scim.resources.parse import parse_resource
from provisor.scim.schema.model import ENTERPRISE_USER, USER
from provisor.store.base import Change, Query, StoredResource
from provisor.store.sql import SqlStore

EXAMPLES = int(os.environ.get("DIFF_EXAMPLES", "40"))
T0 = datetime(2024, 3, 1, tzinfo=UTC)
USER_PATHS = sortable_paths(USER_RT)
SCHEMAS = [USER, ENTERPRISE_USER]


class Clock:
    """The store's clock: each write takes the next instant given, ties included."""

    def __init__(self) -> None:
        self.times: Iterator[datetime] = itertools.repeat(T0)

    def __call__(self) -> datetime:
        return next(self.times)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqlStore, Clock]]:
    clock = Clock()
    store = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('sort') / 's.db'}", clock=clock)
    yield store, clock
    store.close()


def populate(store: SqlStore, clock: Clock, data: st.DataObject) -> tuple[str, list[dict[str, Any]]]:
    """A new tenant holding generated Users, some modified after; their representations, in
    creation order."""
    bodies = data.draw(st.lists(user_bodies, min_size=1, max_size=12), label="users")
    instants = data.draw(st.lists(st.integers(0, 3), min_size=2 * len(bodies), max_size=2 * len(bodies)))
    titles = data.draw(st.lists(st.none() | text, min_size=len(bodies), max_size=len(bodies)), label="titles")
    return make(store, clock, bodies, instants, titles)


def make(
    store: SqlStore, clock: Clock, bodies: list[dict[str, Any]], instants: list[int], titles: list[str | None]
) -> tuple[str, list[dict[str, Any]]]:
    """A new tenant holding ``bodies`` created and then modified (a new ``title``, where ``titles``
    has one) at the ``instants`` (seconds after T0); their representations, in creation order."""
    clock.times = itertools.cycle([T0 + timedelta(seconds=s) for s in instants])
    tenant = store.create_tenant(f"t{next(_tenants)}").id
    made: list[StoredResource] = []
    for i, body in enumerate(bodies):
        body = {**body, "schemas": SCHEMAS, "userName": f"{body['userName']}#{i}"}  # unique, folded too
        made.append(store.create(tenant, "User", parse_resource(USER_RT, body, CompatSettings())))
    for r, title in zip(made, titles, strict=True):
        if title is not None:
            store.update(tenant, "User", r.id, lambda cur, t=title: Change({**cur.data, "title": t}))
    clock.times = itertools.repeat(T0)
    users = store.search(tenant, "User", Query(count=1000)).resources  # creation (primary key) order
    assert [u.id for u in users] == [r.id for r in made]
    return tenant, [rendered(USER_RT, u) for u in users]


_tenants = itertools.count()


def sorted_ids(
    store: SqlStore, tenant: str, path: AttrPath, descending: bool, f: Filter | None = None, **page: int
) -> tuple[list[str], int]:
    query = Query(
        filter=f, sort_by=path, descending=descending, with_groups=False, **({"count": 1000} | page)
    )
    found = store.search(tenant, "User", query)
    return [r.id for r in found.resources], found.total


vocabulary = st.sampled_from([*WORDS, "@x.com", "work", "A@x.com"])


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_sql_sort_agrees_with_the_model(world: tuple[SqlStore, Clock], data: st.DataObject) -> None:
    store, clock = world
    tenant, docs = populate(store, clock, data)
    f = data.draw(st.none() | filters(vocabulary, max_leaves=3), label="filter")
    chosen = [d for d in docs if f is None or matches(f, d, USER_RT)]
    paths = data.draw(
        st.lists(st.sampled_from(USER_PATHS), min_size=1, max_size=8, unique=True), label="paths"
    )
    for path in paths:
        for descending in (False, True):
            expected = model_order(chosen, path, descending, USER_RT)
            ids, total = sorted_ids(store, tenant, path, descending, f)
            assert ids == expected, (str(path), descending)
            assert total == len(expected)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_sorted_pages_hold_each_match_once(world: tuple[SqlStore, Clock], data: st.DataObject) -> None:
    """``startIndex``/``count`` over a sorted result: each page is the model's slice (a
    ``startIndex`` below 1 reads as 1), its ``totalResults`` every match, and the pages of a
    walk by ``count`` hold every match once, in order."""
    store, clock = world
    tenant, docs = populate(store, clock, data)
    f = data.draw(st.none() | filters(vocabulary, max_leaves=2), label="filter")
    chosen = [d for d in docs if f is None or matches(f, d, USER_RT)]
    path = data.draw(st.sampled_from(USER_PATHS), label="path")
    descending = data.draw(st.booleans(), label="descending")
    expected = model_order(chosen, path, descending, USER_RT)
    start = data.draw(st.integers(-1, len(docs) + 2), label="startIndex")
    count = data.draw(st.integers(0, len(docs) + 1), label="count")
    ids, total = sorted_ids(store, tenant, path, descending, f, start_index=start, count=count)
    assert ids == expected[max(start, 1) - 1 :][:count]
    assert total == len(expected)
    step = data.draw(st.integers(1, 4), label="page size")
    walked: list[str] = []
    for first in range(1, len(expected) + 2, step):
        page, total = sorted_ids(store, tenant, path, descending, f, start_index=first, count=step)
        assert total == len(expected)
        walked += page
    assert walked == expected


def test_every_sortable_attribute_orders_a_fixed_population(world: tuple[SqlStore, Clock]) -> None:
    """Every path the server takes as ``sortBy``, both ways, over one population with values of
    every kind: the model's order (the property tests above draw a few paths per population)."""
    store, clock = world
    n = 30
    tenant, docs = make(store, clock, fixed_bodies(n), [i % 4 for i in range(2 * n)], [None, "x", "X"] * 10)
    for path in USER_PATHS:
        for descending in (False, True):
            expected = model_order(docs, path, descending, USER_RT)
            assert sorted_ids(store, tenant, path, descending)[0] == expected, (str(path), descending)
    # the text of sortBy resolves to these paths, in any case and with the core URN
    assert parse_attr_path("EMAILS", USER_RT) == AttrPath(None, "emails")
    assert parse_attr_path(f"{ENTERPRISE_USER}:manager.value", USER_RT) == AttrPath(
        ENTERPRISE_USER, "manager", "value"
    )
