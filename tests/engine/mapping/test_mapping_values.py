"""The value model and the evaluator's plumbing (entra-behaviour.md sections 2.12, 3.2, 3.3)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import pytest
from tests.engine.mapping.mapping_helpers import context, ev

from provisor.engine.mapping import (
    IGNORE_FLOW,
    Call,
    EvalContext,
    ExpressionError,
    ExpressionEvaluationError,
    Redacted,
    StringLiteral,
    evaluate,
    export_value,
    log_value,
    to_text,
)
from provisor.engine.mapping.context import random_below, shuffle
from provisor.engine.mapping.evaluate import lookup_attribute


def test_attribute_names_match_case_insensitively_exact_first() -> None:
    source = {"givenName": "John", "GIVENNAME": "Shouty", "Mail": "m@x.com"}
    assert lookup_attribute(source, "givenName") == "John"
    assert lookup_attribute(source, "GIVENNAME") == "Shouty"
    assert lookup_attribute(source, "mail") == "m@x.com"
    assert lookup_attribute(source, "surname") is None
    assert ev("[MAIL]", source) == "m@x.com"


def test_source_values_are_normalised() -> None:
    source = {"d": date(2020, 1, 2), "naive": datetime(2020, 1, 2, 3, 4), "t": ("a", "b"), "o": object()}
    assert ev("[d]", source) == datetime(2020, 1, 2, tzinfo=UTC)
    assert ev("[naive]", source) == datetime(2020, 1, 2, 3, 4, tzinfo=UTC)
    assert ev("[t]", source) == ["a", "b"]
    assert isinstance(ev("[o]", source), str)


def test_top_level_literals_and_comparisons() -> None:
    assert ev('"constant"') == "constant"
    assert ev("&H10") == 16
    assert ev("vbTextCompare") == "vbTextCompare"
    assert ev('[a] = "x"', {"a": "x"}) is True


def test_evaluate_accepts_a_parsed_tree() -> None:
    tree = Call("ToUpper", (StringLiteral("abc"),))
    assert evaluate(tree, {}, context()) == "ABC"


def test_evaluate_parses_text_and_reports_syntax_errors() -> None:
    with pytest.raises(ExpressionError):
        evaluate("ToUpper(", {}, context())


def test_hand_built_unknown_function_is_an_evaluation_error() -> None:
    with pytest.raises(ExpressionEvaluationError, match="unknown function"):
        evaluate(Call("Nope", ()), {}, context())


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "True"),
        (False, "False"),
        (42, "42"),
        (2.0, "2"),
        (2.5, "2.5"),
        ("s", "s"),
        (None, None),
        ([], None),
        (["one"], "one"),
        (datetime(2020, 3, 16, 7, tzinfo=UTC), "3/16/2020 7:00:00 AM"),
        (Redacted("x"), "x"),
        (IGNORE_FLOW, None),
    ],
)
def test_to_text(value: object, text: str | None) -> None:
    assert to_text(value) == text  # type: ignore[arg-type]


def test_export_and_log_values() -> None:
    moment = datetime(2020, 3, 16, 7, tzinfo=UTC)
    assert export_value([moment, Redacted("p")]) == ["3/16/2020 7:00:00 AM", "p"]
    assert export_value(True) is True
    assert export_value(IGNORE_FLOW) is IGNORE_FLOW
    assert log_value([True, 3, Redacted("p"), moment]) == ["True", "3", "[Redact]", "3/16/2020 7:00:00 AM"]
    assert log_value({"value": "Admin"}) == {"value": "Admin"}
    assert log_value(None) is None
    assert repr(IGNORE_FLOW) == "IGNORE_FLOW"


def test_context_randomness_helpers() -> None:
    rng = random.Random(5)
    draws = [random_below(rng, 3) for _ in range(300)]
    assert set(draws) == {0, 1, 2}
    items = list(range(10))
    shuffle(rng, items)
    assert sorted(items) == list(range(10)) and items != list(range(10))
    with pytest.raises(ValueError):
        random_below(rng, 0)


def test_context_is_immutable() -> None:
    ctx = EvalContext(clock=lambda: datetime(2020, 1, 1, tzinfo=UTC), random=random.Random(0))
    with pytest.raises(AttributeError):
        ctx.is_unique = lambda v: True  # type: ignore[misc]
