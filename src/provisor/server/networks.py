"""Per-tenant client networks: a tenant may accept requests only from some addresses.

A SaaS team that knows where its identity provider calls from (Microsoft publishes the addresses
of Entra's provisioning service as the ``AzureActiveDirectory`` service tag; Okta publishes its
own) can make a tenant's Secret Token useless anywhere else: ``provisor tenant set NAME
--allow-network CIDR``. The setting ``allowed_networks`` is a list of networks in CIDR notation;
a request of that tenant from any other address is answered 403, after its token was checked, so
no stranger learns more than from a bad token.

The client address is the one uvicorn reports: behind a reverse proxy, that is the address the
proxy forwards (``X-Forwarded-For``) when the proxy is trusted (uvicorn's ``FORWARDED_ALLOW_IPS``,
127.0.0.1 by default), else the proxy's own. An IPv4 client seen as IPv4-mapped IPv6
(``::ffff:192.0.2.1``, a dual-stack socket) is matched as IPv4.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

Network = IPv4Network | IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Networks in CIDR notation (a bare address is a network of one); host bits set are
    allowed (``10.1.2.3/8`` is ``10.0.0.0/8``). ValueError names the first that is not one."""
    out: list[Network] = []
    for value in values:
        try:
            network = ip_network(value.strip(), strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not a network in CIDR notation (e.g. 203.0.113.0/24)") from None
        out.append(_as_ipv4(network))
    return tuple(out)


def _as_ipv4(network: Network) -> Network:
    """An IPv4-mapped IPv6 network (``::ffff:192.0.2.0/120``, as a dual-stack server's log shows
    a client) as the IPv4 network it maps: a client is matched as IPv4 (:func:`client_allowed`),
    so the mapped form would match nobody and lock the tenant out."""
    mapped = network.network_address.ipv4_mapped if isinstance(network, IPv6Network) else None
    if mapped is None or network.prefixlen < 96:
        return network
    return IPv4Network(f"{mapped}/{network.prefixlen - 96}")


def compile_networks(setting: Any) -> tuple[Network, ...] | None:
    """A tenant's stored ``allowed_networks``: None when absent (any address). A setting that is
    not a list of networks (a hand-edited database) allows no address at all: a security
    setting that cannot be read fails closed."""
    if setting is None:
        return None
    if not isinstance(setting, list) or not all(isinstance(v, str) for v in setting):
        return ()
    try:
        return parse_networks(setting)
    except ValueError:
        return ()


def client_allowed(networks: tuple[Network, ...], client: Any) -> bool:
    """Whether the ASGI ``scope["client"]`` (``(host, port)``, or None) is in one of ``networks``."""
    if not client:
        return False
    try:
        address: IPv4Address | IPv6Address = ip_address(client[0])
    except ValueError:
        return False
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)
