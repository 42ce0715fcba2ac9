"""Multi-valued, app-role, generated-value and Replace functions (entra-behaviour.md 1.4, 3.3)."""

from __future__ import annotations

import re
import string

import pytest
from tests.engine.mapping.mapping_helpers import ev, out

from provisor.engine.mapping import ExpressionEvaluationError, parse_expression, roles_patch_op
from provisor.engine.mapping.functions.generated import SPECIAL_CHARACTERS
from provisor.engine.mapping.functions.replace import expand_replacement, translate_pattern

S = {
    "proxy": ["SMTP:a@x.com", "smtp:b@x.com", "SMTP:a@x.com"],
    "mail": "john.doe@contoso.com",
    "single": "only",
    "empty": [],
    "mobile": "+1 (999) 888-7777",
    "blank": "",
    "roles": [
        {"id": "2", "value": "Writer", "displayName": "Content writer"},
        {"id": "1", "value": "Admin", "displayName": "Administrator"},
        {"id": "3", "value": "Writer", "displayName": "dup"},
        {"id": "4", "value": "NoDisplay"},
    ],
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("Count([proxy])", 3),
        ("Count([single])", 1),
        ("Count([empty])", 0),
        ("Count([missing])", 0),
        ("Item([proxy], 2)", "smtp:b@x.com"),
        ("Item([proxy], 4)", None),
        ("Item([single], 1)", "only"),
        ("Item([missing], 1)", None),
        ('Join(",", [proxy])', "SMTP:a@x.com,smtp:b@x.com,SMTP:a@x.com"),
        ('Join(", ", [single], [missing], [blank], "x")', "only, , x"),
        ('Join("", "a", "b")', "ab"),
        ('Join(, "a", "b")', "ab"),
        ('Join(",", [missing], [empty])', None),
        ('Join("-", Split("a,b,c", ","))', "a-b-c"),
        ("RemoveDuplicates([proxy])", ["SMTP:a@x.com", "smtp:b@x.com"]),
        ("RemoveDuplicates([single])", "only"),
        ("RemoveDuplicates([missing])", None),
        ('Split("a,,b", ",")', ["a", "", "b"]),
        ('Split("a::b", "::")', ["a", "b"]),
        ('Split("abc", "")', ["abc"]),
        ('Split([missing], ",")', None),
        ('Count(Split("a;b;c", ";"))', 3),
        ('Item(Split("a;b;c", ";"), 3)', "c"),
    ],
)
def test_multi_valued(expression: str, expected: object) -> None:
    assert out(expression, S) == expected


def test_item_is_one_based() -> None:
    with pytest.raises(ExpressionEvaluationError) as info:
        ev("Item([proxy], 0)", S)
    assert info.value.function == "Item" and "1-based" in info.value.message


# --- app roles (section 1.4 POST shape) -------------------------------------------------------


def test_app_role_assignments_complex() -> None:
    assert out("AppRoleAssignmentsComplex([roles])", S) == [
        {
            "primary": False,
            "type": "WindowsAzureActiveDirectoryRole",
            "value": "Writer",
            "display": "Content writer",
        },
        {
            "primary": False,
            "type": "WindowsAzureActiveDirectoryRole",
            "value": "Admin",
            "display": "Administrator",
        },
        {
            "primary": False,
            "type": "WindowsAzureActiveDirectoryRole",
            "value": "NoDisplay",
            "display": "NoDisplay",
        },
    ]
    assert out("AssertiveAppRoleAssignmentsComplex([roles])", S) == out(
        "AppRoleAssignmentsComplex([roles])", S
    )


def test_no_assignments_give_an_empty_roles_array() -> None:
    assert out("AppRoleAssignmentsComplex([missing])", S) == []
    assert out("AssertiveAppRoleAssignmentsComplex([empty])", S) == []
    assert out("SingleAppRoleAssignment([missing])", S) is None


def test_single_app_role_assignment_picks_the_first_value_in_order() -> None:
    assert out("SingleAppRoleAssignment([roles])", S) == "Admin"
    assert out("SingleAppRoleAssignment([r])", {"r": [{"value": "Zeta"}, {"value": "Alpha"}]}) == "Alpha"
    assert out("SingleAppRoleAssignment([r])", {"r": {"id": "1", "value": "Only"}}) == "Only"
    assert out("SingleAppRoleAssignment([r])", {"r": ["Plain"]}) == "Plain"


def test_role_functions_reject_other_values() -> None:
    with pytest.raises(ExpressionEvaluationError, match="role objects"):
        ev("AppRoleAssignmentsComplex([r])", {"r": [42]})


def test_roles_patch_op() -> None:
    assert roles_patch_op(parse_expression("AppRoleAssignmentsComplex([appRoleAssignments])")) == "add"
    assert (
        roles_patch_op(parse_expression("AssertiveAppRoleAssignmentsComplex([appRoleAssignments])"))
        == "replace"
    )
    assert roles_patch_op(parse_expression("SingleAppRoleAssignment([appRoleAssignments])")) is None
    assert roles_patch_op(parse_expression("[appRoleAssignments]")) is None


# --- Guid and RandomString (randomness from the context) -------------------------------------


def test_guid_is_a_random_v4_guid_from_the_context() -> None:
    first = ev("Guid()", seed=1)
    assert isinstance(first, str)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", first)
    assert ev("Guid()", seed=1) == first
    assert ev("Guid()", seed=2) != first


@pytest.mark.parametrize("seed", range(25))
def test_random_string_respects_its_constraints(seed: int) -> None:
    value = ev('RandomString(12, 3, 2, 4, 1, "0Oo1lI")', seed=seed)
    assert isinstance(value, str) and len(value) == 12
    assert sum(c in string.digits for c in value) >= 3
    assert sum(c in SPECIAL_CHARACTERS for c in value) >= 2
    assert sum(c in string.ascii_uppercase for c in value) >= 4
    assert sum(c in string.ascii_lowercase for c in value) >= 1
    assert not set(value) & set("0Oo1lI")


def test_random_string_is_reproducible_and_varies() -> None:
    values = {ev("RandomString(20, 0, 0, 0, 0)", seed=s) for s in range(10)}
    assert len(values) == 10
    assert ev("RandomString(20, 0, 0, 0, 0)", seed=3) == ev("RandomString(20, 0, 0, 0, 0)", seed=3)


def test_random_string_can_be_all_of_one_class() -> None:
    value = ev("RandomString(256, 256, 0, 0, 0)")
    assert isinstance(value, str) and len(value) == 256 and value.isdigit()


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("RandomString(257, 0, 0, 0, 0)", "length must be 1 to 256"),
        ("RandomString(0, 0, 0, 0, 0)", "length must be 1 to 256"),
        ("RandomString(4, 2, 2, 1, 0)", "add up to more than length 4"),
        ("RandomString(4, -1, 0, 0, 0)", "must not be negative"),
        ('RandomString(4, 1, 0, 0, 0, "0123456789")', "excludes a whole character class"),
    ],
)
def test_random_string_errors(expression: str, fragment: str) -> None:
    with pytest.raises(ExpressionEvaluationError) as info:
        ev(expression)
    assert info.value.function == "RandomString" and fragment in info.value.message


# --- Replace: the five modes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # oldValue + replacementValue: literal, case-sensitive, all occurrences
        ('Replace([mail], "@contoso.com", , , "", , )', "john.doe"),
        ('Replace([mail], "o", , , "0", , )', "j0hn.d0e@c0nt0s0.c0m"),
        ('Replace([mail], "JOHN", , , "x", , )', "john.doe@contoso.com"),
        ('Replace([mail], ".", , , "[.]", , )', "john[.]doe@contoso[.]com"),
        ('Replace([missing], "a", , , "b", , )', None),
        # oldValue + template: the source goes into the template
        ('Replace([single], "{0}", , , , , "user-{0}-{0}")', "user-only-only"),
        ('Replace([missing], "{0}", , , , , "user-{0}")', None),
        # regexPattern + replacementValue, with .NET substitutions
        ('Replace([mobile], , "[()\\\\s-]+", , "", , )', "+19998887777"),
        ('Replace([mobile], , "[^0-9]", , "", , )', "19998887777"),
        (
            'Replace([mail], , "^(?<user>[^@]+)@(?<domain>.+)$", , "${domain}\\\\${user}", , )',
            "contoso.com\\john.doe",
        ),
        (
            'Replace([mail], , "^([^@]+)@(.+)$", , "$2/$1/$$/$&", , )',
            "contoso.com/john.doe/$/john.doe@contoso.com",
        ),
        ('Replace([mail], , "@", , "[$`|$\']", , )', "john.doe[john.doe|contoso.com]contoso.com"),
        (
            'Replace([mail], , "(o)", , "$9${nope}", , )',
            "j$9${nope}hn.d$9${nope}e@c$9${nope}nt$9${nope}s$9${nope}.c$9${nope}m",
        ),
        ('Replace([mail], , "(?<x>o)\\\\k<x>", , "0", , )', "john.doe@contoso.com"),
        ('Replace("book", , "(?<x>o)\\\\k<x>", , "0", , )', "b0k"),
        ('Replace([mail], , "(?\'u\'john)", , "${u}ny", , )', "johnny.doe@contoso.com"),
        ('Replace([mail], , "O", , "0", , )', "john.doe@contoso.com"),
        ('Replace([missing], , "x", , "y", , )', None),
        # regexPattern + regexGroupName + replacementValue: only that group changes
        (
            'Replace([mail], , "^(?<user>[^@]+)@(?<domain>.+)$", "domain", "fabrikam.com", , )',
            "john.doe@fabrikam.com",
        ),
        ('Replace("a1b22", , "[a-z](?<d>\\\\d+)", "d", "#", , )', "a#b#"),
        ('Replace("a1b22", , "[a-z](\\\\d+)", "1", "<$1>", , )', "a<1>b<22>"),
        # regexPattern + regexGroupName + replacementAttributeName: empty source -> group of the other
        ('Replace([blank], , "^(?<user>[^@]+)@", "user", , [mail], )', "john.doe"),
        ('Replace([missing], , "^(?<user>[^@]+)@", "user", , [mail], )', "john.doe"),
        ('Replace([single], , "^(?<user>[^@]+)@", "user", , [mail], )', "only"),
        ('Replace([missing], , "^(?<user>[^@]+)@", "user", , [single], )', None),
    ],
)
def test_replace(expression: str, expected: object) -> None:
    assert out(expression, S) == expected


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ('Replace([mail], , "(", , "x", , )', "invalid regexPattern"),
        ('Replace([mail], , "o", "g", "x", , )', "no group named 'g'"),
        ('Replace([mail], , "o", , , , )', "needs replacementValue"),
        ('Replace([mail], "o", , , , , )', "needs replacementValue or template"),
        ('Replace([mail], "", , , "x", , )', "must not be empty"),
        ("Replace([mail], , , , , , )", "give oldValue or regexPattern"),
    ],
)
def test_replace_errors(expression: str, fragment: str) -> None:
    with pytest.raises(ExpressionEvaluationError) as info:
        ev(expression, S)
    assert info.value.function == "Replace" and fragment in info.value.message


def test_translate_pattern_leaves_lookbehind_and_classes_alone() -> None:
    assert translate_pattern(r"(?<=a)b(?<!c)") == r"(?<=a)b(?<!c)"
    assert translate_pattern(r"[(?<x>]") == r"[(?<x>]"
    assert translate_pattern(r"\(?<x>") == r"\(?<x>"
    assert translate_pattern(r"[]a](?<n>x)") == r"[]a](?P<n>x)"


def test_expand_replacement_prefers_the_longest_group_number() -> None:
    m = re.search(r"(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)", "abcdefghijk")
    assert m is not None
    assert expand_replacement("$11|$12|$1x|$", m) == "k|a2|ax|$"
