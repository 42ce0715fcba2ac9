"""The expression parser (entra-behaviour.md section 3.2): AST shapes, positions and errors."""

from __future__ import annotations

import pytest

from provisor.engine.mapping import (
    AttributeRef,
    Call,
    CompareOp,
    Comparison,
    Constant,
    ExpressionError,
    NumberLiteral,
    Omitted,
    StringLiteral,
    parse_expression,
    to_source,
)
from provisor.engine.mapping.parser import MAX_DEPTH, MAX_LENGTH


def test_nested_calls_and_positions() -> None:
    tree = parse_expression("Append(Mid([givenName],1,3), Mid([surname],1,5))")
    assert tree == Call(
        "Append",
        (
            Call("Mid", (AttributeRef("givenName"), NumberLiteral(1), NumberLiteral(3))),
            Call("Mid", (AttributeRef("surname"), NumberLiteral(1), NumberLiteral(5))),
        ),
    )
    assert isinstance(tree, Call)
    first, second = tree.args
    assert (tree.position, first.position, second.position) == (0, 7, 29)
    assert isinstance(first, Call) and first.args[0].position == 11


def test_string_escapes() -> None:
    assert parse_expression(r'Append("a\"b", "c\\d")') == Call(
        "Append", (StringLiteral('a"b'), StringLiteral("c\\d"))
    )


def test_other_backslashes_are_kept_as_written() -> None:
    # a regex like "\d+" need not double its backslash; "\\s" (doc example) is the same pattern
    tree = parse_expression(r'Replace([a], , "\d+[\\s]", , "", , )')
    assert isinstance(tree, Call) and tree.args[2] == StringLiteral(r"\d+[\s]")


def test_omitted_arguments() -> None:
    tree = parse_expression('Replace([mail], "@contoso.com", , , "", , )')
    assert tree == Call(
        "Replace",
        (
            AttributeRef("mail"),
            StringLiteral("@contoso.com"),
            Omitted(),
            Omitted(),
            StringLiteral(""),
            Omitted(),
            Omitted(),
        ),
    )
    assert isinstance(tree, Call) and [a.position for a in tree.args[2:4]] == [32, 34]


def test_leading_omitted_argument() -> None:
    tree = parse_expression('Switch([IsSoftDeleted], , "False", "True", "True", "False")')
    assert isinstance(tree, Call) and tree.args[1] == Omitted()


def test_zero_arguments_and_whitespace() -> None:
    assert parse_expression("Guid()") == Call("Guid", ())
    assert parse_expression("  Guid(   )  ") == Call("Guid", ())
    assert parse_expression('\n Left (\t"abc" ,\r\n 2 ) ') == Call(
        "Left", (StringLiteral("abc"), NumberLiteral(2))
    )


def test_numbers() -> None:
    assert parse_expression("BitAnd(&HF, &HF7)") == Call(
        "BitAnd", (NumberLiteral(15, hex=True), NumberLiteral(247, hex=True))
    )
    assert parse_expression("BitAnd(&hff, -12)") == Call(
        "BitAnd", (NumberLiteral(255, hex=True), NumberLiteral(-12))
    )
    assert parse_expression("DateFromNum(129699324000000000)") == Call(
        "DateFromNum", (NumberLiteral(129699324000000000),)
    )


@pytest.mark.parametrize("op", ["=", "<>", ">", ">=", "<", "<="])
def test_comparisons_in_iif(op: str) -> None:
    tree = parse_expression(f'IIF([country]{op}"USA",[country],[departmentName])')
    assert tree == Call(
        "IIF",
        (
            Comparison(AttributeRef("country"), CompareOp(op), StringLiteral("USA")),
            AttributeRef("country"),
            AttributeRef("departmentName"),
        ),
    )


def test_comparison_of_calls() -> None:
    tree = parse_expression("CBool(Len2 = 1)".replace("Len2", "Count([a])"))
    assert tree == Call(
        "CBool", (Comparison(Call("Count", (AttributeRef("a"),)), CompareOp.EQ, NumberLiteral(1)),)
    )


def test_constants() -> None:
    tree = parse_expression('InStr("repEated","e",3,vbBinaryCompare)')
    assert isinstance(tree, Call) and tree.args[3] == Constant("vbBinaryCompare")


def test_attribute_names() -> None:
    assert parse_expression("[ extension_abc_costCenter ]") == AttributeRef("extension_abc_costCenter")
    assert parse_expression("[urn:x:y]") == AttributeRef("urn:x:y")


def test_bare_operands_at_top_level() -> None:
    assert parse_expression('"constant"') == StringLiteral("constant")
    assert parse_expression("[mail]") == AttributeRef("mail")


def test_printer_round_trip_of_documented_expressions() -> None:
    for text in [
        'Replace([mobile], , "[()\\\\s-]+", , "", , )',
        'Switch([IsSoftDeleted], , "False", "True", "True", "False")',
        'ToLower(Join("@", NormalizeDiacritics(StripSpaces(Join(".", [First], [Last]))), "contoso.com"))',
        'IIF([a] <> "x\\"y", &HFF, -3)',
        "Coalesce(,,)",
    ]:
        tree = parse_expression(text)
        assert parse_expression(to_source(tree)) == tree


def test_printer_canonical_form() -> None:
    assert to_source(parse_expression('Replace([mail],"@x",,,"",,)')) == 'Replace([mail], "@x", , , "", , )'
    assert to_source(parse_expression('IIF([a]>=1,&HF,"q\\\\")')) == 'IIF([a] >= 1, &HF, "q\\\\")'


def test_function_names_are_case_sensitive() -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression("toLower([mail])")
    assert "did you mean ToLower?" in info.value.message


def test_unknown_function_names_the_closest() -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression("Appendd([a], [b])")
    assert info.value.message == "unknown function 'Appendd' (names are case-sensitive); did you mean Append?"
    with pytest.raises(ExpressionError) as info:
        parse_expression("AppDomain([mail])")
    assert "unknown function 'AppDomain'" in info.value.message


def test_wrong_argument_count_shows_signature() -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression('Join("@", Left([a]))')
    assert info.value.position == 10
    assert info.value.message == "Left takes 2 arguments, got 1: Left(string, numChars)"
    with pytest.raises(ExpressionError) as info:
        parse_expression('Replace([mail], "@contoso.com", , , "")')
    assert "Replace takes 7 arguments, got 5" in info.value.message
    with pytest.raises(ExpressionError) as info:
        parse_expression("Guid(1)")
    assert info.value.message == "Guid takes 0 arguments, got 1: Guid()"
    with pytest.raises(ExpressionError) as info:
        parse_expression("InStr([a])")
    assert "InStr takes 2 to 4 arguments, got 1" in info.value.message


def test_switch_needs_pairs() -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression('Switch([a], "d", "k1", "v1", "k2")')
    assert "key/value pairs" in info.value.message and "Switch(source, defaultValue" in info.value.message


def test_select_unique_value_only_at_the_top() -> None:
    parse_expression('SelectUniqueValue(Join("", [a]), Join("", [a], "1"))')
    with pytest.raises(ExpressionError) as info:
        parse_expression("ToLower(SelectUniqueValue([a], [b]))")
    assert info.value.position == 8 and "outermost" in info.value.message


def test_caret_display() -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression('Join("@", [a] [b])')
    assert str(info.value) == (
        "Expression error at position 14: expected ',' or ')' after an argument\n"
        'Join("@", [a] [b])\n'
        "              ^"
    )


def test_caret_display_of_a_long_expression_is_windowed() -> None:
    text = "Join(" + ", ".join(f'"{i}"' for i in range(60)) + " x)"
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    line, caret = str(info.value).splitlines()[1:]
    assert line.startswith("...") and len(line) < len(text)
    assert line[caret.index("^")] == "x"


MALFORMED = [
    ("", 0, "empty expression"),
    ("   ", 0, "empty expression"),
    ('Join("@", [a] [b])', 14, "expected ',' or ')' after an argument"),
    ("Left([a], 3", 11, "is not closed"),
    ('"abc', 0, "unterminated string"),
    ('Append("a\\", [b])', 7, "unterminated string"),
    ('Append([mail, "x")', 7, "'[' inside|unterminated attribute"),
    ("Append([mail", 7, "unterminated attribute"),
    ('Append([], "x")', 7, "empty attribute name"),
    ('Append([a]], "x")', 10, "']' without a matching '['"),
    ("Append('a', 'b')", 7, "double quotes"),
    ("Left([a], 1.5)", 11, "whole numbers"),
    ("Left([a], 3x)", 11, "malformed number"),
    ("BitAnd(&H, 1)", 9, "hexadecimal digits"),
    ("BitAnd(&HFG, 1)", 10, "malformed number"),
    ("Left([a], 1" + "0" * 40 + ")", 10, "longer than 32"),
    ("IIF([a] = = 1, 2, 3)", 10, "expected a value after '='"),
    ("IIF([a] = 1 = 2, 2, 3)", 12, "cannot be chained"),
    ("IIF(= 1, 2, 3)", 4, "expected a value before '='"),
    ("IIF([a] =, 2, 3)", 9, "expected a value after '='"),
    ("Append([a], [b]) [c]", 17, "after the end"),
    ("Append([a], [b]))", 16, "after the end"),
    ("[a] = [b] [c]", 10, "after the end"),
    ("Foo", 0, "unknown name 'Foo'"),
    ('Append(mail, "x")', 7, "unknown name 'mail'"),
    ('InStr("a", "b", 1, vbtextcompare)', 19, "did you mean vbTextCompare?"),
    ("ToLower", 0, "ToLower is a function: call it as ToLower(source[, culture])"),
    ("Append([a] $ [b])", 11, "unexpected character '$'"),
    ('Append("a"', 10, "is not closed"),
    ("Append(", 7, "is not closed"),
    ("Append(,", 8, "is not closed"),
    (")", 0, "expected a value"),
    (",", 0, "expected a value"),
    ("-", 0, "unexpected character '-'"),
    ('Switch([a], "d", "k")', 0, "at least 4 arguments"),
    ("Coalesce()", 0, "at least 1 argument,"),
]


@pytest.mark.parametrize(("text", "position", "fragment"), MALFORMED)
def test_malformed_expressions(text: str, position: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    assert info.value.position == position, str(info.value)
    assert any(part in info.value.message for part in fragment.split("|")), info.value.message
    shown = str(info.value).splitlines()
    assert shown[0] == f"Expression error at position {position}: {info.value.message}"
    if text:
        assert shown[2].index("^") == position


def test_length_limit() -> None:
    inner = '"' + "x" * (MAX_LENGTH - 11) + '"'
    assert len(f"ToLower({inner})") == MAX_LENGTH
    parse_expression(f"ToLower({inner})")
    with pytest.raises(ExpressionError) as info:
        parse_expression(f"ToLower({inner}  )")
    assert info.value.position == MAX_LENGTH and "10,000" in info.value.message


def test_depth_limit() -> None:
    ok = "ToLower(" * MAX_DEPTH + "[a]" + ")" * MAX_DEPTH
    parse_expression(ok)
    with pytest.raises(ExpressionError) as info:
        parse_expression("ToLower(" * (MAX_DEPTH + 1) + "[a]" + ")" * (MAX_DEPTH + 1))
    assert info.value.position == 8 * MAX_DEPTH and "deeper" in info.value.message


def test_error_is_a_value_error_with_repr() -> None:
    with pytest.raises(ValueError) as info:
        parse_expression("(")
    assert repr(info.value) == "ExpressionError(\"expected a value, found '('\", 0)"
