"""The cached tables and fast paths of provisor.scim.resources and provisor.scim.patch agree with the
general paths they shortcut: same results, same errors, bounded caches, no shared state."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisor.scim.compat import CompatSettings
from provisor.scim.errors import InvalidValue, ScimError
from provisor.scim.patch import apply_patch, parse_patch_request
from provisor.scim.resources import format_datetime, parse_resource, to_representation
from provisor.scim.resources import parse as parse_module
from provisor.scim.resources.plans import MAX_MEMO_KEYS, plan_for
from provisor.scim.resources.values import _complex, check_simple, compile_check, validate_attribute_value
from provisor.scim.schema import ENTERPRISE_USER, USER, Attribute, AttributeType, default_registry
from provisor.scim.schema.model import ResourceType

USERS = default_registry().resource_type("User")
assert USERS is not None
LENIENT = CompatSettings.default()
STRICT = CompatSettings.strict()

ENTRA = {
    "schemas": [USER, ENTERPRISE_USER],
    "externalId": "alice",
    "userName": "alice@contoso.com",
    "active": True,
    "displayName": "Alice Smith",
    "title": "Engineer",
    "preferredLanguage": "en-US",
    "emails": [{"primary": True, "type": "work", "value": "alice@contoso.com"}],
    "meta": {"resourceType": "User"},
    "name": {"formatted": "Alice Smith", "familyName": "Smith", "givenName": "Alice"},
    "phoneNumbers": [{"type": "work", "value": "+1 555 0100"}, {"type": "mobile", "value": "+1 555 0101"}],
    "addresses": [{"type": "work", "streetAddress": "1 Main St", "locality": "Seattle", "country": "US"}],
    "roles": [],
    ENTERPRISE_USER: {"department": "Sales", "employeeNumber": "701984", "manager": "mgr-id"},
}


def _recase(value: Any, how: Any) -> Any:
    """``value`` with every object key re-cased by ``how`` (names are case-insensitive)."""
    if isinstance(value, dict):
        return {k if k.startswith("urn:") else how(k): _recase(v, how) for k, v in value.items()}
    if isinstance(value, list):
        return [_recase(v, how) for v in value]
    return value


@pytest.mark.parametrize("how", [str.lower, str.upper, str.swapcase])
def test_exact_and_recased_keys_parse_alike(how: Any) -> None:
    expected = parse_resource(USERS, ENTRA, LENIENT)
    for _ in range(2):  # cold and warm key tables
        assert parse_resource(USERS, _recase(ENTRA, how), LENIENT) == expected
        assert parse_resource(USERS, ENTRA, LENIENT) == expected


def test_parse_does_not_share_or_mutate_the_body() -> None:
    body = copy.deepcopy(ENTRA)
    out = parse_resource(USERS, body, LENIENT)
    assert body == ENTRA
    assert out["name"] is not body["name"] and out["emails"][0] is not body["emails"][0]


@pytest.mark.parametrize(
    ("element", "message"),
    [
        ({"type": "bogus", "value": "a@b.c"}, "emails[0].type must be one of"),
        ({"value": 5}, "emails[0].value must be a string"),
        ({"primary": "yes", "value": "a@b.c"}, "emails[0].primary must be a boolean"),
        ({"value": ["a"]}, "emails[0].value must be a single value, not a list"),
        ({"value": "a", "VALUE": "b"}, "emails[0].value is given twice"),
    ],
)
def test_errors_after_the_fast_paths_name_the_same_place(element: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidValue, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_resource(USERS, {"schemas": [USER], "userName": "u", "emails": [element]}, STRICT)


def test_canonical_values_match_any_case_on_both_paths() -> None:
    body = {"schemas": [USER], "userName": "u", "emails": [{"type": "WORK", "value": "a"}]}
    assert parse_resource(USERS, body, STRICT)["emails"] == [{"type": "WORK", "value": "a"}]
    body["emails"] = [{"TYPE": "Work", "value": "a"}]
    assert parse_resource(USERS, body, STRICT)["emails"] == [{"type": "Work", "value": "a"}]


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (AttributeType.STRING, "x"),
        (AttributeType.REFERENCE, "https://x"),
        (AttributeType.BOOLEAN, True),
        (AttributeType.BOOLEAN, "False"),
        (AttributeType.INTEGER, 3),
        (AttributeType.DECIMAL, 1.5),
        (AttributeType.DATETIME, "2008-01-23T04:56:22Z"),
    ],
)
def test_check_simple_fast_paths_return_the_value(kind: AttributeType, value: Any) -> None:
    attribute = Attribute(name="a", type=kind)
    expected = False if value == "False" else value
    assert check_simple(attribute, value, LENIENT, "a") == expected


def test_string_booleans_still_coerced_at_top_level() -> None:
    assert parse_resource(USERS, {**ENTRA, "active": "False"}, LENIENT)["active"] is False
    with pytest.raises(InvalidValue, match="active must be a boolean"):
        parse_resource(USERS, {**ENTRA, "active": "False"}, STRICT)


def test_write_only_attributes_are_still_dropped() -> None:
    assert "password" not in parse_resource(USERS, {**ENTRA, "password": "s3cret"}, LENIENT)


def test_key_tables_are_bounded() -> None:
    plan = plan_for(USERS)
    body: dict[str, Any] = {"schemas": [USER], "userName": "u"}
    body.update({f"unknown{i}": 1 for i in range(MAX_MEMO_KEYS + 10)})
    parse_resource(USERS, body, LENIENT)
    assert len(plan.keys) <= MAX_MEMO_KEYS
    with pytest.raises(InvalidValue, match="unknown attribute 'unknown2047'"):
        parse_resource(USERS, {"schemas": [USER], "userName": "u", "unknown2047": 1}, STRICT)


def test_plans_follow_resource_type_identity() -> None:
    other = default_registry().resource_type("Group")
    assert other is not None
    assert plan_for(USERS) is plan_for(USERS)
    assert plan_for(other).rt is other and plan_for(USERS).rt is USERS


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        datetime(2024, 5, 1, 12, 0, 0, 1234, tzinfo=UTC),
        datetime(2024, 5, 1, 12, 0),
        datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
        datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(0))),
    ],
)
def test_format_datetime_fast_path_agrees(moment: datetime) -> None:
    naive_utc = moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
    assert format_datetime(moment) == naive_utc.isoformat() + "Z"


@settings(max_examples=500, deadline=None)
@given(
    moments=st.lists(
        st.datetimes(timezones=st.just(UTC)).flatmap(
            lambda m: st.sampled_from([m, m.replace(microsecond=0), m.replace(microsecond=1)])
        ),
        min_size=1,
        max_size=6,
    )
)
def test_format_datetime_keeps_no_stale_second(moments: list[datetime]) -> None:
    """The text of the last second formatted is reused only for that same second."""
    for moment in moments:
        assert format_datetime(moment) == moment.isoformat().replace("+00:00", "Z")


def test_representation_timestamps_equal_or_not() -> None:
    data = parse_resource(USERS, ENTRA, LENIENT)
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    plus2 = timezone(timedelta(hours=2))
    for created, modified in [(t0, t0), (t0, t0 + timedelta(seconds=1)), (t0, t0.astimezone(plus2))]:
        meta = to_representation(
            USERS, "1", data, created=created, last_modified=modified, version=1, location="l"
        )["meta"]
        assert (meta["created"], meta["lastModified"]) == (
            format_datetime(created),
            format_datetime(modified),
        )


def test_patch_repeats_use_the_remembered_paths() -> None:
    data = parse_resource(USERS, ENTRA, LENIENT)
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "displayName", "value": "x"}],
    }
    first = apply_patch(USERS, data, parse_patch_request(body, USERS, LENIENT), LENIENT)
    second = apply_patch(USERS, data, parse_patch_request(body, USERS, LENIENT), LENIENT)
    assert first == second == {**data, "displayName": "x"}
    assert first["name"] is not data["name"] and first["emails"] is not data["emails"]


def test_patch_errors_keep_their_operation_prefix_every_time() -> None:
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "replace", "path": "displayName", "value": "x"},
            {"op": "replace", "path": "nosuch.thing", "value": "x"},
        ],
    }
    for _ in range(2):
        with pytest.raises(ScimError) as info:
            parse_patch_request(body, USERS, STRICT)
        assert info.value.detail.startswith("operation 2: ")
        assert not info.value.detail.startswith("operation 2: operation 2")


def test_read_only_sub_attributes_are_still_ignored() -> None:
    manager = Attribute.from_json(
        {
            "name": "m",
            "type": "complex",
            "subAttributes": [
                {"name": "value", "type": "string"},
                {"name": "displayName", "type": "string", "mutability": "readOnly"},
            ],
        }
    )
    assert _complex(manager, {"value": "v", "displayName": "d"}, STRICT, "m") == {"value": "v"}
    assert _complex(manager, {"VALUE": "v", "DISPLAYNAME": "d"}, STRICT, "m") == {"value": "v"}


def test_sub_lookup_without_a_table_falls_back_to_the_general_path() -> None:
    bare = Attribute(
        name="m", type=AttributeType.COMPLEX, sub_attributes=(Attribute("value", AttributeType.STRING),)
    )
    assert _complex(bare, {"value": "v"}, LENIENT, "m") is None  # sub() knows nothing: ignored as unknown
    with pytest.raises(InvalidValue, match="unknown sub-attribute 'value' in m"):
        _complex(bare, {"value": "v"}, STRICT, "m")


# --- compiled top-level checks (values.compile_check) and the parse built on them -----------------

GROUPS = default_registry().resource_type("Group")
assert GROUPS is not None
#: (resource type, extension URN or None, attribute): every top-level attribute a body can name
_TOP = [
    (rt, urn, attribute)
    for rt in (USERS, GROUPS)
    for urn, attributes in [(None, rt.schema.attributes), *((e.id, e.attributes) for e, _ in rt.extensions)]
    for attribute in attributes
]
_SUB_NAMES = sorted({s.name for _, _, a in _TOP for s in a.sub_attributes})
_keys = st.sampled_from(_SUB_NAMES).flatmap(lambda k: st.sampled_from([k, k.upper(), k.lower()])) | st.text(
    max_size=4
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=4)
    | st.sampled_from(
        ["True", "false", "work", "WORK", "Home", "User", "aGVsbG8=", "2008-01-23T04:56:22Z", " "]
    )
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=12,
) | st.lists(  # well-formed elements of a multi-valued attribute, primaries and all
    st.fixed_dictionaries(
        {"value": st.text(max_size=3)},
        optional={
            "primary": st.booleans(),
            "type": st.sampled_from(["work", "Home", "x"]),
            "display": _scalars,
        },
    ),
    max_size=3,
)


def _outcome(call: Any) -> tuple[Any, ...]:
    """What a check gives: its value as JSON (``true`` is not ``1``), or its error in full."""
    try:
        return ("value", orjson.dumps(call()))
    except ScimError as exc:
        return (type(exc).__name__, exc.detail, exc.scim_type)


@settings(max_examples=2000, deadline=None)
@given(target=st.sampled_from(_TOP), value=_values, compat=st.sampled_from([LENIENT, STRICT]))
def test_compiled_checks_agree_with_validate_attribute_value(
    target: tuple[ResourceType, str | None, Attribute], value: Any, compat: CompatSettings
) -> None:
    rt, urn, attribute = target
    where = attribute.name if urn is None else f"{urn}:{attribute.name}"
    check = compile_check(rt, urn, attribute, where)
    given_value = copy.deepcopy(value)
    compiled = _outcome(lambda: check(given_value, compat))
    general = _outcome(
        lambda: validate_attribute_value(rt, urn, attribute, copy.deepcopy(value), compat, where=where)
    )
    assert compiled == general
    assert given_value == value  # neither mutates its input


def test_compiled_checks_keep_several_primaries_an_error() -> None:
    emails = next(a for rt, urn, a in _TOP if rt is USERS and a.name == "emails")
    value = [{"value": "a", "primary": True}, {"value": "b", "primary": True}]
    with pytest.raises(InvalidValue, match="emails has 2 values with primary true"):
        compile_check(USERS, None, emails, "emails")(value, LENIENT)


@pytest.fixture
def general_users(monkeypatch: pytest.MonkeyPatch) -> ResourceType:
    """A copy of the User resource type (so a plan of its own) whose key table is built with the
    general ``validate_attribute_value`` in place of each compiled check (USERS keeps its own)."""
    reference = dataclasses.replace(USERS)
    compiled = parse_module.compile_check

    def chosen(rt: ResourceType, urn: str | None, attribute: Attribute, where: str) -> Any:
        if rt is not reference:
            return compiled(rt, urn, attribute, where)
        return lambda value, compat: validate_attribute_value(rt, urn, attribute, value, compat, where=where)

    monkeypatch.setattr(parse_module, "compile_check", chosen)
    return reference


_bodies = st.fixed_dictionaries(
    {"schemas": st.sampled_from([[USER, ENTERPRISE_USER], [USER]]), "userName": st.just("u")},
).flatmap(
    lambda base: st.dictionaries(
        st.sampled_from(
            [
                "name",
                "emails",
                "phoneNumbers",
                "addresses",
                "active",
                "title",
                "roles",
                "meta",
                ENTERPRISE_USER,
            ]
        ),
        _values,
        max_size=4,
    ).map(lambda d: {**base, **d})
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bodies, compat=st.sampled_from([LENIENT, STRICT]))
def test_parse_with_compiled_checks_agrees_with_the_general_path(
    general_users: ResourceType, body: dict[str, Any], compat: CompatSettings
) -> None:
    compiled = _outcome(lambda: parse_resource(USERS, copy.deepcopy(body), compat))
    general = _outcome(lambda: parse_resource(general_users, copy.deepcopy(body), compat))
    assert compiled == general
