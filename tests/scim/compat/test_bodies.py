"""provisor.scim.compat.bodies: each Entra/Okta body normaliser with its switch on and off
(entra-behaviour.md 1.3, 1.4, 1.6, 1.9). Off, the strict reading gives the RFC error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provisor.scim.compat import QUIRK_NAMES, CompatSettings, bodies
from provisor.scim.errors import InvalidValue
from provisor.scim.resources import parse_resource
from provisor.scim.schema import ENTERPRISE_USER, GROUP, USER, ResourceType, default_registry

ON = CompatSettings.default()
STRICT = CompatSettings.strict()


def _rt(name: str) -> ResourceType:
    found = default_registry().resource_type(name)
    assert found is not None
    return found


USERS = _rt("User")
GROUPS = _rt("Group")


def off(name: str) -> CompatSettings:
    return CompatSettings.from_mapping({name: False})


def test_every_switch_used_here_is_catalogued() -> None:
    used = {
        "string_booleans",
        "adscim_group_schema",
        "undeclared_extension_schemas",
        "unknown_attributes_ignored",
        "explicit_nulls",
        "manager_bare_string",
        "roles_json_strings",
    }
    assert used <= QUIRK_NAMES


def test_a_retired_switch_in_stored_settings_is_passed_over() -> None:
    """A tenant whose stored settings still name null_member_ref (retired: nulls inside values
    are unassigned in every mode) keeps working: the name is passed over, not refused."""
    from provisor.scim.compat import RETIRED

    assert "null_member_ref" in RETIRED and "null_member_ref" not in QUIRK_NAMES
    assert CompatSettings.from_mapping({"null_member_ref": False, "explicit_nulls": False}) == off(
        "explicit_nulls"
    )


# --- Q2 string_booleans ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"), [("True", True), ("false", False), ("FALSE", False), ("tRuE", True)]
)
def test_string_booleans_on(text: str, value: bool) -> None:
    assert bodies.coerce_string_boolean(text, ON) is value


@pytest.mark.parametrize("other", ["yes", "1", "", " true", 1, None, True])
def test_string_booleans_leave_other_values(other: Any) -> None:
    assert bodies.coerce_string_boolean(other, ON) == other


def test_string_booleans_off() -> None:
    assert bodies.coerce_string_boolean("True", off("string_booleans")) == "True"
    body = {"schemas": [USER], "userName": "a", "active": "False"}
    assert parse_resource(USERS, body, ON)["active"] is False
    with pytest.raises(InvalidValue, match="active must be a boolean"):
        parse_resource(USERS, body, off("string_booleans"))


# --- Q9 adscim_group_schema ------------------------------------------------------------------------


def test_adscim_schema() -> None:
    assert bodies.is_ignored_schema_uri(bodies.ADSCIM_GROUP_SCHEMA, ON)
    assert bodies.is_ignored_schema_uri(bodies.ADSCIM_GROUP_SCHEMA.upper(), ON)
    assert not bodies.is_ignored_schema_uri("urn:example:other", ON)
    assert not bodies.is_ignored_schema_uri(bodies.ADSCIM_GROUP_SCHEMA, off("adscim_group_schema"))
    body = {"schemas": [GROUP, bodies.ADSCIM_GROUP_SCHEMA], "displayName": "Sales"}
    assert parse_resource(GROUPS, body, ON) == {"displayName": "Sales"}
    strict = CompatSettings.from_mapping({"adscim_group_schema": False, "unknown_attributes_ignored": False})
    with pytest.raises(InvalidValue, match="not a schema of Group"):
        parse_resource(GROUPS, body, strict)
    # off alone, the URI is one more schema this server does not know: ignored as unknown (1.3)
    assert parse_resource(GROUPS, body, off("adscim_group_schema")) == {"displayName": "Sales"}


# --- Q7, 1.3, Q12: switches the validator asks ------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "name"),
    [
        (bodies.undeclared_extension_allowed, "undeclared_extension_schemas"),
        (bodies.unknown_attributes_ignored, "unknown_attributes_ignored"),
        (bodies.nested_nulls_ignored, "explicit_nulls"),
    ],
)
def test_switch_predicates(function: Any, name: str) -> None:
    assert function(ON) is True
    assert function(off(name)) is False
    assert function(CompatSettings(frozenset({name}))) is True


def test_unknown_attributes_off_rejects_entra_only_names() -> None:
    body = {"schemas": [USER], "userName": "a", "mailNickname": "al"}
    assert parse_resource(USERS, body, ON) == {"userName": "a"}
    with pytest.raises(InvalidValue, match="unknown attribute 'mailNickname'"):
        parse_resource(USERS, body, off("unknown_attributes_ignored"))


def test_a_null_sub_attribute_is_unassigned_in_every_mode() -> None:
    """RFC 7643 section 2.5: "Unassigned attributes, the null value, or empty array ... SHALL be
    considered to be equivalent in 'state'": a strict reading takes them too (it refused them,
    citing that very section)."""
    body = {"schemas": [USER], "userName": "a", "name": {"givenName": "A", "familyName": None}}
    for compat in (ON, off("explicit_nulls"), STRICT):
        assert parse_resource(USERS, body, compat)["name"] == {"givenName": "A"}


def test_explicit_nulls_off_refuses_a_null_among_values() -> None:
    body = {"schemas": [USER], "userName": "a", "emails": [None, {"value": "a@x.com"}]}
    assert parse_resource(USERS, body, ON)["emails"] == [{"value": "a@x.com"}]
    with pytest.raises(InvalidValue, match=r"emails\[0\] is null"):
        parse_resource(USERS, body, off("explicit_nulls"))


def test_undeclared_extension_off() -> None:
    body = {"schemas": [USER], "userName": "a", ENTERPRISE_USER: {"department": "Sales"}}
    assert parse_resource(USERS, body, ON)[ENTERPRISE_USER] == {"department": "Sales"}
    with pytest.raises(InvalidValue, match="schemas does not list"):
        parse_resource(USERS, body, off("undeclared_extension_schemas"))


# --- Q5 manager_bare_string ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "normalised"),
    [
        ("mgr-1", {"value": "mgr-1"}),
        ("", None),
        ([], None),
        (
            [{"$ref": "https://app/Users/m", "value": "m"}, {"value": "x"}],
            {"$ref": "https://app/Users/m", "value": "m"},
        ),
        (["m"], {"value": "m"}),
        ({"value": ""}, None),
        ({"Value": ""}, None),
        ({"value": "m"}, {"value": "m"}),
        (None, None),
        (5, 5),
    ],
)
def test_manager_on(sent: Any, normalised: Any) -> None:
    assert bodies.normalise_manager(sent, ON) == normalised


@pytest.mark.parametrize("sent", ["mgr-1", [{"value": "m"}], {"value": ""}])
def test_manager_off_is_unchanged(sent: Any) -> None:
    assert bodies.normalise_manager(sent, off("manager_bare_string")) == sent


def test_manager_off_strict_reading_rejects_bare_string() -> None:
    body = {"schemas": [USER, ENTERPRISE_USER], "userName": "a", ENTERPRISE_USER: {"manager": "mgr-1"}}
    assert parse_resource(USERS, body, ON)[ENTERPRISE_USER]["manager"] == {"value": "mgr-1"}
    with pytest.raises(InvalidValue, match="manager must be an object"):
        parse_resource(USERS, body, off("manager_bare_string"))


def test_manager_qualified_key_in_body_q5_q7() -> None:
    body = {"schemas": [USER], "userName": "a", f"{ENTERPRISE_USER}:manager": "mgr-2"}
    assert parse_resource(USERS, body, ON) == {
        "userName": "a",
        ENTERPRISE_USER: {"manager": {"value": "mgr-2"}},
    }


# --- Q8 roles_json_strings -------------------------------------------------------------------------


ROLE = {"id": "7f0e", "value": "Admin", "displayName": "Administrator"}


def test_role_json_string_decoded() -> None:
    sent = {"value": json.dumps(ROLE), "primary": True, "type": "WindowsAzureActiveDirectoryRole"}
    assert bodies.decode_role(sent, ON) == {
        "value": "Admin",
        "display": "Administrator",
        "primary": True,
        "type": "WindowsAzureActiveDirectoryRole",
    }
    assert sent["value"] == json.dumps(ROLE), "input must not be mutated"


def test_role_json_string_gives_its_type_and_primary_unless_the_element_has_them() -> None:
    inner = {"value": "Boss", "primary": True, "type": "T"}
    assert bodies.decode_role({"value": json.dumps(inner)}, ON) == inner
    sent = {"value": json.dumps(inner), "primary": False, "type": "Mine"}
    assert bodies.decode_role(sent, ON) == {"value": "Boss", "primary": False, "type": "Mine"}


def test_role_json_string_is_decoded_one_level_only() -> None:
    nested = json.dumps({"value": "inner"})
    sent = {"value": json.dumps({"value": nested})}
    assert bodies.decode_role(sent, ON) == {"value": nested}
    body = {"schemas": [USER], "userName": "a", "roles": [sent]}
    assert parse_resource(USERS, body, ON)["roles"] == [{"value": nested}]


def test_role_json_string_primary_is_validated_like_the_elements_own() -> None:
    body = {
        "schemas": [USER],
        "userName": "a",
        "roles": [{"value": json.dumps({"value": "B", "primary": "yes"})}],
    }
    with pytest.raises(InvalidValue, match="primary"):
        parse_resource(USERS, body, ON)
    two = [{"value": json.dumps({"value": n, "primary": True})} for n in ("A", "B")]
    with pytest.raises(InvalidValue, match="primary true"):
        parse_resource(USERS, {"schemas": [USER], "userName": "a", "roles": two}, ON)


def test_role_json_string_keeps_existing_display() -> None:
    sent = {"value": json.dumps(ROLE), "display": "Mine"}
    assert bodies.decode_role(sent, ON) == {"value": "Admin", "display": "Mine"}


@pytest.mark.parametrize(
    "value",
    ["Admin", "{not json", "[1, 2]", '"quoted"', "{" + "[" * 5000, '{"a":' + "[" * 2000 + "]" * 2000 + "}"],
)
def test_role_values_that_are_not_json_objects_stay(value: str) -> None:
    assert bodies.decode_role({"value": value}, ON) == {"value": value}


def test_role_json_without_string_value_is_invalid() -> None:
    with pytest.raises(InvalidValue, match="without a string 'value'"):
        bodies.decode_role({"value": json.dumps({"id": "1", "value": 5})}, ON)


def test_role_display_name_renamed_on_post() -> None:
    assert bodies.decode_role({"value": "User", "displayName": "U"}, ON) == {"value": "User", "display": "U"}


def test_roles_off() -> None:
    sent = {"value": json.dumps(ROLE)}
    assert bodies.decode_role(sent, off("roles_json_strings")) == sent
    assert bodies.decode_role("not-a-mapping", ON) == "not-a-mapping"
    body = {"schemas": [USER], "userName": "a", "roles": [sent]}
    assert parse_resource(USERS, body, ON)["roles"] == [{"value": "Admin", "display": "Administrator"}]
    assert parse_resource(USERS, body, STRICT)["roles"] == [sent]


# --- Q4 null_member_ref ----------------------------------------------------------------------------


def test_a_member_ref_null_is_unassigned_in_every_mode() -> None:
    """Entra's members carry "$ref": null (Q4): unassigned, as any null sub-attribute (RFC 7643
    section 2.5), strict reading included (the null_member_ref switch that refused it is retired)."""
    body = {"schemas": [GROUP], "displayName": "Sales", "members": [{"$ref": None, "value": "u1"}]}
    assert parse_resource(GROUPS, body, ON)["members"] == [{"value": "u1"}]
    assert parse_resource(GROUPS, body, STRICT)["members"] == [{"value": "u1"}]
    body["members"] = [{"$REF": None, "value": "u1"}]
    assert parse_resource(GROUPS, body, STRICT)["members"] == [{"value": "u1"}]


def test_member_display_name_is_read_as_display_only_with_the_switch() -> None:
    from provisor.scim.compat import CompatSettings
    from provisor.scim.compat.bodies import member_display_name

    on, off = CompatSettings.default(), CompatSettings.strict()
    assert member_display_name({"value": "1", "displayName": "New"}, on) == {"value": "1", "display": "New"}
    assert member_display_name({"value": "1", "displayName": "N", "display": "D"}, on) == {
        "value": "1",
        "display": "D",
    }
    assert member_display_name({"value": "1", "displayName": "New"}, off) == {
        "value": "1",
        "displayName": "New",
    }


# --- active_by_default ------------------------------------------------------------------------------


def test_active_by_default_on_create_and_kept_by_a_put_that_omits_it() -> None:
    assert bodies.default_active({"userName": "a"}, None, ON) == {"userName": "a", "active": True}
    assert bodies.default_active({"userName": "a", "active": False}, None, ON)["active"] is False
    # a PUT without active keeps the User's; with active, it is what was sent
    assert bodies.default_active({"userName": "a"}, {"active": False}, ON)["active"] is False
    assert bodies.default_active({"userName": "a", "active": True}, {"active": False}, ON)["active"] is True
    assert bodies.default_active({"userName": "a"}, {"userName": "a"}, ON) == {"userName": "a"}
    off_ = off("active_by_default")
    assert bodies.default_active({"userName": "a"}, None, off_) == {"userName": "a"}
    assert bodies.default_active({"userName": "a"}, {"active": True}, off_) == {"userName": "a"}
