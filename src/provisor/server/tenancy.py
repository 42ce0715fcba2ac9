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
    """Compile a tenant's stored settings. Each setting that is not of its type (say, from a hand
    edited database) falls back to its safe default on its own and never fails a request: every
    switch as ``strict`` gives it (on unless ``strict`` is ``true``), the server's page size, and
    no role restriction."""
    settings: Mapping[str, Any] = tenant.settings if isinstance(tenant.settings, Mapping) else {}
    base = CompatSettings.strict() if settings.get("strict") is True else CompatSettings.default()
    switches = settings.get("compat")
    compat = base
    if isinstance(switches, Mapping) and all(isinstance(v, bool) for v in switches.values()):
        try:
            compat = CompatSettings.from_mapping(dict(switches), base=base)
        except ValueError:  # an unknown switch name
            compat = base
    page = settings.get("max_page_size")
    max_page = server_max_page_size
    if isinstance(page, int) and not isinstance(page, bool) and page > 0:
        max_page = min(page, server_max_page_size)
    roles = settings.get("allowed_roles")
    allowed = None
    if isinstance(roles, list) and roles and all(isinstance(r, str) for r in roles):
        allowed = tuple(roles)
    return TenantContext(tenant=tenant, compat=compat, max_page_size=max_page, allowed_roles=allowed)
