"""Attribute scoping filters: the 14 operators, nulls, AND/OR (entra-behaviour.md 2.3)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisor.engine.scoping import (
    FilterFailure,
    ScopeResult,
    ScopingClause,
    ScopingError,
    ScopingFilter,
    ScopingFilters,
    ScopingOperator,
    evaluate,
)

Op = ScopingOperator


def clause_holds(attribute_value: Any, op: ScopingOperator, value: str | None = None) -> bool:
    return ScopingClause("attr", op, value).matches({"attr": attribute_value})


# -- operator names (UI names as the doc writes them, and tolerant spellings) ------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("&", Op.CONTAINED_IN),
        ("!&", Op.NOT_CONTAINED_IN),
        ("ENDS_WITH", Op.ENDS_WITH),
        ("EQUALS", Op.EQUALS),
        ("NOT EQUALS", Op.NOT_EQUALS),
        ("Greater_Than", Op.GREATER_THAN),
        ("Greater_Than_OR_EQUALS", Op.GREATER_THAN_OR_EQUALS),
        ("Includes", Op.INCLUDES),
        ("IS TRUE", Op.IS_TRUE),
        ("IS FALSE", Op.IS_FALSE),
        ("IS NULL", Op.IS_NULL),
        ("IS NOT NULL", Op.IS_NOT_NULL),
        ("REGEX MATCH", Op.REGEX_MATCH),
        ("NOT REGEX MATCH", Op.NOT_REGEX_MATCH),
        ("greater_than_or_equals", Op.GREATER_THAN_OR_EQUALS),
        ("is_true", Op.IS_TRUE),
        ("not_equals", Op.NOT_EQUALS),
        ("ends with", Op.ENDS_WITH),
        ("  regex_match ", Op.REGEX_MATCH),
        ("IsNotNull", Op.IS_NOT_NULL),
        ("not  regex   match", Op.NOT_REGEX_MATCH),
    ],
)
def test_operator_names_parse_case_and_separator_insensitively(name: str, expected: ScopingOperator) -> None:
    assert Op.parse(name) is expected


def test_every_ui_name_parses_to_its_own_operator() -> None:
    assert len(Op) == 14
    for op in Op:
        assert Op.parse(op.value) is op
        assert Op.parse(op.value.lower()) is op


@pytest.mark.parametrize("name", ["CONTAINS", "EQUAL", "&&", "", "GREATER"])
def test_unknown_operator_names_are_rejected_with_the_valid_list(name: str) -> None:
    with pytest.raises(ScopingError, match="unknown scoping operator") as info:
        Op.parse(name)
    assert "NOT REGEX MATCH" in str(info.value)


# -- each operator, true and false ----------------------------------------------------------


@pytest.mark.parametrize(
    ("actual", "op", "value", "expected"),
    [
        # & : the attribute value is contained in the given string
        ("Sales", Op.CONTAINED_IN, "Sales,Marketing", True),
        ("Marketing", Op.CONTAINED_IN, "Sales,Marketing", True),
        ("Engineering", Op.CONTAINED_IN, "Sales,Marketing", False),
        ("sales", Op.CONTAINED_IN, "Sales,Marketing", False),  # case-sensitive
        ("Sales,Marketing,HR", Op.CONTAINED_IN, "Sales,Marketing", False),  # direction matters
        # !& : negation of &
        ("Engineering", Op.NOT_CONTAINED_IN, "Sales,Marketing", True),
        ("Sales", Op.NOT_CONTAINED_IN, "Sales,Marketing", False),
        # ENDS_WITH
        ("ada@contoso.com", Op.ENDS_WITH, "@contoso.com", True),
        ("ada@contoso.org", Op.ENDS_WITH, "@contoso.com", False),
        ("ada@CONTOSO.com", Op.ENDS_WITH, "@contoso.com", False),
        # EQUALS / NOT EQUALS: exact, case-sensitive
        ("Engineering", Op.EQUALS, "Engineering", True),
        ("engineering", Op.EQUALS, "Engineering", False),
        ("Engineering ", Op.EQUALS, "Engineering", False),
        ("engineering", Op.NOT_EQUALS, "Engineering", True),
        ("Engineering", Op.NOT_EQUALS, "Engineering", False),
        # Greater_Than / Greater_Than_OR_EQUALS: integers
        ("11", Op.GREATER_THAN, "10", True),
        ("10", Op.GREATER_THAN, "10", False),
        ("9", Op.GREATER_THAN, "10", False),
        ("100", Op.GREATER_THAN, "20", True),  # numeric, not lexicographic
        (11, Op.GREATER_THAN, "10", True),
        ("-3", Op.GREATER_THAN, "-4", True),
        ("10", Op.GREATER_THAN_OR_EQUALS, "10", True),
        ("9", Op.GREATER_THAN_OR_EQUALS, "10", False),
        (10, Op.GREATER_THAN_OR_EQUALS, "10", True),
        ("10.5", Op.GREATER_THAN, "10", False),  # not an integer
        ("ten", Op.GREATER_THAN_OR_EQUALS, "1", False),
        (True, Op.GREATER_THAN, "0", False),  # a boolean is not an integer
        (10.0, Op.GREATER_THAN_OR_EQUALS, "1", False),  # a float is not an integer
        # Includes: value contains the string, case-sensitive
        ("Senior Engineer", Op.INCLUDES, "Engineer", True),
        ("Senior engineer", Op.INCLUDES, "Engineer", False),
        ("Engineer", Op.INCLUDES, "Senior Engineer", False),
        # REGEX MATCH: search semantics, case-sensitive; the doc's example
        ("42", Op.REGEX_MATCH, "([1-9][0-9])", True),
        ("7", Op.REGEX_MATCH, "([1-9][0-9])", False),
        ("x42y", Op.REGEX_MATCH, "([1-9][0-9])", True),  # unanchored, like .NET Regex.IsMatch
        ("x42y", Op.REGEX_MATCH, "^([1-9][0-9])$", False),
        ("ABC", Op.REGEX_MATCH, "^abc$", False),
        ("abc", Op.REGEX_MATCH, "^abc$", True),
        # NOT REGEX MATCH
        ("7", Op.NOT_REGEX_MATCH, "([1-9][0-9])", True),
        ("42", Op.NOT_REGEX_MATCH, "([1-9][0-9])", False),
    ],
)
def test_binary_operators(actual: Any, op: ScopingOperator, value: str, expected: bool) -> None:
    assert clause_holds(actual, op, value) is expected


@pytest.mark.parametrize(
    ("actual", "is_true", "is_false"),
    [
        (True, True, False),
        (False, False, True),
        ("true", True, False),
        ("True", True, False),
        ("TRUE", True, False),
        ("false", False, True),
        ("False", False, True),
        ("yes", False, False),
        ("1", False, False),
        (1, False, False),
        (0, False, False),
        (None, False, False),
        ("", False, False),
    ],
)
def test_is_true_and_is_false(actual: Any, is_true: bool, is_false: bool) -> None:
    assert clause_holds(actual, Op.IS_TRUE) is is_true
    assert clause_holds(actual, Op.IS_FALSE) is is_false


@pytest.mark.parametrize(
    ("actual", "is_null"),
    [(None, True), ("", True), ("x", False), (" ", False), (0, False), (False, False)],
)
def test_is_null_and_is_not_null(actual: Any, is_null: bool) -> None:
    assert clause_holds(actual, Op.IS_NULL) is is_null
    assert clause_holds(actual, Op.IS_NOT_NULL) is (not is_null)


def test_a_missing_attribute_is_null() -> None:
    assert ScopingClause("jobTitle", Op.IS_NULL).matches({}) is True
    assert ScopingClause("jobTitle", Op.IS_NOT_NULL).matches({}) is False


BINARY_SAMPLES = [
    (Op.CONTAINED_IN, "Sales"),
    (Op.NOT_CONTAINED_IN, "Sales"),
    (Op.ENDS_WITH, "x"),
    (Op.EQUALS, "x"),
    (Op.NOT_EQUALS, "x"),
    (Op.GREATER_THAN, "1"),
    (Op.GREATER_THAN_OR_EQUALS, "1"),
    (Op.INCLUDES, "x"),
    (Op.REGEX_MATCH, ".*"),
    (Op.NOT_REGEX_MATCH, "x"),
]


@pytest.mark.parametrize(("op", "value"), BINARY_SAMPLES)
@pytest.mark.parametrize("null", [None, ""])
def test_every_binary_clause_on_a_null_value_is_false(op: ScopingOperator, value: str, null: Any) -> None:
    """2.3 "Limits": a clause on a null/empty value yields false, negated operators included."""
    assert clause_holds(null, op, value) is False
    assert ScopingClause("missing", op, value).matches({"other": "x"}) is False


@pytest.mark.parametrize("op", list(Op))
@pytest.mark.parametrize("multi", [["Sales"], [], ("a", "b"), {"value": "Sales"}])
def test_multi_valued_and_complex_attributes_are_unsupported_and_false(
    op: ScopingOperator, multi: Any
) -> None:
    """2.3 "Limits": no multi-valued attributes as scoping attributes, for every operator."""
    value = None if op.is_unary else dict(BINARY_SAMPLES)[op]
    assert clause_holds(multi, op, value) is False


# -- attribute names ------------------------------------------------------------------------


def test_attribute_names_match_case_insensitively_and_exact_case_wins() -> None:
    clause = ScopingClause("Department", Op.EQUALS, "Sales")
    assert clause.matches({"department": "Sales"}) is True
    assert clause.matches({"DEPARTMENT": "Sales"}) is True
    assert clause.matches({"department": "HR", "Department": "Sales"}) is True
    assert ScopingClause("department", Op.EQUALS, "Sales").matches(
        {"Department": "HR", "department": "Sales"}
    )


def test_booleans_and_integers_compare_as_their_entra_strings() -> None:
    assert clause_holds(True, Op.EQUALS, "True") is True
    assert clause_holds(False, Op.EQUALS, "false") is False
    assert clause_holds(42, Op.EQUALS, "42") is True
    assert clause_holds(42, Op.REGEX_MATCH, "^[0-9]+$") is True


# -- building clauses fails fast ------------------------------------------------------------


@pytest.mark.parametrize(
    ("attribute", "op", "value", "message"),
    [
        ("employeeId", Op.REGEX_MATCH, "([1-9]", "invalid regular expression for REGEX MATCH"),
        ("employeeId", Op.NOT_REGEX_MATCH, "*x", "invalid regular expression for NOT REGEX MATCH"),
        ("age", Op.GREATER_THAN, "ten", "Greater_Than needs an integer value"),
        ("age", Op.GREATER_THAN_OR_EQUALS, "1.5", "Greater_Than_OR_EQUALS needs an integer value"),
        ("department", Op.EQUALS, None, "EQUALS needs a value"),
        ("accountEnabled", Op.IS_TRUE, "true", "IS TRUE takes no value"),
        ("manager", Op.IS_NOT_NULL, None, "cannot be used as a scoping attribute"),
        ("userType", Op.EQUALS, "Member", "cannot be used as a scoping attribute"),
        ("AppRoleAssignments", Op.IS_NULL, None, "cannot be used as a scoping attribute"),
        ("members", Op.IS_NULL, None, "cannot be used as a scoping attribute"),
        (" ", Op.IS_NULL, None, "needs an attribute name"),
    ],
)
def test_invalid_clauses_are_configuration_errors(
    attribute: str, op: ScopingOperator, value: str | None, message: str
) -> None:
    with pytest.raises(ScopingError, match=message):
        ScopingClause(attribute, op, value)


def test_integer_clause_values_may_be_signed_and_padded() -> None:
    assert ScopingClause("n", Op.GREATER_THAN, " -5 ").matches({"n": "0"}) is True


def test_an_empty_filter_is_rejected() -> None:
    with pytest.raises(ScopingError, match="at least one clause"):
        ScopingFilter(())


def test_clauses_render_for_the_provisioning_log() -> None:
    assert str(ScopingClause("department", Op.EQUALS, "Sales")) == "department EQUALS 'Sales'"
    assert str(ScopingClause("jobTitle", Op.IS_NOT_NULL)) == "jobTitle IS NOT NULL"


# -- AND inside a filter, OR across filters -------------------------------------------------

ENGINEERS_WITH_TITLE = ScopingFilter(
    (ScopingClause("department", Op.EQUALS, "Engineering"), ScopingClause("jobTitle", Op.IS_NOT_NULL))
)
NUMERIC_EMPLOYEE_ID = ScopingFilter((ScopingClause("employeeId", Op.REGEX_MATCH, "^[0-9]+$"),))
FILTERS = ScopingFilters((ENGINEERS_WITH_TITLE, NUMERIC_EMPLOYEE_ID))


def test_no_filters_means_everything_is_in_scope() -> None:
    result = evaluate(ScopingFilters(), {})
    assert result == ScopeResult(in_scope=True, matched_filter=None, failures=())
    assert result.explain() == "In scope: no scoping filters"


def test_all_clauses_of_a_filter_must_hold() -> None:
    assert evaluate(FILTERS, {"department": "Engineering", "jobTitle": "Dev"}).in_scope is True
    assert evaluate(FILTERS, {"department": "Engineering"}).in_scope is False
    assert evaluate(FILTERS, {"jobTitle": "Dev"}).in_scope is False


def test_any_filter_suffices() -> None:
    result = evaluate(FILTERS, {"department": "Sales", "employeeId": "1234"})
    assert result.in_scope is True
    assert result.matched_filter == 1
    assert result.failures == ()
    assert result.explain() == "In scope: scoping filter 2 matched"


def test_the_first_accepting_filter_is_reported() -> None:
    user = {"department": "Engineering", "jobTitle": "Dev", "employeeId": "1"}
    assert evaluate(FILTERS, user).matched_filter == 0


def test_an_out_of_scope_result_names_every_failed_clause_of_every_filter() -> None:
    result = evaluate(FILTERS, {"department": "Sales", "employeeId": "E12"})
    assert result.in_scope is False
    assert result.matched_filter is None
    assert result.failures == (
        FilterFailure(0, ENGINEERS_WITH_TITLE.clauses),
        FilterFailure(1, NUMERIC_EMPLOYEE_ID.clauses),
    )
    assert result.explain() == (
        "Out of scope: filter 1 failed on department EQUALS 'Engineering' and jobTitle IS NOT NULL; "
        "filter 2 failed on employeeId REGEX MATCH '^[0-9]+$'"
    )


def test_only_the_false_clauses_are_listed() -> None:
    result = evaluate(ScopingFilters((ENGINEERS_WITH_TITLE,)), {"department": "Engineering"})
    assert result.failures == (FilterFailure(0, (ENGINEERS_WITH_TITLE.clauses[1],)),)


# -- properties -----------------------------------------------------------------------------

TEXT = st.text(alphabet="abAB01 ,.-", min_size=1, max_size=8)
PLAIN_PATTERNS = st.sampled_from(["a", "^a", "b$", "[0-9]+", "A|b", "^$", "a.b", "(ab)+"])
COMPLEMENTS = [(Op.EQUALS, Op.NOT_EQUALS), (Op.CONTAINED_IN, Op.NOT_CONTAINED_IN)]


@given(actual=TEXT | st.integers() | st.booleans(), value=TEXT)
def test_negated_operators_are_complementary_on_non_null_values(actual: Any, value: str) -> None:
    for positive, negative in COMPLEMENTS:
        assert clause_holds(actual, positive, value) != clause_holds(actual, negative, value)


@given(actual=TEXT | st.integers() | st.booleans(), pattern=PLAIN_PATTERNS)
def test_regex_match_and_not_regex_match_are_complementary_on_non_null_values(
    actual: Any, pattern: str
) -> None:
    assert clause_holds(actual, Op.REGEX_MATCH, pattern) != clause_holds(actual, Op.NOT_REGEX_MATCH, pattern)


@given(actual=st.none() | st.just("") | TEXT | st.integers() | st.booleans())
def test_is_null_and_is_not_null_are_complementary_on_single_values(actual: Any) -> None:
    assert clause_holds(actual, Op.IS_NULL) != clause_holds(actual, Op.IS_NOT_NULL)


@given(actual=TEXT, value=TEXT)
def test_contained_in_is_includes_with_the_sides_swapped(actual: str, value: str) -> None:
    assert clause_holds(actual, Op.CONTAINED_IN, value) == clause_holds(value, Op.INCLUDES, actual)


@given(a=st.integers(), b=st.integers(), as_text=st.booleans())
def test_integer_operators_agree_with_python_integers(a: int, b: int, as_text: bool) -> None:
    actual: Any = str(a) if as_text else a
    assert clause_holds(actual, Op.GREATER_THAN, str(b)) is (a > b)
    assert clause_holds(actual, Op.GREATER_THAN_OR_EQUALS, str(b)) is (a >= b)


CLAUSES = st.tuples(
    st.sampled_from(["department", "jobTitle", "employeeId"]),
    st.sampled_from([Op.EQUALS, Op.NOT_EQUALS, Op.IS_NULL, Op.INCLUDES]),
    st.sampled_from(["a", "b"]),
).map(lambda t: ScopingClause(t[0], t[1], None if t[1].is_unary else t[2]))
FILTER_SETS = st.lists(st.lists(CLAUSES, min_size=1, max_size=3), max_size=3)
SOURCES = st.fixed_dictionaries(
    {},
    optional={
        k: st.sampled_from(["a", "b", "ab", "", None]) for k in ("department", "jobTitle", "employeeId")
    },
)


@given(groups=FILTER_SETS, source=SOURCES)
def test_evaluate_is_an_or_of_ands(groups: list[list[ScopingClause]], source: dict[str, Any]) -> None:
    filters = ScopingFilters(tuple(ScopingFilter(tuple(g)) for g in groups))
    expected = not groups or any(all(c.matches(source) for c in g) for g in groups)
    result = evaluate(filters, source)
    assert result.in_scope is expected
    assert (result.failures == ()) is expected
    if not expected:
        assert [f.index for f in result.failures] == list(range(len(groups)))
        assert all(f.failed_clauses for f in result.failures)
