"""Group ``members.value``, ``members.type`` and ``members.$ref`` are immutable (the Group schema;
RFC 7643 section 2.2): a PATCH may add and remove members, never change one in place (RFC 7644
section 3.5.2, 400 ``mutability``). ``members.display`` is readWrite and stays writable."""

from __future__ import annotations

from typing import Any

import pytest

from provisor.scim.compat import CompatSettings
from provisor.scim.errors import ScimError
from provisor.scim.patch import (
    PATCH_OP_URN,
    Member,
    MemberDelta,
    apply_member_operations,
    apply_patch,
    parse_patch_request,
    split_member_operations,
)
from provisor.scim.schema.model import Mutability, default_registry

GROUP = default_registry().resource_type("Group")
assert GROUP is not None
D = CompatSettings.default()
S = CompatSettings.strict()
BOTH = pytest.mark.parametrize("compat", [D, S], ids=["default", "strict"])
CURRENT = (Member("u1", "User", "Ann"), Member("g1", "Group", "Admins"))
EVIL_REF = "http://evil/Users/x"


def body(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_URN], "Operations": list(ops)}


def members_after(
    current: tuple[Member, ...], *ops: dict[str, Any], compat: CompatSettings = D
) -> MemberDelta:
    """The delta the server stores for ``ops``: the fast split, else the full-list fallback."""
    parsed = parse_patch_request(body(*ops), GROUP, compat)
    other, delta, full = split_member_operations(GROUP, parsed, compat)
    apply_patch(GROUP, {"displayName": "G"}, other, compat)
    return apply_member_operations(current, parsed, GROUP, compat) if full else delta


def refusal(current: tuple[Member, ...], *ops: dict[str, Any], compat: CompatSettings = D) -> ScimError:
    with pytest.raises(ScimError) as info:
        members_after(current, *ops, compat=compat)
    return info.value


def test_the_group_schema_declares_what_this_enforces() -> None:
    members = GROUP.schema.attribute("members")
    assert members is not None
    mutability = {s.name: s.mutability for s in members.sub_attributes}
    assert mutability == {
        "value": Mutability.IMMUTABLE,
        "$ref": Mutability.IMMUTABLE,
        "type": Mutability.IMMUTABLE,
        "display": Mutability.READ_WRITE,
    }


CHANGES = [
    {"op": "replace", "path": 'members[value eq "u1"].value', "value": "u2"},
    {"op": "replace", "path": "members.value", "value": "u2"},
    {"op": "replace", "path": 'members[value eq "u1"].type', "value": "Group"},
    {"op": "replace", "path": 'members[value eq "u1"].$ref', "value": EVIL_REF},
    {"op": "replace", "path": 'members[value eq "u9"].type', "value": "User"},
    {"op": "replace", "path": "members.type", "value": "User"},
    {"op": "replace", "path": 'members[value eq "u1"].value', "value": None},
    {"op": "add", "path": 'members[value eq "u1"].value', "value": "u2"},
    {"op": "add", "path": "members.value", "value": "u2"},
    {"op": "add", "path": 'members[value eq "u1"].type', "value": "Group"},
    {"op": "add", "path": 'members[value eq "u1"].$ref', "value": EVIL_REF},
    {"op": "add", "path": 'members[value eq "u1"]', "value": {"value": "u2"}},
    {"op": "add", "path": 'members[value eq "u1"]', "value": {"type": "Group"}},
    {"op": "add", "path": 'members[value eq "u1"]', "value": {"$ref": EVIL_REF}},
    {"op": "replace", "path": 'members[value eq "u1"]', "value": {"value": "u2"}},
    {"op": "replace", "path": 'members[value eq "u1"]', "value": {"value": "u1", "$ref": EVIL_REF}},
    {"op": "remove", "path": 'members[value eq "u1"].value'},
    {"op": "remove", "path": "members.type"},
    {"op": "remove", "path": 'members[value eq "u1"].$ref'},
]


@BOTH
@pytest.mark.parametrize("op", CHANGES, ids=lambda op: f"{op['op']} {op['path']}")
def test_changing_a_member_in_place_is_a_mutability_error(op: dict[str, Any], compat: CompatSettings) -> None:
    err = refusal(CURRENT, op, compat=compat)
    assert err.status == 400 and err.scim_type == "mutability"
    assert err.detail.startswith("operation 1: members.")


@BOTH
@pytest.mark.parametrize(
    "op",
    [
        {"op": "replace", "path": "members.value", "value": "u2"},
        {"op": "replace", "path": "members.type", "value": "User"},
        {"op": "replace", "path": "members.$ref", "value": EVIL_REF},
    ],
)
def test_a_replace_of_an_immutable_sub_attribute_is_refused_on_an_empty_group(
    op: dict[str, Any], compat: CompatSettings
) -> None:
    assert refusal((), op, compat=compat).scim_type == "mutability"


@BOTH
def test_the_refused_operation_is_named_and_fails_the_whole_request(compat: CompatSettings) -> None:
    err = refusal(
        CURRENT,
        {"op": "replace", "path": "displayName", "value": "Renamed"},
        {"op": "add", "path": "members", "value": [{"value": "u3"}]},
        {"op": "replace", "path": 'members[value eq "u1"].value', "value": "u2"},
        compat=compat,
    )
    assert err.scim_type == "mutability" and err.detail.startswith("operation 3: members.value")


@BOTH
def test_display_is_read_write(compat: CompatSettings) -> None:
    delta = members_after(
        CURRENT, {"op": "replace", "path": 'members[value eq "u1"].display', "value": "Anna"}, compat=compat
    )
    assert delta == MemberDelta(replace=(Member("u1", "User", "Anna"), CURRENT[1]), shown=frozenset({"g1"}))
    delta = members_after(
        CURRENT, {"op": "add", "path": 'members[value eq "g1"]', "value": {"display": "Root"}}, compat=compat
    )
    assert delta == MemberDelta(replace=(CURRENT[0], Member("g1", "Group", "Root")), shown=frozenset({"u1"}))


@BOTH
def test_repeating_the_immutable_values_of_a_member_is_no_change(compat: CompatSettings) -> None:
    same = {"value": "u1", "type": "user", "display": "A"}
    op = {"op": "add", "path": 'members[value eq "u1"]', "value": same}
    assert members_after(CURRENT, op, compat=compat) == MemberDelta(
        replace=(Member("u1", "User", "A"), CURRENT[1]), shown=frozenset({"g1"})
    )


@BOTH
@pytest.mark.parametrize(
    "op",
    [
        {"op": "replace", "path": 'members[value eq "u1"].type', "value": "User"},
        {"op": "replace", "path": 'members[value eq "u1"].type', "value": "user"},
        {"op": "replace", "path": 'members[type eq "Group"].value', "value": "g1"},
        {"op": "replace", "path": 'members[value eq "g1"].type', "value": "Group"},
    ],
    ids=["type", "type in another case", "value", "group member"],
)
def test_replacing_an_immutable_value_with_itself_is_no_change(
    op: dict[str, Any], compat: CompatSettings
) -> None:
    """RFC 7644 section 3.5.2 forbids modifying an immutable value; giving it again modifies
    nothing (as a PUT may repeat it, section 3.5.1). The member keeps showing its own name."""
    assert members_after(CURRENT, op, compat=compat) == MemberDelta()


@BOTH
def test_an_unset_immutable_value_may_be_set_once(compat: CompatSettings) -> None:
    op = {"op": "add", "path": 'members[value eq "u1"].type', "value": "User"}
    assert members_after((Member("u1"),), op, compat=compat) == MemberDelta(replace=(Member("u1", "User"),))
    op = {"op": "add", "path": "members.value", "value": "u2"}
    assert members_after((), op, compat=compat) == MemberDelta(add=(Member("u2"),))


@BOTH
@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (
            {"op": "add", "path": "members", "value": [{"value": "u3"}]},
            MemberDelta(add=(Member("u3"),)),
        ),
        (
            {"op": "add", "value": {"members": [{"value": "u3", "display": "Three"}]}},
            MemberDelta(add=(Member("u3", None, "Three"),)),
        ),
        (
            {"op": "replace", "path": "members", "value": [{"value": "u3"}]},
            MemberDelta(replace=(Member("u3"),)),
        ),
        (
            {"op": "remove", "path": 'members[value eq "u1"]'},
            MemberDelta(remove=("u1",)),
        ),
        (
            {"op": "remove", "path": "members"},
            MemberDelta(replace=()),
        ),
    ],
    ids=["add list", "path-less add", "replace list", "remove filter", "remove all"],
)
def test_adding_and_removing_members_still_works(
    op: dict[str, Any], expected: MemberDelta, compat: CompatSettings
) -> None:
    assert members_after(CURRENT, op, compat=compat) == expected


def test_entra_remove_with_a_value_list_still_works() -> None:
    op = {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": "u1"}]}
    assert members_after(CURRENT, op) == MemberDelta(remove=("u1",))


@BOTH
def test_member_forms_still_work_in_the_full_list_fallback(compat: CompatSettings) -> None:
    delta = members_after(
        CURRENT,
        {"op": "add", "path": "members", "value": [{"value": "u3", "$ref": "https://h/scim/v2/Users/u3"}]},
        {"op": "remove", "path": 'members[type eq "Group"]'},
        {"op": "replace", "path": 'members[value eq "u1"].display', "value": "Anna"},
        compat=compat,
    )
    assert delta == MemberDelta(replace=(Member("u1", "User", "Anna"), Member("u3", "User")))
