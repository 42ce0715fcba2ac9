"""The in-memory evaluator (RFC 7644 section 3.4.2.2 semantics) over JSON resources."""

from __future__ import annotations

from typing import Any

import pytest
from tests.scim.filter.filter_strategies import DEVICE_RT, GROUP_RT, USER_RT

from provisor.scim.filter.ast import AttrPath, Compare, CompareOp
from provisor.scim.filter.evaluate import is_present, matches, matches_element
from provisor.scim.filter.parser import parse_filter, parse_patch_path
from provisor.scim.schema.model import ENTERPRISE_USER

BJENSEN: dict[str, Any] = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER],
    "id": "2819c223-7f76-453a-919d-413861904646",
    "externalId": "BJensen-Ext",
    "userName": "BJensen@example.com",
    "name": {"familyName": "Jensen", "givenName": "Barbara", "formatted": "Ms. Barbara J Jensen, III"},
    "displayName": "Babs Jensen",
    "title": "Tour Guide",
    "userType": "Employee",
    "active": True,
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "ims": [{"value": "someaimhandle", "type": "aim"}],
    "meta": {
        "resourceType": "User",
        "created": "2010-01-23T04:56:22Z",
        "lastModified": "2011-05-13T04:42:34Z",
        "version": 'W/"3694e05e9dff591"',
    },
    ENTERPRISE_USER: {
        "employeeNumber": "701984",
        "department": "Tour Operations",
        "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"},
    },
}


def m(text: str, resource: dict[str, Any] = BJENSEN, rt: Any = USER_RT, **kw: bool) -> bool:
    return matches(parse_filter(text, rt, **kw), resource, rt)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # eq / ne, case-insensitive (userName is caseExact=false)
        ('userName eq "bjensen@example.com"', True),
        ('userName eq "BJENSEN@EXAMPLE.COM"', True),
        ('userName eq "bjensen"', False),
        ('userName ne "bjensen"', True),
        ('userName ne "bjensen@EXAMPLE.com"', False),
        # co / sw / ew
        ('userName co "JENSEN@"', True),
        ('userName co "nobody"', False),
        ('userName sw "bJ"', True),
        ('userName sw "jensen"', False),
        ('userName ew ".COM"', True),
        ('userName ew "example"', False),
        ('name.familyName co "O\'Malley"', False),
        ('name.familyName co "ens"', True),
        # gt / ge / lt / le on strings: lexicographic on the folded text
        ('title gt "tour"', True),
        ('title gt "Tour Guide"', False),
        ('title ge "TOUR GUIDE"', True),
        ('title lt "tp"', True),
        ('title le "tour guide"', True),
        ('title lt "tour guide"', False),
        # caseExact attributes (id, externalId) compare exactly
        ('externalId eq "BJensen-Ext"', True),
        ('externalId eq "bjensen-ext"', False),
        ('externalId sw "BJ"', True),
        ('externalId sw "bj"', False),
        ('id eq "2819C223-7F76-453A-919D-413861904646"', False),
        ('id eq "2819c223-7f76-453a-919d-413861904646"', True),
        # booleans
        ("active eq true", True),
        ("active eq false", False),
        ("active ne false", True),
        ("active ne true", False),
        # pr
        ("title pr", True),
        ("nickName pr", False),
        ("emails pr", True),
        ("name pr", True),
        ("phoneNumbers pr", False),
        ("name.middleName pr", False),
        ("emails.primary pr", True),
        # null
        ("nickName eq null", True),
        ("nickName ne null", False),
        ("title eq null", False),
        ("title ne null", True),
        # missing attributes: only ne (and not) hold
        ('nickName eq "x"', False),
        ('nickName ne "x"', True),
        ('nickName co "x"', False),
        ('nickName gt "a"', False),
        ('not (nickName eq "x")', True),
        # multi-valued: any value
        ('emails co "jensen.org"', True),
        ('emails.value eq "BABS@JENSEN.ORG"', True),
        ('emails.type eq "home"', True),
        ('emails.type eq "other"', False),
        ('emails.type ne "work"', True),  # "home" != "work": any-match (RFC 7644 3.4.2.2)
        ("emails.primary eq true", True),
        ("emails.primary eq false", False),
        # valuePath: the same element must satisfy the whole inner filter
        ('emails[type eq "work" and value co "@example.com"]', True),
        ('emails[type eq "home" and value co "@example.com"]', False),
        ('emails[type eq "home" or primary eq true]', True),
        ('emails[not (type eq "work")]', True),
        ('emails[type eq "work" and not (primary eq true)]', False),
        ("emails[display pr]", False),
        ('ims[type eq "aim" and value sw "some"]', True),
        ('phoneNumbers[type eq "work"]', False),
        # dateTime: instants, not text
        ('meta.lastModified gt "2011-05-13T04:42:34Z"', False),
        ('meta.lastModified ge "2011-05-13T04:42:34Z"', True),
        ('meta.lastModified eq "2011-05-13T06:42:34+02:00"', True),
        ('meta.lastModified eq "2011-05-13T04:42:34"', True),  # naive = UTC
        ('meta.lastModified lt "2011-05-12T23:42:35-05:00"', True),
        ('meta.lastModified le "2011-05-13T04:42:33.9999999Z"', False),
        ('meta.created lt "2015-10-10T14:38:21.8617979-07:00"', True),
        ('meta.resourceType eq "user"', False),  # caseExact (RFC 7643 section 3.1)
        ('meta.version eq "w/\\"3694e05e9dff591\\""', False),  # version is caseExact
        ('meta.version eq "W/\\"3694e05e9dff591\\""', True),
        # extension attributes
        ('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "tour operations"', True),
        ('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber gt "700000"', True),
        ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value pr", True),
        ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter pr", False),
        # schemas
        ('schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"', True),
        ('schemas eq "urn:example:nope"', False),
        # logic and precedence
        ('title pr and userType eq "Employee"', True),
        ('title pr and userType eq "Intern"', False),
        ('title pr or userType eq "Intern"', True),
        ('nickName pr or userType eq "Intern"', False),
        ('userType eq "Intern" and title pr or active eq true', True),
        ('userType eq "Intern" and (title pr or active eq true)', False),
        ('userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")', False),
        ('userType eq "Employee" and (emails.type eq "work")', True),
    ],
)
def test_bjensen(text: str, expected: bool) -> None:
    assert m(text) is expected


def test_unknown_keys_are_matched_case_insensitively() -> None:
    odd = {"USERNAME": "x", "Emails": [{"Value": "a@b.c"}], ENTERPRISE_USER.upper(): {"Department": "D"}}
    assert m('userName eq "x"', odd)
    assert m('emails.value eq "a@b.c"', odd)
    assert m('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "d"', odd)


def test_entra_style_unquoted_filter() -> None:
    assert m("externalId eq BJensen-Ext", allow_unquoted=True)
    assert not m("externalId eq bjensen-ext", allow_unquoted=True)


def test_pr_is_false_for_empty_values() -> None:
    r = {
        "title": "",
        "emails": [],
        "name": {"givenName": None},
        "nickName": None,
        "ims": [{}],
        "active": False,
    }
    for text in ("title pr", "emails pr", "name pr", "nickName pr", "ims pr", "name.givenName pr"):
        assert not m(text, r), text
    assert m("active pr", r)  # false is a value
    assert m("title eq null", r)  # "" counts as unassigned, like null
    assert is_present(0)
    assert not is_present({"a": [None, ""]})


def test_type_mismatches_in_stored_data_do_not_crash() -> None:
    r = {"active": "True", "userName": 42, "meta": {"created": "not a date"}, "emails": "x@y.z"}
    assert m("active eq true", r)  # Entra quirk Q2: string booleans
    assert not m("active eq false", r)
    assert m('userName eq "42"', r)
    assert not m('meta.created gt "2011-05-13T04:42:34Z"', r)
    assert m('meta.created ne "2011-05-13T04:42:34Z"', r)
    assert not m('emails.value eq "x@y.z"', r)  # a string is not an element
    assert m("active ne false", {"active": "maybe"})
    assert not m("active eq true", {"active": "maybe"})


def test_numbers() -> None:
    d = {
        "cores": 8,
        "weight": 1.5,
        "ports": [22, 443],
        "parts": [{"value": "CPU", "count": 2, "spare": False}],
    }
    t = lambda text: matches(parse_filter(text, DEVICE_RT), d, DEVICE_RT)  # noqa: E731
    assert (
        t("cores eq 8") and t("cores eq 8.0") and t("cores gt 7") and t("cores ge 8") and not t("cores lt 8")
    )
    assert t("weight lt 2") and t("weight le 1.5") and not t("weight gt 1.5") and t("weight ne 1")
    assert t("ports eq 443") and t("ports gt 400") and not t("ports gt 500") and t("ports lt 23")
    assert t("cores eq 8 and weight gt 1e0")
    assert t('parts[value eq "CPU" and count ge 2 and spare eq false]')
    assert not t('parts[value eq "cpu"]')  # parts.value is caseExact
    assert matches(parse_filter("cores eq 8", DEVICE_RT), {"cores": "8"}, DEVICE_RT)
    assert not matches(parse_filter("cores gt 1", DEVICE_RT), {"cores": "eight"}, DEVICE_RT)
    assert matches(parse_filter("cores ne 1", DEVICE_RT), {"cores": "eight"}, DEVICE_RT)
    assert not matches(parse_filter("cores eq 1", DEVICE_RT), {"cores": True}, DEVICE_RT)


def test_multi_valued_simple_attributes() -> None:
    d = {"tags": ["Red", "blue"], "seen": ["2020-01-01T00:00:00Z", "2021-06-01T12:00:00+02:00"]}
    t = lambda text: matches(parse_filter(text, DEVICE_RT), d, DEVICE_RT)  # noqa: E731
    assert t('tags eq "red"') and t('tags sw "BL"') and not t('tags eq "green"') and t("tags pr")
    assert t('seen gt "2021-06-01T09:00:00Z"') and not t('seen gt "2021-06-01T10:00:00Z"')


def test_group_members() -> None:
    g = {"displayName": "Tour Guides", "members": [{"value": "2819c223", "display": "Babs"}]}
    assert matches(parse_filter('members eq "2819c223"', GROUP_RT), g, GROUP_RT)
    assert not matches(parse_filter('members eq "2819C223"', GROUP_RT), g, GROUP_RT)  # value is caseExact
    assert matches(parse_filter('members[display co "ab"]', GROUP_RT), g, GROUP_RT)
    assert not matches(parse_filter('members[value eq "x"]', GROUP_RT), {"members": None}, GROUP_RT)


def test_matches_element_for_patch_paths() -> None:
    path = parse_patch_path('emails[type eq "work" and primary eq true]', USER_RT)
    assert path.filter is not None
    picked = [e for e in BJENSEN["emails"] if matches_element(path.filter, e, USER_RT)]
    assert picked == [BJENSEN["emails"][0]]
    members = parse_patch_path('members[value eq "b" or value eq "c"]', GROUP_RT)
    assert members.filter is not None
    elements = [{"value": v} for v in "abcd"]
    assert [e["value"] for e in elements if matches_element(members.filter, e, GROUP_RT)] == ["b", "c"]


def test_matches_element_with_a_value_path_is_false() -> None:
    vp = parse_filter('emails[type eq "work"]', USER_RT)
    assert not matches_element(vp, {"type": "work"}, USER_RT)


def test_hand_built_node_on_unknown_attribute_falls_back_to_literal_type() -> None:
    f = Compare(AttrPath(None, "x-custom"), CompareOp.EQ, "ABC")
    assert matches(f, {"x-custom": "abc"}, USER_RT)
    assert matches(Compare(AttrPath(None, "x-n"), CompareOp.GT, 2), {"x-n": 3}, USER_RT)


def test_a_value_path_on_a_simple_attribute_tests_each_value_alone() -> None:
    device = {"tags": ["Alpha", "beta"], "ports": [22, 443]}
    assert matches(parse_filter('tags[value eq "alpha"]', DEVICE_RT), device, DEVICE_RT)  # caseExact false
    assert not matches(
        parse_filter('tags[value eq "alpha" and value eq "beta"]', DEVICE_RT), device, DEVICE_RT
    )
    assert matches(parse_filter("ports[value gt 100 and value lt 500]", DEVICE_RT), device, DEVICE_RT)
    assert not matches(parse_filter("ports[value gt 22 and value lt 443]", DEVICE_RT), device, DEVICE_RT)
    assert not matches(parse_filter("tags[value pr]", DEVICE_RT), {"tags": [{"value": "x"}]}, DEVICE_RT)
    path = parse_patch_path('tags[value sw "a"]', DEVICE_RT)
    assert path.filter is not None
    assert [matches_element(path.filter, t, DEVICE_RT) for t in device["tags"]] == [True, False]
