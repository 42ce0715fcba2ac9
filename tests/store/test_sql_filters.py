"""Filters in SQL (RFC 7644 section 3.4.2.2): every operator, case rules, LIKE escaping, valuePath,
extensions, dateTimes, numbers, group members; sorting (section 3.4.2.3)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from tests.scim.filter.filter_strategies import DEVICE_RT

from provisor.scim.errors import InvalidFilter
from provisor.scim.filter.ast import Compare, CompareOp
from provisor.scim.filter.parser import parse_attr_path, parse_filter
from provisor.scim.schema.model import ENTERPRISE_USER, ResourceType, SchemaRegistry, default_registry
from provisor.store.base import Member, Query
from provisor.store.sql import SqlStore
from provisor.store.sql.dialect import like_escape

USER_RT = default_registry().resource_type("User")
GROUP_RT = default_registry().resource_type("Group")
assert USER_RT is not None and GROUP_RT is not None
T0 = datetime(2024, 1, 1, tzinfo=UTC)

USERS: dict[str, dict[str, Any]] = {
    "alice": {
        "userName": "alice@contoso.com",
        "displayName": "Alice Smith",
        "externalId": "A-1",
        "title": "Engineer",
        "nickName": "",
        "active": True,
        "name": {"givenName": "Alice", "familyName": "Smith"},
        "emails": [
            {"value": "alice@contoso.com", "type": "work", "primary": True},
            {"value": "alice@home.org", "type": "home"},
        ],
        "phoneNumbers": [{"type": "mobile", "value": "555-0100"}],
        ENTERPRISE_USER: {"department": "Sales", "employeeNumber": "42"},
    },
    "percent": {
        "userName": "a%_b",
        "displayName": "Percent",
        "externalId": "a-1",
        "active": False,
        "emails": [{"value": "p@x.com", "type": "home"}],
        # the two conditions of phoneNumbers[type eq "mobile" and value co "555"] hold on
        # different elements here, so the valuePath must not match
        "phoneNumbers": [{"type": "work", "value": "555-0199"}, {"type": "mobile", "value": "999"}],
        ENTERPRISE_USER: {"department": "sales"},
    },
    "trap": {"userName": "a%xb", "active": "True", "title": None},
    "backslash": {"userName": "back\\slash", "displayName": "Bob"},
    "charlie": {"userName": "CHARLIE", "name": {"givenName": ""}},
}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqlStore, str, dict[str, str]]]:
    path = tmp_path_factory.mktemp("filters") / "f.db"
    store = SqlStore(f"sqlite:///{path}", clock=Clock())
    tenant = store.create_tenant("contoso").id
    other = store.create_tenant("other").id
    ids = {key: store.create(tenant, "User", doc).id for key, doc in USERS.items()}
    store.create(other, "User", USERS["alice"])  # same data in another tenant: never returned
    ids["sales"] = store.create(tenant, "Group", {"displayName": "Sales"}, [Member(ids["alice"])]).id
    ids["empty"] = store.create(tenant, "Group", {"displayName": "Empty"}).id
    ids["nested"] = store.create(
        tenant, "Group", {"displayName": "Nested"}, [Member(ids["sales"]), Member(ids["percent"])]
    ).id
    yield store, tenant, ids
    store.close()


def found(world: tuple[SqlStore, str, dict[str, str]], text: str, rt: ResourceType = USER_RT) -> set[str]:
    store, tenant, ids = world
    page = store.search(tenant, rt.name, Query(filter=parse_filter(text, rt)))
    names = {v: k for k, v in ids.items()}
    assert page.total == len(page.resources)
    return {names[r.id] for r in page.resources}


EVERYONE = set(USERS)

CASES = [
    # case-insensitive userName (RFC 7643 section 4.1.1) and attribute names (section 2.1)
    ('userName eq "ALICE@contoso.com"', {"alice"}),
    ('USERNAME eq "alice@contoso.com"', {"alice"}),
    ('userName eq "charlie"', {"charlie"}),
    ('userName ne "charlie"', EVERYONE - {"charlie"}),
    # LIKE wildcards and the escape character are literal
    ('userName sw "a%_"', {"percent"}),
    ('userName co "%"', {"percent", "trap"}),
    ('userName co "_"', {"percent"}),
    ('userName co "\\\\"', {"backslash"}),
    ('userName ew "SLASH"', {"backslash"}),
    ('userName sw "A"', {"alice", "percent", "trap"}),
    ('userName gt "b"', {"backslash", "charlie"}),
    ('userName le "a%xb"', {"percent", "trap"}),
    # externalId and id are caseExact
    ('externalId eq "A-1"', {"alice"}),
    ('externalId eq "a-1"', {"percent"}),
    ('externalId sw "a"', {"percent"}),
    ('externalId co "A"', {"alice"}),
    ("externalId pr", {"alice", "percent"}),
    # displayName, both ordering and absence
    ('displayName gt "B"', {"percent", "backslash"}),
    ('displayName eq "bob"', {"backslash"}),
    ("displayName eq null", {"trap", "charlie"}),
    # pr is present and non-empty; absence satisfies ne and not
    ("title pr", {"alice"}),
    ("nickName pr", set()),
    ("name.givenName pr", {"alice"}),
    ("name pr", {"alice"}),
    ("not (title pr)", EVERYONE - {"alice"}),
    ('title ne "ENGINEER"', EVERYONE - {"alice"}),
    ('title eq "engineer"', {"alice"}),
    # booleans, with Entra's "True" string (quirk Q2)
    ("active eq true", {"alice", "trap"}),
    ("active eq false", {"percent"}),
    ("active ne true", EVERYONE - {"alice", "trap"}),
    # emails: the emails table, any element, and valuePath on one element
    ('emails.value eq "P@X.COM"', {"percent"}),
    ('emails co "contoso"', {"alice"}),
    ('emails[type eq "work" and value co "CONTOSO"]', {"alice"}),
    ('emails[type eq "home" and value co "contoso"]', set()),
    ('emails[type eq "home"]', {"alice", "percent"}),
    ('emails.type eq "home" and not (emails.type eq "work")', {"percent"}),
    ('emails[primary eq true and type eq "work"]', {"alice"}),
    ("emails pr", {"alice", "percent"}),
    ('emails.value ne "p@x.com"', EVERYONE - {"percent"}),
    # a generic multi-valued complex attribute through JSON
    ('phoneNumbers[type eq "mobile" and value co "555"]', {"alice"}),
    ('phoneNumbers.value co "555"', {"alice", "percent"}),
    ('phoneNumbers[not (type eq "work")]', {"alice", "percent"}),
    # extension attributes live under their URN
    (f'{ENTERPRISE_USER}:department eq "SALES"', {"alice", "percent"}),
    (f"{ENTERPRISE_USER}:employeeNumber pr", {"alice"}),
    (f'schemas eq "{ENTERPRISE_USER}"', {"alice", "percent"}),
    ('schemas eq "urn:ietf:params:scim:schemas:core:2.0:User"', EVERYONE),
    ('meta.resourceType eq "user"', set()),  # caseExact (RFC 7643 section 3.1)
    # meta timestamps are instants: created one minute apart from T0 + 3 min
    # alice joined Sales after 00:03:30: her groups changed, and with them her lastModified
    ('meta.lastModified gt "2024-01-01T00:03:30Z"', {"alice", "percent", "trap", "backslash", "charlie"}),
    ('meta.created le "2024-01-01T01:04:00+01:00"', {"alice", "percent"}),
    ('meta.created eq "2024-01-01T00:03:00Z"', {"alice"}),
    # logic
    ('userName eq "charlie" or displayName eq "bob"', {"charlie", "backslash"}),
    ('(userName sw "a" and active eq true) or title pr', {"alice", "trap"}),
    ('not (userName sw "a" or userName sw "b")', {"charlie"}),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_user_filters(world: tuple[SqlStore, str, dict[str, str]], text: str, expected: set[str]) -> None:
    assert found(world, text) == expected


def test_id_filter(world: tuple[SqlStore, str, dict[str, str]]) -> None:
    _, _, ids = world
    assert found(world, f'id eq "{ids["alice"]}"') == {"alice"}
    assert found(world, f'id eq "{ids["alice"].upper()}"') == set()


GROUP_CASES = [
    ('displayName eq "SALES"', {"sales"}),
    ("members pr", {"sales", "nested"}),
    ("not (members pr)", {"empty"}),
    ('members.type eq "group"', {"nested"}),
    ('members[type eq "User" and display eq "alice smith"]', {"sales"}),
]


@pytest.mark.parametrize(("text", "expected"), GROUP_CASES, ids=[c[0] for c in GROUP_CASES])
def test_group_filters(world: tuple[SqlStore, str, dict[str, str]], text: str, expected: set[str]) -> None:
    assert found(world, text, GROUP_RT) == expected


def test_member_value_filters(world: tuple[SqlStore, str, dict[str, str]]) -> None:
    _, _, ids = world
    assert found(world, f'members[value eq "{ids["alice"]}"]', GROUP_RT) == {"sales"}
    assert found(world, f'members.value eq "{ids["percent"]}"', GROUP_RT) == {"nested"}
    assert found(world, f'members.value ne "{ids["alice"]}"', GROUP_RT) == {"nested", "empty"}


def test_sorting(world: tuple[SqlStore, str, dict[str, str]]) -> None:
    store, tenant, ids = world
    names = {v: k for k, v in ids.items()}

    def order(attr: str, descending: bool = False) -> list[str]:
        q = Query(sort_by=parse_attr_path(attr, USER_RT), descending=descending)
        return [names[r.id] for r in store.search(tenant, "User", q).resources]

    # case-insensitive, nulls last ascending and first descending (RFC 7644 section 3.4.2.3)
    assert order("userName") == ["percent", "trap", "alice", "backslash", "charlie"]
    assert order("displayName") == ["alice", "backslash", "percent", "trap", "charlie"]
    assert order("displayName", True) == ["trap", "charlie", "percent", "backslash", "alice"]
    assert order("meta.created", True) == ["charlie", "backslash", "trap", "percent", "alice"]
    # multi-valued: the primary value, else the first
    assert order("emails.value")[:2] == ["alice", "percent"]
    assert order("title") == ["alice", "percent", "trap", "backslash", "charlie"]  # ties: by creation


def test_keyset_pages_by_id_follow_the_unique_index(world: tuple[SqlStore, str, dict[str, str]]) -> None:
    """``sortBy=id`` with ``id gt "<last>"`` (a client's keyset paging): the ids in order, each
    page read off the (tenant, type, id) index with no sort of what follows the cursor."""
    store, tenant, ids = world
    by_id = parse_attr_path("id", USER_RT)
    every = sorted(ids[n] for n in ("alice", "backslash", "charlie", "percent", "trap"))
    assert [r.id for r in store.search(tenant, "User", Query(sort_by=by_id)).resources] == every
    descending = store.search(tenant, "User", Query(sort_by=by_id, descending=True)).resources
    assert [r.id for r in descending] == every[::-1]
    walked: list[str] = []
    cursor = ""
    while True:
        page = store.search(
            tenant, "User", Query(filter=parse_filter(f'id gt "{cursor}"', USER_RT), sort_by=by_id, count=2)
        )
        walked += [r.id for r in page.resources]
        if len(page.resources) < 2:
            break
        cursor = page.resources[-1].id
    assert walked == every
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        store.search(
            tenant, "User", Query(filter=parse_filter(f'id gt "{every[1]}"', USER_RT), sort_by=by_id)
        )
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    page_sql, params = next((s, p) for s, p in statements if "ORDER BY" in s)
    with store.engine.connect() as conn:
        plan = " | ".join(r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + page_sql, params))
    assert "ux_resources_id" in plan and "TEMP B-TREE" not in plan, plan


def test_sorting_pages_are_stable(world: tuple[SqlStore, str, dict[str, str]]) -> None:
    store, tenant, _ = world
    path = parse_attr_path("title", USER_RT)
    pages = [
        store.search(tenant, "User", Query(sort_by=path, start_index=i, count=2)).resources for i in (1, 3, 5)
    ]
    everyone = store.search(tenant, "User", Query(sort_by=path)).resources
    assert [r.id for page in pages for r in page] == [r.id for r in everyone]


@pytest.fixture(scope="module")
def devices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqlStore, str]]:
    """A resource type with integer, decimal, dateTime and multi-valued simple attributes."""
    base = default_registry()
    registry = SchemaRegistry((*base.schemas, DEVICE_RT.schema), (*base.resource_types, DEVICE_RT))
    store = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('dev') / 'd.db'}", registry=registry)
    tenant = store.create_tenant("t").id
    docs = [
        {"serial": "S-1", "cores": 4, "weight": 1.5, "ports": [80, 443], "tags": ["Edge", "prod"]},
        {"serial": "s-2", "cores": "16", "weight": 10, "seen": ["2024-05-01T10:00:00+02:00"]},
        {"serial": "S-3", "cores": "many", "parts": [{"value": "fan", "count": 2, "spare": True}]},
    ]
    for doc in docs:
        store.create(tenant, "Device", doc)
    yield store, tenant
    store.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cores gt 4", {"s-2"}),  # "16" as a string is coerced, "many" is not a number
        ("cores ge 4", {"S-1", "s-2"}),
        ("cores ne 4", {"s-2", "S-3"}),
        ("weight lt 2", {"S-1"}),
        ("weight eq 10.0", {"s-2"}),
        ("ports eq 443", {"S-1"}),
        ("ports gt 100", {"S-1"}),
        ('tags eq "edge"', {"S-1"}),
        ('tags co "RO"', {"S-1"}),
        ('seen lt "2024-05-01T09:00:00Z"', {"s-2"}),
        ('seen gt "2024-05-01T09:00:00Z"', set()),
        ('serial sw "s"', {"s-2"}),
        ("parts[count ge 2 and spare eq true]", {"S-3"}),
        ('parts[value eq "FAN"]', set()),  # parts.value is caseExact
    ],
)
def test_numbers_dates_and_simple_multi_valued(
    devices: tuple[SqlStore, str], text: str, expected: set[str]
) -> None:
    store, tenant = devices
    page = store.search(tenant, "Device", Query(filter=parse_filter(text, DEVICE_RT)))
    assert {r.data["serial"] for r in page.resources} == expected


def test_numeric_sort(devices: tuple[SqlStore, str]) -> None:
    store, tenant = devices
    page = store.search(tenant, "Device", Query(sort_by=parse_attr_path("cores", DEVICE_RT), descending=True))
    assert [r.data["serial"] for r in page.resources] == ["S-3", "s-2", "S-1"]  # "many": no number


def test_values_are_bound_parameters(world: tuple[SqlStore, str, dict[str, str]], tmp_path: Path) -> None:
    store, tenant, _ = world
    evil = "x'; DROP TABLE resources; --"
    page = store.search(tenant, "User", Query(filter=parse_filter(f'userName co "{evil}"', USER_RT)))
    assert page.total == 0
    assert store.search(tenant, "User", Query(count=0)).total == len(USERS)


def test_filter_values_never_reach_the_sql_text(tmp_path: Path) -> None:
    """Every statement a filter sends (prepared or compiled) carries its values as parameters: the
    SQL text holds neither the value, nor its folded, quoted or LIKE-escaped form."""
    store = SqlStore(f"sqlite:///{tmp_path / 'bound.db'}")
    try:
        tenant = store.create_tenant("t").id
        hit = store.create(
            tenant,
            "User",
            {"userName": "zq'x%_y", "displayName": "A zz%_qq B", "emails": [{"value": "ab'c@x.com"}]},
        ).id
        # the same text with the wildcards taken as wildcards: matching it would be an unescaped LIKE
        store.create(
            tenant,
            "User",
            {"userName": "zqAxBCy", "displayName": "A zzABqq B", "emails": [{"value": "abXc@x.com"}]},
        )
        sent: list[tuple[str, Any]] = []

        def compiled(
            conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
        ) -> None:
            sent.append((statement, parameters))

        def prepared(statement: str, rowcount: int) -> None:
            sent.append((statement, None))

        cases = [
            ('userName eq "zq\'x%_y"', "zq'x%_y"),
            ('userName eq "ZQ\'X%_Y"', "ZQ'X%_Y"),
            ('displayName co "zz%_qq"', "zz%_qq"),
            ('emails[value sw "ab\'c"]', "ab'c"),
            ('emails.value co "B\'C@"', "B'C@"),
        ]
        event.listen(store.engine, "before_cursor_execute", compiled)
        store.connections.observers.append(prepared)
        try:
            for text, value in cases:
                sent.clear()
                page = store.search(tenant, "User", Query(filter=parse_filter(text, USER_RT)))
                assert [r.id for r in page.resources] == [hit] and page.total == 1, text
                assert sent, text
                forms = {value, value.lower(), value.replace("'", "''"), like_escape(value)}
                forms |= {like_escape(value.lower()), value[:4].lower()}
                for sql, _ in sent:
                    assert not any(f in sql or f in sql.lower() for f in forms), (text, sql)
        finally:
            store.connections.observers.remove(prepared)
            event.remove(store.engine, "before_cursor_execute", compiled)
        # the compiled statements did carry the values, as parameters
        sent.clear()
        event.listen(store.engine, "before_cursor_execute", compiled)
        try:
            store.search(tenant, "User", Query(filter=parse_filter('displayName co "zz%_qq"', USER_RT)))
        finally:
            event.remove(store.engine, "before_cursor_execute", compiled)
        assert any(like_escape("zz%_qq") in p for _, params in sent for p in params if isinstance(p, str))
    finally:
        store.close()


FAST = [
    ('userName eq "ALICE@CONTOSO.COM"', USER_RT, {"alice"}),
    ('externalId eq "a-1"', USER_RT, {"percent"}),
    ('displayName eq "bob"', USER_RT, {"backslash"}),
    ('emails[type eq "WORK" and value eq "Alice@Contoso.com"]', USER_RT, {"alice"}),
    ('emails[value eq "alice@home.org" and type eq "home"]', USER_RT, {"alice"}),
    ('emails[type eq "work" and value eq "alice@home.org"]', USER_RT, set()),
    ('emails.value eq "P@x.com"', USER_RT, {"percent"}),
    ('displayName eq "sales"', GROUP_RT, {"sales"}),
]


@pytest.mark.parametrize(("text", "rt", "expected"), FAST, ids=[c[0] for c in FAST])
def test_prepared_lookups_agree_with_compiled_filters(
    world: tuple[SqlStore, str, dict[str, str]], text: str, rt: ResourceType, expected: set[str]
) -> None:
    """Entra's match lookups take prepared statements; a sortBy forces the general compiler."""
    store, tenant, ids = world
    names = {v: k for k, v in ids.items()}
    f = parse_filter(text, rt)
    assert store._lookups.match(f, rt) is not None
    fast = store.search(tenant, rt.name, Query(filter=f))
    general = store.search(tenant, rt.name, Query(filter=f, sort_by=parse_attr_path("id", rt)))
    assert {names[r.id] for r in fast.resources} == {names[r.id] for r in general.resources} == expected
    assert fast.total == general.total == len(expected)
    assert store.search(tenant, rt.name, Query(filter=f, count=0)).total == len(expected)


LOOKUP_INDEXES = [
    ('externalId eq "A-1"', USER_RT, "ix_resources_external_id"),
    ('displayName eq "SALES"', GROUP_RT, "ix_resources_display_name"),
]


@pytest.mark.parametrize(("text", "rt", "index"), LOOKUP_INDEXES, ids=[c[0] for c in LOOKUP_INDEXES])
@pytest.mark.parametrize("count", [None, 0], ids=["page", "count"])
def test_entra_match_lookups_use_their_index(
    world: tuple[SqlStore, str, dict[str, str]], text: str, rt: ResourceType, index: str, count: int | None
) -> None:
    """The statements Entra's ``externalId eq`` / ``displayName eq`` matches actually send search
    resources through their index, never scanning the table."""
    store, tenant, _ = world
    f = parse_filter(text, rt)
    matched = store._lookups.match(f, rt)
    assert matched is not None
    lookup, params = matched
    ours = {p.sql: p for p in (lookup.page, lookup.page_groups, lookup.count)}
    sent: list[str] = []
    store.connections.observers.append(lambda sql, _: sent.append(sql))
    try:
        page = store.search(
            tenant, rt.name, Query(filter=f) if count is None else Query(filter=f, count=count)
        )
    finally:
        store.connections.observers.pop()
    assert page.total == 1
    run = [sql for sql in sent if sql in ours]
    assert run, sent
    args = {"tenant": tenant, "rt": rt.name, "lim": 100, "off": 0, **params}
    with store.engine.connect() as conn:
        for sql in run:
            plan = " | ".join(
                r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, ours[sql].args(args))
            )
            assert f"SEARCH resources USING INDEX {index}" in plan or (
                f"SEARCH resources USING COVERING INDEX {index}" in plan
            ), plan
            assert "SCAN" not in plan, plan


def test_prepared_lookup_pages(world: tuple[SqlStore, str, dict[str, str]]) -> None:
    store, tenant, _ = world
    f = parse_filter('emails.value ew "contoso.com" or userName pr', USER_RT)
    assert store._lookups.match(f, USER_RT) is None  # not a lookup: compiled
    store_total = store.search(tenant, "User", Query(filter=f, count=2))
    assert store_total.total == len(USERS) and len(store_total.resources) == 2


def test_user_groups_filters(world: tuple[SqlStore, str, dict[str, str]]) -> None:
    """A User's groups are its direct and indirect memberships: alice is in Sales, and through it
    in Nested; percent is in Nested directly."""
    _, _, ids = world
    assert found(world, f'groups.value eq "{ids["sales"]}"') == {"alice"}
    assert found(world, f'groups[value eq "{ids["nested"]}"]') == {"percent", "alice"}
    assert found(world, f'groups[value eq "{ids["nested"]}" and type eq "direct"]') == {"percent"}
    assert found(world, f'groups[value eq "{ids["nested"]}" and type eq "indirect"]') == {"alice"}
    assert found(world, 'groups[type eq "indirect" and display eq "nested"]') == {"alice"}
    # ne on a multi-valued attribute: some value differs (alice's Nested), or none is there
    assert found(world, f'groups.value ne "{ids["sales"]}"') == EVERYONE
    assert found(world, f'not (groups.value eq "{ids["sales"]}")') == EVERYONE - {"alice"}
    assert found(world, 'groups[display eq "SALES" and type eq "direct"]') == {"alice"}
    assert found(world, 'groups.display co "e"') == {"alice", "percent"}
    assert found(world, "groups pr") == {"alice", "percent"}
    assert found(world, "groups.$ref pr") == {"alice", "percent"}  # every group a User is in has one


@pytest.mark.parametrize("op", ["co", "sw", "ew"])
@pytest.mark.parametrize("attr", ["displayName", "title", "emails.value", "groups.display", "id"])
def test_a_nul_in_a_substring_target_is_matched_literally(
    world: tuple[SqlStore, str, dict[str, str]], attr: str, op: str
) -> None:
    """SQLite's LIKE stops reading its pattern at NUL; no stored value holds one, so nothing matches.
    The parser refuses such a literal (invalidFilter); a tree built without it still matches nothing."""
    with pytest.raises(InvalidFilter, match="NUL"):
        parse_filter(f'{attr} {op} "\\u0000"', USER_RT)
    store, tenant, _ = world
    path = parse_attr_path(attr, USER_RT)
    page = store.search(tenant, "User", Query(filter=Compare(path, CompareOp(op), "\x00")))
    assert page.resources == []


def test_a_large_filter_is_compiled_afresh_not_kept(world: tuple[SqlStore, str, dict[str, str]]) -> None:
    """SQLAlchemy keeps each statement shape in its compiled cache (up to 500): a filter of many
    groups comparisons held megabytes there a shape, so a client sending ever longer filters
    grew the server by gigabytes. Past filters.CACHED_TERMS the statement is not kept."""
    from provisor.store.sql.filters import CACHED_TERMS, cacheable

    store, _, _ = world

    def text(n: int) -> str:
        return " or ".join(f'groups.display eq "g{i}"' for i in range(n))

    assert cacheable(parse_filter(text(CACHED_TERMS), USER_RT))
    assert not cacheable(parse_filter(text(CACHED_TERMS + 1), USER_RT))
    assert not cacheable(parse_filter(f'emails[type eq "a" and value eq "b"] and ({text(7)})', USER_RT))
    cache = store.engine._compiled_cache
    assert cache is not None
    found(world, text(2))
    before = len(cache)
    for n in range(CACHED_TERMS + 1, CACHED_TERMS + 6):
        assert found(world, text(n) + ' or groups.display eq "sales"') == {"alice"}
    assert len(cache) == before
    found(world, text(3))
    assert len(cache) > before  # a small one is kept
