"""Attribute definitions compiled from RFC 7643 schema JSON (section 7), and the registry that
resolves attribute names case-insensitively (RFC 7643 section 2.1) to their canonical spelling."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


#: The integers an ``integer`` or ``decimal`` attribute can hold and a filter can compare with.
#: RFC 7643 section 2.3.4 sets no bound; Provisor's stores (SQLite's and PostgreSQL's integers)
#: are signed 64-bit, so writes and filters both keep to that range.
MIN_INTEGER = -(2**63)
MAX_INTEGER = 2**63 - 1
INTEGER_RANGE = f"{MIN_INTEGER} to {MAX_INTEGER} (signed 64-bit)"


class AttributeType(enum.StrEnum):
    STRING = "string"
    BOOLEAN = "boolean"
    DECIMAL = "decimal"
    INTEGER = "integer"
    DATETIME = "dateTime"
    BINARY = "binary"
    REFERENCE = "reference"
    COMPLEX = "complex"


class Mutability(enum.StrEnum):
    READ_ONLY = "readOnly"
    READ_WRITE = "readWrite"
    IMMUTABLE = "immutable"
    WRITE_ONLY = "writeOnly"


class Returned(enum.StrEnum):
    ALWAYS = "always"
    NEVER = "never"
    DEFAULT = "default"
    REQUEST = "request"


class Uniqueness(enum.StrEnum):
    NONE = "none"
    SERVER = "server"
    GLOBAL = "global"


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute definition (RFC 7643 section 7). ``sub_attributes`` is empty unless complex."""

    name: str
    type: AttributeType
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: Mutability = Mutability.READ_WRITE
    returned: Returned = Returned.DEFAULT
    uniqueness: Uniqueness = Uniqueness.NONE
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    description: str = ""
    sub_attributes: tuple[Attribute, ...] = ()
    _by_lower: Mapping[str, Attribute] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Attribute:
        subs = tuple(cls.from_json(s) for s in data.get("subAttributes", ()))
        return cls(
            name=data["name"],
            type=AttributeType(data["type"]),
            multi_valued=bool(data.get("multiValued", False)),
            required=bool(data.get("required", False)),
            case_exact=bool(data.get("caseExact", False)),
            mutability=Mutability(data.get("mutability", "readWrite")),
            returned=Returned(data.get("returned", "default")),
            uniqueness=Uniqueness(data.get("uniqueness", "none")),
            canonical_values=tuple(data.get("canonicalValues", ()) or ()),
            reference_types=tuple(data.get("referenceTypes", ()) or ()),
            description=data.get("description", ""),
            sub_attributes=subs,
            _by_lower={s.name.lower(): s for s in subs},
        )

    def sub(self, name: str) -> Attribute | None:
        """The sub-attribute called ``name`` (any case), or None."""
        return self._by_lower.get(name.lower())

    def to_json(self) -> dict[str, Any]:
        """The RFC 7643 section 7 representation, nulls omitted (Entra wants camelCase, no nulls)."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type.value,
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability.value,
            "returned": self.returned.value,
            "uniqueness": self.uniqueness.value,
        }
        if self.canonical_values:
            out["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            out["referenceTypes"] = list(self.reference_types)
        if self.sub_attributes:
            out["subAttributes"] = [s.to_json() for s in self.sub_attributes]
        return out


@dataclass(frozen=True, slots=True)
class Schema:
    """A schema (RFC 7643 section 7): its URN, name, description and top-level attributes."""

    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...]
    _by_lower: Mapping[str, Attribute] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Schema:
        attrs = tuple(Attribute.from_json(a) for a in data["attributes"])
        return cls(
            id=data["id"],
            name=data.get("name", ""),
            description=data.get("description", ""),
            attributes=attrs,
            _by_lower={a.name.lower(): a for a in attrs},
        )

    def attribute(self, name: str) -> Attribute | None:
        """The top-level attribute called ``name`` (any case), or None."""
        return self._by_lower.get(name.lower())

    def to_json(self, location: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.to_json() for a in self.attributes],
        }
        if location is not None:
            out["meta"] = {"resourceType": "Schema", "location": location}
        return out


def _meta_attribute() -> Attribute:
    # every sub-attribute is caseExact: RFC 7643 section 3.1 says so of resourceType and version,
    # and the dateTimes and the location URI compare exactly anyway
    def sub(name: str, type_: AttributeType) -> Attribute:
        return Attribute(name=name, type=type_, case_exact=True, mutability=Mutability.READ_ONLY)

    subs = (
        sub("resourceType", AttributeType.STRING),
        sub("created", AttributeType.DATETIME),
        sub("lastModified", AttributeType.DATETIME),
        sub("location", AttributeType.REFERENCE),
        sub("version", AttributeType.STRING),
    )
    return Attribute(
        name="meta",
        type=AttributeType.COMPLEX,
        mutability=Mutability.READ_ONLY,
        description="Resource metadata (RFC 7643 section 3.1).",
        sub_attributes=subs,
        _by_lower={s.name.lower(): s for s in subs},
    )


#: The common attributes every resource has (RFC 7643 section 3.1); they belong to no schema's list.
COMMON_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute(
        name="id",
        type=AttributeType.STRING,
        case_exact=True,
        mutability=Mutability.READ_ONLY,
        returned=Returned.ALWAYS,
        uniqueness=Uniqueness.SERVER,
        description="Unique identifier issued by the service provider.",
    ),
    Attribute(
        name="externalId",
        type=AttributeType.STRING,
        case_exact=True,
        description="Identifier issued by the provisioning client.",
    ),
    _meta_attribute(),
)
_COMMON_BY_LOWER = {a.name.lower(): a for a in COMMON_ATTRIBUTES}


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A resource type (RFC 7643 section 6): its core schema and its extensions (URN -> required)."""

    name: str
    endpoint: str
    description: str
    schema: Schema
    extensions: tuple[tuple[Schema, bool], ...] = ()

    @property
    def schema_ids(self) -> tuple[str, ...]:
        return (self.schema.id, *(s.id for s, _ in self.extensions))

    def extension(self, urn: str) -> Schema | None:
        """The extension schema with this URN (any case), or None."""
        low = urn.lower()
        for s, _ in self.extensions:
            if s.id.lower() == low:
                return s
        return None

    def schema_for(self, urn: str) -> Schema | None:
        """The core schema or an extension by URN (any case)."""
        if urn.lower() == self.schema.id.lower():
            return self.schema
        return self.extension(urn)

    def attribute(self, urn: str | None, name: str) -> tuple[str | None, Attribute] | None:
        """Resolve a top-level attribute; returns (extension URN or None for core/common, definition).

        ``urn`` qualifies the name (``urn:...:User:userName`` -> core); without it the common
        attributes and the core schema are searched (RFC 7644 section 3.10).
        """
        if urn is None or urn.lower() == self.schema.id.lower():
            common = _COMMON_BY_LOWER.get(name.lower())
            if common is not None:
                return None, common
            core = self.schema.attribute(name)
            return (None, core) if core is not None else None
        ext = self.extension(urn)
        if ext is None:
            return None
        found = ext.attribute(name)
        return (ext.id, found) if found is not None else None

    def unqualified(self, name: str) -> tuple[str, Attribute] | None:
        """The extension attribute an unqualified ``name`` means (Entra's ``department``,
        ``manager``: Q7, Q11): the one extension declaring it, or of several the enterprise
        extension, whose attributes Entra sends so; None when none, or several others, do."""
        hits = [(ext.id, a) for ext, _ in self.extensions if (a := ext.attribute(name)) is not None]
        if len(hits) > 1:
            hits = [hit for hit in hits if hit[0] == ENTERPRISE_USER]
        return hits[0] if len(hits) == 1 else None

    def split_urn(self, text: str, *, dotted: bool = False) -> tuple[str | None, str]:
        """Split ``urn:...:Schema:attr.sub`` into (schema URN, "attr.sub"); plain names give (None, text).

        Longest known schema URN wins, so extension URNs that extend the core URN are found.
        ``dotted`` also takes a ``.`` for the ``:`` after the URN (``urn:...:User.department``, the
        Entra quirk Q15).
        """
        if text[:4].lower() != "urn:":
            return None, text
        low = text.lower()
        best: str | None = None
        for sid in self.schema_ids:
            n = len(sid)
            if (
                low.startswith(sid.lower())
                and low[n : n + 1] in (":", "." if dotted else ":")
                and (best is None or n > len(best))
            ):
                best = sid
        if best is None:
            return None, text
        return best, text[len(best) + 1 :]

    def to_json(self, location: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema.id,
        }
        if self.extensions:
            out["schemaExtensions"] = [{"schema": s.id, "required": r} for s, r in self.extensions]
        if location is not None:
            out["meta"] = {"resourceType": "ResourceType", "location": location}
        return out


@dataclass(frozen=True, slots=True)
class SchemaRegistry:
    """The schemas and resource types a server speaks, looked up by URN or endpoint, any case."""

    schemas: tuple[Schema, ...]
    resource_types: tuple[ResourceType, ...]
    #: lower-cased name -> resource type (every store call names its resource type)
    _by_name: dict[str, ResourceType] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        by_name: dict[str, ResourceType] = {}
        for rt in self.resource_types:  # the first of a name, as a scan would find
            by_name.setdefault(rt.name.lower(), rt)
        for rt in self.resource_types:  # and its own spelling, looked up first
            if by_name[rt.name.lower()] is rt:
                by_name.setdefault(rt.name, rt)
        object.__setattr__(self, "_by_name", by_name)

    def schema(self, urn: str) -> Schema | None:
        low = urn.lower()
        return next((s for s in self.schemas if s.id.lower() == low), None)

    def resource_type(self, name: str) -> ResourceType | None:
        found = self._by_name.get(name)
        return found if found is not None else self._by_name.get(name.lower())

    def by_endpoint(self, endpoint: str) -> ResourceType | None:
        low = endpoint.lower().lstrip("/")
        return next((r for r in self.resource_types if r.endpoint.lower().lstrip("/") == low), None)


def load_schema(filename: str) -> Schema:
    """Load one bundled schema file from ``scim/schema/data``."""
    text = resources.files("provisor.scim.schema").joinpath("data", filename).read_text("utf-8")
    return Schema.from_json(json.loads(text))


@cache
def default_registry() -> SchemaRegistry:
    """User (with the enterprise extension) and Group, as RFC 7643 section 8.7 defines them."""
    user = load_schema("user.json")
    group = load_schema("group.json")
    enterprise = load_schema("enterprise_user.json")
    return SchemaRegistry(
        schemas=(user, group, enterprise),
        resource_types=(
            ResourceType("User", "/Users", "User Account", user, ((enterprise, False),)),
            ResourceType("Group", "/Groups", "Group", group),
        ),
    )
