"""provisor.scim.resources: POST/PUT validation compiled from the schemas (RFC 7643 sections 2, 3, 7;
RFC 7644 3.3, 3.5.1), the resource-level checks, and the representation (RFC 7643 3.1)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisor.scim.compat import CompatSettings
from provisor.scim.errors import InvalidSyntax, InvalidValue, Mutability, ScimError
from provisor.scim.projection import project
from provisor.scim.resources import (
    check_required,
    check_roles,
    etag,
    keep_immutable,
    parse_resource,
    to_representation,
    validate_attribute_value,
)
from provisor.scim.schema import ENTERPRISE_USER, GROUP, USER, Attribute, AttributeType, default_registry
from provisor.scim.schema.model import Mutability as Mut
from provisor.scim.schema.model import ResourceType, Schema

REG = default_registry()


def _rt(name: str) -> ResourceType:
    found = REG.resource_type(name)
    assert found is not None
    return found


USERS = _rt("User")
GROUPS = _rt("Group")
LENIENT = CompatSettings.default()
STRICT = CompatSettings.strict()
ADSCIM = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def user(**attrs: Any) -> dict[str, Any]:
    return {"schemas": [USER], "userName": "alice@contoso.com", **attrs}


def only(*names: str) -> CompatSettings:
    """Strict with just the named quirks on."""
    return CompatSettings(frozenset(names))


def without(*names: str) -> CompatSettings:
    return CompatSettings.from_mapping(dict.fromkeys(names, False))


def rejects(body: dict[str, Any], compat: CompatSettings, match: str, rt: ResourceType = USERS) -> None:
    with pytest.raises(InvalidValue, match=match) as info:
        parse_resource(rt, body, compat)
    assert info.value.status == 400 and info.value.scim_type == "invalidValue"


# --- the Entra create body (entra-behaviour.md 1.3) ------------------------------------------------

ENTRA_CREATE: dict[str, Any] = {
    "schemas": [USER, ENTERPRISE_USER],
    "externalId": "alice",
    "userName": "alice@contoso.com",
    "active": True,
    "displayName": "Alice Smith",
    "emails": [{"primary": True, "type": "work", "value": "alice@contoso.com"}],
    "meta": {"resourceType": "User"},
    "name": {"formatted": "Alice Smith", "familyName": "Smith", "givenName": "Alice"},
    "roles": [],
    ENTERPRISE_USER: {"department": "Sales", "manager": "mgr-1"},
}


def test_entra_create_body_parses_into_the_stored_shape() -> None:
    data = parse_resource(USERS, ENTRA_CREATE, LENIENT)
    assert data == {
        "externalId": "alice",
        "userName": "alice@contoso.com",
        "active": True,
        "displayName": "Alice Smith",
        "emails": [{"primary": True, "type": "work", "value": "alice@contoso.com"}],
        "name": {"formatted": "Alice Smith", "familyName": "Smith", "givenName": "Alice"},
        ENTERPRISE_USER: {"department": "Sales", "manager": {"value": "mgr-1"}},
    }


@pytest.mark.parametrize("active", ["True", "true", "TRUE"])
def test_entra_create_with_string_active(active: str) -> None:
    data = parse_resource(USERS, {**ENTRA_CREATE, "active": active}, LENIENT)
    assert data["active"] is True


def test_entra_create_with_explicit_nulls_and_undeclared_custom_extension() -> None:
    body = {
        **ENTRA_CREATE,
        "schemas": [USER],
        "nickName": None,
        "title": None,
        "name": {"givenName": "Alice", "middleName": None},
        "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User": {"costCentre": "x"},
    }
    data = parse_resource(USERS, body, LENIENT)
    assert "nickName" not in data and "title" not in data
    assert data["name"] == {"givenName": "Alice"}
    assert data[ENTERPRISE_USER]["department"] == "Sales"
    assert not any(k.lower().startswith("urn:") and "custom" in k.lower() for k in data)


def test_entra_create_body_is_rejected_by_the_strict_reading() -> None:
    with pytest.raises(InvalidValue, match="manager"):
        parse_resource(USERS, ENTRA_CREATE, STRICT)
    strict_ok = {**ENTRA_CREATE, ENTERPRISE_USER: {"department": "Sales", "manager": {"value": "mgr-1"}}}
    assert parse_resource(USERS, strict_ok, STRICT)[ENTERPRISE_USER]["manager"] == {"value": "mgr-1"}


# --- body and schemas (RFC 7643 section 3) -------------------------------------------------------


@pytest.mark.parametrize("body", [[], "x", 1, None, True])
def test_body_must_be_an_object(body: Any) -> None:
    with pytest.raises(InvalidSyntax, match="JSON object"):
        parse_resource(USERS, body, LENIENT)


@pytest.mark.parametrize(
    "schemas", [None, "urn:ietf:params:scim:schemas:core:2.0:User", [], [GROUP], [USER, 5], {"a": 1}]
)
def test_schemas_must_be_a_list_with_the_core_urn(schemas: Any) -> None:
    body = {"userName": "a"} if schemas is None else {"schemas": schemas, "userName": "a"}
    rejects(body, LENIENT, "schemas")


def test_schemas_compare_case_insensitively() -> None:
    data = parse_resource(
        USERS, {"Schemas": [USER.upper(), ENTERPRISE_USER.lower()], "userName": "a"}, STRICT
    )
    assert data == {"userName": "a"}


def test_unknown_schema_urn_is_rejected_naming_it_unless_unknown_attributes_are_ignored() -> None:
    """A URN this server does not declare (Okta's and Ping's custom extensions list theirs, as RFC
    7643 section 3 asks) is ignored with its attributes (1.3), and refused, named, without it."""
    other = "urn:example:other:2.0:User"
    body = user(schemas=[USER, other], **{other: {"costCode": "CC1"}})
    assert parse_resource(USERS, body, LENIENT) == parse_resource(USERS, user(), LENIENT)
    rejects(body, without("unknown_attributes_ignored"), "urn:example:other")
    rejects(body, STRICT, "urn:example:other")


def test_a_declared_attribute_named_by_a_path_is_taken_or_refused_never_dropped() -> None:
    """Body keys that name a declared attribute by a path: a sub-attribute (Q6, as in a path-less
    PATCH value) or a '.' after the schema URN (Q15, as in paths). With the switch on they are that
    attribute; off, a 400 naming the key, not an "unknown attribute" silently ignored (1.3)."""
    body = user(
        schemas=[USER, ENTERPRISE_USER],
        **{
            "name.givenName": "Ada",
            f"{USER}:name.familyName": "Lovelace",
            f"{ENTERPRISE_USER}.employeeNumber": "42",
            f"{ENTERPRISE_USER}:manager.value": "m-1",
        },
    )
    parsed = parse_resource(USERS, body, LENIENT)
    assert parsed["name"] == {"givenName": "Ada", "familyName": "Lovelace"}
    assert parsed[ENTERPRISE_USER] == {"employeeNumber": "42", "manager": {"value": "m-1"}}
    dotted_urn = user(schemas=[USER, ENTERPRISE_USER], **{f"{ENTERPRISE_USER}.employeeNumber": "42"})
    rejects(dotted_urn, without("extension_dot_names"), "extension_dot_names")
    rejects(dotted_urn, STRICT, "extension_dot_names")
    rejects(user(**{"name.givenName": "Ada"}), without("pathless_dotted_keys"), "inside the name object")
    # the one extension's attribute named without its URN (Entra's older create sample), under Q7
    bare = user(department="Sales", manager="m-1")
    assert parse_resource(USERS, bare, LENIENT)[ENTERPRISE_USER] == {
        "department": "Sales",
        "manager": {"value": "m-1"},
    }
    rejects(bare, without("undeclared_extension_schemas"), f"send it as {ENTERPRISE_USER}:")
    rejects(user(department="Sales", **{ENTERPRISE_USER: {"department": "Ops"}}), LENIENT, "given twice")
    # a sub-attribute given twice, or beside its attribute's object, is given twice
    rejects(user(**{"name.givenName": "A", "NAME.GIVENNAME": "B"}), LENIENT, "given twice")
    rejects(user(name={"familyName": "L"}, **{"name.givenName": "A"}), LENIENT, "given twice")
    # a multi-valued attribute's sub-attribute has no one element to go to
    rejects(user(**{"emails.value": "a@x.com"}), LENIENT, "multi-valued")
    # an object keyed by the core schema's URN holds core attributes (as a path-less PATCH reads it)
    core = "urn:ietf:params:scim:schemas:core:2.0:User"
    for compat in (LENIENT, STRICT):
        assert parse_resource(USERS, user(**{core.upper(): {"displayName": "Z"}}), compat) == {
            "userName": "alice@contoso.com",
            "displayName": "Z",
        }
        rejects(user(displayName="A", **{core: {"displayName": "Z"}}), compat, "displayName is given twice")
        rejects(user(**{core: "Z"}), compat, "must be an object")
    # schemas in two spellings, in either order: neither is chosen
    for compat in (LENIENT, STRICT):
        rejects(user(SCHEMAS=["urn:bogus"]), compat, "schemas is given twice")
        rejects({"SCHEMAS": ["urn:bogus"], **user()}, compat, "schemas is given twice")
    # readOnly in any form is ignored; what names nothing declared stays unknown
    plain = {"userName": "alice@contoso.com"}
    for compat in (LENIENT, STRICT):
        assert parse_resource(USERS, user(**{"meta.created": "x"}), compat) == plain
    for unknown in ("name.middle_name", "name.nickName", "foo.bar", "urn:example:x.y", "userName.x"):
        assert parse_resource(USERS, user(**{unknown: "v"}), LENIENT) == plain
        rejects(user(**{unknown: "v"}), STRICT, "unknown attribute")


def test_adscim_group_uri_q9() -> None:
    body = {
        "schemas": [GROUP, ADSCIM],
        "displayName": "Sales",
        "externalId": "obj-1",
        "meta": {"resourceType": "Group"},
    }
    assert parse_resource(GROUPS, body, LENIENT) == {"displayName": "Sales", "externalId": "obj-1"}
    rejects(body, without("adscim_group_schema", "unknown_attributes_ignored"), "ADSCIM", GROUPS)
    rejects(user(schemas=[USER, ADSCIM]), STRICT, "ADSCIM")


def test_undeclared_extension_q7() -> None:
    body = user(**{ENTERPRISE_USER: {"department": "Sales"}})
    assert parse_resource(USERS, body, LENIENT)[ENTERPRISE_USER] == {"department": "Sales"}
    rejects(body, without("undeclared_extension_schemas"), "schemas does not list")
    qualified = user(**{f"{ENTERPRISE_USER}:department": "Sales"})
    rejects(qualified, STRICT, "schemas does not list")
    declared = {**qualified, "schemas": [USER, ENTERPRISE_USER]}
    assert parse_resource(USERS, declared, STRICT)[ENTERPRISE_USER] == {"department": "Sales"}


# --- names (RFC 7643 section 2.1, RFC 7644 3.10) ---------------------------------------------------


def test_attribute_names_resolve_case_insensitively_to_canonical() -> None:
    body = {
        "schemas": [USER, ENTERPRISE_USER],
        "USERNAME": "a",
        "Emails": [{"Value": "a@x.org", "TYPE": "Work", "Primary": True}],
        "NAME": {"GIVENNAME": "A"},
        ENTERPRISE_USER.upper(): {"DEPARTMENT": "Sales"},
    }
    assert parse_resource(USERS, body, STRICT) == {
        "userName": "a",
        "emails": [{"value": "a@x.org", "type": "Work", "primary": True}],
        "name": {"givenName": "A"},
        ENTERPRISE_USER: {"department": "Sales"},
    }


def test_fully_qualified_keys() -> None:
    body = {
        "schemas": [USER, ENTERPRISE_USER],
        f"{USER}:userName": "a",
        f"{USER.lower()}:displayName": "A",
        f"{ENTERPRISE_USER}:employeeNumber": "701984",
        ENTERPRISE_USER: {"department": "Sales"},
    }
    assert parse_resource(USERS, body, STRICT) == {
        "userName": "a",
        "displayName": "A",
        ENTERPRISE_USER: {"employeeNumber": "701984", "department": "Sales"},
    }


@pytest.mark.parametrize(
    "body",
    [
        {"userName": "a", "USERNAME": "b"},
        {"userName": "a", f"{USER}:userName": "b"},
        {ENTERPRISE_USER: {"department": "x"}, f"{ENTERPRISE_USER}:department": "y"},
        {"name": {"givenName": "a", "GivenName": "b"}},
    ],
)
def test_the_same_attribute_twice_is_rejected(body: dict[str, Any]) -> None:
    rejects({"schemas": [USER, ENTERPRISE_USER], "userName": "u", **body}, LENIENT, "twice")


def test_extension_key_must_hold_an_object() -> None:
    rejects(user(**{ENTERPRISE_USER: "Sales"}), LENIENT, "must be an object")
    assert parse_resource(USERS, user(**{ENTERPRISE_USER: None}), LENIENT) == {
        "userName": "alice@contoso.com"
    }


def test_unknown_attributes_1_3() -> None:
    body = user(foo=1, name={"givenName": "A", "nick": "x"}, **{ENTERPRISE_USER: {"badge": 7}})
    assert parse_resource(USERS, body, LENIENT) == {
        "userName": "alice@contoso.com",
        "name": {"givenName": "A"},
    }
    rejects(user(foo=1), STRICT, "unknown attribute 'foo'")
    rejects(user(name={"givenName": "A", "nick": "x"}), STRICT, "unknown sub-attribute 'nick' in name")
    rejects(
        user(**{f"{ENTERPRISE_USER}:badge": 7}), only("undeclared_extension_schemas"), "unknown attribute"
    )
    rejects(user(**{"urn:example:custom:User:x": 1}), STRICT, "unknown attribute")


# --- mutability (RFC 7643 section 7) ---------------------------------------------------------------


def test_read_only_input_is_ignored() -> None:
    body = user(
        id="client-chosen",
        meta={"resourceType": "User", "version": 'W/"9"'},
        groups=[{"value": "g1"}],
        **{ENTERPRISE_USER: {"manager": {"value": "m", "displayName": "Boss"}}},
    )
    data = parse_resource(USERS, body, LENIENT)
    assert data == {"userName": "alice@contoso.com", ENTERPRISE_USER: {"manager": {"value": "m"}}}


def test_password_is_checked_then_dropped() -> None:
    assert parse_resource(USERS, user(password="s3cret!"), STRICT) == {"userName": "alice@contoso.com"}
    rejects(user(password=12), STRICT, "password must be a string")
    password = USERS.schema.attribute("password")
    assert password is not None
    assert validate_attribute_value(USERS, None, password, "x", STRICT, where="password") is None


# --- types (RFC 7643 section 2.3) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"displayName": 5}, "displayName must be a string"),
        ({"displayName": True}, "displayName must be a string"),
        ({"active": "yes"}, "active must be a boolean"),
        ({"active": 1}, "active must be a boolean"),
        ({"emails": [{"value": "a@x.org", "primary": "maybe"}]}, r"emails\[0\]\.primary must be a boolean"),
        ({"emails": {"value": "a@x.org"}}, "emails must be a list"),
        ({"emails": "a@x.org"}, "emails must be a list"),
        ({"emails": [["a@x.org"]]}, r"emails\[0\] must not be a list"),
        ({"emails": ["a@x.org"]}, r"emails\[0\] must be an object"),
        ({"displayName": ["A"]}, "displayName must be a single value"),
        ({"name": "Alice Smith"}, "name must be an object"),
        ({"name": [{"givenName": "A"}]}, "name must be a single value"),
        ({"name": {"givenName": {"x": 1}}}, r"name\.givenName must be a string"),
        ({"name": {"givenName": ["A"]}}, r"name\.givenName must be a single value"),
        ({"x509Certificates": [{"value": "not base64!"}]}, "base64"),
    ],
)
def test_type_errors_name_the_attribute_path(attrs: dict[str, Any], message: str) -> None:
    rejects(user(**attrs), LENIENT, message)


def test_type_labels_outside_the_canonical_values_need_free_type_labels() -> None:
    """RFC 7643 section 7: canonical values are suggested; with free_type_labels (on by default)
    a writable ``type`` takes any label, as sent; off, the suggested ones only. The ``type`` of a
    group member says what it points at and stays closed either way."""
    odd = user(
        emails=[{"value": "a@x.org", "type": "business"}],
        phoneNumbers=[{"value": "+1 555 0100", "type": "main"}],
        addresses=[{"type": "office", "country": "US"}],
        ims=[{"value": "a", "type": "teams"}],
        photos=[{"value": "https://x.org/p.png", "type": "avatar"}],
    )
    data = parse_resource(USERS, odd, LENIENT)
    assert [e["type"] for e in data["emails"]] == ["business"]
    assert data["phoneNumbers"][0]["type"] == "main" and data["addresses"][0]["type"] == "office"
    rejects(odd, without("free_type_labels"), "must be one of work, home, other, not 'business'")
    rejects(user(phoneNumbers=[{"value": "1", "type": "main"}]), STRICT, "must be one of work, home, mobile")
    member = {"schemas": [GROUP], "displayName": "G", "members": [{"value": "u1", "type": "Device"}]}
    with pytest.raises(ScimError, match="must be one of User, Group"):
        parse_resource(GROUPS, member, LENIENT)


def test_binary_and_canonical_values_accepted_and_stored_as_sent() -> None:
    data = parse_resource(
        USERS,
        user(
            x509Certificates=[{"value": "aGVsbG8="}],
            emails=[{"value": "a@x.org", "type": "WORK"}],
            phoneNumbers=[{"value": "+1 (555) 0100", "type": "Mobile"}],
        ),
        STRICT,
    )
    assert data["x509Certificates"] == [{"value": "aGVsbG8="}]
    assert data["emails"] == [{"value": "a@x.org", "type": "WORK"}]
    assert data["phoneNumbers"] == [{"value": "+1 (555) 0100", "type": "Mobile"}]


def _synthetic_rt() -> ResourceType:
    """A resource type with the data types the bundled schemas do not use."""
    schema = Schema.from_json(
        {
            "id": "urn:example:Thing",
            "name": "Thing",
            "attributes": [
                {"name": "label", "type": "string", "required": True},
                {"name": "count", "type": "integer"},
                {"name": "ratio", "type": "decimal"},
                {"name": "seen", "type": "dateTime"},
                {"name": "serial", "type": "string", "mutability": "immutable"},
                {
                    "name": "badge",
                    "type": "complex",
                    "subAttributes": [
                        {"name": "code", "type": "string", "required": True},
                        {"name": "issuer", "type": "string", "mutability": "immutable"},
                    ],
                },
            ],
        }
    )
    return ResourceType("Thing", "/Things", "Thing", schema)


THING = _synthetic_rt()


def thing(**attrs: Any) -> dict[str, Any]:
    return {"schemas": ["urn:example:Thing"], "label": "t", **attrs}


@pytest.mark.parametrize(
    ("attrs", "ok"),
    [
        ({"count": 3}, True),
        ({"count": -3}, True),
        ({"count": 3.0}, False),
        ({"count": True}, False),
        ({"count": "3"}, False),
        ({"count": 2**63 - 1}, True),
        ({"count": -(2**63)}, True),
        ({"count": 2**63}, False),  # orjson reads integers up to 2**64 - 1: this one was stored
        ({"count": 2**64 - 1}, False),
        ({"count": -(2**63) - 1}, False),
        ({"ratio": 2**63 - 1}, True),
        ({"ratio": 2**64 - 1}, False),
        ({"ratio": 1.8446744073709552e19}, True),
        ({"ratio": 3}, True),
        ({"ratio": 0.25}, True),
        ({"ratio": False}, False),
        ({"ratio": float("nan")}, False),
        ({"ratio": "0.25"}, False),
        ({"seen": "2008-01-23T04:56:22Z"}, True),
        ({"seen": "2008-01-23T04:56:22.123+02:00"}, True),
        ({"seen": "2008-01-23T04:56:22"}, True),
        ({"seen": "2008-01-23"}, False),
        ({"seen": "2008-13-23T04:56:22Z"}, False),
        # what filters and sortBy cannot read as an instant is refused, or it would compare with
        # nothing and sort as if absent; xsd's 24:00:00 is the next day's midnight, and is read so
        ({"seen": "-2024-99-99T99:99:99Z"}, False),
        ({"seen": "-0001-01-01T00:00:00Z"}, False),
        ({"seen": "10000-01-01T00:00:00Z"}, False),
        ({"seen": "0000-01-01T00:00:00Z"}, False),
        ({"seen": "2008-01-23T04:56:22+24:00"}, False),
        ({"seen": "9999-12-31T24:00:00Z"}, False),
        ({"seen": "2008-01-23T24:00:00Z"}, True),
        ({"seen": "0001-01-01T00:00:00+14:00"}, True),
        ({"seen": "2008-01-23t04:56:22z"}, False),  # xsd spells them upper-case
        ({"seen": "\u0662\u0660\u0662\u0660-01-01T00:00:00Z"}, False),  # Arabic-Indic digits: xsd's are 0-9
        ({"seen": "2008-01-23T04:56:22.\uff11Z"}, False),  # a fullwidth digit in the fraction
        ({"seen": "yesterday"}, False),
        ({"seen": 1200000000}, False),
    ],
)
def test_integer_decimal_datetime(attrs: dict[str, Any], ok: bool) -> None:
    if ok:
        assert parse_resource(THING, thing(**attrs), STRICT) == {"label": "t", **attrs}
    else:
        rejects(thing(**attrs), STRICT, next(iter(attrs)), THING)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**64 - 1])
def test_integers_outside_signed_64_bits_name_the_attribute_and_the_range(value: int) -> None:
    """No store holds them (audit: 2**63 .. 2**64-1 were stored, then no filter could compare them)."""
    rng = "-9223372036854775808 to 9223372036854775807"
    for attrs in ({"count": value}, {"ratio": value}):
        with pytest.raises(InvalidValue) as info:
            parse_resource(THING, thing(**attrs), LENIENT)
        assert next(iter(attrs)) in info.value.detail and rng in info.value.detail
    count = THING.attribute(None, "count")
    assert count is not None
    with pytest.raises(InvalidValue, match=rng):
        validate_attribute_value(THING, None, count[1], value, LENIENT, where="count")


@pytest.mark.parametrize(
    ("attrs", "named"),
    [
        ({"userName": "a\x00b"}, "userName"),  # the top-level fast path
        ({"externalId": "\x00"}, "externalId"),
        ({"name": {"givenName": "a\x00"}}, "name.givenName"),  # a complex value's fast path
        ({"emails": [{"value": "a@x.org", "type": "work\x00"}]}, "emails[0].type"),  # canonical values
        ({"x509Certificates": [{"value": "aGVs\x00"}]}, "x509Certificates[0].value"),  # binary
        ({"profileUrl": "https://x.org/\x00"}, "profileUrl"),  # reference
        ({ENTERPRISE_USER: {"department": "R\x00D"}}, f"{ENTERPRISE_USER}:department"),
        ({f"{ENTERPRISE_USER}:employeeNumber": "7\x00"}, "employeeNumber"),
        ({"password": "p\x00"}, "password"),
    ],
)
@pytest.mark.parametrize("compat", [LENIENT, STRICT])
def test_a_nul_character_in_a_string_value_is_refused_naming_it(
    attrs: dict[str, Any], named: str, compat: CompatSettings
) -> None:
    """U+0000: JSON carries it, the database's text functions stop at it (audit: ew/co missed it)."""
    body = user(**attrs)
    if ENTERPRISE_USER in attrs:
        body["schemas"] = [USER, ENTERPRISE_USER]
    with pytest.raises(InvalidValue) as info:
        parse_resource(USERS, body, compat)
    assert named in info.value.detail and "NUL character (U+0000)" in info.value.detail


def test_a_nul_character_is_refused_in_patch_values_and_members() -> None:
    found = USERS.attribute(None, "nickName")
    assert found is not None
    with pytest.raises(InvalidValue, match="nickName must not contain the NUL"):
        validate_attribute_value(USERS, None, found[1], "n\x00", LENIENT, where="nickName")
    members = GROUPS.attribute(None, "members")
    assert members is not None
    with pytest.raises(InvalidValue, match=r"members\[0\]\.(value|display) must not contain the NUL"):
        validate_attribute_value(GROUPS, None, members[1], [{"value": "id\x00"}], LENIENT, where="members")
    # other control characters are text like any other (a formatted address holds newlines)
    assert parse_resource(USERS, user(nickName="a\tb\n"), STRICT)["nickName"] == "a\tb\n"


def test_required_sub_attribute_applies_when_parent_present() -> None:
    assert parse_resource(THING, thing(badge={"code": "c"}), STRICT)["badge"] == {"code": "c"}
    rejects(thing(badge={"issuer": "i"}), STRICT, r"badge\.code is required", THING)
    assert "badge" not in parse_resource(THING, thing(badge={}), STRICT)


def test_an_empty_element_is_unassigned_only_where_no_sub_attribute_is_required() -> None:
    """RFC 7643 section 8.7.1 marks no sub-attribute of emails ``required``, so ``[{}]`` there is
    an unassigned element and ``{"type": "work"}`` a valid one; an element of an attribute with a
    required sub-attribute must carry it (the custom ``certs`` in tests/server/test_custom_extensions.py)."""
    data = parse_resource(USERS, user(emails=[{}], phoneNumbers=[{"type": "work"}]), STRICT)
    assert "emails" not in data and data["phoneNumbers"] == [{"type": "work"}]


# --- nulls and empties (RFC 7643 section 2.5; Q12) -------------------------------------------------


def test_top_level_nulls_and_empties_are_unassigned_in_both_modes() -> None:
    body = user(displayName=None, emails=[], name={}, roles=[], **{ENTERPRISE_USER: {}})
    for compat in (LENIENT, STRICT):
        assert parse_resource(USERS, body, compat) == {"userName": "alice@contoso.com"}


@pytest.mark.parametrize(
    "attrs",
    [
        {"name": {"givenName": None}},
        {"emails": [{"value": "a@x.org", "type": None}]},
        {ENTERPRISE_USER: {"manager": {"value": None}}},
    ],
)
def test_null_sub_attributes_are_unassigned_in_every_mode(attrs: dict[str, Any]) -> None:
    """RFC 7643 section 2.5; scim2-models reads them so too (test_known_differences_...)."""
    for compat in (
        only("explicit_nulls", "undeclared_extension_schemas"),
        only("undeclared_extension_schemas"),
    ):
        data = parse_resource(USERS, user(**attrs), compat)
        assert set(data) <= {"userName", "emails"}


def test_a_null_among_values_is_ignored_only_with_q12() -> None:
    expected = {"userName": "alice@contoso.com"}
    assert parse_resource(USERS, user(emails=[None]), only("explicit_nulls")) == expected
    rejects(user(emails=[None]), STRICT, r"emails\[0\] is null")


def test_nested_null_keeps_the_rest_of_the_value() -> None:
    data = parse_resource(USERS, user(emails=[None, {"value": "a@x.org", "type": None}]), LENIENT)
    assert data["emails"] == [{"value": "a@x.org"}]


# --- multi-valued (RFC 7643 section 2.4) -----------------------------------------------------------


def test_at_most_one_primary() -> None:
    two = [{"value": "a@x.org", "primary": True}, {"value": "b@x.org", "primary": "True"}]
    rejects(user(emails=two), LENIENT, "primary true; at most one")
    one = [{"value": "a@x.org", "primary": True}, {"value": "b@x.org", "primary": False}]
    assert parse_resource(USERS, user(emails=one), STRICT)["emails"] == one


def test_string_boolean_primary_q2() -> None:
    data = parse_resource(USERS, user(emails=[{"value": "a@x.org", "primary": "true"}]), LENIENT)
    assert data["emails"] == [{"value": "a@x.org", "primary": True}]
    rejects(user(emails=[{"value": "a@x.org", "primary": "true"}]), STRICT, "primary must be a boolean")
    rejects(user(active="False"), STRICT, "active must be a boolean")
    assert parse_resource(USERS, user(active="fAlSe"), only("string_booleans"))["active"] is False


# --- required (RFC 7643 section 7) -----------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "   ", "MISSING"])
def test_user_name_is_required(value: Any) -> None:
    body = {"schemas": [USER]} if value == "MISSING" else {"schemas": [USER], "userName": value}
    rejects(body, LENIENT, "userName is required")


def test_group_display_name_is_required() -> None:
    rejects({"schemas": [GROUP]}, LENIENT, "displayName is required", GROUPS)
    with pytest.raises(InvalidValue, match="displayName is required"):
        check_required(GROUPS, {"displayName": ""})
    check_required(GROUPS, {"displayName": "Sales"})


def test_required_extension() -> None:
    ext = USERS.extensions[0][0]
    rt = ResourceType("User", "/Users", "User", USERS.schema, ((ext, True),))
    with pytest.raises(InvalidValue, match="extension .* is required"):
        check_required(rt, {"userName": "a"})
    check_required(rt, {"userName": "a", ENTERPRISE_USER: {"department": "x"}})


def test_required_attributes_of_an_optional_extension_only_when_it_is_present() -> None:
    """RFC 7643 section 3.3: a resource may omit an optional extension, required attributes and all;
    one that carries the extension carries its required attributes; a required one must be there."""
    urn = "urn:example:params:scim:schemas:extension:badges:2.0:User"
    ext = Schema.from_json(
        {
            "id": urn,
            "attributes": [
                {"name": "level", "type": "string", "required": True},
                {"name": "note", "type": "string"},
            ],
        }
    )
    for required_extension in (False, True):
        rt = ResourceType("User", "/Users", "User", USERS.schema, ((ext, required_extension),))
        with pytest.raises(InvalidValue, match=f"{urn}:level is required"):
            check_required(rt, {"userName": "a", urn: {"note": "n"}})
        check_required(rt, {"userName": "a", urn: {"level": "L1"}})
        if required_extension:
            with pytest.raises(InvalidValue, match="extension .* is required"):
                check_required(rt, {"userName": "a"})
        else:
            check_required(rt, {"userName": "a"})


# --- manager (Q5) ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("manager", "stored"),
    [
        ("mgr-1", {"value": "mgr-1"}),
        (
            [{"$ref": "https://app/Users/mgr-1", "value": "mgr-1"}],
            {"$ref": "https://app/Users/mgr-1", "value": "mgr-1"},
        ),
        ({"value": "mgr-1"}, {"value": "mgr-1"}),
        ({"value": ""}, None),
        ("", None),
        ([], None),
    ],
)
def test_manager_shapes_q5(manager: Any, stored: Any) -> None:
    data = parse_resource(
        USERS, user(schemas=[USER, ENTERPRISE_USER], **{ENTERPRISE_USER: {"manager": manager}}), LENIENT
    )
    assert data.get(ENTERPRISE_USER, {}).get("manager") == stored


@pytest.mark.parametrize("manager", ["mgr-1", [{"value": "mgr-1"}]])
def test_manager_strict_takes_only_the_object(manager: Any) -> None:
    body = user(schemas=[USER, ENTERPRISE_USER], **{ENTERPRISE_USER: {"manager": manager}})
    rejects(body, without("manager_bare_string"), "manager")


def test_manager_strict_keeps_empty_value_as_sent() -> None:
    body = user(schemas=[USER, ENTERPRISE_USER], **{ENTERPRISE_USER: {"manager": {"value": ""}}})
    assert parse_resource(USERS, body, STRICT)[ENTERPRISE_USER]["manager"] == {"value": ""}


# --- roles (Q8) and allowed roles (section 5) ------------------------------------------------------

ROLE_JSON = json.dumps({"id": "7f0e", "value": "Admin", "displayName": "Administrator"})


def test_roles_json_strings_q8() -> None:
    body = user(roles=[{"value": ROLE_JSON, "primary": True, "type": "WindowsAzureActiveDirectoryRole"}])
    data = parse_resource(USERS, body, LENIENT)
    assert data["roles"] == [
        {
            "value": "Admin",
            "display": "Administrator",
            "primary": True,
            "type": "WindowsAzureActiveDirectoryRole",
        }
    ]
    assert parse_resource(USERS, body, STRICT)["roles"] == [
        {"value": ROLE_JSON, "primary": True, "type": "WindowsAzureActiveDirectoryRole"}
    ]


def test_post_role_display_name_is_renamed_q8() -> None:
    body = user(roles=[{"value": "User", "displayName": "User role", "primary": "True"}])
    assert parse_resource(USERS, body, LENIENT)["roles"] == [
        {"value": "User", "display": "User role", "primary": True}
    ]
    rejects(body, STRICT, "unknown sub-attribute 'displayName'")


def test_check_roles() -> None:
    check_roles({"roles": [{"value": "user"}]}, ["User"])
    check_roles({"roles": [{"value": "Admin"}]}, None)
    check_roles({}, ["User"])
    with pytest.raises(InvalidValue, match="role 'Admin' is not allowed; allowed roles: User") as info:
        check_roles({"roles": [{"value": "User"}, {"value": "Admin"}]}, ["User"])
    assert info.value.scim_type == "invalidValue"
    # a role given only its type (Entra's roles[primary eq "True"].type alone): said so, not "None"
    with pytest.raises(InvalidValue, match="^a role with no value is not allowed; allowed roles: User$"):
        check_roles({"roles": [{"type": "WindowsAzureActiveDirectoryRole", "primary": True}]}, ["User"])


def test_parse_applies_allowed_roles() -> None:
    body = user(roles=[{"value": ROLE_JSON}])
    with pytest.raises(InvalidValue, match="role 'Admin' is not allowed; allowed roles: User"):
        parse_resource(USERS, body, LENIENT, allowed_roles=["User"])
    ok = parse_resource(
        USERS, user(roles=[{"value": "User", "primary": True}]), LENIENT, allowed_roles=["User"]
    )
    assert ok["roles"] == [{"value": "User", "primary": True}]


# --- group members (RFC 7643 section 4.2; Q4) --------------------------------------------------------


def group(members: Any) -> dict[str, Any]:
    return {"schemas": [GROUP], "displayName": "Sales", "members": members}


def test_members_kept_in_stored_shape() -> None:
    data = parse_resource(
        GROUPS,
        group(
            [
                {"value": "u1", "type": "user", "display": "Alice"},
                {"value": "g1", "$ref": "https://app/scim/v2/Groups/g1"},
                {"value": "u2"},
            ]
        ),
        STRICT,
    )
    assert data["members"] == [
        {"value": "u1", "type": "User", "display": "Alice"},
        {"value": "g1", "type": "Group"},
        {"value": "u2"},
    ]


def test_a_null_member_ref_q4_is_unassigned_in_every_mode() -> None:
    body = group([{"$ref": None, "value": "u1"}])
    assert parse_resource(GROUPS, body, STRICT)["members"] == [{"value": "u1"}]


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ({"display": "x"}, "value is required"),
        ({}, r"members\[0\]\.value is required"),
        ({"$ref": None}, r"members\[0\]\.value is required"),
        ({"value": ""}, "value is required"),
        ({"value": 5}, "value must be a string"),
        ({"value": "u1", "type": "Device"}, "must be one of User, Group"),
    ],
)
def test_member_errors(member: dict[str, Any], message: str) -> None:
    rejects(group([member]), LENIENT, message, GROUPS)


# --- immutability (RFC 7643 section 7; RFC 7644 3.5.1) ---------------------------------------------


def test_keep_immutable() -> None:
    keep_immutable(THING, {}, {"serial": "s1"})
    keep_immutable(THING, {"serial": "s1"}, {"serial": "S1"})
    with pytest.raises(Mutability, match="serial is immutable") as info:
        keep_immutable(THING, {"serial": "s1"}, {"serial": "s2"})
    assert info.value.scim_type == "mutability"
    with pytest.raises(Mutability, match="serial"):
        keep_immutable(THING, {"serial": "s1"}, {})
    keep_immutable(THING, {"badge": {"code": "a"}}, {"badge": {"code": "b", "issuer": "i"}})
    with pytest.raises(Mutability, match=r"badge\.issuer"):
        keep_immutable(
            THING, {"badge": {"code": "a", "issuer": "i"}}, {"badge": {"code": "a", "issuer": "j"}}
        )
    keep_immutable(GROUPS, {"members": [{"value": "u1"}]}, {"members": [{"value": "u2"}]})


def test_an_immutable_value_given_in_another_case_keeps_the_stored_spelling() -> None:
    """The same value (not caseExact) is no change, and the stored value does not change either:
    "SHALL NOT be updated" (RFC 7643 section 7)."""
    new = {"serial": "S1", "badge": {"code": "A", "issuer": "I"}}
    keep_immutable(THING, {"serial": "s1", "badge": {"code": "a", "issuer": "i"}}, new)
    assert new == {"serial": "s1", "badge": {"code": "A", "issuer": "i"}}  # badge.code is mutable


# --- validate_attribute_value (also used by PATCH) ---------------------------------------------------


def test_validate_attribute_value_for_patch() -> None:
    emails = USERS.schema.attribute("emails")
    active = USERS.schema.attribute("active")
    assert emails is not None and active is not None
    assert validate_attribute_value(USERS, None, active, "False", LENIENT, where="active") is False
    assert validate_attribute_value(USERS, None, emails, [], LENIENT, where="emails") is None
    manager = USERS.extensions[0][0].attribute("manager")
    assert manager is not None
    got = validate_attribute_value(USERS, ENTERPRISE_USER, manager, "m2", LENIENT, where="manager")
    assert got == {"value": "m2"}
    with pytest.raises(InvalidValue, match=r"^value\[0\]\.value must be a string$"):
        validate_attribute_value(USERS, None, emails, [{"value": 1}], LENIENT, where="value")


def test_a_complex_sub_attribute_is_rejected() -> None:
    inner = Attribute(name="inner", type=AttributeType.COMPLEX)
    outer = Attribute(
        name="outer", type=AttributeType.COMPLEX, sub_attributes=(inner,), _by_lower={"inner": inner}
    )
    with pytest.raises(InvalidValue, match="cannot be complex"):
        validate_attribute_value(THING, None, outer, {"inner": {"a": 1}}, STRICT, where="outer")
    assert Mut.READ_WRITE is outer.mutability


# --- representation (RFC 7643 section 3.1) -----------------------------------------------------------


def test_etag() -> None:
    assert etag(7) == 'W/"7"'


def test_to_representation_of_a_user() -> None:
    data = parse_resource(USERS, ENTRA_CREATE, LENIENT)
    rep = to_representation(
        USERS,
        "u-1",
        data,
        created=T0,
        last_modified=T0 + timedelta(seconds=5),
        version=3,
        location="https://app/scim/v2/Users/u-1",
    )
    assert rep["schemas"] == [USER, ENTERPRISE_USER]
    assert rep["id"] == "u-1" and rep["externalId"] == "alice"
    assert rep["meta"] == {
        "resourceType": "User",
        "created": "2024-05-01T12:00:00Z",
        "lastModified": "2024-05-01T12:00:05Z",
        "location": "https://app/scim/v2/Users/u-1",
        "version": 'W/"3"',
    }
    assert rep[ENTERPRISE_USER] == {"department": "Sales", "manager": {"value": "mgr-1"}}
    assert rep["emails"] == data["emails"]


def test_representation_converts_times_to_utc_and_drops_never_returned() -> None:
    plus2 = timezone(timedelta(hours=2))
    rep = to_representation(
        USERS,
        "u",
        {"userName": "a", "password": "leak"},
        created=datetime(2024, 1, 1, 14, 0, tzinfo=plus2),
        last_modified=datetime(2024, 1, 1, 12, 0),
        version=1,
        location="/Users/u",
    )
    assert rep["meta"]["created"] == "2024-01-01T12:00:00Z"
    assert rep["meta"]["lastModified"] == "2024-01-01T12:00:00Z"
    assert "password" not in rep and rep["schemas"] == [USER]


class _M:
    def __init__(self, value: str, type: str | None = None, display: str | None = None) -> None:
        self.value, self.type, self.display = value, type, display


def test_group_members_representation() -> None:
    members = [_M("u1", "User", "Alice"), _M("g1", "Group"), _M("x1")]
    rep = to_representation(
        GROUPS,
        "g",
        {"displayName": "Sales"},
        created=T0,
        last_modified=T0,
        version=1,
        location="https://app/scim/v2/Groups/g",
        members=members,
        member_base_url="https://app/scim/v2/",
    )
    assert rep["members"] == [
        {"value": "u1", "$ref": "https://app/scim/v2/Users/u1", "type": "User", "display": "Alice"},
        {"value": "g1", "$ref": "https://app/scim/v2/Groups/g1", "type": "Group"},
        {"value": "x1"},
    ]
    empty = to_representation(
        GROUPS,
        "g",
        {"displayName": "Sales"},
        created=T0,
        last_modified=T0,
        version=1,
        location="/Groups/g",
        members=[],
    )
    assert empty["members"] == []
    none = to_representation(
        GROUPS, "g", {"displayName": "S"}, created=T0, last_modified=T0, version=1, location="/"
    )
    assert "members" not in none


def test_representation_uses_store_member_type() -> None:
    from provisor.store.base import Member

    rep = to_representation(
        GROUPS,
        "g",
        {"displayName": "S"},
        created=T0,
        last_modified=T0,
        version=1,
        location="/",
        members=[Member("u1", "User")],
        member_base_url="https://h",
    )
    assert rep["members"] == [{"value": "u1", "$ref": "https://h/Users/u1", "type": "User"}]


# --- Clarizen One (entra-behaviour.md section 5): parse -> represent -> project ---------------------

CLARIZEN_USER: dict[str, Any] = {
    "schemas": [USER, ENTERPRISE_USER],
    "userName": "bob@contoso.com",
    "displayName": "Bob Jones",
    "active": "True",
    "title": "Engineer",
    "emails": [
        {"type": "work", "value": "bob@contoso.com", "primary": True},
        {"type": "home", "value": "bob@home.example"},
        {"type": "other", "value": "bob@other.example"},
    ],
    "preferredLanguage": "en-US",
    "name": {
        "givenName": "Bob",
        "familyName": "Jones",
        "formatted": "Bob Jones",
        "honorificPrefix": "Dr.",
        "honorificSuffix": "III",
    },
    "addresses": [
        {"type": "other", "formatted": "PO Box 1"},
        {
            "type": "work",
            "formatted": "1 Main St, Springfield",
            "country": "US",
            "region": "IL",
            "locality": "Springfield",
            "postalCode": "62701",
            "streetAddress": "1 Main St",
        },
    ],
    "phoneNumbers": [
        {"type": t, "value": f"+1 555 01{i:02d}"}
        for i, t in enumerate(["work", "mobile", "fax", "home", "other", "pager"])
    ],
    "externalId": "bjones",
    "nickName": "Bobby",
    "locale": "en-US",
    "roles": [{"primary": "True", "type": "WindowsAzureActiveDirectoryRole", "value": "User"}],
    "timezone": "America/Chicago",
    "userType": "Employee",
    ENTERPRISE_USER: {
        "department": "R&D",
        "employeeNumber": "701984",
        "manager": "mgr-9",
        "costCenter": "CC-1",
        "division": "Platform",
    },
}


def test_clarizen_user_round_trips() -> None:
    data = parse_resource(USERS, CLARIZEN_USER, LENIENT, allowed_roles=["User"])
    rep = to_representation(
        USERS, "u-9", data, created=T0, last_modified=T0, version=1, location="/Users/u-9"
    )
    projected = project(USERS, rep)
    expected = {k: v for k, v in CLARIZEN_USER.items() if k != "schemas"}
    expected["active"] = True
    expected["roles"] = [{"primary": True, "type": "WindowsAzureActiveDirectoryRole", "value": "User"}]
    expected[ENTERPRISE_USER] = {**CLARIZEN_USER[ENTERPRISE_USER], "manager": {"value": "mgr-9"}}
    for key, value in expected.items():
        assert projected[key] == value, key
    assert projected["id"] == "u-9" and projected["schemas"] == [USER, ENTERPRISE_USER]


def test_clarizen_group_round_trips() -> None:
    body = {
        "schemas": [GROUP, ADSCIM],
        "displayName": "Sales",
        "externalId": "obj-1",
        "members": [{"value": "u-9"}],
    }
    data = parse_resource(GROUPS, body, LENIENT)
    rep = to_representation(
        GROUPS, "g-1", data, created=T0, last_modified=T0, version=1, location="/Groups/g-1"
    )
    projected = project(GROUPS, rep)
    assert projected["displayName"] == "Sales" and projected["externalId"] == "obj-1"
    assert projected["members"] == [{"value": "u-9"}]


# --- property: arbitrary JSON never raises anything but ScimError ----------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
USER_KEYS = [
    "schemas",
    "userName",
    "name",
    "emails",
    "active",
    "roles",
    "password",
    "meta",
    "id",
    "x509Certificates",
    ENTERPRISE_USER,
    f"{ENTERPRISE_USER}:manager",
    "members",
    "displayName",
    "groups",
    "phoneNumbers",
]
SUB_KEYS = ["value", "type", "primary", "display", "givenName", "$ref", "manager", "displayName", "Value"]
keyed = st.recursive(
    json_scalars | st.just(ROLE_JSON) | st.sampled_from(["True", "false", "work", "User", "aGVsbG8="]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(SUB_KEYS), inner, max_size=4),
    max_leaves=12,
)
bodies_ = st.fixed_dictionaries(
    {
        "schemas": st.sampled_from([[USER, ENTERPRISE_USER], [GROUP, ADSCIM], [USER], [GROUP]]),
        "userName": st.just("u"),
        "displayName": st.just("d"),
    }
).flatmap(
    lambda base: st.dictionaries(st.sampled_from(USER_KEYS), keyed, max_size=3).map(lambda d: {**d, **base})
)
compats = st.sampled_from([LENIENT, STRICT, without("manager_bare_string"), only("roles_json_strings")])


@settings(max_examples=300, deadline=None)
@given(body=json_values, compat=compats)
def test_arbitrary_json_raises_only_scim_errors(body: Any, compat: CompatSettings) -> None:
    for rt in (USERS, GROUPS):
        try:
            parse_resource(rt, body, compat, allowed_roles=["User"])
        except ScimError:
            pass


@settings(max_examples=400, deadline=None)
@given(body=bodies_, compat=compats)
def test_schema_shaped_json_raises_only_scim_errors(body: dict[str, Any], compat: CompatSettings) -> None:
    for rt in (USERS, GROUPS):
        try:
            data = parse_resource(rt, body, compat)
        except ScimError:
            continue
        rep = to_representation(rt, "i", data, created=T0, last_modified=T0, version=1, location="/x")
        assert project(rt, rep)["id"] == "i"
        assert parse_resource(rt, {**rep, "schemas": [rt.schema.id, *rt.schema_ids[1:]]}, compat) == data


# --- differential: scim2-models as the oracle (architecture.md "Choices already measured") ---------
#
# On generated valid users in the strict-RFC subset, whatever we accept scim2-models accepts too,
# with the same values. Known differences, pinned in test_known_differences_from_scim2_models:
#   1. manager.$ref: scim2-models requires it (RFC 7643 4.3 prose says REQUIRED); the schema in RFC 7643
#      8.7.1 marks it required false and Entra sends only the id (Q5), so we do not require it.
#   2. emails.value: scim2-models checks e-mail syntax; we store values exactly as sent (entra-behaviour 1.8).
#   3. canonicalValues: scim2-models accepts any emails.type; we enforce the schema's canonical values.
#   4. "True" for a boolean: scim2-models (pydantic lax mode) coerces it even strictly; we only under Q2.
#   5. invalid base64 binary: scim2-models accepts (and empties) it; we reject it (RFC 7643 2.3.6).
#   6. nested nulls ("name": {"givenName": null}): scim2-models drops them; strict we reject (Q12 drops).
#   7. scim2-models lower-cases the domain of emails.value; we keep it as sent (so the generator uses
#      lower-case domains).

scim2 = pytest.importorskip("scim2_models")

_word = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=12
)
#: Any text a value may hold: no U+0000, which string values refuse (check_simple).
_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20).filter(
    lambda s: s.strip() == s and s != ""
)


def _multi(element: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[list[dict[str, Any]]]:
    def one_primary(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen = False
        for item in items:
            if item.get("primary") is True:
                if seen:
                    item["primary"] = False
                seen = True
        return items

    return st.lists(element, min_size=1, max_size=3).map(one_primary)


def _typed(value: st.SearchStrategy[str], types: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"value": value},
        optional={
            "type": st.sampled_from(types or ["WindowsAzureActiveDirectoryRole"]),
            "primary": st.booleans(),
            "display": _text,
        },
    )


valid_users = st.fixed_dictionaries(
    {"schemas": st.just([USER, ENTERPRISE_USER]), "userName": _word},
    optional={
        "externalId": _word,
        "displayName": _text,
        "nickName": _text,
        "title": _text,
        "userType": _word,
        "active": st.booleans(),
        "profileUrl": _word.map(lambda w: f"https://example.com/{w}"),
        "name": st.fixed_dictionaries(
            {}, optional={"givenName": _text, "familyName": _text, "formatted": _text}
        ),
        "emails": _multi(
            _typed(
                st.tuples(_word, _word).map(lambda t: f"{t[0]}@{t[1].lower()}.example.com"),
                ["work", "home", "other"],
            )
        ),
        "phoneNumbers": _multi(_typed(_text, ["work", "home", "mobile", "fax", "pager", "other"])),
        "roles": _multi(_typed(_word, [])),
        "x509Certificates": _multi(
            st.fixed_dictionaries(
                {"value": st.binary(min_size=1, max_size=12).map(lambda b: base64.b64encode(b).decode())}
            )
        ),
        ENTERPRISE_USER: st.fixed_dictionaries(
            {"department": _text},
            optional={
                "employeeNumber": _word,
                "costCenter": _word,
                "manager": _word.map(lambda w: {"value": w, "$ref": f"https://example.com/Users/{w}"}),
            },
        ),
    },
)


def _oracle(body: dict[str, Any]) -> dict[str, Any]:
    model = scim2.User[scim2.EnterpriseUser]
    ctx = scim2.Context.RESOURCE_CREATION_REQUEST
    dumped: dict[str, Any] = model.model_validate(body, scim_ctx=ctx).model_dump(scim_ctx=ctx)
    dumped.pop("schemas", None)
    return dumped


@settings(max_examples=150, deadline=None)
@given(body=valid_users)
def test_differential_against_scim2_models(body: dict[str, Any]) -> None:
    ours = parse_resource(USERS, body, STRICT)
    assert _oracle(body) == ours


def _oracle_accepts(body: dict[str, Any]) -> bool:
    try:
        _oracle(body)
    except Exception:
        return False
    return True


def _we_accept(body: dict[str, Any]) -> bool:
    try:
        parse_resource(USERS, body, STRICT)
    except ScimError:
        return False
    return True


@pytest.mark.parametrize(
    ("attrs", "ours", "theirs"),
    [
        ({ENTERPRISE_USER: {"manager": {"value": "m1"}}}, True, False),
        ({"emails": [{"value": "not-an-address"}]}, True, False),
        ({"emails": [{"value": "a@b.example.com", "type": "business"}]}, False, True),
        ({"active": "True"}, False, True),
        ({"x509Certificates": [{"value": "!!"}]}, False, True),
    ],
)
def test_known_differences_from_scim2_models(attrs: dict[str, Any], ours: bool, theirs: bool) -> None:
    body = {"schemas": [USER, ENTERPRISE_USER], "userName": "a", **attrs}
    assert (_we_accept(body), _oracle_accepts(body)) == (ours, theirs)


def test_scim2_models_rewrites_email_domains_we_keep_them() -> None:
    body = {"schemas": [USER], "userName": "a", "emails": [{"value": "Al@Contoso.COM"}]}
    assert parse_resource(USERS, body, STRICT)["emails"] == [{"value": "Al@Contoso.COM"}]
    assert _oracle(body)["emails"] == [{"value": "Al@contoso.com"}]
