"""A request's tenant and the per-tenant settings that steer the protocol core."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provisor.scim.compat import CompatSettings
from provisor.store.base import Tenant


@dataclass(frozen=True, slots=True)
class TenantContext:
    """The authenticated tenant of a request and its effective settings."""

    tenant: Tenant
    compat: CompatSettings
    max_page_size: int
    allowed_roles: tuple[str, ...] | None

    @property
    def id(self) -> str:
        return self.tenant.id


def context_for(tenant: Tenant, server_max_page_size: int) -> TenantContext:
    """Compile a tenant's stored settings; bad stored settings fall back to the safe defaults."""
    settings: Mapping[str, Any] = tenant.settings or {}
    base = CompatSettings.strict() if settings.get("strict") else CompatSettings.default()
    switches = settings.get("compat") or {}
    try:
        compat = CompatSettings.from_mapping(dict(switches), base=base)
    except ValueError:
        compat = base
    page = settings.get("max_page_size")
    max_page = (
        min(int(page), server_max_page_size) if isinstance(page, int) and page > 0 else server_max_page_size
    )
    roles = settings.get("allowed_roles")
    allowed = tuple(str(r) for r in roles) if isinstance(roles, list) and roles else None
    return TenantContext(tenant=tenant, compat=compat, max_page_size=max_page, allowed_roles=allowed)
