"""Matching (entra-behaviour.md 2.4; 1.3 steps 1, 2 and 6)."""

from __future__ import annotations

import pytest

from provisor.engine.jobs.model import MappingType
from provisor.engine.mapping.attributes import MappedValues
from provisor.engine.matching import (
    Match,
    MatchingImpossible,
    MatchOutcome,
    decide,
    filter_text,
    matching_queries,
)
from provisor.engine.templates import SCIM_DEFAULT, AttributeMapping

MAPPINGS = [
    AttributeMapping("displayName", MappingType.DIRECT, source="displayName"),
    AttributeMapping("externalId", MappingType.DIRECT, source="mailNickname", matching_precedence=2),
    AttributeMapping("userName", MappingType.DIRECT, source="userPrincipalName", matching_precedence=1),
    AttributeMapping(
        'emails[type eq "work"].value', MappingType.DIRECT, source="mail", matching_precedence=3
    ),
]


def test_queries_follow_precedence_not_mapping_order() -> None:
    values = {"userName": "a@contoso.com", "externalId": "a", 'emails[type eq "work"].value': "a@x.com"}
    assert matching_queries(values, MAPPINGS) == [
        ("userName", "a@contoso.com"),
        ("externalId", "a"),
        ('emails[type eq "work"].value', "a@x.com"),
    ]


def test_attributes_without_a_value_are_skipped() -> None:
    values = MappedValues(values={"externalId": "jyoung", "displayName": "J Young"})
    assert matching_queries(values, MAPPINGS) == [("externalId", "jyoung")]


def test_no_value_for_any_matching_attribute_is_import_skipped() -> None:
    with pytest.raises(MatchingImpossible, match=r"userName, externalId") as info:
        matching_queries({"displayName": "x", "userName": ""}, MAPPINGS)
    assert info.value.reason == "ImportSkipped"


def test_default_template_matches_on_user_name() -> None:
    values = {"userName": "alice@contoso.com", "externalId": "alice"}
    assert matching_queries(values, SCIM_DEFAULT.user_mappings) == [("userName", "alice@contoso.com")]


def test_no_results_anywhere_creates() -> None:
    assert decide([[], []]) == Match(MatchOutcome.CREATE)
    assert decide([]) == Match(MatchOutcome.CREATE)


def test_first_query_with_a_result_decides() -> None:
    assert decide([[], ["t-2"], ["t-3", "t-4"]]) == Match(MatchOutcome.MATCHED, "t-2", ("t-2",))
    assert decide([["t-1"], ["t-2"]]).target_id == "t-1"


def test_several_results_are_duplicate_target_entries() -> None:
    match = decide([["t-9", "t-1"], ["t-2"]])
    assert match == Match(MatchOutcome.DUPLICATE_TARGET_ENTRIES, None, ("t-1", "t-9"))
    assert match.outcome.value == "DuplicateTargetEntries"


def test_the_same_id_twice_is_one_match() -> None:
    assert decide([["t-1", "t-1"]]) == Match(MatchOutcome.MATCHED, "t-1", ("t-1",))


def test_filter_text_quotes_and_escapes() -> None:
    assert filter_text("userName", "alice@contoso.com") == 'userName eq "alice@contoso.com"'
    assert filter_text("externalId", 'a"b\\c') == r'externalId eq "a\"b\\c"'
