"""PATCH bodies of the three dialects, exactly as entra-behaviour.md 1.4-1.6 shows them."""

from __future__ import annotations

import pytest

from provisor.engine.jobs.model import PatchDialect
from provisor.engine.targets.patch import (
    PATCH_OP_SCHEMA,
    PatchOperation,
    add_members,
    remove_members,
    render_patch,
)

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

# The change set of the 1.4 samples: one filtered path, simple attributes, an extension attribute.
USER_CHANGES = [
    PatchOperation("replace", 'emails[type eq "work"].value', "new@contoso.com"),
    PatchOperation("replace", "name.familyName", "Smith"),
    PatchOperation("replace", "displayName", "Alice Smith"),
    PatchOperation("replace", "externalId", "alice"),
    PatchOperation("replace", f"{ENT}:employeeNumber", "701984"),
    PatchOperation("add", "nickName", "Al"),
]


def ops(body: dict) -> list:
    assert body["schemas"] == [PATCH_OP_SCHEMA]
    return body["Operations"]


def test_entra_default_shape_matches_section_1_4_sample() -> None:
    assert ops(render_patch(USER_CHANGES, "entra")) == [
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "new@contoso.com"},
        {"op": "Replace", "path": "name.familyName", "value": "Smith"},
        {"op": "Replace", "path": "displayName", "value": "Alice Smith"},
        {"op": "Replace", "path": "externalId", "value": "alice"},
        {"op": "Replace", "path": f"{ENT}:employeeNumber", "value": "701984"},
        {"op": "Add", "path": "nickName", "value": "Al"},
    ]


def test_flag_folds_simple_replaces_into_one_pathless_replace_section_1_4() -> None:
    assert ops(render_patch(USER_CHANGES, "aadOptscim062020")) == [
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "new@contoso.com"},
        {
            "op": "replace",
            "value": {
                "name.familyName": "Smith",
                "displayName": "Alice Smith",
                "externalId": "alice",
                f"{ENT}:employeeNumber": "701984",
            },
        },
        {"op": "add", "path": "nickName", "value": "Al"},
    ]


def test_rfc_is_lowercase_one_op_per_attribute() -> None:
    assert ops(render_patch(USER_CHANGES, PatchDialect.RFC)) == [
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "new@contoso.com"},
        {"op": "replace", "path": "name.familyName", "value": "Smith"},
        {"op": "replace", "path": "displayName", "value": "Alice Smith"},
        {"op": "replace", "path": "externalId", "value": "alice"},
        {"op": "replace", "path": f"{ENT}:employeeNumber", "value": "701984"},
        {"op": "add", "path": "nickName", "value": "Al"},
    ]


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("entra", {"op": "Replace", "path": "active", "value": "False"}),
        ("aadOptscim062020", {"op": "replace", "value": {"active": False}}),
        ("rfc", {"op": "replace", "path": "active", "value": False}),
    ],
)
def test_disable_section_1_5(dialect: str, expected: dict) -> None:
    assert ops(render_patch([PatchOperation("replace", "active", False)], dialect)) == [expected]


def test_entra_reenable_is_the_string_true() -> None:
    assert ops(render_patch([PatchOperation("replace", "active", True)], "entra")) == [
        {"op": "Replace", "path": "active", "value": "True"}
    ]


def test_member_add_per_dialect_section_1_6() -> None:
    add = [add_members(["u1", "u2"])]
    assert ops(render_patch(add, "entra")) == [
        {
            "op": "Add",
            "path": "members",
            "value": [{"$ref": None, "value": "u1"}, {"$ref": None, "value": "u2"}],
        }
    ]
    for dialect in ("aadOptscim062020", "rfc"):
        assert ops(render_patch(add, dialect)) == [
            {"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}
        ]


def test_member_remove_per_dialect_section_1_6() -> None:
    remove = [remove_members(["u1", 'odd"id'])]
    assert ops(render_patch(remove, "entra")) == [
        {
            "op": "Remove",
            "path": "members",
            "value": [{"$ref": None, "value": "u1"}, {"$ref": None, "value": 'odd"id'}],
        }
    ]
    expected = [
        {"op": "remove", "path": 'members[value eq "u1"]'},
        {"op": "remove", "path": 'members[value eq "odd\\"id"]'},
    ]
    assert ops(render_patch(remove, "aadOptscim062020")) == expected
    assert ops(render_patch(remove, "rfc")) == expected


def test_group_rename_section_1_6() -> None:
    rename = [PatchOperation("replace", "displayName", "Sales EMEA")]
    assert ops(render_patch(rename, "entra")) == [
        {"op": "Replace", "path": "displayName", "value": "Sales EMEA"}
    ]
    assert ops(render_patch(rename, "aadOptscim062020")) == [
        {"op": "replace", "value": {"displayName": "Sales EMEA"}}
    ]


def test_pathless_object_is_split_into_dotted_and_urn_paths_for_entra_and_rfc() -> None:
    change = [
        PatchOperation(
            "replace",
            None,
            {"name": {"givenName": "Alice"}, ENT: {"department": "Sales"}, "title": "Boss"},
        )
    ]
    assert ops(render_patch(change, "entra")) == [
        {"op": "Replace", "path": "name.givenName", "value": "Alice"},
        {"op": "Replace", "path": f"{ENT}:department", "value": "Sales"},
        {"op": "Replace", "path": "title", "value": "Boss"},
    ]
    assert [o["path"] for o in ops(render_patch(change, "rfc"))] == [
        "name.givenName",
        f"{ENT}:department",
        "title",
    ]
    assert ops(render_patch(change, "aadOptscim062020")) == [
        {
            "op": "replace",
            "value": {"name.givenName": "Alice", f"{ENT}:department": "Sales", "title": "Boss"},
        }
    ]


def test_flag_keeps_multivalued_and_member_replaces_separate() -> None:
    roles = [{"value": "Admin", "type": "WindowsAzureActiveDirectoryRole"}]
    change = [PatchOperation("replace", "roles", roles), PatchOperation("replace", "title", "x")]
    assert ops(render_patch(change, "aadOptscim062020")) == [
        {"op": "replace", "path": "roles", "value": roles},
        {"op": "replace", "value": {"title": "x"}},
    ]


def test_remove_attribute_without_value() -> None:
    change = [PatchOperation("remove", "nickName")]
    assert ops(render_patch(change, "entra")) == [{"op": "Remove", "path": "nickName"}]
    assert ops(render_patch(change, "rfc")) == [{"op": "remove", "path": "nickName"}]
    assert ops(render_patch(change, "aadOptscim062020")) == [{"op": "remove", "path": "nickName"}]


def test_invalid_operations_are_refused() -> None:
    with pytest.raises(ValueError):
        PatchOperation("Replace", "x", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PatchOperation("remove", None)
    with pytest.raises(ValueError):
        PatchOperation("replace", None, "not an object")
    with pytest.raises(ValueError):
        render_patch([], "okta")
