"""String functions (entra-behaviour.md section 3.3): edge cases beyond the documented examples."""

from __future__ import annotations

import pytest
from tests.engine.mapping.mapping_helpers import ev

from provisor.engine.mapping import ExpressionEvaluationError

U = {"upn": "John.Doe@contoso.com", "empty": "", "flag": True, "n": 42, "multi": ["a", "b"], "one": ["solo"]}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # Append: null reads as "" (concatenation); both null stays null
        ('Append([upn], ".test")', "John.Doe@contoso.com.test"),
        ('Append([missing], ".test")', ".test"),
        ("Append([upn], [missing])", "John.Doe@contoso.com"),
        ("Append([missing], [missing])", None),
        ('Append([flag], "!")', "True!"),
        ('Append([n], "!")', "42!"),
        ('Append([one], "!")', "solo!"),
        # ConvertToBase64 / ConvertToUTF8Hex
        ('ConvertToBase64("")', ""),
        ("ConvertToBase64([missing])", None),
        ('ConvertToBase64("é")', "6QA="),
        ('ConvertToUTF8Hex("é€")', "C3A9E282AC"),
        ("ConvertToUTF8Hex([missing])", None),
        # CStr
        ("CStr([flag])", "True"),
        ("CStr([n])", "42"),
        ("CStr(&HFF)", "255"),
        ("CStr([missing])", None),
        # InStr: 1-based, 0 when absent, compare modes as constants, strings or 0/1
        ('InStr("The quick brown fox","quick")', 5),
        ('InStr("The quick brown fox","QUICK")', 0),
        ('InStr("The quick brown fox","QUICK", , vbTextCompare)', 5),
        ('InStr("The quick brown fox","QUICK", 1, "vbTextCompare")', 5),
        ('InStr("The quick brown fox","QUICK", 1, 1)', 5),
        ('InStr("repEated","e",3,vbBinaryCompare)', 7),
        ('InStr("repEated","e",3,vbTextCompare)', 4),
        ('InStr("repEated","e",3,0)', 7),
        ('InStr("abc","x")', 0),
        ('InStr("abc","")', 1),
        ('InStr("abc","", 3)', 3),
        ('InStr("abc","c", 4)', 0),
        ('InStr([missing],"c")', None),
        ('InStr("İstanbul","i̇", 1, vbTextCompare)', 0),
        # Left: the documented edge cases
        ('Left("John Doe",3)', "Joh"),
        ('Left("John Doe",0)', ""),
        ('Left("John Doe",-5)', "John Doe"),
        ('Left("John",99)', "John"),
        ("Left([missing],3)", ""),
        ('Left("John", "2")', "Jo"),
        # Mid: 1-based start, clamps at the end, omitted length = the rest
        ('Mid("John Doe",1,3)', "Joh"),
        ('Mid("John Doe",6,99)', "Doe"),
        ('Mid("John Doe",20,2)', ""),
        ('Mid("John Doe",6,0)', ""),
        ('Mid("John Doe",3,)', "hn Doe"),
        ("Mid([missing],1,3)", ""),
        # NormalizeDiacritics: the doc's table
        ('NormalizeDiacritics("äàâãåáąă ÄÀÂÃÅÁĄĂ")', "aaaaaaaa AAAAAAAA"),
        ('NormalizeDiacritics("æÆøØßłŁñńň")', "aeAEoeOEsslLnnn"),
        (
            'NormalizeDiacritics("çčćďëèéêęěėğïîìíıľöòőõôóřšśșşťțüùûúůűÿýźžż")',
            "cccdeeeeeeegiiiiiloooooorssssttuuuuuuyyzzz",
        ),
        ('NormalizeDiacritics("Zoë Ström-Øvergård")', "Zoe Strom-OEvergard"),
        ('NormalizeDiacritics("plain ASCII 123")', "plain ASCII 123"),
        ("NormalizeDiacritics([missing])", None),
        # PCase
        ('PCase("PINTO-DE\'SILVA"," \'-")', "Pinto-De'Silva"),
        ('PCase("PINTO-DE\'SILVA","-")', "Pinto-De'silva"),
        ('PCase("PINTO-DE\'SILVA")', "Pinto-De'Silva"),
        ('PCase("new york city")', "New York City"),
        ('PCase("  mIxEd\tcASE ")', "  Mixed\tCase "),
        ('PCase("jean-luc o.brien")', "Jean-Luc O.Brien"),
        ('PCase("ÉMILE ZOLA")', "Émile Zola"),
        ('PCase("a_b", "_")', "A_B"),
        ('PCase("")', ""),
        ("PCase([missing])", None),
        # StripSpaces: only U+0020
        ('StripSpaces(" J o h n ")', "John"),
        ('StripSpaces("a\tb")', "a\tb"),
        ("StripSpaces([missing])", None),
        # ToLower / ToUpper: invariant by default, tr/az dotted and dotless i
        ('ToLower("JOHN.DOE@Contoso.COM")', "john.doe@contoso.com"),
        ('ToUpper("john")', "JOHN"),
        ('ToUpper("straße")', "STRAßE"),
        ('ToLower("İ")', "i"),
        ('ToUpper("i", "tr-TR")', "İ"),
        ('ToLower("I", "tr-TR")', "ı"),
        ('ToLower("I", "az-Latn-AZ")', "ı"),
        ('ToLower("I", "en-US")', "i"),
        ('ToLower("ISTANBUL", "TR-tr")', "ıstanbul"),
        ('ToUpper("i", )', "I"),
        ("ToLower([missing])", None),
        ("ToUpper([flag])", "TRUE"),
        # Word
        ('Word("This,string!has&many separators",3,",!&#")', "has"),
        ('Word("This,string!has&many separators",4,",!&#")', "many separators"),
        ('Word("This,string!has&many separators",5,",!&#")', ""),
        ('Word("This,string",0,",")', ""),
        ('Word("This,string",-1,",")', ""),
        ('Word(",,a,,b,,",2,",")', "b"),
        ('Word("whole",1,"")', "whole"),
        ('Word("a b",1,)', "a b"),
        ('Word([missing],1,",")', ""),
    ],
)
def test_string_function(expression: str, expected: object) -> None:
    assert ev(expression, U) == expected


@pytest.mark.parametrize(
    ("expression", "function", "fragment"),
    [
        ('Left("abc", "x")', "Left", "expected numChars"),
        ('Left("abc", [missing])', "Left", "numChars is required"),
        ('Left("abc", [flag])', "Left", "boolean"),
        ('Mid("abc", 0, 1)', "Mid", "1-based"),
        ('Mid("abc", 1, -1)', "Mid", "negative"),
        ('InStr("abc", "a", 0)', "InStr", "start must be 1 or more"),
        ('InStr("abc", "a", 1, "loose")', "InStr", "compareType"),
        ('ToLower("a", "not a culture!")', "ToLower", "RFC 4646"),
        ("ToUpper([multi])", "ToUpper", "multi-valued"),
        ('Append([multi], "x")', "Append", "2 values"),
        ('Word("a", "two", ",")', "Word", "wordNumber"),
    ],
)
def test_string_function_errors(expression: str, function: str, fragment: str) -> None:
    with pytest.raises(ExpressionEvaluationError) as info:
        ev(expression, U)
    assert info.value.function == function
    assert fragment in info.value.message
    assert str(info.value).startswith(f"{function}: ")


def test_error_position_is_the_failing_call() -> None:
    with pytest.raises(ExpressionEvaluationError) as info:
        ev('Append("x", Mid("abc", 0, 1))')
    assert info.value.function == "Mid" and info.value.position == 12
