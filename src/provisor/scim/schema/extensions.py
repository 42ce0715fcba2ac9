"""Extension schemas a deployment declares: Entra's and Okta's custom attributes, stored and served.

Entra lets an admin add attributes to a non-gallery app's target schema under a URN of the app's
choosing (``urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User:costCode``), and
sends them in bodies and PATCH paths without listing the URN in ``schemas`` (entra-behaviour.md
1.3, Q7); Okta's custom attributes look the same. A server that does not declare the URN drops
them (``unknown_attributes_ignored``). A declared one is validated, stored, filtered on, returned
and listed in discovery like the enterprise extension, because everything downstream is compiled
from the registry.

:func:`parse_extension` checks a definition (RFC 7643 section 7, the shape ``/Schemas`` returns)
strictly, so that what discovery later advertises is what the server does: unknown keys, names
outside the ATTRNAME grammar (section 2.1), nested complex attributes (section 2.3.8), uniqueness
the store does not enforce, readOnly attributes nothing could ever set, and writeOnly or
never-returned ones the store would drop are refused, each with the JSON path of the offending
member. A binary attribute is case exact whatever its ``caseExact`` says (RFC 7643 section 2.3.6).
:func:`extend` adds parsed extensions to a registry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from provisor.scim.errors import InvalidValue
from provisor.scim.filter.lexer import parse_datetime
from provisor.scim.resources.values import is_base64
from provisor.scim.schema.model import (
    AttributeType,
    Mutability,
    Returned,
    Schema,
    SchemaRegistry,
    Uniqueness,
)

#: RFC 8141's URN shape, restricted to the characters SCIM schema URNs use in practice. Quotes,
#: backslashes, spaces and ``%`` are left out: the URN is a JSON key and a JSON-path segment.
_URN = re.compile(r"[Uu][Rr][Nn]:[A-Za-z0-9][A-Za-z0-9-]{0,31}:[A-Za-z0-9()+,.:=@;$_!*'/-]+")
#: What a new declaration's URN may hold: no ``(``, ``)`` or ``,``, which end an attribute path in
#: a filter and split ``attributes`` (a URN with them could be declared and never addressed).
#: Declarations stored before this rule load with :data:`_URN`.
_NEW_URN = re.compile(r"[Uu][Rr][Nn]:[A-Za-z0-9][A-Za-z0-9-]{0,31}:[A-Za-z0-9+.:=@;$_!*'/-]+")
#: RFC 7643's own schemas live here (User, Group, Schema, ResourceType, ServiceProviderConfig).
_CORE = "urn:ietf:params:scim:schemas:core:"
#: The longest URN accepted (the store keeps it in a 200-character column).
MAX_URN_LENGTH = 200
#: ATTRNAME (RFC 7643 section 2.1).
_ATTRNAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
#: The namespace of SCIM's own messages (RFC 7644 section 3.1): no resource schema lives there.
_MESSAGES = "urn:ietf:params:scim:api:"

_SCHEMA_KEYS = frozenset({"schemas", "id", "name", "description", "attributes", "meta"})
_ATTRIBUTE_KEYS = frozenset(
    {
        "name",
        "type",
        "subAttributes",
        "multiValued",
        "description",
        "required",
        "canonicalValues",
        "caseExact",
        "mutability",
        "returned",
        "uniqueness",
        "referenceTypes",
    }
)


class InvalidSchemaDefinition(InvalidValue):
    """400 invalidValue: an extension schema definition Provisor cannot declare as given."""


@dataclass(frozen=True, slots=True)
class SchemaExtension:
    """An extension schema declared for one resource type (RFC 7643 section 6, ``schemaExtensions``)."""

    resource_type: str
    schema: Schema
    required: bool = False

    @property
    def urn(self) -> str:
        return self.schema.id


def parse_extension(
    definition: Any,
    registry: SchemaRegistry,
    resource_type: str,
    *,
    required: bool = False,
    stored: bool = False,
) -> SchemaExtension:
    """The extension ``definition`` declares for ``resource_type`` of ``registry``, checked.

    Raises :class:`InvalidSchemaDefinition` naming the first problem and where it is. ``stored``:
    a declaration read back from the database, made under earlier rules; what a later rule
    refuses, where it can be left out without changing what is stored, is left out instead
    (canonical values on a number or a boolean, which were never checked).
    """
    rt = registry.resource_type(resource_type)
    if rt is None:
        known = ", ".join(r.name for r in registry.resource_types)
        raise InvalidSchemaDefinition(f"no resource type {resource_type!r}; known: {known}")
    if not isinstance(definition, Mapping):
        raise InvalidSchemaDefinition("a schema definition is a JSON object (RFC 7643 section 7)")
    _no_unknown_keys(definition, _SCHEMA_KEYS, "the schema")
    urn = _urn(definition.get("id"), registry, stored=stored)
    name = _text(definition, "name", "the schema")
    description = _text(definition, "description", "the schema")
    raw = definition.get("attributes")
    if not isinstance(raw, list) or not raw:
        raise InvalidSchemaDefinition("attributes: a schema declares a non-empty list of attributes")
    attributes = _attributes(raw, "attributes", nested=False, stored=stored)
    schema = Schema.from_json({"id": urn, "name": name, "description": description, "attributes": attributes})
    return SchemaExtension(rt.name, schema, required)


def extend(registry: SchemaRegistry, extensions: Iterable[SchemaExtension]) -> SchemaRegistry:
    """``registry`` with each extension added to its resource type, in order."""
    schemas = list(registry.schemas)
    types = list(registry.resource_types)
    for ext in extensions:
        index = next(i for i, rt in enumerate(types) if rt.name == ext.resource_type)
        rt = types[index]
        types[index] = replace(rt, extensions=(*rt.extensions, (ext.schema, ext.required)))
        schemas.append(ext.schema)
    return SchemaRegistry(schemas=tuple(schemas), resource_types=tuple(types))


def _urn(value: Any, registry: SchemaRegistry, *, stored: bool = False) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidSchemaDefinition("id: a schema's id is its URN, a string such as urn:example:2.0:User")
    if len(value) > MAX_URN_LENGTH or (_URN if stored else _NEW_URN).fullmatch(value) is None:
        raise InvalidSchemaDefinition(
            f"id: {value[:MAX_URN_LENGTH]!r} is not a URN Provisor accepts: 'urn:', a namespace of "
            f"letters, digits and '-', ':', then letters, digits and +.:=@;$_!*'/- "
            f"(at most {MAX_URN_LENGTH} characters)"
        )
    low = value.lower()
    if low.startswith(_MESSAGES):
        raise InvalidSchemaDefinition(f"id: {value} is in SCIM's message namespace {_MESSAGES}")
    for schema in registry.schemas:
        other = schema.id.lower()
        if low == other:
            raise InvalidSchemaDefinition(f"id: the schema {schema.id} is declared already")
        if low.startswith(other + ":") or other.startswith(low + ":"):
            # ``<urn>:<attr>`` paths could not tell the two apart (RFC 7644 section 3.10)
            raise InvalidSchemaDefinition(
                f"id: {value} and the declared {schema.id} would make paths ambiguous"
            )
    if low.startswith(_CORE) and not stored:
        raise InvalidSchemaDefinition(
            f"id: {value} is in the namespace of RFC 7643's own schemas ({_CORE}); "
            "an extension of yours takes a URN of your own, "
            "e.g. urn:example:params:scim:schemas:extension:app:2.0:User"
        )
    return value


def _attributes(
    raw: Sequence[Any], where: str, *, nested: bool, stored: bool = False
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        attribute = _attribute(item, here, nested=nested, stored=stored)
        low = attribute["name"].lower()
        if low in seen:
            raise InvalidSchemaDefinition(
                f"{here}.name: {attribute['name']!r} is declared twice (names are case-insensitive)"
            )
        seen.add(low)
        out.append(attribute)
    return out


def _attribute(item: Any, where: str, *, nested: bool, stored: bool = False) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise InvalidSchemaDefinition(f"{where}: an attribute is a JSON object")
    _no_unknown_keys(item, _ATTRIBUTE_KEYS, where)
    name = item.get("name")
    if not isinstance(name, str) or not (_ATTRNAME.fullmatch(name) or (nested and name == "$ref")):
        raise InvalidSchemaDefinition(
            f"{where}.name: {name!r} is not an attribute name (a letter, then letters, digits, '-' or '_')"
        )
    here = f"{where} ({name})"
    out: dict[str, Any] = {"name": name, "description": _text(item, "description", here)}
    out["type"] = _choice(item, "type", AttributeType, here, default=None)
    for key in ("multiValued", "required", "caseExact"):
        flag = item.get(key, False)
        if not isinstance(flag, bool):
            raise InvalidSchemaDefinition(f"{here}.{key}: true or false, not {flag!r}")
        out[key] = flag
    if nested and out["multiValued"]:
        # no value of one could be stored (a list in a sub-attribute is refused), so discovery
        # would promise what no request can do; stored ones load single-valued, as they behaved
        if not stored:
            raise InvalidSchemaDefinition(
                f"{here}.multiValued: a sub-attribute holds one value; make the complex attribute "
                "multi-valued instead"
            )
        out["multiValued"] = False
    if out["type"] == AttributeType.BINARY:
        # RFC 7643 section 2.3.6: "A binary value is case exact": base64 that differs in case is
        # other bytes. caseExact false (the default) would have filters and sortBy fold it, and
        # declarations stored before this rule load with it too.
        out["caseExact"] = True
    out["mutability"] = _choice(item, "mutability", Mutability, here, default=Mutability.READ_WRITE)
    out["returned"] = _choice(item, "returned", Returned, here, default=Returned.DEFAULT)
    out["uniqueness"] = _choice(item, "uniqueness", Uniqueness, here, default=Uniqueness.NONE)
    out["canonicalValues"] = _strings(item, "canonicalValues", here)
    out["referenceTypes"] = _strings(item, "referenceTypes", here)
    text = (AttributeType.STRING, AttributeType.REFERENCE, AttributeType.DATETIME, AttributeType.BINARY)
    if out["canonicalValues"] and out["type"] not in text:
        # RFC 7643 section 7 lists them as strings; a value of another type is never one of them
        if stored:
            out["canonicalValues"] = []
        else:
            raise InvalidSchemaDefinition(
                f"{here}.canonicalValues: canonical values are text, and Provisor checks them only on an "
                f"attribute whose values are (string, reference, dateTime, binary), not {out['type']}"
            )
    if out["uniqueness"] != Uniqueness.NONE:
        raise InvalidSchemaDefinition(
            f"{here}.uniqueness: Provisor enforces uniqueness only for userName and a Group's "
            'displayName; declare "none" so that discovery does not promise it'
        )
    if out["mutability"] == Mutability.READ_ONLY:
        raise InvalidSchemaDefinition(
            f"{here}.mutability: readOnly attributes are set by the server, and Provisor sets no "
            "extension attribute; declare readWrite, immutable or writeOnly"
        )
    if out["mutability"] == Mutability.WRITE_ONLY or out["returned"] == Returned.NEVER:
        raise InvalidSchemaDefinition(
            f"{here}: Provisor keeps no value it never returns (as with a User's password), so a "
            'writeOnly attribute or one returned "never" would be accepted and dropped'
        )
    if out["canonicalValues"] and out["type"] in (AttributeType.DATETIME, AttributeType.BINARY):
        fails = next((v for v in out["canonicalValues"] if not _valid_text(out["type"], v)), None)
        if fails is not None:
            if stored:
                out["canonicalValues"] = []
            else:
                raise InvalidSchemaDefinition(
                    f"{here}.canonicalValues: {fails!r} is no {out['type']} value, so no value could pass"
                )
    if out["referenceTypes"] and out["type"] != AttributeType.REFERENCE:
        if stored:
            out["referenceTypes"] = []
        else:
            raise InvalidSchemaDefinition(
                f"{here}.referenceTypes: only a reference attribute has them, not a {out['type']}"
            )
    if out["type"] == AttributeType.REFERENCE and not out["referenceTypes"]:
        raise InvalidSchemaDefinition(
            f'{here}.referenceTypes: a reference names what it may refer to, e.g. ["external"] or ["User"]'
        )
    subs = item.get("subAttributes")
    if out["type"] == AttributeType.COMPLEX:
        if nested:
            raise InvalidSchemaDefinition(
                f"{here}.type: a sub-attribute cannot be complex (RFC 7643 section 2.3.8)"
            )
        if not isinstance(subs, list) or not subs:
            raise InvalidSchemaDefinition(
                f"{here}.subAttributes: a complex attribute declares its sub-attributes"
            )
        out["subAttributes"] = _attributes(subs, f"{here}.subAttributes", nested=True, stored=stored)
    elif subs is not None:
        raise InvalidSchemaDefinition(f"{here}.subAttributes: only a complex attribute has sub-attributes")
    return out


def _valid_text(kind: AttributeType, value: str) -> bool:
    """Whether ``value`` is a value of a dateTime or binary attribute, as writes check them."""
    if kind is AttributeType.DATETIME:
        return parse_datetime(value) is not None
    return is_base64(value)


def _choice(item: Mapping[str, Any], key: str, kind: Any, where: str, *, default: Any) -> Any:
    value = item.get(key, default)
    allowed = [member.value for member in kind]
    if value not in allowed:
        missing = "is required" if value is None else f"is {value!r}"
        raise InvalidSchemaDefinition(f"{where}.{key}: {missing}; one of {', '.join(allowed)}")
    return kind(value)


def _strings(item: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = item.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidSchemaDefinition(f"{where}.{key}: a list of non-empty strings")
    return list(value)


def _text(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key, "")
    if not isinstance(value, str):
        raise InvalidSchemaDefinition(f"{where}.{key}: a string, not {value!r}")
    return value


def _no_unknown_keys(item: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    for key in item:
        if key not in known:
            raise InvalidSchemaDefinition(
                f"{where}: unknown member {key!r} (RFC 7643 section 7 defines {', '.join(sorted(known))})"
            )
