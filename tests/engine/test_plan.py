"""Plans: PATCH only what differs, disable, deprovisioning, memberships (entra-behaviour.md
1.4, 1.5, 1.6, 2.6, 2.7, 2.12, 2.15)."""

from __future__ import annotations

import copy
import string
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from tests.engine.mapping.mapping_helpers import context

from provisor.engine.jobs.model import MappingType
from provisor.engine.mapping.attributes import MappedValues, build_resource, map_object
from provisor.engine.model import ObjectKind, SourceObject
from provisor.engine.plan import (
    Action,
    DeprovisionEvent,
    ModifiedProperty,
    PatchOperation,
    Plan,
    Reason,
    member_operations,
    plan_create,
    plan_deprovision,
    plan_disable,
    plan_members,
    plan_update,
    same_value,
    staged,
)
from provisor.engine.templates import CLARIZEN_ONE, ENTERPRISE_URN, AttributeMapping

E = ENTERPRISE_URN
MGR = f"{E}:manager"
USERS = CLARIZEN_ONE.user_mappings

ALICE: dict[str, Any] = {
    "userPrincipalName": "alice@contoso.com",
    "displayName": "Alice Smith",
    "givenName": "Alice",
    "surname": "Smith",
    "mail": "alice@contoso.com",
    "mailNickname": "alice",
    "department": "Sales",
    "employeeId": "701984",
    "telephoneNumber": "+1 425 555 0100",
    "manager": "mgr-src",
    "appRoleAssignments": [{"id": "r-1", "value": "User", "displayName": "User"}],
}


def values_for(attrs: dict[str, Any], mappings: Any = USERS, creating: bool = False) -> MappedValues:
    obj = SourceObject(ObjectKind.USER, "src-1", attrs)
    return map_object(obj, mappings, context(), creating=creating, computed={"IsSoftDeleted": False})


def current_for(attrs: dict[str, Any], manager: str | None = "mgr-tgt") -> dict[str, Any]:
    """The resource as the target returns it after Entra created it (plus id and meta)."""
    body = build_resource(
        ObjectKind.USER, values_for(attrs, creating=True), references={MGR: [manager]} if manager else None
    )
    return {**body, "id": "t-1", "meta": {"resourceType": "User", "location": "https://x/Users/t-1"}}


def test_no_change_is_a_skip_with_redundant_export() -> None:
    plan = plan_update(current_for(ALICE), values_for(ALICE), USERS, references={MGR: ["mgr-tgt"]})
    assert plan == Plan(Action.SKIP, Reason.REDUNDANT_EXPORT)


def test_one_changed_email_is_one_replace_on_the_filtered_path() -> None:
    plan = plan_update(current_for(ALICE), values_for({**ALICE, "mail": "alice.smith@contoso.com"}), USERS)
    assert plan.action is Action.UPDATE
    assert plan.operations == (
        PatchOperation("replace", 'emails[type eq "work"].value', "alice.smith@contoso.com"),
    )
    assert plan.modified == (
        ModifiedProperty('emails[type eq "work"].value', "alice@contoso.com", "alice.smith@contoso.com"),
    )


def test_string_comparison_is_case_sensitive() -> None:
    plan = plan_update(current_for(ALICE), values_for({**ALICE, "displayName": "alice smith"}), USERS)
    assert plan.operations == (PatchOperation("replace", "displayName", "alice smith"),)


def test_new_attribute_is_an_add() -> None:
    mappings = [*USERS, AttributeMapping("nickName", MappingType.CONSTANT, constant="Al")]
    plan = plan_update(current_for(ALICE), values_for(ALICE, mappings), mappings)
    assert plan.operations == (PatchOperation("add", "nickName", "Al"),)
    assert plan.modified == (ModifiedProperty("nickName", None, "Al"),)


def test_new_typed_element_is_an_add_and_changes_are_sorted() -> None:
    changed = {**ALICE, "mobile": "+1 555 0101", "department": "Marketing", "surname": "Jones"}
    plan = plan_update(current_for(ALICE), values_for(changed), USERS)
    assert plan.operations == (
        PatchOperation("replace", "name.familyName", "Jones"),
        PatchOperation("replace", "name.formatted", "Alice Jones"),
        PatchOperation("add", 'phoneNumbers[type eq "mobile"].value', "+1 555 0101"),
        PatchOperation("replace", f"{E}:department", "Marketing"),
    )
    assert [m.attribute for m in plan.modified] == sorted(m.attribute for m in plan.modified)


def test_null_source_never_clears_the_target() -> None:
    gone = {k: v for k, v in ALICE.items() if k not in ("department", "telephoneNumber", "manager")}
    plan = plan_update(current_for(ALICE), values_for(gone), USERS, references={})
    assert plan == Plan(Action.SKIP, Reason.REDUNDANT_EXPORT)


def test_manager_change_is_compared_by_value() -> None:
    current = current_for(ALICE, manager="mgr-tgt")
    assert plan_update(current, values_for(ALICE), USERS, references={MGR: ["mgr-tgt"]}).operations == ()
    plan = plan_update(current, values_for(ALICE), USERS, references={MGR: ["mgr-2"]})
    assert plan.operations == (PatchOperation("replace", MGR, {"value": "mgr-2"}),)
    assert plan.modified == (ModifiedProperty(MGR, "mgr-tgt", "mgr-2"),)
    # a target storing the manager as a bare string (1.4 quirk) compares the same way
    bare = copy.deepcopy(current)
    bare[E]["manager"] = "mgr-tgt"
    assert plan_update(bare, values_for(ALICE), USERS, references={MGR: ["mgr-tgt"]}).action is Action.SKIP


def test_first_manager_is_an_add() -> None:
    plan = plan_update(current_for(ALICE, manager=None), values_for(ALICE), USERS, references={MGR: ["m"]})
    assert plan.operations == (PatchOperation("add", MGR, {"value": "m"}),)


def test_booleans_compare_after_normalising_strings() -> None:
    current = current_for(ALICE)
    current["active"] = "True"
    assert plan_update(current, values_for(ALICE), USERS).action is Action.SKIP
    current["active"] = "False"
    plan = plan_update(current, values_for(ALICE), USERS)
    assert plan.operations == (PatchOperation("replace", "active", True),)
    assert plan.modified == (ModifiedProperty("active", "False", "True"),)
    assert same_value("5", 5) and not same_value("True", "true")


def test_type_filter_and_names_match_case_insensitively_in_the_target() -> None:
    current = current_for(ALICE)
    current["Emails"] = [{"type": "Work", "value": "alice@contoso.com", "primary": True}]
    del current["emails"]
    assert plan_update(current, values_for(ALICE), USERS).action is Action.SKIP


def test_role_change_replaces_the_primary_role_value() -> None:
    changed = {**ALICE, "appRoleAssignments": [{"id": "r-2", "value": "Admin", "displayName": "Admin"}]}
    plan = plan_update(current_for(ALICE), values_for(changed), USERS)
    assert plan.operations == (PatchOperation("replace", 'roles[primary eq "True"].value', "Admin"),)


def test_complex_roles_are_added_never_removed() -> None:
    mappings = [
        AttributeMapping("roles", MappingType.EXPRESSION, expression="AppRoleAssignmentsComplex([r])")
    ]
    role = {"primary": False, "type": "WindowsAzureActiveDirectoryRole", "value": "User", "display": "User"}
    current = {"roles": [role]}
    values = values_for({"r": [{"value": "User"}, {"value": "Admin"}]}, mappings)
    plan = plan_update(current, values, mappings)
    assert plan.operations == (
        PatchOperation("add", "roles", [{**role, "value": "Admin", "display": "Admin"}]),
    )
    assert plan_update(current, values_for({"r": []}, mappings), mappings).action is Action.SKIP


def test_assertive_roles_replace_the_whole_list() -> None:
    mappings = [
        AttributeMapping(
            "roles", MappingType.EXPRESSION, expression="AssertiveAppRoleAssignmentsComplex([r])"
        )
    ]
    current = {"roles": [{"primary": False, "type": "WindowsAzureActiveDirectoryRole", "value": "User"}]}
    values = values_for({"r": [{"value": "Admin"}]}, mappings)
    (op,) = plan_update(current, values, mappings).operations
    assert (op.op, op.path, [r["value"] for r in op.value]) == ("replace", "roles", ["Admin"])


def test_none_mapping_default_fills_only_an_empty_target() -> None:
    mappings = [AttributeMapping("nickName", MappingType.NONE, default_value="n/a")]
    values = values_for(ALICE, mappings)
    assert plan_update({"nickName": ""}, values, mappings).operations == (
        PatchOperation("add", "nickName", "n/a"),
    )
    assert plan_update({"nickName": "Al"}, values, mappings).action is Action.SKIP


def test_redacted_values_stay_redacted_in_modified_properties() -> None:
    mappings = [AttributeMapping("externalId", MappingType.EXPRESSION, expression="Redact([mailNickname])")]
    plan = plan_update({"externalId": "old-secret"}, values_for(ALICE, mappings), mappings)
    assert plan.operations == (PatchOperation("replace", "externalId", "alice"),)
    assert plan.modified == (ModifiedProperty("externalId", "[Redact]", "[Redact]"),)


def test_create_lists_every_attribute_and_failure_skips() -> None:
    plan = plan_create(values_for(ALICE, creating=True))
    assert plan.action is Action.CREATE
    assert ModifiedProperty("active", None, "True") in plan.modified
    assert ModifiedProperty(MGR, None, "mgr-src") in plan.modified
    bad = [AttributeMapping("title", MappingType.EXPRESSION, expression='CDate("x")')]
    failed = plan_create(values_for(ALICE, bad, creating=True))
    assert (failed.action, failed.reason) == (Action.SKIP, Reason.EXPRESSION_EVALUATION_FAILED)
    assert failed.detail.startswith("title: expression failed")


def test_disable_replaces_active_false() -> None:
    plan = plan_disable(current_for(ALICE))
    assert plan.action is Action.DISABLE
    assert plan.operations == (PatchOperation("replace", "active", False),)
    assert plan.modified == (ModifiedProperty("active", "True", "False"),)
    assert plan_disable({"active": "False"}) == Plan(Action.SKIP, Reason.REDUNDANT_EXPORT)
    assert plan_disable().operations == (PatchOperation("replace", "active", False),)


def test_deprovisioning_matrix() -> None:
    out = plan_deprovision(DeprovisionEvent.OUT_OF_SCOPE, soft_delete_mapped=True)
    assert (out.action, out.reason) == (Action.DISABLE, Reason.OUT_OF_SCOPE)
    soft = plan_deprovision(DeprovisionEvent.SOFT_DELETED, soft_delete_mapped=True)
    assert (soft.action, soft.reason) == (Action.DISABLE, None)
    kept = plan_deprovision(
        DeprovisionEvent.OUT_OF_SCOPE, soft_delete_mapped=True, skip_out_of_scope_deletions=True
    )
    assert (kept.action, kept.reason, kept.operations) == (Action.SKIP, Reason.OUT_OF_SCOPE, ())
    assert "SkipOutOfScopeDeletions" in kept.detail
    unmapped = plan_deprovision(DeprovisionEvent.SOFT_DELETED, soft_delete_mapped=False)
    assert unmapped.action is Action.SKIP and "IsSoftDeleted" in unmapped.detail
    assert plan_deprovision(DeprovisionEvent.HARD_DELETED, soft_delete_mapped=False).action is Action.DELETE
    off = plan_deprovision(DeprovisionEvent.HARD_DELETED, soft_delete_mapped=True, delete_enabled=False)
    assert off.action is Action.SKIP
    entitled = plan_deprovision(DeprovisionEvent.NOT_EFFECTIVELY_ENTITLED, soft_delete_mapped=True)
    assert entitled.reason is Reason.NOT_EFFECTIVELY_ENTITLED


def test_staged_delete_holds_back_disables_and_deletes_only() -> None:
    held = staged(plan_disable())
    assert (held.action, held.reason) == (Action.STAGED_DELETE, Reason.TOO_MANY_DELETES)
    assert held.operations == plan_disable().operations
    update = Plan(Action.UPDATE, operations=(PatchOperation("replace", "title", "x"),))
    assert staged(update) is update


def test_membership_diff_is_sorted_and_minimal() -> None:
    assert plan_members(["u3", "u1", "u2"], ["u2", "u5", "u4", "u1"]) == (("u4", "u5"), ("u3",))
    assert plan_members(["u1"], ["u1"]) == ((), ())
    assert member_operations(["u4", "u5"], ["u3"]) == (
        PatchOperation("add", "members", [{"value": "u4"}, {"value": "u5"}]),
        PatchOperation("remove", "members", [{"value": "u3"}]),
    )
    assert member_operations([], []) == ()


_text = st.text(string.ascii_letters + string.digits + " .@-", min_size=0, max_size=12)
_source = st.fixed_dictionaries(
    {},
    optional={
        name: _text
        for name in (
            "userPrincipalName",
            "displayName",
            "givenName",
            "surname",
            "mail",
            "mailNickname",
            "jobTitle",
            "department",
            "employeeId",
            "city",
            "postalCode",
            "telephoneNumber",
            "mobile",
            "facsimileTelephoneNumber",
            "preferredLanguage",
        )
    },
).map(lambda d: {**d, "appRoleAssignments": [{"value": v} for v in d.get("jobTitle", "").split()[:2]]})


@given(source=_source, soft_deleted=st.booleans(), manager=st.none() | _text.filter(bool))
def test_round_trip_of_what_was_posted_needs_no_patch(
    source: dict[str, Any], soft_deleted: bool, manager: str | None
) -> None:
    obj = SourceObject(ObjectKind.USER, "src", source)
    values = map_object(obj, USERS, context(), creating=True, computed={"IsSoftDeleted": soft_deleted})
    refs = {MGR: [manager]} if manager else {}
    current = build_resource(ObjectKind.USER, values, references=refs)
    plan = plan_update(current, values, USERS, references=refs)
    assert plan == Plan(Action.SKIP, Reason.REDUNDANT_EXPORT)
