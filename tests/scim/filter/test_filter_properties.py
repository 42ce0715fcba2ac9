"""Property tests for the filter parser and evaluator (RFC 7644 section 3.4.2.2)."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.scim.filter.filter_strategies import CASES, USER_RT, filters, flatten, render

from provisor.scim.errors import InvalidFilter, InvalidPath
from provisor.scim.filter.ast import Filter, Not
from provisor.scim.filter.evaluate import matches
from provisor.scim.filter.parser import parse_attr_path, parse_filter, parse_patch_path

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(filters())
def test_fully_parenthesised_rendering_round_trips_exactly(f: Filter) -> None:
    assert parse_filter(render(f), USER_RT) == f


@SETTINGS
@given(filters(), st.sampled_from(CASES), st.booleans())
def test_minimal_rendering_any_case_round_trips_up_to_associativity(
    f: Filter, case: object, urn: bool
) -> None:
    assert callable(case)
    text = render(f, minimal=True, case=case, core_urn=urn)  # type: ignore[arg-type]
    assert flatten(parse_filter(text, USER_RT)) == flatten(f)


RESOURCE_VALUES = st.sampled_from(["a", "B", "ab", "Ab", "b", "", "2011-05-13T04:42:34Z"])
USERS = st.fixed_dictionaries(
    {},
    optional={
        "userName": RESOURCE_VALUES,
        "title": RESOURCE_VALUES | st.none(),
        "active": st.booleans() | st.none(),
        "name": st.fixed_dictionaries(
            {}, optional={"familyName": RESOURCE_VALUES, "givenName": RESOURCE_VALUES}
        ),
        "emails": st.lists(
            st.fixed_dictionaries(
                {}, optional={"value": RESOURCE_VALUES, "type": RESOURCE_VALUES, "primary": st.booleans()}
            ),
            max_size=3,
        ),
        "meta": st.fixed_dictionaries(
            {"created": st.sampled_from(["2011-05-13T04:42:34Z", "2020-01-01T00:00:00+01:00"])}
        ),
    },
)


@SETTINGS
@given(filters(text=st.sampled_from(["a", "b", "A", ""]), max_leaves=6), USERS)
def test_not_is_negation_and_evaluation_is_total(f: Filter, user: dict[str, object]) -> None:
    result = matches(f, user, USER_RT)
    assert isinstance(result, bool)
    assert matches(Not(f), user, USER_RT) is (not result)


TOKENS = st.sampled_from(
    [
        "userName",
        "emails",
        "name.givenName",
        ".value",
        "type",
        "eq",
        "EQ",
        "ne",
        "co",
        "gt",
        "pr",
        "xx",
        "and",
        "or",
        "not",
        "(",
        ")",
        "[",
        "]",
        '"x"',
        '"',
        "\\",
        "1",
        "-2.5e3",
        "true",
        "null",
        "jyoung",
        "urn:ietf:params:scim:schemas:core:2.0:User:userName",
        "meta.created",
        '"2011-05-13T04:42:34Z"',
        " ",
    ]
)


@SETTINGS
@given(st.lists(TOKENS, max_size=14).map(" ".join), st.booleans())
def test_token_soup_only_ever_raises_invalid_filter(text: str, unquoted: bool) -> None:
    try:
        parse_filter(text, USER_RT, allow_unquoted=unquoted)
    except InvalidFilter as exc:
        assert exc.position is not None
        assert 0 <= exc.position <= len(text)


@SETTINGS
@given(st.text(max_size=60) | st.text(alphabet=string.printable, max_size=60))
def test_garbage_only_ever_raises_invalid_filter_or_invalid_path(text: str) -> None:
    for parse, error in (
        (parse_filter, InvalidFilter),
        (parse_patch_path, InvalidPath),
        (parse_attr_path, InvalidPath),
    ):
        try:
            parse(text, USER_RT)  # type: ignore[operator]
        except error as exc:
            assert exc.position is not None and 0 <= exc.position <= max(len(text), 0)
