"""Properties of the expression language (entra-behaviour.md section 3.2), with hypothesis."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.engine.mapping.expr_strategies import SOURCE, expressions
from tests.engine.mapping.mapping_helpers import context

from provisor.engine.mapping import (
    AttributeRef,
    Call,
    Comparison,
    Expr,
    ExpressionError,
    ExpressionEvaluationError,
    NumberLiteral,
    Omitted,
    StringLiteral,
    evaluate,
    log_value,
    parse_expression,
    to_source,
)

_GRAMMAR = st.sampled_from(
    list('()[],"\\&H-=<>  \t\nabcxyzJoinLeftIIF0123456789F')
    + ["Join(", "IIF(", "[a]", '"x"', "vbTextCompare", "&HF"]
)
_grammar_soup = st.lists(_GRAMMAR, max_size=40).map("".join)


def _parse_or_error(text: str) -> None:
    try:
        tree = parse_expression(text)
    except ExpressionError as exc:
        assert 0 <= exc.position <= len(text)
        assert str(exc).startswith(f"Expression error at position {exc.position}: ")
        return
    assert parse_expression(to_source(tree)) == tree


@given(st.text(max_size=200))
def test_arbitrary_text_only_raises_expression_error(text: str) -> None:
    _parse_or_error(text)


@given(_grammar_soup)
@settings(max_examples=500)
def test_grammar_soup_only_raises_expression_error(text: str) -> None:
    _parse_or_error(text)


@given(expressions)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_print_then_parse_gives_the_same_tree(tree: Expr) -> None:
    text = to_source(tree)
    assert parse_expression(text) == tree
    assert to_source(parse_expression(text)) == text


@given(expressions, st.data())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_whitespace_between_tokens_does_not_matter(tree: Expr, data: st.DataObject) -> None:
    text = to_source(tree)
    # re-tokenise: insert whitespace at token boundaries only (outside strings and brackets)
    out: list[str] = []
    in_string = in_attr = False
    i = 0
    while i < len(text):
        c = text[i]
        out.append(c)
        if in_string:
            if c == "\\":
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_string = False
        elif in_attr:
            in_attr = c != "]"
        elif c == '"':
            in_string = True
        elif c == "[":
            in_attr = True
        if not in_string and not in_attr and c in "(),":
            out.append(data.draw(st.sampled_from(["", " ", "\n\t", "  "])))
        i += 1
    assert parse_expression("".join(out)) == tree


def _check_positions(node: Expr, text: str) -> None:
    here = text[node.position :]
    if isinstance(node, Call):
        assert here.startswith(node.name + "(")
        for arg in node.args:
            _check_positions(arg, text)
    elif isinstance(node, Comparison):
        _check_positions(node.left, text)
        _check_positions(node.right, text)
        assert node.position == node.left.position
    elif isinstance(node, AttributeRef):
        assert here.startswith("[")
    elif isinstance(node, StringLiteral):
        assert here.startswith('"')
    elif isinstance(node, NumberLiteral):
        assert here[0] in "-&0123456789"
    elif isinstance(node, Omitted):
        assert here[0] in ",)"
    else:
        assert here.startswith(node.name)


@given(expressions)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_positions_point_at_their_node(tree: Expr) -> None:
    text = to_source(tree)
    _check_positions(parse_expression(text), text)


@given(expressions, st.integers(0, 2**32))
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_evaluation_only_raises_evaluation_error(tree: Expr, seed: int) -> None:
    try:
        result = evaluate(tree, SOURCE, context(seed=seed))
    except ExpressionEvaluationError as exc:
        assert exc.function and exc.message and exc.position is not None
        return
    log_value(result)  # every result can be logged


@given(expressions, st.integers(0, 2**32))
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_evaluation_is_deterministic_for_a_fixed_context(tree: Expr, seed: int) -> None:
    def run() -> object:
        try:
            return evaluate(tree, SOURCE, context(seed=seed))
        except ExpressionEvaluationError as exc:
            return ("error", exc.function, exc.message)

    assert run() == run()
