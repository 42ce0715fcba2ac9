"""Reading what a SCIM target answers (RFC 7644 3.4.2, 3.12; entra-behaviour.md 1.8).

Anything that is not the expected shape raises ServiceIncompatible
(``SystemForCrossDomainIdentityManagementServiceIncompatible``), Entra's code for an unparseable body.
"""

from __future__ import annotations

from typing import Any, Final

import httpx
import orjson

from provisor.engine.targets.errors import ServiceIncompatible

__all__ = ["LIST_RESPONSE", "error_detail", "list_resources", "parse_json", "resource"]

LIST_RESPONSE: Final = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def parse_json(response: httpx.Response, context: str) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise ServiceIncompatible(
            f"{context} answered HTTP {response.status_code} with a body that is not JSON",
            status=response.status_code,
        ) from exc


def error_detail(response: httpx.Response) -> tuple[str | None, str | None]:
    """The SCIM Error ``detail`` and ``scimType`` (RFC 7644 3.12), when the body has them."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    detail, scim_type = body.get("detail"), body.get("scimType")
    return (
        detail[:500] if isinstance(detail, str) and detail else None,
        scim_type if isinstance(scim_type, str) else None,
    )


def resource(payload: Any, context: str) -> dict[str, Any]:
    """A returned resource must be an object with a non-empty string ``id`` (1.3 step 4, 1.8)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("id"), str) or not payload["id"]:
        raise ServiceIncompatible(f"{context} returned no resource with an id")
    return payload


def list_resources(payload: Any, context: str) -> list[dict[str, Any]]:
    """The ``Resources`` of a ListResponse (RFC 7644 3.4.2; 1.8 "must always be a ListResponse")."""
    if not isinstance(payload, dict):
        raise ServiceIncompatible(f"{context} did not return a ListResponse")
    schemas = payload.get("schemas")
    total = payload.get("totalResults")
    resources = payload.get("Resources", [])
    if (
        (schemas is not None and (not isinstance(schemas, list) or LIST_RESPONSE not in schemas))
        or (schemas is None and total is None)
        or not isinstance(resources, list)
        or not all(isinstance(r, dict) for r in resources)
        or (total is not None and (not isinstance(total, int) or isinstance(total, bool)))
    ):
        raise ServiceIncompatible(f"{context} did not return a ListResponse")
    for item in resources:
        resource(item, context)
    return resources
