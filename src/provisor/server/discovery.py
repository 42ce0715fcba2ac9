"""Discovery endpoints (RFC 7644 section 4): what the server really supports, nothing more."""

from __future__ import annotations

from typing import Any

from provisor.scim.schema.model import COMMON_ATTRIBUTES, SchemaRegistry
from provisor.server.config import ServerConfig

SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"


def service_provider_config(config: ServerConfig, base_url: str, max_page_size: int) -> dict[str, Any]:
    """RFC 7643 section 5, with the limits this server enforces."""
    out: dict[str, Any] = {"schemas": [SPC_SCHEMA]}
    if config.documentation_uri:
        out["documentationUri"] = config.documentation_uri
    return out | {
        "patch": {"supported": True},
        "bulk": {
            "supported": True,
            "maxOperations": config.bulk_max_operations,
            "maxPayloadSize": config.bulk_payload_limit,
        },
        "filter": {"supported": True, "maxResults": max_page_size},
        # RFC 9865 section 4: cursors as well as startIndex; startIndex unless a cursor is sent.
        # Cursors hold their position themselves, so they never expire (no cursorTimeout).
        "pagination": {
            "cursor": True,
            "index": True,
            "defaultPaginationMethod": "index",
            "defaultPageSize": min(config.default_page_size, max_page_size),
            "maxPageSize": max_page_size,
        },
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Secret Token",
                "description": "A per-tenant Secret Token sent as 'Authorization: Bearer <token>'.",
                "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url}/ServiceProviderConfig",
        },
    }


def resource_types(registry: SchemaRegistry, base_url: str) -> list[dict[str, Any]]:
    return [rt.to_json(f"{base_url}/ResourceTypes/{rt.name}") for rt in registry.resource_types]


#: ``externalId`` as a schema lists it (RFC 7643 section 3.1): a common attribute of every resource.
_EXTERNAL_ID = next(a for a in COMMON_ATTRIBUTES if a.name == "externalId").to_json()


def schemas(registry: SchemaRegistry, base_url: str) -> list[dict[str, Any]]:
    """Every schema (RFC 7643 section 7). The core schema of each resource type also lists
    ``externalId``, which RFC 7643 section 3.1 makes a common attribute and allows a schema to list
    ("for backward compatibility, some existing schema definitions MAY list common attributes"):
    Entra's default mappings write it (mailNickname or objectId -> externalId), and Microsoft's
    gallery validation (Schema_Discoverability_Test) looks in /Schemas for every attribute a job
    maps, leaving out only ``id``. ``id`` and ``meta`` stay unlisted, as the RFC's own schemas
    have them."""
    cores = {rt.schema.id for rt in registry.resource_types}
    out = []
    for schema in registry.schemas:
        shown = schema.to_json(f"{base_url}/Schemas/{schema.id}")
        if schema.id in cores and schema.attribute("externalId") is None:
            shown["attributes"] = [_EXTERNAL_ID, *shown["attributes"]]
        out.append(shown)
    return out
