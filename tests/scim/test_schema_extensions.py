"""Declared extension schemas: what ``parse_extension`` accepts, what it refuses and why, and a
registry ``extend`` builds (resolution by URN, parsing, validation, canonical documents)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from provisor.scim.compat import CompatSettings
from provisor.scim.errors import InvalidValue
from provisor.scim.filter.evaluate import matches
from provisor.scim.filter.parser import parse_filter
from provisor.scim.resources import document, parse_resource
from provisor.scim.schema import ENTERPRISE_USER, USER, AttributeType, Mutability, Returned, default_registry
from provisor.scim.schema.extensions import InvalidSchemaDefinition, extend, parse_extension

URN = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"


def definition(**overrides: Any) -> dict[str, Any]:
    """A custom extension as an admin writes it for Entra's attribute list (entra-behaviour.md 1.3)."""
    out: dict[str, Any] = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": URN,
        "name": "CustomExtension",
        "description": "Attributes the app keeps that RFC 7643 does not define",
        "attributes": [
            {"name": "costCode", "type": "string", "caseExact": False, "mutability": "readWrite"},
            {"name": "badgeNumber", "type": "integer"},
            {"name": "skills", "type": "string", "multiValued": True},
            {
                "name": "badge",
                "type": "complex",
                "subAttributes": [
                    {"name": "number", "type": "string", "required": True},
                    {"name": "issued", "type": "dateTime"},
                ],
            },
            {"name": "note", "type": "string", "returned": "request"},
        ],
    }
    out.update(overrides)
    return out


def test_a_definition_becomes_a_schema_with_the_rfc_defaults() -> None:
    ext = parse_extension(definition(), default_registry(), "user")
    assert (ext.resource_type, ext.urn, ext.required) == ("User", URN, False)
    by_name = {a.name: a for a in ext.schema.attributes}
    assert list(by_name) == ["costCode", "badgeNumber", "skills", "badge", "note"]
    assert by_name["badgeNumber"].type is AttributeType.INTEGER
    assert by_name["badgeNumber"].mutability is Mutability.READ_WRITE
    assert by_name["skills"].multi_valued is True
    assert by_name["note"].returned is Returned.REQUEST
    assert [s.name for s in by_name["badge"].sub_attributes] == ["number", "issued"]
    # what /Schemas shows parses back to the same schema
    again = parse_extension(ext.schema.to_json(), default_registry(), "User")
    assert again.schema == ext.schema


def test_extend_adds_the_extension_to_its_resource_type_only() -> None:
    registry = extend(
        default_registry(), [parse_extension(definition(), default_registry(), "User", required=True)]
    )
    users = registry.resource_type("User")
    groups = registry.resource_type("Group")
    assert users is not None and groups is not None
    assert users.schema_ids == (USER, ENTERPRISE_USER, URN)
    assert users.extensions[-1][1] is True
    assert groups.extensions == ()
    assert registry.schema(URN.upper()) is not None
    assert users.split_urn(f"{URN}:badge.number") == (URN, "badge.number")
    found = users.attribute(URN, "COSTCODE")
    assert found is not None and found[0] == URN and found[1].name == "costCode"
    assert default_registry().resource_type("User").schema_ids == (USER, ENTERPRISE_USER)  # type: ignore[union-attr]


def test_a_declared_extension_is_validated_and_kept_in_canonical_order() -> None:
    registry = extend(default_registry(), [parse_extension(definition(), default_registry(), "User")])
    users = registry.resource_type("User")
    assert users is not None
    compat = CompatSettings.default()
    body = {
        "schemas": [USER],  # Entra leaves the custom URN out (Q7)
        "userName": "alice@contoso.com",
        URN.lower(): {"SKILLS": ["go"], "costcode": "CC-1", "badge": {"number": "B7"}},
    }
    data = parse_resource(users, body, compat)
    assert document(users, data) == {
        "userName": "alice@contoso.com",
        URN: {"costCode": "CC-1", "skills": ["go"], "badge": {"number": "B7"}},
    }
    from provisor.scim.errors import InvalidValue

    for wrong, message in [
        ({"badgeNumber": "7"}, "badgeNumber must be an integer"),
        ({"badge": {"issued": "2024-01-02T00:00:00Z"}}, "number is required"),
        ({"skills": "go"}, "skills"),
    ]:
        with pytest.raises(InvalidValue, match=message):
            parse_resource(users, {"schemas": [USER], "userName": "a", URN: wrong}, compat)


def attribute(**fields: Any) -> dict[str, Any]:
    return definition(attributes=[{"name": "costCode", "type": "string", **fields}])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["not", "an", "object"], "is a JSON object"),
        (definition(id=None), "id: a schema's id is its URN"),
        (definition(id="CustomExtension"), "is not a URN Provisor accepts"),
        (definition(id='urn:x:a"b'), "is not a URN Provisor accepts"),
        (definition(id="urn:x:a b"), "is not a URN Provisor accepts"),
        (definition(id="urn:x:" + "a" * 200), "at most 200 characters"),
        (definition(id="urn:ietf:params:scim:api:messages:2.0:Custom"), "message namespace"),
        (definition(id=USER.lower()), "is declared already"),
        (definition(id=ENTERPRISE_USER), "is declared already"),
        (definition(id=ENTERPRISE_USER + ":More"), "would make paths ambiguous"),
        (definition(id="urn:ietf:params:scim:schemas:core:2.0"), "would make paths ambiguous"),
        # RFC 7643's meta-schemas (sections 5 to 7) were taken for extensions of a User
        (definition(id="urn:ietf:params:scim:schemas:core:2.0:Schema"), "namespace of RFC 7643's own"),
        (definition(id="urn:ietf:params:scim:schemas:core:2.0:ResourceType"), "namespace of RFC 7643's own"),
        # "(", ")" and "," end a path in a filter and split attributes: never addressable
        (definition(id="urn:example:c1x(y:User"), "is not a URN Provisor accepts"),
        (definition(id="urn:example:a,b:User"), "is not a URN Provisor accepts"),
        (definition(attributes=[]), "non-empty list of attributes"),
        (definition(attributes="costCode"), "non-empty list of attributes"),
        (definition(mutability="readWrite"), "unknown member 'mutability'"),
        (definition(name=7), "the schema.name: a string"),
        (definition(attributes=["costCode"]), r"attributes\[0\]: an attribute is a JSON object"),
        (attribute(name="cost code"), "is not an attribute name"),
        (attribute(name="$ref"), "is not an attribute name"),
        (attribute(name="9lives"), "is not an attribute name"),
        (attribute(type="text"), "type: is 'text'; one of string"),
        (definition(attributes=[{"name": "costCode"}]), "type: is required"),
        (attribute(multiValued="yes"), "multiValued: true or false"),
        (attribute(required=1), "required: true or false"),
        (attribute(mutability="readonly"), "mutability: is 'readonly'"),
        (attribute(returned="sometimes"), "returned: is 'sometimes'"),
        (attribute(uniqueness="server"), "enforces uniqueness only for userName"),
        (attribute(uniqueness="global"), "enforces uniqueness only for userName"),
        (attribute(mutability="readOnly"), "readOnly attributes are set by the server"),
        (attribute(mutability="writeOnly", returned="never"), "keeps no value it never returns"),
        (attribute(returned="never"), "keeps no value it never returns"),
        (attribute(canonicalValues=["a", 1]), "canonicalValues: a list of non-empty strings"),
        (attribute(type="integer", canonicalValues=["gold"]), "canonicalValues: canonical values are text"),
        (attribute(type="boolean", canonicalValues=["x"]), "checks them only on an attribute whose values"),
        (attribute(type="decimal", canonicalValues=["1.5"]), "not decimal"),
        # canonical values no value of the type could be, so that every value was refused
        (attribute(type="dateTime", canonicalValues=["yesterday"]), "'yesterday' is no dateTime value"),
        (attribute(type="binary", canonicalValues=["!!"]), "'!!' is no binary value"),
        (attribute(referenceTypes=["external"]), "referenceTypes: only a reference attribute has them"),
        (
            definition(
                attributes=[
                    {
                        "name": "cx",
                        "type": "complex",
                        "subAttributes": [{"name": "tags", "type": "string", "multiValued": True}],
                    }
                ]
            ),
            "a sub-attribute holds one value",
        ),
        (attribute(mutablity="readWrite"), "unknown member 'mutablity'"),
        (
            attribute(subAttributes=[{"name": "x", "type": "string"}]),
            "only a complex attribute has sub-attributes",
        ),
        (definition(attributes=[{"name": "ref", "type": "reference"}]), "referenceTypes: a reference names"),
        (definition(attributes=[{"name": "badge", "type": "complex"}]), "declares its sub-attributes"),
        (
            definition(
                attributes=[
                    {
                        "name": "badge",
                        "type": "complex",
                        "subAttributes": [{"name": "inner", "type": "complex", "subAttributes": []}],
                    }
                ]
            ),
            "a sub-attribute cannot be complex",
        ),
        (
            definition(
                attributes=[{"name": "costCode", "type": "string"}, {"name": "COSTCODE", "type": "integer"}]
            ),
            r"attributes\[1\]\.name: 'COSTCODE' is declared twice",
        ),
    ],
)
def test_what_is_refused_and_where(bad: Any, message: str) -> None:
    before = copy.deepcopy(bad)
    with pytest.raises(InvalidSchemaDefinition, match=message) as raised:
        parse_extension(bad, default_registry(), "User")
    assert raised.value.status == 400 and raised.value.scim_type == "invalidValue"
    assert bad == before  # the definition is read, never changed


def test_a_reference_names_its_types_and_a_sub_attribute_may_be_ref() -> None:
    ext = parse_extension(
        definition(
            attributes=[
                {
                    "name": "mentor",
                    "type": "complex",
                    "subAttributes": [
                        {"name": "value", "type": "string"},
                        {"name": "$ref", "type": "reference", "referenceTypes": ["User"]},
                    ],
                }
            ]
        ),
        default_registry(),
        "User",
    )
    assert ext.schema.attributes[0].sub("$REF") is not None


def test_a_binary_attribute_is_case_exact() -> None:
    """RFC 7643 section 2.3.6: "A binary value is case exact". ``QUJD`` and ``qujd`` are other bytes
    (b"ABC" and three bytes above 0x7f), so no filter may take one for the other, whatever the definition
    says (a declaration stored before this rule says caseExact false, and loads as case exact)."""
    attributes = [
        {"name": "photo", "type": "binary"},
        {"name": "key", "type": "binary", "caseExact": False},
        {"name": "cert", "type": "complex", "subAttributes": [{"name": "value", "type": "binary"}]},
        {"name": "label", "type": "string"},
    ]
    ext = parse_extension(definition(attributes=attributes), default_registry(), "User")
    by_name = {a.name: a for a in ext.schema.attributes}
    assert by_name["photo"].case_exact and by_name["key"].case_exact
    assert by_name["cert"].sub("value").case_exact  # type: ignore[union-attr]
    assert not by_name["label"].case_exact
    assert ext.schema.to_json()["attributes"][0]["caseExact"] is True  # as /Schemas shows it
    users = extend(default_registry(), [ext]).resource_type("User")
    assert users is not None
    stored = {URN: {"photo": "qujd", "key": "qujd", "cert": {"value": "qujd"}, "label": "qujd"}}
    for attr in ("photo", "key", "cert.value"):
        assert not matches(parse_filter(f'{URN}:{attr} eq "QUJD"', users), stored, users), attr
        assert matches(parse_filter(f'{URN}:{attr} eq "qujd"', users), stored, users), attr
    assert matches(parse_filter(f'{URN}:label eq "QUJD"', users), stored, users)


def test_an_unknown_resource_type_is_named() -> None:
    with pytest.raises(InvalidSchemaDefinition, match="no resource type 'Widget'; known: User, Group"):
        parse_extension(definition(), default_registry(), "Widget")


def test_a_second_extension_must_not_clash_with_the_first() -> None:
    first = parse_extension(definition(), default_registry(), "User")
    registry = extend(default_registry(), [first])
    with pytest.raises(InvalidSchemaDefinition, match="is declared already"):
        parse_extension(definition(id=URN.upper()), registry, "Group")
    group_ext = parse_extension(definition(id="urn:example:scim:Team:2.0:Group"), registry, "Group")
    both = extend(registry, [group_ext])
    groups = both.resource_type("Group")
    assert groups is not None and groups.schema_ids[-1] == "urn:example:scim:Team:2.0:Group"


def test_a_stored_declaration_with_canonical_values_on_a_number_loads_without_them() -> None:
    """Declared before the rule, it is read back as the server reads it (``stored``): the values,
    never checked, are no longer advertised, and the rest of the extension stays."""
    bad = definition(attributes=[{"name": "level", "type": "integer", "canonicalValues": ["gold"]}])
    with pytest.raises(InvalidSchemaDefinition, match="canonical values are text"):
        parse_extension(bad, default_registry(), "User")
    loaded = parse_extension(bad, default_registry(), "User", stored=True)
    [level] = loaded.schema.attributes
    assert level.name == "level" and level.canonical_values == ()


def test_stored_declarations_made_under_earlier_rules_load_as_they_behaved() -> None:
    """A URN with "(" and a multi-valued sub-attribute were declared before the rules: they load
    (the server must start), the sub-attribute single-valued as its values were stored, and
    impossible canonical values and stray referenceTypes left out."""
    bad = definition(
        id="urn:example:old(1):User",
        attributes=[
            {
                "name": "cx",
                "type": "complex",
                "subAttributes": [{"name": "tags", "type": "string", "multiValued": True}],
            },
            {"name": "when", "type": "dateTime", "canonicalValues": ["yesterday"]},
            {"name": "label", "type": "string", "referenceTypes": ["external"]},
        ],
    )
    loaded = parse_extension(bad, default_registry(), "User", stored=True)
    cx, when, label = loaded.schema.attributes
    assert loaded.schema.id == "urn:example:old(1):User"
    assert cx.sub_attributes[0].multi_valued is False
    assert when.canonical_values == () and label.reference_types == ()


def _users_with(attributes: list[dict[str, Any]]) -> Any:
    ext = parse_extension(definition(attributes=attributes), default_registry(), "User")
    users = extend(default_registry(), [ext]).resource_type("User")
    assert users is not None
    return users


def _body(**custom: Any) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", URN], "userName": "a", URN: custom}


@pytest.mark.parametrize(
    "compat", [CompatSettings.default(), CompatSettings.strict()], ids=["default", "strict"]
)
def test_canonical_values_are_compared_as_the_attribute_compares(compat: CompatSettings) -> None:
    """A caseExact attribute's canonical values, and a binary one's (other case, other bytes),
    are matched as written: "gold" passed a caseExact ["Gold", "Silver"] and was then found by no
    eq "Gold". Others match in any case, and the value is kept as sent."""
    users = _users_with(
        [
            {"name": "tierExact", "type": "string", "caseExact": True, "canonicalValues": ["Gold", "Silver"]},
            {"name": "tier", "type": "string", "canonicalValues": ["Gold", "Silver"]},
            {"name": "blob", "type": "binary", "canonicalValues": ["QUJD"]},
            {
                "name": "badge",
                "type": "complex",
                "subAttributes": [
                    {"name": "color", "type": "string", "caseExact": True, "canonicalValues": ["Red"]}
                ],
            },
        ]
    )
    assert parse_resource(users, _body(tierExact="Gold", tier="gold", blob="QUJD"), compat)[URN] == {
        "tierExact": "Gold",
        "tier": "gold",
        "blob": "QUJD",
    }
    for bad in ({"tierExact": "gold"}, {"blob": "qujd"}, {"badge": {"color": "red"}}):
        with pytest.raises(InvalidValue, match="must be one of"):
            parse_resource(users, _body(**bad), compat)
    assert parse_resource(users, _body(badge={"color": "Red"}), compat)[URN] == {"badge": {"color": "Red"}}


@pytest.mark.parametrize(
    "compat", [CompatSettings.default(), CompatSettings.strict()], ids=["default", "strict"]
)
def test_an_extension_attribute_called_type_keeps_its_canonical_values(compat: CompatSettings) -> None:
    """free_type_labels frees the labels of the core User schema's type sub-attributes (emails,
    phoneNumbers, ...): an extension's own "type" declares the values it wants checked (a
    default tenant stored "tablet" for ["laptop", "phone"])."""
    users = _users_with(
        [
            {"name": "type", "type": "string", "canonicalValues": ["contractor", "employee"]},
            {
                "name": "devices",
                "type": "complex",
                "multiValued": True,
                "subAttributes": [{"name": "type", "type": "string", "canonicalValues": ["laptop", "phone"]}],
            },
        ]
    )
    for bad in ({"type": "intern"}, {"devices": [{"type": "tablet"}]}):
        with pytest.raises(InvalidValue, match="must be one of"):
            parse_resource(users, _body(**bad), compat)
    core = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "a",
        "emails": [{"value": "a@x.com", "type": "office"}],
    }
    if compat.on("free_type_labels"):
        assert parse_resource(users, core, compat)["emails"] == [{"value": "a@x.com", "type": "office"}]
    else:
        with pytest.raises(InvalidValue, match="must be one of"):
            parse_resource(users, core, compat)


def test_binary_values_are_base64_with_exact_padding() -> None:
    """Python's decoder takes excess padding: "QUJD=" stored, the same bytes as "QUJD", which an
    eq "QUJD" then missed (RFC 4648 section 4; RFC 7643 section 2.3.6)."""
    users = _users_with([{"name": "blob", "type": "binary"}])
    for good in ("QUJD", "QUI=", "QQ==", ""):
        parse_resource(users, _body(blob=good), CompatSettings.strict())
    for bad in ("QUJD=", "QUJD====", "QQ", "QUJ", "QQ=", "Q===", "QU JD", "QUJD\n"):
        with pytest.raises(InvalidValue, match="base64"):
            parse_resource(users, _body(blob=bad), CompatSettings.strict())


def test_an_unqualified_attribute_two_extensions_declare_is_the_enterprise_ones() -> None:
    """Entra's older create sample sends department at the top level (Q7): with a custom
    extension declaring department too, the value vanished (no one owner); the enterprise
    extension's it is, as Entra means."""
    users = _users_with([{"name": "department", "type": "string"}])
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a", "department": "Sales"}
    data = parse_resource(users, body, CompatSettings.default())
    assert data[ENTERPRISE_USER] == {"department": "Sales"} and URN not in data


def test_reads_resolve_an_unqualified_name_two_extensions_declare_as_writes_do() -> None:
    """department eq "Sales" found the value a write put in the enterprise extension? It was 400
    "unknown attribute" once a custom extension declared department too."""
    users = _users_with([{"name": "department", "type": "string"}])
    parsed = parse_filter('department eq "Sales"', users, allow_unquoted=True)
    assert parsed.path.urn == ENTERPRISE_USER  # type: ignore[union-attr]
