"""The PATCH normalisers of provisor.scim.compat.patch_ops, each with its switch on and off."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provisor.scim.compat import CompatSettings
from provisor.scim.compat import patch_ops as q
from provisor.scim.errors import InvalidPath, InvalidSyntax, InvalidValue, Mutability
from provisor.scim.filter.ast import And, AttrPath, Compare, CompareOp, Not, Or, Present
from provisor.scim.patch import PATCH_OP_URN, apply_patch, parse_patch_request
from provisor.scim.schema.model import ENTERPRISE_USER as E
from provisor.scim.schema.model import default_registry

USER = default_registry().resource_type("User")
GROUP = default_registry().resource_type("Group")
assert USER is not None and GROUP is not None
ON = CompatSettings.default()
OFF = CompatSettings.strict()


def only(name: str) -> CompatSettings:
    return CompatSettings.from_mapping({name: True}, base=OFF)


def without(name: str) -> CompatSettings:
    return CompatSettings.from_mapping({name: False})


def run(data: dict[str, Any], op: dict[str, Any], compat: CompatSettings) -> dict[str, Any]:
    ops = parse_patch_request({"schemas": [PATCH_OP_URN], "Operations": [op]}, USER, compat)
    return apply_patch(USER, data, ops, compat)


# Q1 capitalised_ops


@pytest.mark.parametrize("raw", ["Add", "REPLACE", "remove", "rEmOvE"])
def test_q1_on_matches_any_case(raw: str) -> None:
    assert q.normalise_op_name(raw, only("capitalised_ops")) == raw.lower()


@pytest.mark.parametrize("raw", ["Add", "Replace", "Remove"])
def test_q1_off_requires_lowercase(raw: str) -> None:
    with pytest.raises(InvalidSyntax, match="capitalised_ops is off"):
        q.normalise_op_name(raw, OFF)
    assert q.normalise_op_name(raw.lower(), OFF) == raw.lower()


@pytest.mark.parametrize("raw", ["move", "", None, 1, ["add"]])
def test_q1_unknown_ops_are_invalid_syntax_either_way(raw: Any) -> None:
    for compat in (ON, OFF):
        with pytest.raises(InvalidSyntax):
            q.normalise_op_name(raw, compat)


# Q2 string_booleans


def test_q2_on_coerces_active_and_primary() -> None:
    active = USER.schema.attribute("active")
    emails = USER.schema.attribute("emails")
    assert active is not None and emails is not None
    compat = only("string_booleans")
    assert q.normalise_value(USER, None, active, "False", compat, whole=True) is False
    assert q.normalise_value(USER, None, active, "tRUE", compat, whole=True) is True
    assert q.normalise_value(USER, None, emails, [{"primary": "true"}], compat, whole=True) == [
        {"primary": True}
    ]
    assert run({"userName": "a"}, {"op": "replace", "value": {"active": "false"}}, compat) == {
        "userName": "a",
        "active": False,
    }


def test_q2_off_leaves_strings_for_validation_to_reject() -> None:
    active = USER.schema.attribute("active")
    assert active is not None
    assert q.normalise_value(USER, None, active, "False", OFF, whole=True) == "False"
    with pytest.raises(InvalidValue):
        run({"userName": "a"}, {"op": "replace", "path": "active", "value": "False"}, OFF)


def test_q2_quoted_boolean_in_a_path_filter() -> None:
    path = 'roles[primary eq "True"].value'
    assert q.unquote_boolean_literals(path, only("string_booleans")) == "roles[primary eq true].value"
    assert q.unquote_boolean_literals(path, OFF) is None
    assert q.unquote_boolean_literals("roles[primary eq true].value", ON) is None
    data = {"userName": "a", "roles": [{"value": "User", "primary": True}]}
    assert run(data, {"op": "replace", "path": path, "value": "Admin"}, ON)["roles"] == [
        {"value": "Admin", "primary": True}
    ]
    with pytest.raises(InvalidPath):
        run(data, {"op": "replace", "path": path, "value": "Admin"}, OFF)


# Q3 remove_members_with_value


def test_q3_switch() -> None:
    assert q.remove_value_allowed(only("remove_members_with_value"))
    assert not q.remove_value_allowed(OFF)
    op = {"op": "remove", "path": "emails", "value": [{"value": "a@x.example"}]}
    data = {"userName": "a", "emails": [{"value": "a@x.example"}, {"value": "b@x.example"}]}
    assert run(data, op, only("remove_members_with_value"))["emails"] == [{"value": "b@x.example"}]
    with pytest.raises(InvalidSyntax, match="remove takes no value"):
        run(data, op, OFF)


# Q5 manager_bare_string


def test_q5_bare_manager_path_is_qualified_only_when_on() -> None:
    compat = only("manager_bare_string")
    assert q.bare_extension_path(USER, "manager", compat) == f"{E}:manager"
    assert q.bare_extension_path(USER, "Manager.value", compat) == f"{E}:Manager.value"
    assert q.bare_extension_path(USER, "manager", OFF) is None
    assert q.bare_extension_path(USER, "department", compat) is None  # only manager is tolerated
    assert q.bare_extension_path(USER, f"{E}:manager", compat) is None
    assert q.bare_extension_path(GROUP, "manager", compat) is None


@pytest.mark.parametrize("value", ["m1", [{"$ref": "https://x/Users/m1", "value": "m1"}], {"value": "m1"}])
def test_q5_manager_values_on(value: Any) -> None:
    manager = USER.extension(E).attribute("manager")  # type: ignore[union-attr]
    out = q.normalise_value(USER, E, manager, value, only("manager_bare_string"), whole=True)
    assert out["value"] == "m1"
    result = run(
        {"userName": "a"}, {"op": "add", "path": "manager", "value": value}, only("manager_bare_string")
    )
    assert result[E]["manager"]["value"] == "m1"


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ({"op": "Replace", "path": f"{E}:manager", "value": "m2"}, {"value": "m2"}),
        ({"op": "add", "path": "manager", "value": "m2"}, {"value": "m2"}),
        ({"op": "replace", "value": {f"{E}:manager": "m2"}}, {"value": "m2"}),
        ({"op": "Add", "path": "manager", "value": [{"value": "m2"}]}, {"value": "m2"}),
        (
            {"op": "Add", "path": "manager", "value": [{"$ref": "https://x/Users/m2", "value": "m2"}]},
            {"$ref": "https://x/Users/m2", "value": "m2"},
        ),
        # the RFC's object form merges (RFC 7644 section 3.5.2.3): the client names sub-attributes
        (
            {"op": "replace", "path": f"{E}:manager", "value": {"value": "m2"}},
            {"$ref": "https://x/Users/m1", "value": "m2"},
        ),
    ],
)
def test_q5_manager_shorthands_replace_the_whole_manager(op: dict[str, Any], expected: Any) -> None:
    """A bare id or the old docs' array names the whole manager: a new one keeps no ``$ref`` of
    the manager before, which named another User than ``value`` does (found by
    tests/server/test_stateful_model.py: Entra's documented array, then its observed bare id)."""
    data = {"userName": "a", E: {"manager": {"$ref": "https://x/Users/m1", "value": "m1"}, "department": "D"}}
    result = run(data, op, ON)
    assert result[E] == {"manager": expected, "department": "D"}
    manager = USER.extension(E).attribute("manager")  # type: ignore[union-attr]
    assert q.names_whole_manager(E, manager, "m2", only("manager_bare_string"))
    assert not q.names_whole_manager(E, manager, {"value": "m2"}, only("manager_bare_string"))
    assert not q.names_whole_manager(E, manager, "m2", OFF)


def test_q5_off() -> None:
    manager = USER.extension(E).attribute("manager")  # type: ignore[union-attr]
    assert q.normalise_value(USER, E, manager, "m1", OFF, whole=True) == "m1"
    with pytest.raises(InvalidValue):
        run({"userName": "a"}, {"op": "add", "path": f"{E}:manager", "value": "m1"}, OFF)
    with pytest.raises(InvalidPath):
        run({"userName": "a"}, {"op": "add", "path": "manager", "value": {"value": "m1"}}, OFF)


def test_q5_manager_filter_removal() -> None:
    data = {"userName": "a", E: {"manager": {"value": "m1"}, "department": "D"}}
    op = {"op": "remove", "path": 'manager[value eq "m1"]'}
    assert run(data, op, only("manager_bare_string")) == {"userName": "a", E: {"department": "D"}}
    assert run(data, {**op, "path": 'manager[value eq "m2"]'}, only("manager_bare_string")) == data
    with pytest.raises(InvalidPath):
        run(data, op, OFF)


def test_owning_extension() -> None:
    assert q.owning_extension(USER, "department") == E
    assert q.owning_extension(USER, "userName") is None
    assert q.owning_extension(USER, "nosuch") is None


# Q6 pathless_dotted_keys (and 1.3 unknown_attributes_ignored in path-less values)


def test_q6_on_expands_path_keys() -> None:
    value = {
        "name.givenName": "A",
        f"{E}:employeeNumber": "7",
        'emails[type eq "work"].value': "w",
        "nickName": "N",
    }
    assert q.expand_pathless_value(value, USER, only("pathless_dotted_keys")) == list(value.items())


@pytest.mark.parametrize("key", ["name.givenName", f"{E}:employeeNumber", 'emails[type eq "work"].value'])
def test_q6_off_rejects_path_keys(key: str) -> None:
    with pytest.raises(InvalidPath, match="Q6"):
        q.expand_pathless_value({key: "x"}, USER, OFF)


def test_pathless_extension_objects_schemas_and_read_only_keys() -> None:
    value = {
        "schemas": [],
        "id": "1",
        "meta": {},
        "groups": [],
        E: {"department": "D", "manager": {"value": "m"}},
    }
    assert q.expand_pathless_value(value, USER, only("pathless_read_only_ignored")) == [
        (f"{E}:department", "D"),
        (f"{E}:manager", {"value": "m"}),
    ]
    with pytest.raises(Mutability, match="id is readOnly"):
        q.expand_pathless_value(value, USER, OFF)
    assert q.expand_pathless_value({f"{E}:manager.displayName": "x"}, USER, ON) == []
    with pytest.raises(InvalidValue):
        q.expand_pathless_value({E: "x"}, USER, OFF)
    with pytest.raises(InvalidValue):
        q.expand_pathless_value(["x"], USER, ON)


def test_unknown_keys_in_pathless_values_on_and_off() -> None:
    value = {"entraOnly": 1, E: {"entraOnlyToo": 2}, "title": "T"}
    assert q.expand_pathless_value(value, USER, only("unknown_attributes_ignored")) == [("title", "T")]
    with pytest.raises(InvalidPath):
        q.expand_pathless_value(value, USER, OFF)


def test_path_head_known() -> None:
    assert q.path_head_known(USER, 'emails[type eq "work"].value')
    assert q.path_head_known(USER, f"{E}:manager.value")
    assert q.path_head_known(USER, "urn:ietf:params:scim:schemas:core:2.0:User:userName")
    assert not q.path_head_known(USER, "urn:ietf:params:scim:schemas:extension:Custom:2.0:User:tier")
    assert not q.path_head_known(USER, "nosuch.sub")
    assert not q.path_head_known(USER, 'nosuch[type eq "x"].sub')
    assert not q.path_head_known(USER, 'nosuch[value eq "a]b"]')  # a "]" inside a literal
    assert not q.path_head_known(USER, r'nosuch[value eq "a\"]"].sub')
    # text that is no path at all is never taken for an unknown attribute and ignored: a default
    # tenant answered 200 to a replace of "nickName]", "pass word" or "title extra", changing nothing
    for malformed in ("nickName]", "password]", "pass word", "title extra", "nick[Name", "a.b.c", "9lives"):
        assert q.path_head_known(USER, malformed), malformed


def test_a_malformed_path_is_refused_even_where_unknown_attributes_are_ignored() -> None:
    data = {"userName": "a", "nickName": "n"}
    for path in ("nickName]", "pass word", "title extra"):
        with pytest.raises(InvalidPath):
            run(data, {"op": "replace", "path": path, "value": "x"}, ON)
    assert run(data, {"op": "replace", "path": "mailNickname", "value": "x"}, ON) == data  # unknown: ignored


# Q8 roles_json_strings


def test_q8_decodes_json_roles_when_on() -> None:
    roles = USER.schema.attribute("roles")
    assert roles is not None
    value = [{"value": '{"id":"8b1a","value":"Admin","displayName":"Admin"}', "primary": "True"}]
    out = q.normalise_value(USER, None, roles, value, only("roles_json_strings"), whole=True)
    assert out == [{"value": "Admin", "display": "Admin", "primary": "True"}]
    assert q.normalise_value(USER, None, roles, value, ON, whole=True) == [
        {"value": "Admin", "display": "Admin", "primary": True}
    ]


def test_q8_a_patch_decodes_its_own_roles_once_and_never_the_stored_ones() -> None:
    nested = '{"value":"inner"}'
    data = {"userName": "a", "roles": [{"value": nested}]}  # stored: a role whose name is JSON text
    added = {"op": "add", "path": "roles", "value": [{"value": json.dumps({"value": nested})}]}
    assert run(data, added, ON)["roles"] == [{"value": nested}]
    other = {"op": "add", "path": "roles", "value": [{"value": "User"}]}
    assert run(data, other, ON)["roles"] == [{"value": nested}, {"value": "User"}]


def test_q8_a_patched_role_takes_primary_from_its_json_and_demotes_the_other() -> None:
    data = {"userName": "a", "roles": [{"value": "User", "primary": True}]}
    boss = json.dumps({"value": "Boss", "primary": True, "type": "T"})
    out = run(data, {"op": "add", "path": "roles", "value": [{"value": boss}]}, ON)["roles"]
    assert out == [{"value": "User", "primary": False}, {"value": "Boss", "primary": True, "type": "T"}]


def test_q8_off_keeps_the_string() -> None:
    roles = USER.schema.attribute("roles")
    assert roles is not None
    value = [{"value": '{"value":"Admin"}'}]
    assert q.normalise_value(USER, None, roles, value, OFF, whole=True) == value
    assert run({"userName": "a"}, {"op": "add", "path": "roles", "value": value}, OFF)["roles"] == value


# 1.4 unmatched_filter_creates


def _eq(sub: str, value: Any) -> Compare:
    return Compare(AttrPath(None, "emails", sub), CompareOp.EQ, value)


@pytest.mark.parametrize(
    ("f", "expected"),
    [
        (_eq("type", "work"), {"type": "work"}),
        (And(_eq("type", "work"), _eq("primary", True)), {"type": "work", "primary": True}),
        (And(_eq("type", "work"), _eq("type", "work")), {"type": "work"}),
        (And(_eq("type", "work"), _eq("type", "home")), None),
        (Or(_eq("type", "work"), _eq("type", "home")), None),
        (Compare(AttrPath(None, "emails", "value"), CompareOp.CO, "@x"), None),
        (Present(AttrPath(None, "emails", "value")), None),
        (Not(_eq("type", "work")), None),
        (And(_eq("type", "work"), Present(AttrPath(None, "emails", "value"))), None),
    ],
)
def test_element_from_filter(f: Any, expected: dict[str, Any] | None) -> None:
    assert q.element_from_filter(f) == expected


def test_unmatched_filter_creates_on_and_off() -> None:
    op = {"op": "replace", "path": 'emails[type eq "work"].value', "value": "w@x.example"}
    assert run({"userName": "a"}, op, only("unmatched_filter_creates"))["emails"] == [
        {"type": "work", "value": "w@x.example"}
    ]
    with pytest.raises(Exception, match="matches no value") as info:
        run({"userName": "a"}, op, OFF)
    assert getattr(info.value, "scim_type", None) == "noTarget"


def test_unknown_path_ops_ignored_on_and_rejected_off() -> None:
    op = {
        "op": "replace",
        "path": "urn:ietf:params:scim:schemas:extension:Custom:2.0:User:tier",
        "value": "1",
    }
    assert run({"userName": "a"}, op, only("unknown_attributes_ignored")) == {"userName": "a"}
    with pytest.raises(InvalidPath):
        run({"userName": "a"}, op, without("unknown_attributes_ignored"))


# Q15 extension_dot_names


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (f"{E}.department", f"{E}:department"),
        (f"{E.upper()}.manager.value", f"{E}:manager.value"),  # URNs match in any case
        (
            "urn:ietf:params:scim:schemas:core:2.0:User.name.givenName",
            "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName",
        ),
        (f"{E}:department", None),  # already RFC 7644
        ("urn:example:custom:2.0:User.department", None),  # no schema of ours
        ("department", None),
    ],
)
def test_q15_a_dot_after_a_schema_urn_reads_as_a_colon(text: str, want: str | None) -> None:
    assert q.colon_after_urn(USER, text, ON) == want
    assert q.colon_after_urn(USER, text, without("extension_dot_names")) is None


def test_q15_patch_paths_with_the_dot_change_the_extension_attribute() -> None:
    data: dict[str, Any] = {"userName": "a@x.com", E: {"department": "Old"}}
    op = {"op": "replace", "path": f"{E}.department", "value": "New"}
    assert run(data, op, only("extension_dot_names"))[E] == {"department": "New"}
    pathless = {"op": "replace", "value": {f"{E}.costCenter": "C1"}}
    assert run(data, pathless, ON)[E] == {"department": "Old", "costCenter": "C1"}


def test_q15_off_a_dotted_path_is_invalid_even_where_unknown_attributes_are_ignored() -> None:
    """``unknown_attributes_ignored`` skips attributes no schema declares; a known URN followed by a
    dot is a malformed path instead, and skipping it would lose the change without a word."""
    data: dict[str, Any] = {"userName": "a@x.com"}
    op = {"op": "replace", "path": f"{E}.department", "value": "New"}
    with pytest.raises(InvalidPath):
        run(data, op, without("extension_dot_names"))
    unknown = {"op": "replace", "path": "urn:example:custom:2.0:User.department", "value": "New"}
    assert run(data, unknown, without("extension_dot_names")) == data  # still ignored (1.3)


# RFC 7644 s3.5.1 pathless_read_only_ignored


@pytest.mark.parametrize(
    "value",
    [
        {"id": "x"},
        {"meta": {"version": 'W/"9"'}},
        {"groups": [{"value": "g"}]},
        {f"{E}:manager.displayName": "M"},
    ],
    ids=["id", "meta", "groups", "manager.displayName"],
)
def test_pathless_read_only_values_are_ignored_only_with_the_switch(value: dict[str, Any]) -> None:
    data = {"userName": "a", "title": "t"}
    op = {"op": "replace", "value": {**value, "title": "new"}}
    assert run(data, op, ON) == {"userName": "a", "title": "new"}
    with pytest.raises(Mutability, match="readOnly"):
        run(data, op, without("pathless_read_only_ignored"))


@pytest.mark.parametrize(
    "value",
    [
        {"displayName": "a", "DISPLAYNAME": "b"},
        {E: {"department": "a", "Department": "b"}},
        {"name.givenName": "a", "NAME.GIVENNAME": "b"},
        {E: {"department": "a"}, f"{E}:department": "b"},
        {f"{E}:Department": "b", E: {"department": "a"}},
        {"displayName": "a", "urn:ietf:params:scim:schemas:core:2.0:User": {"displayName": "b"}},
        {"urn:ietf:params:scim:schemas:core:2.0:User:displayName": "a", "DisplayName": "b"},
        {f"{E}.department": "b", E: {"department": "a"}},
    ],
    ids=[
        "core",
        "extension",
        "dotted",
        "container-and-urn",
        "urn-and-container",
        "core-container",
        "core-urn",
        "dotted-urn",
    ],
)
def test_a_pathless_value_naming_an_attribute_twice_in_two_cases_is_refused(value: dict[str, Any]) -> None:
    """Names are case-insensitive (RFC 7643 section 2.1), and an attribute may be named in
    several forms (under its schema's URN, qualified by it, dotted with Q15): the last one
    silently won, where a POST refuses the same body."""
    with pytest.raises(InvalidValue, match="given twice"):
        q.expand_pathless_value(value, USER, ON)


# Q7 undeclared_extension_schemas: an extension's attribute named without its URN


@pytest.mark.parametrize(
    "op",
    [
        {"op": "replace", "path": "department", "value": "Sales"},
        {"op": "add", "path": "Department", "value": "Sales"},
        {"op": "add", "value": {"department": "Sales"}},
        {"op": "replace", "value": {"DEPARTMENT": "Sales", "title": "t"}},
    ],
    ids=["path", "path-in-another-case", "pathless", "pathless-with-core"],
)
def test_q7_an_extension_attribute_without_its_urn_is_that_extensions(op: dict[str, Any]) -> None:
    """A POST's top-level ``department`` is stored under the enterprise URN; a PATCH naming it
    so was answered 200 and dropped (read as an unknown attribute)."""
    data = {"userName": "a", "title": "t"}
    assert run(data, op, ON) == {"userName": "a", "title": "t", E: {"department": "Sales"}}
    off = without("undeclared_extension_schemas")
    if "path" in op:
        with pytest.raises(InvalidPath):
            run(data, op, CompatSettings.strict())
    else:
        assert run(data, op, off) == data  # unknown_attributes_ignored still skips it
        with pytest.raises(InvalidPath):
            run(data, op, CompatSettings.strict())


def test_q7_the_same_attribute_with_and_without_its_urn_is_given_twice() -> None:
    with pytest.raises(InvalidValue, match="given twice"):
        q.expand_pathless_value({"department": "a", E: {"department": "b"}}, USER, ON)
