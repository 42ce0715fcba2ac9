"""SCIM resources: bodies validated by a checker compiled from the schema definitions, and stored
resources rendered back (RFC 7643 sections 2, 3 and 7; RFC 7644 sections 3.3 and 3.5.1).

Entra and Okta tolerances come from :mod:`provisor.scim.compat.bodies`, switched per tenant.
"""

from __future__ import annotations

from provisor.scim.resources.parse import (
    RequiredMissing,
    check_required,
    check_roles,
    keep_immutable,
    parse_resource,
)
from provisor.scim.resources.representation import (
    Member,
    document,
    etag,
    format_datetime,
    render_json,
    to_representation,
)
from provisor.scim.resources.values import validate_attribute_value

__all__ = [
    "Member",
    "RequiredMissing",
    "check_required",
    "check_roles",
    "document",
    "etag",
    "format_datetime",
    "keep_immutable",
    "parse_resource",
    "render_json",
    "to_representation",
    "validate_attribute_value",
]
