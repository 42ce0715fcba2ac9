"""Conditions and flow control (entra-behaviour.md sections 3.2, 3.3): IIF, comparisons, Switch,
Coalesce, CBool, Not, BitAnd, Is*, IgnoreFlowIfNullOrEmpty, Redact, SelectUniqueValue."""

from __future__ import annotations

import pytest
from tests.engine.mapping.mapping_helpers import ev, out

from provisor.engine.mapping import (
    IGNORE_FLOW,
    ExpressionEvaluationError,
    Redacted,
    UniqueValueUnavailable,
    export_value,
    log_value,
)

S = {
    "country": "USA",
    "dept": "Sales",
    "empty": "",
    "n": 42,
    "big": "100",
    "flag": True,
    "off": False,
    "hire": "2021-08-18T00:00:00Z",
    "multi": ["a", "b"],
    "none": [],
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('IIF([country]="USA",[country],[dept])', "USA"),
        ('IIF([country]<>"USA",[country],[dept])', "Sales"),
        ('IIF([country]="usa",[country],[dept])', "Sales"),  # case-sensitive
        # null or empty attribute: the check fails for every operator (section 3.3)
        ('IIF([missing]="USA","t","f")', "f"),
        ('IIF([missing]<>"USA","t","f")', "f"),
        ('IIF([empty]<>"USA","t","f")', "f"),
        ('IIF([none]<>"USA","t","f")', "f"),
        ('IIF([empty]="","t","f")', "f"),
        # numbers compare as numbers, dates as dates, the rest ordinally
        ('IIF([n]>9,"t","f")', "t"),
        ('IIF([big]>9,"t","f")', "t"),
        ('IIF([big]>"9","t","f")', "f"),
        ('IIF([n]>=42,"t","f")', "t"),
        ('IIF([n]<42,"t","f")', "f"),
        ('IIF([n]<=&H2A,"t","f")', "t"),
        ('IIF([n]="42","t","f")', "t"),
        ('IIF(CDate([hire]) < "2021-08-19","t","f")', "t"),
        ('IIF(CDate([hire]) > Now(),"t","f")', "f"),
        ('IIF([flag]="True","t","f")', "t"),
        ('IIF("b">"a","t","f")', "t"),
        ('IIF("B">"a","t","f")', "f"),
        # non-comparison conditions: booleans and boolean strings
        ('IIF(IsPresent([country]),"t","f")', "t"),
        ('IIF([flag],"t","f")', "t"),
        ('IIF([off],"t","f")', "f"),
        ('IIF("TRUE","t","f")', "t"),
        ('IIF([missing],"t","f")', "f"),
        ('IIF(1,"t","f")', "t"),
        # nested IIF stands in for AND/OR
        ('IIF([country]="USA",IIF([dept]="Sales","both","usa only"),"neither")', "both"),
        # lazy: the untaken branch is not evaluated
        ('IIF([country]="USA","ok",Mid("x",0,1))', "ok"),
        # CBool
        ('CBool([country] = "USA")', True),
        ("CBool(0)", False),
        ("CBool(-1)", True),
        ('CBool("0")', False),
        ('CBool("7")', True),
        ('CBool("false")', False),
        ("CBool([missing])", False),
        ("CBool([flag])", True),
        # Not: "True" -> False, anything else -> True
        ('Not("True")', False),
        ('Not("true")', False),
        ("Not([flag])", False),
        ("Not([off])", True),
        ('Not("False")', True),
        ('Not("yes")', True),
        ("Not([missing])", True),
        ("Not(IsPresent([country]))", False),
        # BitAnd
        ("BitAnd(&HF, &HF7)", 7),
        ("BitAnd(12, 10)", 8),
        ('BitAnd("&H10", 31)', 16),
        ("BitAnd([missing], 1)", None),
        # Is*
        ("IsNull([missing])", True),
        ("IsNull([empty])", False),
        ("IsNullOrEmpty([missing])", True),
        ("IsNullOrEmpty([empty])", True),
        ("IsNullOrEmpty([none])", True),
        ("IsNullOrEmpty([country])", False),
        ("IsPresent([country])", True),
        ("IsPresent([empty])", False),
        ("IsPresent([n])", True),
        ("IsPresent([off])", True),
        ("IsString([country])", True),
        ("IsString([n])", False),
        ("IsString([flag])", False),
        ("IsString([missing])", False),
        ("IsString(CStr([n]))", True),
        # Coalesce: first non-null (empty strings count as values), else the default, else null
        ("Coalesce([missing],[country])", "USA"),
        ('Coalesce([missing],[none],"default")', "default"),
        ("Coalesce([empty],[country])", ""),
        ("Coalesce([missing],[missing])", None),
        ('Coalesce([country], Mid("x",0,1))', "USA"),
        # Switch: case-sensitive keys, "" key for null/empty, omitted default
        ('Switch([country], "other", "USA", "us", "CAN", "ca")', "us"),
        ('Switch([country], "other", "usa", "us")', "other"),
        ('Switch([missing], "other", "", "was empty", "USA", "us")', "was empty"),
        ('Switch([empty], "other", "", "was empty")', "was empty"),
        ('Switch([country], , "CAN", "ca")', None),
        ('Switch([flag], "?", "True", "yes", "False", "no")', "yes"),
        ('Switch([n], "?", "42", "answer")', "answer"),
        ('Switch([country], "other", "USA", Mid("x",1,1), "USA", Mid("x",0,1))', "x"),
    ],
)
def test_logic(expression: str, expected: object) -> None:
    assert ev(expression, S) == expected


def test_comparison_of_a_multi_valued_attribute_is_an_error() -> None:
    with pytest.raises(ExpressionEvaluationError) as info:
        ev('IIF([multi]="a","t","f")', S)
    assert info.value.function == "'='" and "multi-valued" in info.value.message and info.value.position == 4


def test_cbool_of_text_is_an_error() -> None:
    with pytest.raises(ExpressionEvaluationError) as info:
        ev('CBool("maybe")')
    assert info.value.function == "CBool"


def test_bitand_of_text_is_an_error() -> None:
    with pytest.raises(ExpressionEvaluationError, match="BitAnd: expected an integer, got 'x'"):
        ev('BitAnd("x", 1)')


# --- IgnoreFlowIfNullOrEmpty -----------------------------------------------------------------


@pytest.mark.parametrize("attribute", ["missing", "empty", "none"])
def test_ignore_flow_for_null_or_empty(attribute: str) -> None:
    assert ev(f"IgnoreFlowIfNullOrEmpty([{attribute}])", S) is IGNORE_FLOW


def test_ignore_flow_passes_values_through() -> None:
    assert ev("IgnoreFlowIfNullOrEmpty([country])", S) == "USA"
    assert ev("IgnoreFlowIfNullOrEmpty([off])", S) is False


def test_ignore_flow_propagates_through_eager_calls() -> None:
    assert ev('ToLower(Append(IgnoreFlowIfNullOrEmpty([missing]), "x"))', S) is IGNORE_FLOW


def test_lazy_functions_treat_ignore_flow_as_null() -> None:
    assert ev('Coalesce(IgnoreFlowIfNullOrEmpty([missing]), "fallback")', S) == "fallback"
    assert ev('IIF(IgnoreFlowIfNullOrEmpty([missing]) = "x", "t", "f")', S) == "f"
    assert ev('IIF(IsPresent([country]), IgnoreFlowIfNullOrEmpty([empty]), "f")', S) is IGNORE_FLOW


# --- Redact ------------------------------------------------------------------------------------


def test_redact_exports_the_value_but_logs_a_placeholder() -> None:
    value = ev("Redact([country])", S)
    assert isinstance(value, Redacted)
    assert export_value(value) == "USA"
    assert log_value(value) == "[Redact]"
    assert str(value) == "[Redact]" and "USA" not in repr(value) and "USA" not in f"{value}"


def test_redaction_taints_results_computed_from_it() -> None:
    value = ev('Append(ToLower(Redact([country])), "-x")', S)
    assert isinstance(value, Redacted) and export_value(value) == "usa-x"
    assert log_value(value) == "[Redact]"
    assert log_value(ev('Join(",", Redact([multi]), "c")', S)) == "[Redact]"


def test_redacted_values_still_drive_conditions() -> None:
    assert ev('IIF(Redact([country]) = "USA", "t", "f")', S) == "t"
    assert ev('Switch(Redact([country]), "other", "USA", "us")', S) == "us"
    assert export_value(ev('Coalesce(Redact([missing]), "d")', S)) == "d"


def test_redact_of_ignored_flow_is_still_ignored() -> None:
    assert ev("IgnoreFlowIfNullOrEmpty(Redact([missing]))", S) is IGNORE_FLOW


# --- SelectUniqueValue -------------------------------------------------------------------------

_RULE = 'Join("@", NormalizeDiacritics(StripSpaces(Join(".", {given}, [sn]))), "contoso.com")'
RULES = "SelectUniqueValue({})".format(
    ", ".join(
        _RULE.format(given=g) for g in ("[givenName]", "Mid([givenName], 1, 1)", "Mid([givenName], 1, 2)")
    )
)
PERSON = {"givenName": "Zoë", "sn": "Ström"}


def test_select_unique_value_takes_the_first_free_value_in_order() -> None:
    asked: list[str] = []

    def is_unique(value: str) -> bool:
        asked.append(value)
        return value not in {"Zoe.Strom@contoso.com"}

    assert ev(RULES, PERSON, is_unique=is_unique) == "Z.Strom@contoso.com"
    assert asked == ["Zoe.Strom@contoso.com", "Z.Strom@contoso.com"]  # the third rule never ran


def test_select_unique_value_skips_empty_candidates() -> None:
    assert ev('SelectUniqueValue([missing], [empty], "x")', S, is_unique=lambda v: True) == "x"


def test_select_unique_value_with_every_value_taken_escrows() -> None:
    with pytest.raises(UniqueValueUnavailable) as info:
        ev(RULES, PERSON, is_unique=lambda v: False)
    assert info.value.function == "SelectUniqueValue" and info.value.position == 0
    assert "3 tried" in info.value.message
    assert isinstance(info.value, ExpressionEvaluationError)


def test_select_unique_value_needs_a_uniqueness_check() -> None:
    with pytest.raises(ExpressionEvaluationError, match="no uniqueness check"):
        ev('SelectUniqueValue("a", "b")')


def test_documented_active_mapping_round_trip() -> None:
    expression = 'Switch([IsSoftDeleted], , "False", "True", "True", "False")'
    assert out(expression, {"IsSoftDeleted": False}) == "True"
    assert out(expression, {"issoftdeleted": True}) == "False"
    assert out(expression, {}) is None  # neither key matches a missing value: the omitted default
