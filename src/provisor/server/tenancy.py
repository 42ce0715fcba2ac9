"""A request's tenant and the per-tenant settings that steer the protocol core."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from provisor.scim.compat import CompatSettings
from provisor.server.networks import Network, compile_networks
from provisor.server.ratelimit import RateLimit
from provisor.store.base import Tenant


@dataclass(frozen=True, slots=True)
class TenantContext:
    """The authenticated tenant of a request and its effective settings."""

    tenant: Tenant
    compat: CompatSettings
    max_page_size: int
    allowed_roles: tuple[str, ...] | None
    rate_limit: RateLimit | None = None
    #: How many of its latest requests are kept as traces (``server/tracing.py``); 0: none.
    trace: int = 0
    #: The only networks its requests may come from (``server/networks.py``); None: any.
    networks: tuple[Network, ...] | None = None

    @property
    def id(self) -> str:
        return self.tenant.id


#: The 403 of a tenant whose stored settings cannot be read (``Tenant.unreadable``).
UNREADABLE_SETTINGS = (
    "this tenant's stored settings cannot be read, so it accepts no requests until its "
    "administrator sets them again (provisor tenant set)"
)


def context_for(tenant: Tenant, server_max_page_size: int) -> TenantContext:
    """Compile a tenant's stored settings. Each setting that is not of its type (say, from a hand
    edited database) falls back to its safe default on its own and never fails a request: every
    switch as ``strict`` gives it (on unless ``strict`` is ``true``), the server's page size, no
    role restriction, no rate limit and no tracing; except ``allowed_networks``, which fails
    closed (no address is allowed). Settings that cannot be read at all (``Tenant.unreadable``)
    fail closed too: no address is allowed, and the server says why (``ScimApp``)."""
    settings: Mapping[str, Any] = tenant.settings
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
    return TenantContext(
        tenant=tenant,
        compat=compat,
        max_page_size=max_page,
        allowed_roles=allowed,
        rate_limit=_rate_limit(settings),
        trace=_trace(settings),
        networks=() if tenant.unreadable else compile_networks(settings.get("allowed_networks")),
    )


#: How long the tenant contexts a server compiled are kept at most (``TenantContexts``).
CONTEXT_KEEP_SECONDS = 60.0


class TenantContexts:
    """The compiled settings of the tenants a server has seen lately, one entry a tenant.

    An entry serves while the authenticator hands out the same ``Tenant`` (its token cache keeps
    one for a second); a new one is compiled again. Every :data:`CONTEXT_KEEP_SECONDS` at most,
    on a miss, all entries go: the tenants still sending compile theirs once more (4-14 us
    measured, which their token cache's refresh costs them every second anyway), and those
    deleted or gone quiet leave nothing behind. A hit costs a dict lookup as before.
    """

    def __init__(
        self,
        server_max_page_size: int,
        *,
        keep_seconds: float = CONTEXT_KEEP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_page_size = server_max_page_size
        self._keep = keep_seconds
        self._clock = clock
        self._entries: dict[str, tuple[Tenant, TenantContext]] = {}
        self._clear_due = clock() + keep_seconds

    def __len__(self) -> int:
        return len(self._entries)

    def of(self, tenant: Tenant) -> TenantContext:
        """``tenant``'s context, compiled once for each ``Tenant`` the authenticator gives."""
        cached = self._entries.get(tenant.id)
        if cached is not None and cached[0] is tenant:
            return cached[1]
        if (now := self._clock()) >= self._clear_due:
            self._entries = {}
            self._clear_due = now + self._keep
        ctx = context_for(tenant, self._max_page_size)
        self._entries[tenant.id] = (tenant, ctx)
        return ctx


#: The most requests a tenant's trace keeps.
MAX_TRACE = 1000


def _trace(settings: Mapping[str, Any]) -> int:
    """``trace``: an integer from 1 to :data:`MAX_TRACE`; anything else is 0 (no tracing)."""
    keep = settings.get("trace")
    if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= MAX_TRACE:
        return 0
    return keep


def _rate_limit(settings: Mapping[str, Any]) -> RateLimit | None:
    """``rate_limit`` (requests a second, a positive number) and ``rate_burst`` (a positive
    integer; one second's worth, at least 1, when absent or not one)."""
    rate = settings.get("rate_limit")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0 or rate == float("inf"):
        return None
    burst = settings.get("rate_burst")
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        burst = max(1, math.ceil(rate))
    return RateLimit(float(rate), burst)
