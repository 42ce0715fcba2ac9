"""The ``path`` of a /Bulk operation (RFC 7644 section 3.7): the resources it addresses, or why none.

"The resource's relative path to the SCIM service provider's root": a resource type's endpoint
for a POST (``/Users``), one resource for PUT, PATCH and DELETE (``/Users/{id}``, the id perhaps
``bulkId:X``). A path is read as the HTTP routes read a request's (``ScimApp.route``): empty
segments are skipped (``/Users/`` is ``/Users``), endpoints match in any case, and a path that
names no resource answers 404 and a method the path does not take 405, so an operation fails as
the same request sent alone would. Each segment is percent-decoded, as a request's path is. Every
refusal fails that operation alone (its result carries the error) before anything is read or
written; the other operations still run, and ``failOnErrors`` counts it:

- not a string (absent, null, a number): 400 ``invalidSyntax``, as any malformed operation member;
- not relative to the root (``Users``, ``https://host/scim/v2/Users``, ``""``), with a query or a
  fragment (``/Users?filter=x``), or not percent-encoded UTF-8: 400 ``invalidPath``;
- ``/Me`` (any case, anything after it): 501, as the route answers it;
- an endpoint that is no resource type's, whatever the method: 405 (``/ServiceProviderConfig``,
  ``/ResourceTypes``, ``/Schemas`` and what they serve are read with GET, which no Bulk operation
  is; ``/Bulk``, ``/.search`` and ``/Users/.search`` are requests of their own, not operations);
- nothing the routes serve (``/``, ``/Widgets``, ``/Schemas/a/b``) or more than an id
  (``/Users/a/b``): 404;
- POST to one resource, or PUT, PATCH or DELETE to a resource type's endpoint: 405.

A ``bulkId:X`` id that names no POST of the request is the caller's to report (409).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from provisor.scim.errors import (
    InvalidPath,
    InvalidSyntax,
    MethodNotAllowed,
    NotFound,
    NotImplementedByServer,
)
from provisor.scim.schema.model import ResourceType, SchemaRegistry

#: what a path with an id takes, and what an endpoint takes
_ON_RESOURCE = ("DELETE", "PATCH", "PUT")
_ON_ENDPOINT = ("POST",)
#: The 501 of ``/Me`` (RFC 7644 section 3.11), sent alone or in a Bulk.
ME_NOT_SUPPORTED = "/Me is not supported: tokens identify a tenant, not a user"
#: The routes' endpoints that are no resource type's (``ScimApp.route``), in lower case: how many
#: segments each serves at most, and why no Bulk operation addresses it.
_OTHER_ENDPOINTS = {
    "serviceproviderconfig": (1, "it is read with GET, on its own"),
    "resourcetypes": (2, "it is read with GET, on its own"),
    "schemas": (2, "it is read with GET, on its own"),
    "bulk": (1, "a Bulk request cannot hold another"),
    ".search": (1, "searching is a request of its own (POST /.search)"),
    "": (0, "the root is searched with GET or POST /.search, on its own"),
}


@dataclass(frozen=True, slots=True)
class Target:
    """What a path names: a resource type's endpoint (``id`` None), or one resource of it (``id``
    as written, decoded: a ``bulkId:X`` reference stays one)."""

    rt: ResourceType
    id: str | None = None


def target(registry: SchemaRegistry, method: str, path: Any) -> Target:
    """What ``path`` names for an operation of ``method`` (upper case, one of POST, PUT, PATCH,
    DELETE); raises the ScimError the table above gives."""
    found = addressed(registry, path)
    if method == "POST" and found.id is not None:
        raise MethodNotAllowed(
            f"POST creates a resource at its resource type's endpoint, such as {found.rt.endpoint}; "
            f"path {path!r} names one {found.rt.name} (PUT, PATCH or DELETE it)",
            _ON_RESOURCE,
        )
    if method != "POST" and found.id is None:
        raise MethodNotAllowed(
            f"{method} changes one resource, such as {found.rt.endpoint}/{{id}}; path {path!r} names "
            f"the {found.rt.name} endpoint (POST creates a resource there)",
            _ON_ENDPOINT,
        )
    return found


def addressed(registry: SchemaRegistry, path: Any) -> Target:
    """What ``path`` names, whatever the method; raises as :func:`target` does, but for the 405
    of a method the resource or endpoint does not take."""
    if not isinstance(path, str):
        raise InvalidSyntax("path is required: a string such as /Users or /Users/{id} (RFC 7644 section 3.7)")
    if not path.startswith("/"):
        raise InvalidPath(
            f"path {path!r} is not relative to the service provider's root: write /Users to create, "
            "/Users/{id} to change one resource (RFC 7644 section 3.7), not a URL or a bare name"
        )
    if "?" in path or "#" in path:
        raise InvalidPath(
            f"path {path!r} has a query or a fragment: a Bulk operation's path names a resource "
            "type's endpoint or one resource, and nothing else (RFC 7644 section 3.7)"
        )
    try:
        parts = [unquote(p, errors="strict") for p in path.split("/") if p]
    except UnicodeDecodeError as exc:
        raise InvalidPath(f"path {path!r} is not percent-encoded UTF-8") from exc
    head = parts[0].lower() if parts else ""
    if head == "me":
        raise NotImplementedByServer(ME_NOT_SUPPORTED)
    other = _OTHER_ENDPOINTS.get(head)
    if other is not None and len(parts) <= other[0]:
        raise MethodNotAllowed(f"path {path!r} is no resource for a Bulk operation: {other[1]}")
    rt = registry.by_endpoint(parts[0]) if parts else None
    if rt is None:
        endpoints = " or ".join(r.endpoint for r in registry.resource_types)
        raise NotFound(
            f"path {path!r} names no resource type's endpoint: a Bulk operation creates at {endpoints} "
            "and changes one resource there, such as /Users/{id}"
        )
    if len(parts) > 2:
        raise NotFound(f"path {path!r} names no resource: it goes on past the {rt.name}'s id")
    if len(parts) == 2 and parts[1] == ".search":  # as the route reads it: the endpoint's search
        raise MethodNotAllowed(
            f"path {path!r} is no resource for a Bulk operation: searching is a request of its "
            f"own (POST {rt.endpoint}/.search)"
        )
    return Target(rt, parts[1] if len(parts) == 2 else None)
