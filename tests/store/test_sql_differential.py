"""Differential property test: SQL search selects exactly what the in-memory evaluator
(``provisor.scim.filter.evaluate.matches``, RFC 7644 section 3.4.2.2) accepts, for generated filters
over a varied fixed population of Users (quirky values included: "True" strings, empty strings,
nulls, missing sub-attributes, mixed case, LIKE wildcards, non-ASCII), some in Groups: ``groups``
filters go through the memberships relation and must agree with the evaluator on the rendered
``groups`` (``$ref`` aside: the store does not know the base URL, so it is never filtered on)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.scim.filter.filter_strategies import USER_RT, filters, safe_text

from provisor.scim.filter.ast import And, AttrPath, Compare, CompareOp, Filter, Not, Or, Present, ValuePath
from provisor.scim.filter.evaluate import matches
from provisor.scim.schema.model import ENTERPRISE_USER, USER
from provisor.store.base import Member, Query, StoredResource
from provisor.store.sql import SqlStore
from provisor.store.testing import members_delta

WORDS = ["alice", "Alice", "ALICE@contoso.com", "bob", "bø", "BØB", "a%_b", "a%xb", "back\\slash", "", "x"]
TYPES = ["work", "Work", "home", "other", ""]
DOMAINS = ["@contoso.com", "@Contoso.COM", "@x.org", ""]
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def make_user(rng: random.Random, i: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"userName": f"{rng.choice(WORDS)}{i}"}

    def maybe(key: str, value: Any) -> None:
        if rng.random() < 0.6:
            doc[key] = value

    maybe("displayName", rng.choice([*WORDS, None]))
    maybe("title", rng.choice([*WORDS, None]))
    maybe("externalId", rng.choice(WORDS))
    maybe("active", rng.choice([True, False, "True", "false", "yes", None]))
    maybe("name", {k: rng.choice(WORDS) for k in ("givenName", "familyName") if rng.random() < 0.6})
    maybe(
        "emails",
        [
            {
                k: v
                for k, v in (
                    ("value", rng.choice(WORDS) + rng.choice(DOMAINS)),
                    ("type", rng.choice(TYPES)),
                    ("primary", rng.choice([True, False])),
                    ("display", rng.choice(WORDS)),
                )
                if rng.random() < 0.75
            }
            for _ in range(rng.randint(0, 3))
        ],
    )
    maybe(
        "phoneNumbers", [{"value": f"555-{rng.randint(0, 99)}", "type": rng.choice(TYPES)} for _ in range(2)]
    )
    maybe(ENTERPRISE_USER, {"department": rng.choice(WORDS), "manager": {"value": rng.choice(WORDS)}})
    return doc


def representation(r: StoredResource) -> dict[str, Any]:
    """What the server renders (the evaluator's input): document + id, schemas, meta."""
    schemas = [USER] + ([ENTERPRISE_USER] if isinstance(r.data.get(ENTERPRISE_USER), dict) else [])
    meta = {
        "resourceType": "User",
        "created": r.created.isoformat(),
        "lastModified": r.last_modified.isoformat(),
    }
    doc = {**r.data, "id": r.id, "schemas": schemas, "meta": meta}
    if r.groups:  # as server/service.py renders them
        doc["groups"] = [
            {"value": g.value, "$ref": f"https://x/Groups/{g.value}", "type": g.type}
            | ({"display": g.display} if g.display is not None else {})
            for g in r.groups
        ]
    return doc


@pytest.fixture(scope="module")
def population(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SqlStore, str, list[dict[str, Any]]]]:
    times = iter(T0 + timedelta(days=37 * i, seconds=i) for i in range(1000))
    store = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('diff') / 'd.db'}", clock=lambda: next(times))
    tenant = store.create_tenant("t").id
    rng = random.Random(7643)
    made = [store.create(tenant, "User", make_user(rng, i)) for i in range(60)]
    # groups with quirky displayNames (one without; unique when case is folded, as a tenant's
    # group names must be): about half the Users are in some of them
    names: list[str | None] = [
        "alice",
        "ALICE@contoso.com",
        "bob",
        "BØB",
        "a%_b",
        "a%xb",
        "back\\slash",
        "x",
        None,
    ]
    groups = []
    for name in names:
        members = [Member(u.id) for u in made if rng.random() < 0.25]
        groups.append(
            store.create(tenant, "Group", {"displayName": name} if name is not None else {}, members)
        )
    # nested groups: a chain (bob -> alice -> x), a cycle (a%_b <-> a%xb) and one more way in
    for outer, inner in ((0, 2), (7, 0), (4, 5), (5, 4), (3, 5)):
        store.update(tenant, "Group", groups[outer].id, members_delta(add=(Member(groups[inner].id),)))
    users = store.search(tenant, "User", Query(count=1000)).resources
    assert any(u.groups for u in users) and any(not u.groups for u in users)
    kinds = {g.type for u in users for g in u.groups or ()}
    assert kinds == {"direct", "indirect"}
    yield store, tenant, [representation(u) for u in users]
    store.close()


vocabulary = st.sampled_from([*WORDS, *TYPES, "contoso", "CONTOSO.COM", "555", "@", "%", "_", "\\", "1"])


@settings(
    max_examples=int(__import__("os").environ.get("DIFF_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(f=filters(vocabulary | safe_text, max_leaves=6))
def test_sql_search_agrees_with_the_evaluator(
    population: tuple[SqlStore, str, list[dict[str, Any]]], f: Filter
) -> None:
    store, tenant, docs = population
    expected = {d["id"] for d in docs if matches(f, d, USER_RT)}
    page = store.search(tenant, "User", Query(filter=f, count=1000, with_members=False))
    assert {r.id for r in page.resources} == expected
    assert page.total == len(expected)


GROUP_SUBS = ["value", "display", "type"]


def group_filters(text: st.SearchStrategy[str]) -> st.SearchStrategy[Filter]:
    """Filters on a User's ``groups``: sub-attribute comparisons, presence, ``groups[...]``."""
    ops = st.sampled_from(list(CompareOp))
    sub = st.sampled_from(GROUP_SUBS).map(lambda s: AttrPath(None, "groups", s))
    path = sub | st.just(AttrPath(None, "groups"))
    # canonical ASTs only: the parser reads ``groups eq "x"`` as ``groups.value eq "x"``
    compare = st.builds(Compare, sub, ops, text) | st.builds(
        Compare, sub, st.sampled_from([CompareOp.EQ, CompareOp.NE]), st.none()
    )
    inner = st.recursive(
        st.builds(Compare, sub, ops, text) | st.builds(Present, sub),
        lambda c: st.builds(And, c, c) | st.builds(Or, c, c) | st.builds(Not, c),
        max_leaves=3,
    )
    value_path = st.builds(ValuePath, st.just(AttrPath(None, "groups")), inner)
    return compare | st.builds(Present, path) | value_path


@settings(
    max_examples=int(__import__("os").environ.get("DIFF_EXAMPLES", "400")) // 2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_sql_groups_filters_agree_with_the_evaluator(
    population: tuple[SqlStore, str, list[dict[str, Any]]], data: st.DataObject
) -> None:
    store, tenant, docs = population
    ids = sorted({g["value"] for d in docs for g in d.get("groups", ())})
    types = ["direct", "indirect", "Indirect"]
    words = st.sampled_from([*ids, *(i.upper() for i in ids), *types, *WORDS]) | safe_text
    groups = group_filters(words)
    f = data.draw(
        st.recursive(
            groups | filters(vocabulary, max_leaves=2),
            lambda c: st.builds(And, c, c) | st.builds(Or, c, c) | st.builds(Not, c),
            max_leaves=4,
        )
    )
    expected = {d["id"] for d in docs if matches(f, d, USER_RT)}
    page = store.search(tenant, "User", Query(filter=f, count=1000, with_groups=False))
    assert {r.id for r in page.resources} == expected
    assert page.total == len(expected)
