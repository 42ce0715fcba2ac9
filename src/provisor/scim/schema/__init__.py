"""RFC 7643 schemas as data, compiled into attribute definitions (section 7 and 8.7)."""

from provisor.scim.schema.model import (
    COMMON_ATTRIBUTES,
    ENTERPRISE_USER,
    GROUP,
    USER,
    Attribute,
    AttributeType,
    Mutability,
    ResourceType,
    Returned,
    Schema,
    SchemaRegistry,
    Uniqueness,
    default_registry,
)

__all__ = [
    "COMMON_ATTRIBUTES",
    "ENTERPRISE_USER",
    "GROUP",
    "USER",
    "Attribute",
    "AttributeType",
    "Mutability",
    "ResourceType",
    "Returned",
    "Schema",
    "SchemaRegistry",
    "Uniqueness",
    "default_registry",
]
