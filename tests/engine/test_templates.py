"""Built-in mapping templates (entra-behaviour.md 5, 3.1, 2.4, 1.3, 1.5) and job overrides."""

from __future__ import annotations

import pytest

from provisor.engine.jobs.model import TEMPLATES as JOB_TEMPLATES
from provisor.engine.jobs.model import ApplyMapping, MappingConfig, MappingObject, MappingType
from provisor.engine.mapping import parse_expression
from provisor.engine.mapping.target_paths import parse_target_path
from provisor.engine.templates import (
    CLARIZEN_ONE,
    ENTERPRISE_URN,
    SCIM_DEFAULT,
    TEMPLATES,
    AttributeMapping,
    Template,
    UnknownTemplate,
    apply_overrides,
    template_for,
)

E = ENTERPRISE_URN

#: Section 5's Clarizen user mappings with Entra's default SCIM sources (source or expression).
CLARIZEN_USERS = {
    "userName": "userPrincipalName",
    "active": 'Switch([IsSoftDeleted], , "False", "True", "True", "False")',
    "displayName": "displayName",
    "title": "jobTitle",
    'emails[type eq "work"].value': "mail",
    "preferredLanguage": "preferredLanguage",
    "name.givenName": "givenName",
    "name.familyName": "surname",
    "name.formatted": 'Join(" ", [givenName], [surname])',
    'addresses[type eq "work"].formatted': "physicalDeliveryOfficeName",
    'addresses[type eq "work"].streetAddress': "streetAddress",
    'addresses[type eq "work"].locality': "city",
    'addresses[type eq "work"].region': "state",
    'addresses[type eq "work"].postalCode': "postalCode",
    'addresses[type eq "work"].country': "country",
    'phoneNumbers[type eq "work"].value': "telephoneNumber",
    'phoneNumbers[type eq "mobile"].value': "mobile",
    'phoneNumbers[type eq "fax"].value': "facsimileTelephoneNumber",
    "externalId": "mailNickname",
    f"{E}:employeeNumber": "employeeId",
    f"{E}:department": "department",
    f"{E}:manager": "manager",
    'roles[primary eq "True"].value': "SingleAppRoleAssignment([appRoleAssignments])",
}


def _feeds(m: AttributeMapping) -> str | None:
    return m.source if m.kind is MappingType.DIRECT else m.expression


def test_names_match_the_job_file_choices() -> None:
    assert set(TEMPLATES) == set(JOB_TEMPLATES) == {"clarizen-one", "scim-default"}
    assert template_for("clarizen-one") is CLARIZEN_ONE
    assert template_for("scim-default") is SCIM_DEFAULT


def test_unknown_template_names_the_known_ones() -> None:
    with pytest.raises(UnknownTemplate, match="clarizen-one, scim-default"):
        template_for("salesforce")


def test_clarizen_user_mappings_are_section_5_with_entra_sources() -> None:
    assert {m.target: _feeds(m) for m in CLARIZEN_ONE.user_mappings} == CLARIZEN_USERS
    assert len(CLARIZEN_ONE.user_mappings) == len(CLARIZEN_USERS)


def test_clarizen_user_attribute_list_is_section_5() -> None:
    listed = CLARIZEN_ONE.user_attributes
    assert len(listed) == len(set(listed)) == 38
    for target in (
        'emails[type eq "home"].value',
        'phoneNumbers[type eq "pager"].value',
        'roles[primary eq "True"].type',
        f"{E}:costCenter",
        f"{E}:division",
        "timezone",
        "userType",
    ):
        assert target in listed
    # every mapping feeds a listed attribute; the rest are documented as unmapped
    assert {m.target for m in CLARIZEN_ONE.user_mappings} <= set(listed)
    assert len(CLARIZEN_ONE.unmapped_user_attributes) == 38 - len(CLARIZEN_USERS)
    assert "nickName" in CLARIZEN_ONE.unmapped_user_attributes


def test_scim_default_is_clarizen_without_roles() -> None:
    clarizen = {m.target: m for m in CLARIZEN_ONE.user_mappings}
    scim = {m.target: m for m in SCIM_DEFAULT.user_mappings}
    assert set(clarizen) - set(scim) == {'roles[primary eq "True"].value'}
    assert all(clarizen[t] == m for t, m in scim.items())
    assert SCIM_DEFAULT.unmapped_user_attributes == ()


@pytest.mark.parametrize("template", [CLARIZEN_ONE, SCIM_DEFAULT], ids=lambda t: t.name)
def test_groups_match_on_display_name(template: Template) -> None:
    groups = template.group_mappings
    assert [(m.target, m.source, m.matching_precedence) for m in groups] == [
        ("displayName", "displayName", 1),
        ("externalId", "objectId", None),
        ("members", "members", None),
    ]
    assert [m.reference for m in groups] == [False, False, True]


@pytest.mark.parametrize("template", [CLARIZEN_ONE, SCIM_DEFAULT], ids=lambda t: t.name)
def test_only_user_name_matches(template: Template) -> None:
    users = template.user_mappings
    assert [(m.target, m.matching_precedence) for m in users if m.matching] == [("userName", 1)]
    assert [m.target for m in users if m.reference] == [f"{E}:manager"]


@pytest.mark.parametrize("template", [CLARIZEN_ONE, SCIM_DEFAULT], ids=lambda t: t.name)
def test_every_expression_parses_and_every_target_is_a_path(template: Template) -> None:
    mappings = [*template.user_mappings, *template.group_mappings]
    for m in mappings:
        parse_target_path(m.target)
        if m.expression is not None:
            parse_expression(m.expression)
    assert sum(m.expression is not None for m in mappings) >= 2


def test_mapping_kind_and_value_must_agree() -> None:
    with pytest.raises(ValueError, match="needs a direct value"):
        AttributeMapping("title", MappingType.DIRECT)
    with pytest.raises(ValueError, match="cannot have a constant value"):
        AttributeMapping("title", MappingType.DIRECT, source="jobTitle", constant="x")
    with pytest.raises(ValueError, match="primary key"):
        AttributeMapping("id", MappingType.DIRECT, source="objectId")
    assert AttributeMapping("nickName", MappingType.NONE, default_value="n/a").default_value == "n/a"


def test_override_replaces_same_target_and_keeps_order() -> None:
    override = MappingConfig(
        target="DISPLAYNAME", type=MappingType.EXPRESSION, expression='Join(", ", [surname], [givenName])'
    )
    result = apply_overrides(SCIM_DEFAULT, [override])
    targets = [m.target for m in result.user_mappings]
    assert targets == [m.target for m in SCIM_DEFAULT.user_mappings][:2] + ["DISPLAYNAME"] + targets[3:]
    assert result.user_mappings[2].expression == 'Join(", ", [surname], [givenName])'
    assert result.group_mappings == SCIM_DEFAULT.group_mappings
    assert SCIM_DEFAULT.user_mappings[2].source == "displayName"  # the built-in is untouched


def test_override_adds_new_targets_per_object_type() -> None:
    overrides = [
        MappingConfig(target="nickName", type=MappingType.CONSTANT, constant="Al"),
        MappingConfig(
            target="urn:ietf:params:scim:schemas:extension:Custom:2.0:User:badge",
            type=MappingType.DIRECT,
            source="employeeId",
            apply=ApplyMapping.ONLY_DURING_CREATION,
        ),
        MappingConfig(
            target="externalId", type=MappingType.DIRECT, source="mailNickname", object=MappingObject.GROUP
        ),
    ]
    result = apply_overrides(CLARIZEN_ONE, overrides)
    assert [m.target for m in result.user_mappings[-2:]] == [
        "nickName",
        "urn:ietf:params:scim:schemas:extension:Custom:2.0:User:badge",
    ]
    assert result.user_mappings[-1].apply is ApplyMapping.ONLY_DURING_CREATION
    assert len(result.user_mappings) == len(CLARIZEN_ONE.user_mappings) + 2
    assert result.group_mappings[1].source == "mailNickname"
    # a custom attribute joins the attribute list; nickName was listed already
    assert result.user_attributes[-1] == "urn:ietf:params:scim:schemas:extension:Custom:2.0:User:badge"
    assert len(result.user_attributes) == len(CLARIZEN_ONE.user_attributes) + 1


def test_override_claiming_a_precedence_takes_it_from_the_template() -> None:
    override = MappingConfig(
        target="externalId", type=MappingType.DIRECT, source="mailNickname", matching_precedence=1
    )
    result = apply_overrides(SCIM_DEFAULT, [override])
    matching = [(m.target, m.matching_precedence) for m in result.user_mappings if m.matching]
    assert matching == [("externalId", 1)]
    assert any(m.target == "userName" and m.source == "userPrincipalName" for m in result.user_mappings)
