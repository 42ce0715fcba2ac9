"""Filters on values the server computes when rendering, and operators without meaning for a type.

* ``meta.location`` and the ``$ref`` of group ``members`` / a User's ``groups`` are built from the
  server's base URL: only ``pr`` is accepted, and it is rewritten to an equivalent test.
* ``meta pr``, ``meta.version pr`` and ``meta.location pr`` hold for every resource.
* ``meta.version`` (the ETag ``W/"<version>"``) compares exactly, in the evaluator and in SQL.
* ``co``/``sw``/``ew`` on dateTime, binary and boolean attributes are refused at parse time.

The SQL store must agree with the evaluator run on the representation the server renders.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisor.scim.errors import InvalidFilter, InvalidPath
from provisor.scim.filter.ast import AttrPath, Compare, CompareOp, Filter, Not, PatchPath, Present, ValuePath
from provisor.scim.filter.evaluate import matches
from provisor.scim.filter.parser import parse_filter, parse_patch_path
from provisor.scim.resources.representation import etag, to_representation
from provisor.scim.schema.model import ResourceType, Schema, default_registry
from provisor.server.service import groups_json
from provisor.store.base import Change, Member, Query, StoredResource
from provisor.store.sql import SqlStore

USER_RT = default_registry().resource_type("User")
GROUP_RT = default_registry().resource_type("Group")
assert USER_RT is not None and GROUP_RT is not None
BASE = "https://scim.example/scim/v2"
ALWAYS = Present(AttrPath(None, "meta", "resourceType"))
COMPARE_OPS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
SUBSTRING_OPS = ["co", "sw", "ew"]
DATETIME_OK = "eq, ne, gt, ge, lt, le or pr"


def _event_rt() -> ResourceType:
    """dateTime and binary attributes in every place: core, multi-valued, sub-attribute, extension."""
    core = Schema.from_json(
        {
            "id": "urn:example:params:scim:schemas:core:2.0:Event",
            "name": "Event",
            "attributes": [
                {"name": "at", "type": "dateTime"},
                {"name": "seen", "type": "dateTime", "multiValued": True},
                {"name": "blob", "type": "binary"},
                {
                    "name": "slots",
                    "type": "complex",
                    "multiValued": True,
                    "subAttributes": [
                        {"name": "value", "type": "dateTime"},
                        {"name": "start", "type": "dateTime"},
                        {"name": "label", "type": "string"},
                    ],
                },
            ],
        }
    )
    ext = Schema.from_json(
        {
            "id": "urn:example:params:scim:schemas:extension:audit:2.0:Event",
            "name": "Audit",
            "attributes": [
                {"name": "reviewed", "type": "dateTime"},
                {"name": "window", "type": "complex", "subAttributes": [{"name": "end", "type": "dateTime"}]},
            ],
        }
    )
    return ResourceType("Event", "/Events", "Event", core, ((ext, False),))


EVENT_RT = _event_rt()
AUDIT = "urn:example:params:scim:schemas:extension:audit:2.0:Event"


def refused(text: str, rt: ResourceType = USER_RT, **kwargs: Any) -> InvalidFilter:
    with pytest.raises(InvalidFilter) as info:
        parse_filter(text, rt, **kwargs)
    assert info.value.scim_type == "invalidFilter"
    return info.value


# -- values built from the base URL: pr only ---------------------------------------------------


@pytest.mark.parametrize("op", COMPARE_OPS)
@pytest.mark.parametrize(
    ("rt", "template"),
    [
        (USER_RT, 'meta.location {op} "Users"'),
        (GROUP_RT, 'meta.location {op} "Groups"'),
        (USER_RT, 'META.Location {op} "x"'),
        (USER_RT, 'groups.$ref {op} "x"'),
        (USER_RT, 'groups[$ref {op} "x"]'),
        (USER_RT, 'groups[type eq "direct" and $ref {op} "x"]'),
        (GROUP_RT, 'members.$ref {op} "x"'),
        (GROUP_RT, 'members[$REF {op} "x"]'),
        (GROUP_RT, 'displayName eq "a" or not (members.$ref {op} "x")'),
    ],
)
def test_comparisons_on_values_built_from_the_base_url_are_refused(
    rt: ResourceType, template: str, op: str
) -> None:
    text = template.format(op=op)
    exc = refused(text, rt)
    assert "computed by the server" in exc.detail and "only be tested with pr" in exc.detail
    assert f"not '{op}'" in exc.detail
    assert f"(at position {text.rindex(op + ' ')})" in exc.detail


@pytest.mark.parametrize("text", ["meta.location eq null", "meta.location ne null", "groups.$ref eq null"])
def test_null_comparisons_on_them_are_refused_too(text: str) -> None:
    assert "only be tested with pr" in refused(text).detail


def test_entra_unquoted_values_do_not_get_round_the_refusal() -> None:
    assert "computed by the server" in refused("meta.location eq Users", allow_unquoted=True).detail


@pytest.mark.parametrize(
    ("rt", "text", "expected"),
    [
        (USER_RT, "meta pr", ALWAYS),
        (USER_RT, "META PR", ALWAYS),
        (USER_RT, "meta.version pr", ALWAYS),
        (GROUP_RT, "meta.location pr", ALWAYS),
        (USER_RT, "not (meta.location pr)", Not(ALWAYS)),
        (USER_RT, "groups.$ref pr", Present(AttrPath(None, "groups"))),
        (
            USER_RT,
            "groups[$ref pr]",
            ValuePath(AttrPath(None, "groups"), Present(AttrPath(None, "groups", "value"))),
        ),
        (GROUP_RT, "members.$Ref pr", Present(AttrPath(None, "members"))),
        (
            GROUP_RT,
            "members[$ref pr]",
            ValuePath(AttrPath(None, "members"), Present(AttrPath(None, "members", "value"))),
        ),
    ],
)
def test_pr_on_always_rendered_values_is_rewritten(rt: ResourceType, text: str, expected: Filter) -> None:
    assert parse_filter(text, rt) == expected


def test_resource_type_and_timestamps_are_untouched() -> None:
    assert parse_filter("meta.created pr", USER_RT) == Present(AttrPath(None, "meta", "created"))
    assert parse_filter('meta.resourceType eq "User"', USER_RT) == Compare(
        AttrPath(None, "meta", "resourceType"), CompareOp.EQ, "User"
    )


def test_a_stored_reference_still_compares() -> None:
    """The enterprise manager's ``$ref`` is stored as sent, not built by the server."""
    text = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.$ref eq "x"'
    assert isinstance(parse_filter(text, USER_RT), Compare)


@pytest.mark.parametrize("op", COMPARE_OPS)
def test_meta_version_compares(op: str) -> None:
    f = parse_filter(f'meta.version {op} "W/\\"3\\""', USER_RT)
    assert f == Compare(AttrPath(None, "meta", "version"), CompareOp(op), 'W/"3"')


def test_patch_paths_follow_the_same_rules() -> None:
    assert parse_patch_path("members[$ref pr]", GROUP_RT) == PatchPath(
        AttrPath(None, "members"), Present(AttrPath(None, "members", "value"))
    )
    with pytest.raises(InvalidPath) as info:
        parse_patch_path('members[$ref eq "https://x/Users/1"]', GROUP_RT)
    assert info.value.scim_type == "invalidPath" and "only be tested with pr" in info.value.detail
    with pytest.raises(InvalidPath, match="dateTime"):
        parse_patch_path('slots[start sw "2026"].label', EVENT_RT)
    assert parse_patch_path('emails[type eq "work"].value', USER_RT) == PatchPath(
        AttrPath(None, "emails", "value"), Compare(AttrPath(None, "emails", "type"), CompareOp.EQ, "work")
    )
    assert parse_patch_path('members[value eq "u1"]', GROUP_RT).filter == Compare(
        AttrPath(None, "members", "value"), CompareOp.EQ, "u1"
    )


# -- co / sw / ew on dateTime, binary, boolean -------------------------------------------------


@pytest.mark.parametrize("op", SUBSTRING_OPS)
@pytest.mark.parametrize(
    ("rt", "template", "path"),
    [
        (USER_RT, 'meta.lastModified {op} "2026"', "meta.lastModified"),
        (USER_RT, 'meta.created {op} "2026-"', "meta.created"),
        (GROUP_RT, 'meta.lastModified {op} "Z"', "meta.lastModified"),
        (EVENT_RT, 'at {op} "2026"', "at"),
        (EVENT_RT, 'seen {op} "2026"', "seen"),
        (EVENT_RT, 'slots.start {op} "2026"', "slots.start"),
        (EVENT_RT, 'slots {op} "2026"', "slots.value"),
        (EVENT_RT, 'slots[label eq "a" and start {op} "2026"]', "slots.start"),
        (EVENT_RT, AUDIT + ':reviewed {op} "2026"', f"{AUDIT}:reviewed"),
        (EVENT_RT, 'reviewed {op} "2026"', f"{AUDIT}:reviewed"),
        (EVENT_RT, AUDIT + ':window.end {op} "2026"', f"{AUDIT}:window.end"),
    ],
)
def test_substring_operators_on_datetimes_are_refused(
    rt: ResourceType, template: str, path: str, op: str
) -> None:
    text = template.format(op=op)
    exc = refused(text, rt, allow_unquoted=text.startswith("reviewed"))
    assert f"'{op}' is not defined for the dateTime attribute '{path}'" in exc.detail
    assert DATETIME_OK in exc.detail
    assert f"(at position {text.rindex(op + ' ')})" in exc.detail


def test_unquoted_datetime_substring_is_refused() -> None:
    assert DATETIME_OK in refused("meta.lastModified sw 2026", allow_unquoted=True).detail


@pytest.mark.parametrize("op", ["eq", "ne", "gt", "ge", "lt", "le"])
def test_datetime_comparisons_still_parse(op: str) -> None:
    when = "2026-01-01T00:00:00Z"
    assert parse_filter(f'meta.lastModified {op} "{when}"', USER_RT) == Compare(
        AttrPath(None, "meta", "lastModified"), CompareOp(op), when
    )
    assert isinstance(parse_filter(f'slots[start {op} "{when}"]', EVENT_RT), ValuePath)
    assert isinstance(parse_filter(f'{AUDIT}:reviewed {op} "{when}"', EVENT_RT), Compare)


@pytest.mark.parametrize("op", SUBSTRING_OPS)
@pytest.mark.parametrize(
    ("rt", "text"),
    [
        (USER_RT, 'x509Certificates.value {op} "aGVs"'),
        (USER_RT, 'x509Certificates[value {op} "aGVs"]'),
        (EVENT_RT, 'blob {op} "aGVs"'),
    ],
)
def test_substring_operators_on_binary_are_refused(rt: ResourceType, text: str, op: str) -> None:
    exc = refused(text.format(op=op), rt)
    assert f"'{op}' is not defined for the binary attribute" in exc.detail and "eq, ne or pr" in exc.detail


def test_binary_equality_and_presence_still_parse() -> None:
    for text in ('x509Certificates.value eq "aGVsbG8="', 'x509Certificates.value ne "aGVsbG8="', "blob pr"):
        parse_filter(text, EVENT_RT if text.startswith("blob") else USER_RT)


@pytest.mark.parametrize("op", SUBSTRING_OPS)
@pytest.mark.parametrize("text", ['active {op} "t"', "active {op} true", "emails[primary {op} true]"])
def test_substring_operators_on_booleans_are_refused(text: str, op: str) -> None:
    assert f"'{op}' is not defined for the boolean" in refused(text.format(op=op)).detail


# -- SQL agrees with the evaluator on the rendered representation ------------------------------


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def render(rt: ResourceType, r: StoredResource) -> dict[str, Any]:
    """The representation the server returns: ``meta.version``/``location``, ``$ref`` included."""
    return to_representation(
        rt,
        r.id,
        r.data,
        created=r.created,
        last_modified=r.last_modified,
        version=r.version,
        location=f"{BASE}{rt.endpoint}/{r.id}",
        members=r.members,
        member_base_url=BASE,
        groups=groups_json(r.groups, BASE) if r.groups is not None else None,
    )


World = tuple[SqlStore, str, dict[str, list[dict[str, Any]]]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    times = iter(T0 + timedelta(hours=i) for i in range(1000))
    store = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('computed') / 'c.db'}", clock=lambda: next(times))
    tenant = store.create_tenant("t").id
    users = [store.create(tenant, "User", {"userName": f"u{i}", "title": "t0"}) for i in range(8)]
    # joining a group moves a User's version: u3 and u4 go to 3 (Sales, then Nested through it),
    # u5 to 2; updates then bring every User to its version: 1 to 6, 11, 12 ("W/\"11\"" sorts
    # before "W/\"5\"")
    sales = store.create(
        tenant, "Group", {"displayName": "Sales"}, [Member(users[3].id), Member(users[4].id)]
    )
    store.create(tenant, "Group", {"displayName": "Nested"}, [Member(sales.id), Member(users[5].id)])
    for i, (u, version) in enumerate(zip(users, (1, 2, 3, 4, 5, 6, 11, 12), strict=True)):
        for n in range(version - store.get(tenant, "User", u.id).version):
            store.update(tenant, "User", u.id, lambda r, n=n: Change({**r.data, "title": f"t{n + 1}"}))
        assert store.get(tenant, "User", u.id).version == version, i
    store.create(tenant, "Group", {"displayName": "Empty"})
    docs = {
        rt.name: [render(rt, r) for r in store.search(tenant, rt.name, Query(count=1000)).resources]
        for rt in (USER_RT, GROUP_RT)
    }
    assert {d["meta"]["version"] for d in docs["User"]} >= {'W/"1"', 'W/"6"', 'W/"11"', 'W/"12"'}
    yield store, tenant, docs
    store.close()


def sql_ids(world: World, rt: ResourceType, f: Filter) -> set[str]:
    store, tenant, _ = world
    page = store.search(tenant, rt.name, Query(filter=f, count=1000, with_members=False, with_groups=False))
    assert page.total == len(page.resources)
    return {r.id for r in page.resources}


def agreed(world: World, rt: ResourceType, f: Filter) -> set[str]:
    expected = {d["id"] for d in world[2][rt.name] if matches(f, d, rt)}
    assert sql_ids(world, rt, f) == expected, f
    return expected


def names(world: World, rt: ResourceType, ids: set[str]) -> set[str]:
    key = "userName" if rt is USER_RT else "displayName"
    return {d[key] for d in world[2][rt.name] if d["id"] in ids}


def everyone(world: World, rt: ResourceType) -> set[str]:
    return {d["id"] for d in world[2][rt.name]}


@pytest.mark.parametrize("rt", [USER_RT, GROUP_RT], ids=["User", "Group"])
@pytest.mark.parametrize("text", ["meta pr", "meta.version pr", "meta.location pr", "meta.created pr"])
def test_always_present_meta_matches_every_resource(world: World, rt: ResourceType, text: str) -> None:
    assert agreed(world, rt, parse_filter(text, rt)) == everyone(world, rt)
    assert agreed(world, rt, parse_filter(f"not ({text})", rt)) == set()


def test_ref_presence_is_member_presence(world: World) -> None:
    in_a_group = agreed(world, USER_RT, parse_filter("groups.$ref pr", USER_RT))
    assert names(world, USER_RT, in_a_group) == {"u3", "u4", "u5"}
    assert agreed(world, USER_RT, parse_filter("groups pr", USER_RT)) == in_a_group
    assert agreed(world, USER_RT, parse_filter("groups[$ref pr]", USER_RT)) == in_a_group
    assert names(world, USER_RT, agreed(world, USER_RT, parse_filter("not (groups.$ref pr)", USER_RT))) == {
        "u0",
        "u1",
        "u2",
        "u6",
        "u7",
    }
    with_members = agreed(world, GROUP_RT, parse_filter("members.$ref pr", GROUP_RT))
    assert names(world, GROUP_RT, with_members) == {"Sales", "Nested"}
    nested = parse_filter('members[$ref pr and type eq "Group"]', GROUP_RT)
    assert names(world, GROUP_RT, agreed(world, GROUP_RT, nested)) == {"Nested"}


def test_meta_version_compares_exactly(world: World) -> None:
    def hits(text: str) -> set[str]:
        return names(world, USER_RT, agreed(world, USER_RT, parse_filter(text, USER_RT)))

    assert hits('meta.version eq "W/\\"1\\""') == {"u0"}
    assert hits('meta.version eq "w/\\"1\\""') == set()  # caseExact
    assert hits('meta.version sw "W/\\"1"') == {"u0", "u6", "u7"}  # 1, 11, 12
    assert hits('meta.version ew "2\\""') == {"u1", "u7"}
    assert hits('meta.version co "1"') == {"u0", "u6", "u7"}
    assert hits('meta.version gt "W/\\"5\\""') == {"u5"}  # strings: "W/\"11\"" < "W/\"5\""
    assert hits('meta.version ne "W/\\"1\\""') == {f"u{i}" for i in range(1, 8)}
    assert hits("meta.version eq null") == set()


def test_unparsed_trees_agree_too(world: World) -> None:
    """Trees built without the parser (the rewrite skipped) get the same answers."""
    for rt, f in [
        (USER_RT, Present(AttrPath(None, "meta"))),
        (USER_RT, Present(AttrPath(None, "meta", "version"))),
        (GROUP_RT, Present(AttrPath(None, "meta", "location"))),
        (USER_RT, Present(AttrPath(None, "groups", "$ref"))),
        (GROUP_RT, Present(AttrPath(None, "members", "$ref"))),
        (GROUP_RT, ValuePath(AttrPath(None, "members"), Present(AttrPath(None, "members", "$ref")))),
        (USER_RT, Compare(AttrPath(None, "meta", "created"), CompareOp.SW, "2026")),
        (USER_RT, Not(Compare(AttrPath(None, "meta", "lastModified"), CompareOp.CO, "-"))),
    ]:
        agreed(world, rt, f)


def test_datetime_substring_trees_never_match() -> None:
    doc = {"meta": {"created": "2026-01-01T00:00:00Z"}, "seen": ["2026-01-01T00:00:00Z"]}
    for f in [
        Compare(AttrPath(None, "meta", "created"), CompareOp.SW, "2026"),
        Compare(AttrPath(None, "seen"), CompareOp.CO, "2026"),
    ]:
        assert not matches(f, doc, EVENT_RT if f.path.attr == "seen" else USER_RT)


_VERSIONS = [etag(n) for n in (1, 2, 5, 9, 10, 12, 13)]
_VERSION_VALUES = st.sampled_from(
    [*_VERSIONS, *(v.lower() for v in _VERSIONS), 'W/"', '"', "1", '2"', 'W/"1', "", "w"]
)


def _term(rt: ResourceType) -> st.SearchStrategy[str]:
    pr = ["meta pr", "meta.version pr", "meta.location pr", "meta.lastModified pr"]
    pr += ["groups.$ref pr", "groups[$ref pr]"] if rt is USER_RT else ["members.$ref pr", "members[$ref pr]"]
    version = st.builds(
        lambda op, v: f"meta.version {op} {_quote(v)}", st.sampled_from(COMPARE_OPS), _VERSION_VALUES
    )
    when = st.builds(
        lambda op, h: f'meta.lastModified {op} "{(T0 + timedelta(hours=h)).isoformat()}"',
        st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"]),
        st.integers(0, 80),
    )
    return st.sampled_from(pr) | version | when


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _filters(rt: ResourceType) -> st.SearchStrategy[str]:
    return st.recursive(
        _term(rt),
        lambda c: (
            st.builds(lambda a, b: f"({a}) and ({b})", c, c)
            | st.builds(lambda a, b: f"({a}) or ({b})", c, c)
            | st.builds(lambda a: f"not ({a})", c)
        ),
        max_leaves=4,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@pytest.mark.parametrize("rt", [USER_RT, GROUP_RT], ids=["User", "Group"])
def test_sql_agrees_with_the_evaluator_on_computed_values(
    world: World, rt: ResourceType, data: st.DataObject
) -> None:
    agreed(world, rt, parse_filter(data.draw(_filters(rt)), rt))
