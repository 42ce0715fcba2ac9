"""provisor.scim.projection: attributes / excludedAttributes (RFC 7644 section 3.4.2.5) with the
schema's ``returned`` characteristic (RFC 7643 section 7)."""

from __future__ import annotations

from typing import Any

from provisor.scim.filter.ast import AttrPath
from provisor.scim.projection import changed_keys, project, specified_keys
from provisor.scim.schema import ENTERPRISE_USER, GROUP, USER, default_registry
from provisor.scim.schema.model import ResourceType, Schema

REG = default_registry()


def _rt(name: str) -> ResourceType:
    found = REG.resource_type(name)
    assert found is not None
    return found


USERS = _rt("User")
GROUPS = _rt("Group")

META = {
    "resourceType": "User",
    "created": "2024-05-01T12:00:00Z",
    "lastModified": "2024-05-01T12:00:00Z",
    "location": "https://app/Users/u1",
    "version": 'W/"1"',
}
REP: dict[str, Any] = {
    "schemas": [USER, ENTERPRISE_USER],
    "id": "u1",
    "externalId": "alice",
    "meta": META,
    "userName": "alice@contoso.com",
    "displayName": "Alice",
    "name": {"givenName": "Alice", "familyName": "Smith", "formatted": "Alice Smith"},
    "emails": [
        {"value": "alice@contoso.com", "type": "work", "primary": True},
        {"value": "al@home.example", "type": "home"},
    ],
    "password": "should-never-leak",
    ENTERPRISE_USER: {"department": "Sales", "manager": {"value": "m1"}},
}


def p(attr: str, sub: str | None = None, urn: str | None = None) -> AttrPath:
    return AttrPath(urn=urn, attr=attr, sub=sub)


def test_no_parameters_returns_default_and_always_but_never_never() -> None:
    out = project(USERS, REP)
    assert "password" not in out
    assert out == {k: v for k, v in REP.items() if k != "password"}


def test_attributes_keeps_listed_plus_always_and_schemas() -> None:
    out = project(USERS, REP, attributes=[p("userName")])
    assert out == {"schemas": [USER], "id": "u1", "userName": "alice@contoso.com"}


def test_entra_manager_check_attributes_id() -> None:
    """entra-behaviour.md 1.4 step 3: ``attributes=id`` gives the id only."""
    assert project(USERS, REP, attributes=[p("id")]) == {"schemas": [USER], "id": "u1"}


def test_listed_sub_attribute_keeps_only_that_sub() -> None:
    out = project(USERS, REP, attributes=[p("name", "givenName"), p("emails", "value")])
    assert out["name"] == {"givenName": "Alice"}
    assert out["emails"] == [{"value": "alice@contoso.com"}, {"value": "al@home.example"}]


def test_listed_parent_wins_over_listed_sub() -> None:
    out = project(USERS, REP, attributes=[p("name", "givenName"), p("name")])
    assert out["name"] == REP["name"]
    out = project(USERS, REP, attributes=[p("name"), p("name", "givenName")])
    assert out["name"] == REP["name"]


def test_meta_sub_attribute() -> None:
    out = project(USERS, REP, attributes=[p("meta", "location")])
    assert out["meta"] == {"location": "https://app/Users/u1"}


def test_excluded_drops_and_cannot_drop_always() -> None:
    out = project(USERS, REP, excluded=[p("emails"), p("id"), p("name", "familyName"), p("schemas")])
    assert "emails" not in out
    assert out["id"] == "u1" and out["schemas"] == REP["schemas"]
    assert out["name"] == {"givenName": "Alice", "formatted": "Alice Smith"}


def test_excluded_sub_of_multi_valued() -> None:
    out = project(USERS, REP, excluded=[p("emails", "primary"), p("emails", "type")])
    assert out["emails"] == [{"value": "alice@contoso.com"}, {"value": "al@home.example"}]


def test_extension_attribute_paths() -> None:
    out = project(USERS, REP, attributes=[p("department", urn=ENTERPRISE_USER)])
    assert out == {"schemas": [USER, ENTERPRISE_USER], "id": "u1", ENTERPRISE_USER: {"department": "Sales"}}
    out = project(USERS, REP, attributes=[p("manager", "value", urn=ENTERPRISE_USER)])
    assert out[ENTERPRISE_USER] == {"manager": {"value": "m1"}}


def test_extension_key_and_urn_disappear_when_empty() -> None:
    out = project(
        USERS, REP, excluded=[p("department", urn=ENTERPRISE_USER), p("manager", urn=ENTERPRISE_USER)]
    )
    assert ENTERPRISE_USER not in out
    assert out["schemas"] == [USER]
    out = project(USERS, REP, attributes=[p("userName")])
    assert ENTERPRISE_USER not in out and out["schemas"] == [USER]


def test_whole_extension_by_urn() -> None:
    for path in (p("", urn=ENTERPRISE_USER), p(ENTERPRISE_USER)):
        out = project(USERS, REP, attributes=[path])
        assert out[ENTERPRISE_USER] == REP[ENTERPRISE_USER]
        assert "userName" not in out
    assert ENTERPRISE_USER not in project(USERS, REP, excluded=[p(ENTERPRISE_USER)])


def test_names_compare_case_insensitively() -> None:
    out = project(
        USERS,
        REP,
        attributes=[p("USERNAME"), p("Name", "GIVENNAME"), p("Department", urn=ENTERPRISE_USER.upper())],
    )
    assert out["userName"] == "alice@contoso.com"
    assert out["name"] == {"givenName": "Alice"}
    assert out[ENTERPRISE_USER] == {"department": "Sales"}


def test_excluded_members_for_entra_group_match_q10() -> None:
    """entra-behaviour.md 1.6: ``excludedAttributes=members`` must be honoured (Q10)."""
    group = {
        "schemas": [GROUP],
        "id": "g1",
        "displayName": "Sales",
        "members": [{"value": "u1", "$ref": "https://app/Users/u1", "type": "User"}],
        "meta": {"resourceType": "Group"},
    }
    out = project(GROUPS, group, excluded=[p("members")])
    assert "members" not in out and out["displayName"] == "Sales"
    assert project(GROUPS, group, attributes=[p("members", "value")])["members"] == [{"value": "u1"}]


def test_attributes_and_excluded_together() -> None:
    out = project(USERS, REP, attributes=[p("name")], excluded=[p("name", "formatted")])
    assert out["name"] == {"givenName": "Alice", "familyName": "Smith"}


def test_an_empty_exclusion_is_none_and_an_empty_selection_keeps_what_is_always_returned() -> None:
    assert project(USERS, REP, excluded=[]) == project(USERS, REP)
    # attributes given, but naming nothing the resource type has (the names were unknown)
    assert project(USERS, REP, attributes=[]) == {"schemas": [USER], "id": REP["id"]}


def _returned_rt() -> ResourceType:
    schema = Schema.from_json(
        {
            "id": "urn:example:Thing",
            "name": "Thing",
            "attributes": [
                {"name": "label", "type": "string"},
                {"name": "secret", "type": "string", "returned": "never"},
                {"name": "audit", "type": "string", "returned": "request"},
                {"name": "code", "type": "string", "returned": "always"},
                {
                    "name": "badge",
                    "type": "complex",
                    "subAttributes": [
                        {"name": "number", "type": "string", "returned": "always"},
                        {"name": "note", "type": "string", "returned": "request"},
                        {"name": "colour", "type": "string"},
                        {"name": "pin", "type": "string", "returned": "never"},
                    ],
                },
            ],
        }
    )
    return ResourceType("Thing", "/Things", "Thing", schema)


THING = _returned_rt()
THING_REP = {
    "schemas": ["urn:example:Thing"],
    "id": "t1",
    "label": "L",
    "secret": "S",
    "audit": "A",
    "code": "C",
    "badge": {"number": "7", "note": "N", "colour": "red", "pin": "1234"},
}


def test_returned_request_and_always_and_never() -> None:
    out = project(THING, THING_REP)
    assert out == {
        "schemas": ["urn:example:Thing"],
        "id": "t1",
        "label": "L",
        "code": "C",
        "badge": {"number": "7", "colour": "red"},
    }
    out = project(THING, THING_REP, attributes=[p("audit"), p("secret")])
    assert out == {"schemas": ["urn:example:Thing"], "id": "t1", "audit": "A", "code": "C"}
    out = project(THING, THING_REP, excluded=[p("code"), p("label"), p("badge", "number")])
    assert out["code"] == "C" and "label" not in out and out["badge"] == {"number": "7", "colour": "red"}


def test_sub_attribute_returned_characteristics() -> None:
    out = project(THING, THING_REP, attributes=[p("badge", "note"), p("badge", "pin")])
    assert out["badge"] == {"number": "7", "note": "N"}
    out = project(THING, THING_REP, attributes=[p("badge")])
    assert out["badge"] == {"number": "7", "colour": "red"}


def test_a_write_shows_the_request_attributes_it_specified() -> None:
    """RFC 7643 section 7: "request" attributes are returned in response to a PUT, POST or PATCH
    that specified them, sub-attributes too."""
    specified = specified_keys(THING, {"audit": "A2", "badge": {"note": "N"}})
    assert specified == {(None, "audit"): frozenset(), (None, "badge"): frozenset({"note"})}
    out = project(THING, THING_REP, specified=specified)
    assert out["audit"] == "A" and out["badge"] == {"number": "7", "note": "N", "colour": "red"}
    out = project(THING, THING_REP, specified={(None, "label"): frozenset()})
    assert "audit" not in out and out["badge"] == {"number": "7", "colour": "red"}
    # a PATCH of badge.colour specifies badge and colour, not badge.note
    changed = changed_keys(
        THING,
        {"label": "L", "badge": {"note": "N", "colour": "red"}},
        {"label": "L", "badge": {"note": "N", "colour": "blue"}},
    )
    assert changed == {(None, "badge"): frozenset({"colour"})}
    assert project(THING, THING_REP, specified=changed)["badge"] == {"number": "7", "colour": "red"}
    assert changed_keys(THING, {"label": "L", "audit": "A"}, {"label": "L", "audit": "B", "code": "C"}) == {
        (None, "audit"): frozenset(),
        (None, "code"): frozenset(),
    }


def test_an_excluded_extension_keeps_its_always_attributes() -> None:
    """RFC 7644 section 3.4.2.5: excludedAttributes "SHALL have no effect on attributes whose
    schema 'returned' setting is 'always'", also when the exclusion names their extension."""
    ext = Schema.from_json(
        {
            "id": "urn:example:Ext",
            "name": "Ext",
            "attributes": [
                {"name": "kept", "type": "string", "returned": "always"},
                {"name": "x", "type": "string"},
            ],
        }
    )
    rt = ResourceType("Thing", "/Things", "Thing", THING.schema, ((ext, False),))
    rep = {
        "schemas": ["urn:example:Thing", "urn:example:Ext"],
        "id": "t1",
        "urn:example:Ext": {"kept": "K", "x": "X"},
    }
    out = project(rt, rep, excluded=[p("urn:example:Ext")])
    assert out == {
        "schemas": ["urn:example:Thing", "urn:example:Ext"],
        "id": "t1",
        "urn:example:Ext": {"kept": "K"},
    }
    assert set(specified_keys(rt, rep)) == {
        (None, "schemas"),
        (None, "id"),
        ("urn:example:ext", "kept"),
        ("urn:example:ext", "x"),
    }


def test_input_is_not_mutated() -> None:
    before = repr(REP)
    project(USERS, REP, attributes=[p("name", "givenName")], excluded=[p("emails", "type")])
    assert repr(REP) == before


def test_an_always_complex_attribute_keeps_its_sub_attributes_returned_rules() -> None:
    """Returned whatever attributes says, its "request" sub-attributes still only on request,
    and its "never" ones never (a request sub-attribute of an always attribute showed on every
    read)."""
    schema = Schema.from_json(
        {
            "id": "urn:example:Box",
            "name": "Box",
            "attributes": [
                {
                    "name": "acx",
                    "type": "complex",
                    "returned": "always",
                    "subAttributes": [
                        {"name": "s", "type": "string", "returned": "request"},
                        {"name": "t", "type": "string"},
                    ],
                },
                {"name": "label", "type": "string"},
            ],
        }
    )
    rt = ResourceType("Box", "/Boxes", "Box", schema)
    rep = {"schemas": ["urn:example:Box"], "id": "b1", "acx": {"s": "S", "t": "T"}, "label": "L"}
    assert project(rt, rep)["acx"] == {"t": "T"}
    assert project(rt, rep, attributes=[p("label")])["acx"] == {"t": "T"}
    assert project(rt, rep, attributes=[p("acx", "s")])["acx"] == {"s": "S"}
    assert project(rt, rep, excluded=[p("acx")])["acx"] == {"t": "T"}
    assert project(rt, rep, specified={(None, "acx"): frozenset({"s"})})["acx"] == {"s": "S", "t": "T"}
