"""Discovery endpoints (RFC 7644 section 4): what the server really supports, nothing more."""

from __future__ import annotations

from typing import Any

from provisor.scim.schema.model import SchemaRegistry
from provisor.server.config import ServerConfig

SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"


def service_provider_config(config: ServerConfig, base_url: str, max_page_size: int) -> dict[str, Any]:
    """RFC 7643 section 5, with the limits this server enforces."""
    return {
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://github.com/provisor/provisor/blob/main/docs/user-guide.md",
        "patch": {"supported": True},
        "bulk": {
            "supported": True,
            "maxOperations": config.bulk_max_operations,
            "maxPayloadSize": config.bulk_max_payload_bytes,
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


def schemas(registry: SchemaRegistry, base_url: str) -> list[dict[str, Any]]:
    return [s.to_json(f"{base_url}/Schemas/{s.id}") for s in registry.schemas]
