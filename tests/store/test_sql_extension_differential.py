"""Differential property test for declared extension schemas (``provisor schema add``,
docs/user-guide.md section 6): over attributes of every type, single and multi-valued, simple and
complex, SQL filtering selects exactly what the in-memory evaluator accepts on the rendered
resource, and ``sortBy`` orders as the Python model does (``tests/store/sort_model.py``).

The population is validated as the server validates a POST (``parse_resource``), so the store
holds what it holds in production: numbers past 2**53 and near the 64-bit limits, decimals that
print differently in SQL and Python (0.30000000000000004, 1e+20, -0.0), dateTimes with offsets,
seven fractional digits or none, binary values that differ only in case; the filters are
generated as text and parsed, so they are what a client can send."""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tests.scim.filter.filter_strategies import render
from tests.store.sort_model import model_order, rendered, sortable_paths

from provisor.scim.compat import CompatSettings
from provisor.scim.errors import InvalidFilter
from provisor.scim.filter.ast import And, AttrPath, Compare, CompareOp, Filter, Not, Or, Present, ValuePath
from provisor.scim.filter.evaluate import matches
from provisor.scim.filter.parser import parse_filter
from provisor.scim.resources.parse import parse_resource
from provisor.scim.schema.extensions import extend, parse_extension
from provisor.scim.schema.model import GROUP, USER, AttributeType, ResourceType, default_registry
from provisor.store.base import Query
from provisor.store.sql import SqlStore

EXAMPLES = int(os.environ.get("DIFF_EXAMPLES", "200"))
URN = "urn:example:scim:Custom:2.0:User"
TEAM = "urn:example:scim:Team:2.0:Group"
DEFINITION: dict[str, Any] = {
    "id": URN,
    "attributes": [
        {"name": "code", "type": "string"},
        {"name": "token", "type": "string", "caseExact": True},
        {"name": "level", "type": "integer"},
        {"name": "score", "type": "decimal"},
        {"name": "enabled", "type": "boolean"},
        {"name": "since", "type": "dateTime"},
        {"name": "homepage", "type": "reference", "referenceTypes": ["external"]},
        {"name": "photo", "type": "binary"},
        {"name": "key", "type": "binary", "caseExact": True},
        {"name": "skills", "type": "string", "multiValued": True},
        {"name": "levels", "type": "integer", "multiValued": True},
        {"name": "moments", "type": "dateTime", "multiValued": True},
        {
            "name": "badge",
            "type": "complex",
            "subAttributes": [
                {"name": "value", "type": "string"},
                {"name": "number", "type": "string", "caseExact": True},
                {"name": "rank", "type": "integer"},
                {"name": "issued", "type": "dateTime"},
            ],
        },
        {
            "name": "devices",
            "type": "complex",
            "multiValued": True,
            "subAttributes": [
                {"name": "value", "type": "string"},
                {"name": "kind", "type": "string", "caseExact": True},
                {"name": "primary", "type": "boolean"},
                {"name": "cores", "type": "integer"},
                {"name": "weight", "type": "decimal"},
                {"name": "seen", "type": "dateTime"},
            ],
        },
    ],
}
TEAM_DEFINITION: dict[str, Any] = {
    "id": TEAM,
    "attributes": [
        {"name": "size", "type": "integer"},
        {"name": "label", "type": "string"},
        {"name": "tags", "type": "string", "multiValued": True, "caseExact": True},
    ],
}


def _registry() -> Any:
    base = default_registry()
    return extend(
        base,
        [parse_extension(DEFINITION, base, "User"), parse_extension(TEAM_DEFINITION, base, "Group")],
    )


REGISTRY = _registry()
USER_RT: ResourceType = REGISTRY.resource_type("User")
GROUP_RT: ResourceType = REGISTRY.resource_type("Group")

WORDS = ["a", "A", "ab", "aB", "b", "", "z", "é", "É", "İ", "ß", "a%_b", "a_", "x y"]
INTEGERS = [0, 1, -1, 2, 10, 42, 2**53, 2**53 + 1, -(2**53) - 1, 2**63 - 1, -(2**63), 9_007_199_254_740_993]
DECIMALS = [
    0,
    0.1,
    0.3,
    0.30000000000000004,
    1,
    1.0,
    1.5,
    -2.5,
    -0.0,
    1e20,
    1e-7,
    10,
    2.5e300,
    2.0**53,  # the float next to 2**53 + 1: equal only if one side compares as a double
    2**53 + 1,
    2**63 - 1,
    2.0**63,
]
DATETIMES = [
    "2024-01-01T00:00:00Z",
    "2024-01-01T01:00:00+01:00",  # the same instant
    "2024-01-01T00:00:00.1234567Z",
    "2024-01-01T00:00:00.123456Z",
    "2023-12-31T23:59:59.999999-00:30",
    "2024-02-29T12:00:00",  # no offset: UTC
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2023-12-31T24:00:00Z",  # the next day's midnight: the first value's instant again
]
#: What a filter may compare with besides: lower-case separators, digits past microseconds.
LITERAL_DATETIMES = [
    *DATETIMES,
    "2024-01-01t00:00:00z",
    "2023-12-31T24:00:00Z",
    "2024-01-01T00:00:00.0000001Z",
]
BINARIES = ["QUJD", "qujd", "YWJj", "AAAA", "aGVsbG8="]
REFERENCES = ["https://x/A", "https://x/a", "urn:b", ""]


def user_doc(rng: random.Random, i: int) -> dict[str, Any]:
    """A User with some of the extension's attributes, each drawn from its small vocabulary."""

    def maybe(p: float = 0.65) -> bool:
        return rng.random() < p

    ext: dict[str, Any] = {}
    simple = {
        "code": WORDS,
        "token": WORDS,
        "level": INTEGERS,
        "score": DECIMALS,
        "enabled": [True, False],
        "since": DATETIMES,
        "homepage": REFERENCES,
        "photo": BINARIES,
        "key": BINARIES,
    }
    for name, values in simple.items():
        if maybe():
            ext[name] = rng.choice(values)
    for name, values in (("skills", WORDS), ("levels", INTEGERS), ("moments", DATETIMES)):
        if maybe():
            ext[name] = [rng.choice(values) for _ in range(rng.randint(0, 3))]
    if maybe():
        badge = {"value": rng.choice(WORDS), "number": rng.choice(WORDS), "rank": rng.choice(INTEGERS)}
        badge["issued"] = rng.choice(DATETIMES)
        ext["badge"] = {k: v for k, v in badge.items() if maybe(0.7)}
    if maybe():
        devices = []
        for _ in range(rng.randint(0, 3)):
            device = {
                "value": rng.choice(WORDS),
                "kind": rng.choice(["Laptop", "laptop", "phone", ""]),
                "cores": rng.choice(INTEGERS),
                "weight": rng.choice(DECIMALS),
                "seen": rng.choice(DATETIMES),
            }
            devices.append({k: v for k, v in device.items() if maybe(0.7)})
        if devices and maybe(0.5):
            rng.choice(devices)["primary"] = True
        ext["devices"] = devices
    body: dict[str, Any] = {"schemas": [USER, URN], "userName": f"u{i}", URN: ext}
    if maybe(0.3):
        body["title"] = rng.choice(WORDS)
    return body


@pytest.fixture(scope="module")
def population(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SqlStore, str, list[dict[str, Any]], list[dict[str, Any]]]]:
    """(store, tenant, the Users and the Groups as rendered, in creation order)."""
    store = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('ext') / 'e.db'}", registry=REGISTRY)
    tenant = store.create_tenant("t").id
    rng = random.Random(7643)
    for i in range(60):
        store.create(tenant, "User", parse_resource(USER_RT, user_doc(rng, i), CompatSettings()))
    for i in range(12):
        team: dict[str, Any] = {
            "size": rng.choice(INTEGERS),
            "label": rng.choice(WORDS),
            "tags": [rng.choice(WORDS) for _ in range(rng.randint(0, 3))],
        }
        team = {k: v for k, v in team.items() if rng.random() < 0.7}
        body = {"schemas": [GROUP, TEAM], "displayName": f"g{i}", TEAM: team}
        store.create(tenant, "Group", parse_resource(GROUP_RT, body, CompatSettings()))
    users = [rendered(USER_RT, r) for r in store.search(tenant, "User", Query(count=1000)).resources]
    groups = [rendered(GROUP_RT, r) for r in store.search(tenant, "Group", Query(count=1000)).resources]
    assert sum(URN in u for u in users) > 40 and sum(TEAM in g for g in groups) > 6
    yield store, tenant, users, groups
    store.close()


_ALL = list(CompareOp)
_ORDERING = [CompareOp.EQ, CompareOp.NE, CompareOp.GT, CompareOp.GE, CompareOp.LT, CompareOp.LE]
_EQUALITY = [CompareOp.EQ, CompareOp.NE]


def literals(t: AttributeType) -> tuple[st.SearchStrategy[Any], list[CompareOp]]:
    """Values a client may compare an attribute of type ``t`` with, and the operators it may use."""
    if t is AttributeType.BOOLEAN:
        return st.booleans(), _EQUALITY
    if t in (AttributeType.INTEGER, AttributeType.DECIMAL):
        near = st.sampled_from(INTEGERS + DECIMALS) | st.integers(-(2**63), 2**63 - 1)
        floats = st.floats(allow_nan=False, allow_infinity=False, width=64)
        return near | floats, _ORDERING
    if t is AttributeType.DATETIME:
        return st.sampled_from(LITERAL_DATETIMES), _ORDERING
    if t is AttributeType.BINARY:
        return st.sampled_from(BINARIES), _EQUALITY
    text = st.sampled_from([*WORDS, *REFERENCES, *BINARIES, "%", "_", "A%", "https"])
    return text, _ALL


def path_filters(rt: ResourceType, urn: str) -> st.SearchStrategy[Filter]:
    """Comparisons and presence tests of every attribute and sub-attribute of extension ``urn``,
    named with its URN, and valuePaths over its multi-valued attributes (inside which a simple
    attribute's values are named ``value``, parsed as the attribute's own path)."""
    schema = rt.extension(urn)
    assert schema is not None
    leaves: list[st.SearchStrategy[Filter]] = []
    for a in schema.attributes:
        subs = a.sub_attributes or (a,)
        for s in subs:
            path = AttrPath(urn, a.name, s.name if a.sub_attributes else None)
            values, ops = literals(s.type)
            leaves.append(st.builds(Compare, st.just(path), st.sampled_from(ops), values))
            leaves.append(st.builds(Compare, st.just(path), st.sampled_from(_EQUALITY), st.none()))
            leaves.append(st.just(Present(path)))
        if a.sub_attributes:
            leaves.append(st.just(Present(AttrPath(urn, a.name))))
        if a.multi_valued:
            inner = []
            for s in subs:
                path = AttrPath(urn, a.name, s.name if a.sub_attributes else None)
                values, ops = literals(s.type)
                inner.append(st.builds(Compare, st.just(path), st.sampled_from(ops), values))
                inner.append(st.just(Present(path)))
            element = st.recursive(
                st.one_of(inner),
                lambda c: st.builds(And, c, c) | st.builds(Or, c, c) | st.builds(Not, c),
                max_leaves=3,
            )
            leaves.append(st.builds(ValuePath, st.just(AttrPath(urn, a.name)), element))
    return st.one_of(leaves)


@functools.cache
def ext_filters(rt_name: str) -> st.SearchStrategy[Filter]:
    rt, urn = (USER_RT, URN) if rt_name == "User" else (GROUP_RT, TEAM)
    core = AttrPath(None, "title" if rt_name == "User" else "displayName")
    other = st.builds(Compare, st.just(core), st.sampled_from(_ALL), st.sampled_from(WORDS))
    return st.recursive(
        path_filters(rt, urn) | other,
        lambda c: st.builds(And, c, c) | st.builds(Or, c, c) | st.builds(Not, c),
        max_leaves=4,
    )


def parsed(f: Filter, rt: ResourceType) -> Filter:
    """``f`` as a client sends it: rendered to text and parsed."""
    try:
        return parse_filter(render(f), rt)
    except InvalidFilter:
        assume(False)
        raise


Population = tuple[SqlStore, str, list[dict[str, Any]], list[dict[str, Any]]]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_sql_extension_filters_agree_with_the_evaluator(population: Population, data: st.DataObject) -> None:
    store, tenant, users, groups = population
    rt = data.draw(st.sampled_from([USER_RT, GROUP_RT]), label="resource type")
    docs = users if rt is USER_RT else groups
    f = parsed(data.draw(ext_filters(rt.name), label="filter"), rt)
    expected = {d["id"] for d in docs if matches(f, d, rt)}
    page = store.search(tenant, rt.name, Query(filter=f, count=1000, with_groups=False, with_members=False))
    assert {r.id for r in page.resources} == expected, render(f)
    assert page.total == len(expected)


EXTENSION_PATHS = [
    *(p for p in sortable_paths(USER_RT) if p.urn == URN),
    *(p for p in sortable_paths(GROUP_RT) if p.urn == TEAM),
]


@pytest.mark.parametrize("path", EXTENSION_PATHS, ids=str)
def test_sql_extension_sort_agrees_with_the_model(population: Population, path: AttrPath) -> None:
    store, tenant, users, groups = population
    rt, docs = (USER_RT, users) if path.urn == URN else (GROUP_RT, groups)
    for descending in (False, True):
        found = store.search(tenant, rt.name, Query(sort_by=path, descending=descending, count=1000))
        assert [r.id for r in found.resources] == model_order(docs, path, descending, rt), descending


@settings(
    max_examples=EXAMPLES // 4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_sorted_and_filtered_on_extension_attributes(population: Population, data: st.DataObject) -> None:
    """A filter and a sortBy over extension attributes together, paged: the model's slice."""
    store, tenant, users, _ = population
    f = parsed(data.draw(ext_filters("User"), label="filter"), USER_RT)
    path = data.draw(st.sampled_from([p for p in EXTENSION_PATHS if p.urn == URN]), label="sortBy")
    descending = data.draw(st.booleans(), label="descending")
    expected = model_order([d for d in users if matches(f, d, USER_RT)], path, descending, USER_RT)
    start, count = (
        data.draw(st.integers(1, 30), label="startIndex"),
        data.draw(st.integers(0, 30), label="count"),
    )
    query = Query(
        filter=f, sort_by=path, descending=descending, start_index=start, count=count, with_groups=False
    )
    page = store.search(tenant, "User", query)
    assert [r.id for r in page.resources] == expected[start - 1 :][:count]
    assert page.total == len(expected)
