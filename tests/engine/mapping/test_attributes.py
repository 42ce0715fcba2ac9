"""map_object and build_resource (entra-behaviour.md 1.3, 1.6, 2.15, 3.1, 3.3)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.engine.mapping.mapping_helpers import context

from provisor.engine.jobs.model import ApplyMapping, MappingType
from provisor.engine.mapping.attributes import MappedValues, build_resource, map_object
from provisor.engine.model import ObjectKind, SourceObject
from provisor.engine.templates import CLARIZEN_ONE, ENTERPRISE_URN, SCIM_DEFAULT, AttributeMapping

E = ENTERPRISE_URN

ALICE: dict[str, Any] = {
    "userPrincipalName": "alice@contoso.com",
    "displayName": "Alice Smith",
    "givenName": "Alice",
    "surname": "Smith",
    "mail": "alice@contoso.com",
    "mailNickname": "alice",
    "jobTitle": "Account Executive",
    "preferredLanguage": "en-US",
    "department": "Sales",
    "employeeId": "701984",
    "city": "Seattle",
    "country": "US",
    "telephoneNumber": "+1 425 555 0100",
    "mobile": "+1 425 555 0101",
    "manager": "mgr-anchor-1",
    "appRoleAssignments": [{"id": "r-1", "value": "User", "displayName": "User"}],
    "accountEnabled": True,
}


def user(attributes: dict[str, Any] | None = None, **changes: Any) -> SourceObject:
    return SourceObject(ObjectKind.USER, "src-alice", {**(attributes or ALICE), **changes})


def mapped(obj: SourceObject, mappings: Any = CLARIZEN_ONE.user_mappings, **kw: Any) -> MappedValues:
    kw.setdefault("creating", True)
    kw.setdefault("computed", {"IsSoftDeleted": False})
    return map_object(obj, mappings, context(), **kw)


def test_clarizen_user_post_body_is_the_section_1_3_shape() -> None:
    values = mapped(user())
    assert values.references == {f"{E}:manager": ("mgr-anchor-1",)}
    body = build_resource(ObjectKind.USER, values, references={f"{E}:manager": ["9d1f-mgr"]})
    assert body == {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", E],
        "userName": "alice@contoso.com",
        "active": True,
        "displayName": "Alice Smith",
        "title": "Account Executive",
        "emails": [{"type": "work", "primary": True, "value": "alice@contoso.com"}],
        "preferredLanguage": "en-US",
        "name": {"givenName": "Alice", "familyName": "Smith", "formatted": "Alice Smith"},
        "addresses": [{"type": "work", "locality": "Seattle", "country": "US"}],
        "phoneNumbers": [
            {"type": "work", "value": "+1 425 555 0100"},
            {"type": "mobile", "value": "+1 425 555 0101"},
        ],
        "externalId": "alice",
        "roles": [{"primary": True, "value": "User", "type": "WindowsAzureActiveDirectoryRole"}],
        E: {"employeeNumber": "701984", "department": "Sales", "manager": {"value": "9d1f-mgr"}},
        "meta": {"resourceType": "User"},
    }


def test_scim_default_body_has_empty_roles_and_no_unresolved_manager() -> None:
    minimal = {"userPrincipalName": "bob@contoso.com", "displayName": "Bob", "manager": "m-1"}
    body = build_resource(ObjectKind.USER, mapped(user(minimal), SCIM_DEFAULT.user_mappings))
    assert body == {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "bob@contoso.com",
        "active": True,
        "displayName": "Bob",
        "roles": [],
        "meta": {"resourceType": "User"},
    }


def test_group_body_is_created_empty_with_entra_schemas() -> None:
    group = SourceObject(
        ObjectKind.GROUP, "g-1", {"displayName": "Sales", "objectId": "g-1", "members": ["u-1", "u-2"]}
    )
    values = map_object(group, CLARIZEN_ONE.group_mappings, context(), creating=True)
    assert values.references == {"members": ("u-1", "u-2")}
    assert build_resource(ObjectKind.GROUP, values) == {
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:Group",
            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group",
        ],
        "displayName": "Sales",
        "externalId": "g-1",
        "meta": {"resourceType": "Group"},
    }
    resolved = build_resource(ObjectKind.GROUP, values, references={"members": ["t-1", "t-2"]})
    assert resolved["members"] == [{"value": "t-1"}, {"value": "t-2"}]


def test_soft_deleted_user_is_sent_active_false() -> None:
    values = mapped(user(), computed={"IsSoftDeleted": True})
    assert values.values["active"] is False
    assert values.log["active"] == "False"


def test_null_and_empty_sources_are_not_provisioned() -> None:
    values = mapped(user(jobTitle=None, mobile="", department=[]))
    assert "title" not in values.values
    assert 'phoneNumbers[type eq "mobile"].value' not in values.values
    assert f"{E}:department" not in values.values
    assert "title" not in values.log


def test_custom_extension_urn_is_not_listed_in_schemas() -> None:
    urn = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"
    mappings = [AttributeMapping(f"{urn}:badge", MappingType.DIRECT, source="employeeId")]
    body = build_resource(ObjectKind.USER, mapped(user(), mappings))
    assert body["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User"]
    assert body[urn] == {"badge": "701984"}


def test_default_value_only_on_create() -> None:
    mappings = [AttributeMapping("title", MappingType.DIRECT, source="jobTitle", default_value="Staff")]
    assert mapped(user(jobTitle=None), mappings).values == {"title": "Staff"}
    assert mapped(user(jobTitle=None), mappings, creating=False).values == {}
    assert mapped(user(), mappings, creating=False).values == {"title": "Account Executive"}


def test_none_mapping_writes_its_default_only_where_the_target_is_empty() -> None:
    mappings = [AttributeMapping("nickName", MappingType.NONE, default_value="n/a")]
    assert mapped(user(), mappings).values == {"nickName": "n/a"}
    on_update = mapped(user(), mappings, creating=False)
    assert on_update.values == {}
    assert on_update.fill_if_empty == {"nickName": "n/a"}
    assert mapped(user(), [AttributeMapping("nickName", MappingType.NONE)]).values == {}


def test_only_during_creation_is_skipped_on_update() -> None:
    mappings = [
        AttributeMapping(
            "nickName", MappingType.CONSTANT, constant="Al", apply=ApplyMapping.ONLY_DURING_CREATION
        ),
        AttributeMapping("title", MappingType.DIRECT, source="jobTitle"),
    ]
    assert mapped(user(), mappings).values == {"nickName": "Al", "title": "Account Executive"}
    assert mapped(user(), mappings, creating=False).values == {"title": "Account Executive"}


def test_ignore_flow_drops_the_attribute_even_with_a_default() -> None:
    mappings = [
        AttributeMapping(
            "title",
            MappingType.EXPRESSION,
            expression="IgnoreFlowIfNullOrEmpty([jobTitle])",
            default_value="x",
        ),
        AttributeMapping(
            "displayName", MappingType.EXPRESSION, expression="IgnoreFlowIfNullOrEmpty([displayName])"
        ),
    ]
    values = mapped(user(jobTitle=""), mappings)
    assert values.values == {"displayName": "Alice Smith"}
    assert "title" not in values.log


def test_redact_exports_the_value_but_logs_redact() -> None:
    mappings = [
        AttributeMapping("externalId", MappingType.EXPRESSION, expression="Redact(ToUpper([mailNickname]))")
    ]
    values = mapped(user(), mappings)
    assert values.values == {"externalId": "ALICE"}
    assert values.log == {"externalId": "[Redact]"}
    assert values.redacted == frozenset({"externalId"})
    assert "ALICE" not in repr(values.log)


def test_failed_expression_fails_the_object_with_a_reason() -> None:
    mappings = [
        AttributeMapping("title", MappingType.DIRECT, source="jobTitle"),
        AttributeMapping("nickName", MappingType.EXPRESSION, expression='CDate("not a date")'),
        AttributeMapping("locale", MappingType.EXPRESSION, expression="Left([mail]"),
    ]
    values = mapped(user(), mappings)
    assert values.failed
    assert set(values.errors) == {"nickName", "locale"}
    assert values.errors["nickName"].startswith("expression failed: CDate:")
    assert values.errors["locale"].startswith("invalid expression:")
    reason = values.failure_reason()
    assert reason is not None and reason.index("locale") < reason.index("nickName")
    assert values.values == {"title": "Account Executive"}
    assert not mapped(user()).failed


def test_non_boolean_active_fails_the_object() -> None:
    mappings = [AttributeMapping("active", MappingType.DIRECT, source="state")]
    values = mapped(user(state="maybe"), mappings)
    assert set(values.errors) == {"active"}
    assert mapped(user(state="false"), mappings).values == {"active": False}


def test_matching_is_case_insensitive_on_source_names() -> None:
    values = mapped(user({"USERPRINCIPALNAME": "x@contoso.com"}), SCIM_DEFAULT.user_mappings)
    assert values.values["userName"] == "x@contoso.com"


@pytest.mark.parametrize("active", ["True", "true", True])
def test_build_resource_sends_active_as_boolean(active: Any) -> None:
    assert build_resource(ObjectKind.USER, {"active": active})["active"] is True
