"""Prometheus metrics and the access log (``access_log``), as one thin ASGI middleware.

The per-request metrics are plain tallies (a counter and a latency histogram per label set) that
a Prometheus collector turns into samples when ``/metrics`` is scraped. prometheus_client's own
``Counter.inc`` and ``Histogram.observe`` take a lock and do a few dict lookups each: about 4 us
of every request on this project's machine, more than the whole tally here. prometheus_client
still renders the exposition format and stays the test oracle for the samples
(tests/server/test_observability.py).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provisor.server.access_log import AccessLog
from provisor.server.http import ANSWERED

#: Upper bounds (seconds) of the request latency histogram's buckets; +Inf is implied.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _Latency:
    """One route's latency histogram: a count per bucket (+Inf last) and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0


class RequestTally(Collector):
    """Requests by (method, route, status) and latency by route, kept as plain numbers.

    Only the event loop's thread records; a scrape (also on the loop) reads. Exported as
    ``provisor_http_requests_total`` and ``provisor_http_request_duration_seconds``.
    """

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        self.latency: dict[str, _Latency] = {}

    def record(self, method: str, route: str, status: str, seconds: float | None) -> None:
        """Count a request, and its latency unless ``seconds`` is None (one the HTTP protocol
        answered itself: no app served it, and its time is the server's timeout, not latency)."""
        key = (method, route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        if seconds is None:
            return
        hist = self.latency.get(route)
        if hist is None:
            hist = self.latency[route] = _Latency()
        hist.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # a bound is "<=", as Prometheus'
        hist.total += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "provisor_http_requests",
            "HTTP requests by method, route and status.",
            labels=["method", "route", "status"],
        )
        for (method, route, status), n in sorted(self.requests.items()):
            requests.add_metric([method, route, status], n)
        yield requests
        latency = HistogramMetricFamily(
            "provisor_http_request_duration_seconds", "Request latency by route.", labels=["route"]
        )
        for route, hist in sorted(self.latency.items()):
            cumulative, buckets = 0, []
            for bound, n in zip((*LATENCY_BUCKETS, float("inf")), hist.counts, strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            latency.add_metric([route], buckets, hist.total)
        yield latency


class Metrics:
    """The server's Prometheus metrics in their own registry (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.tally = RequestTally()
        self.registry.register(self.tally)
        self.write_batch = Histogram(
            "provisor_write_batch_size",
            "Writes sharing one database commit (group commit).",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64),
        )

    def observe(self, method: str, route: str, status: str, seconds: float | None) -> None:
        """Count one request and its latency (None: count it alone, see ``RequestTally.record``)."""
        self.tally.record(method, route, status, seconds)


#: The method label of a request refused before its method was read.
UNKNOWN_METHOD = "unknown"

#: The first path segments under the SCIM base that the SCIM app routes besides its resource
#: types' endpoints (RFC 7644 section 3.2), spelled as their labels show them.
SCIM_ROUTES = ("ServiceProviderConfig", "ResourceTypes", "Schemas", "Bulk", ".search", "Me")


def route_table(names: Iterable[str]) -> dict[str, str]:
    """What :func:`route_label` looks a first segment up in: each of ``names`` and its lower case
    (the SCIM app routes them in any case) -> the name."""
    table: dict[str, str] = {}
    for name in names:
        table[name] = table[name.lower()] = name
    return table


#: The routes of a server with the standard resource types (the SCIM app gives its own).
DEFAULT_ROUTES = ("Users", "Groups", *SCIM_ROUTES)
_DEFAULT_TABLE = route_table(DEFAULT_ROUTES)


def route_label(path: str, base_path: str, routes: Mapping[str, str] = _DEFAULT_TABLE) -> str:
    """A low-cardinality route name: ``/scim/v2/Users/abc`` -> ``Users/{id}``.

    ``routes`` (from :func:`route_table`) names the first segments under the base that are
    endpoints; every other path is ``other``, as paths outside the base are. A label is a
    series kept for the life of the process, and paths come from anyone, before authentication.
    """
    if not path.startswith(base_path):
        return path if path in ("/healthz", "/readyz", "/metrics") else "other"
    rest = path[len(base_path) :]
    if len(rest) > 1 and rest.rfind("/") == 0:  # "/Users": one segment, what the split gives
        head = rest[1:]
        return routes.get(head) or routes.get(head.lower()) or "other"
    parts = [p for p in rest.split("/") if p]
    if not parts:
        return "root"
    name = routes.get(parts[0]) or routes.get(parts[0].lower())
    if name is None or len(parts) > 2:
        return "other"
    if len(parts) == 1:
        return name
    if parts[1] == ".search":
        return f"{name}/.search"
    return f"{name}/{{id}}"


class ObservabilityMiddleware:
    """Counts and times every HTTP request, and logs it to ``access_log`` when there is one."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        base_path: str,
        access_log: AccessLog | None = None,
        routes: Iterable[str] = DEFAULT_ROUTES,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.base_path = base_path
        self.access_log = access_log
        self.routes = route_table(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        done = 0.0

        async def send_wrapper(message: Message) -> None:
            nonlocal status, done
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            # answered: what the app does after it (a traced tenant's trace) is not the client's wait
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                done = time.perf_counter()

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = (done or time.perf_counter()) - start
            if ANSWERED in scope:  # the client got the server's answer, not the app's
                status = scope[ANSWERED]
            route = route_label(scope["path"], self.base_path, self.routes)
            self.metrics.observe(scope["method"], route, str(status), elapsed)
            if self.access_log is not None:
                state: dict[str, Any] = scope.get("state") or {}
                self.access_log.request(
                    scope["method"],
                    scope["path"],
                    status,
                    round(elapsed * 1000, 2),
                    state.get("tenant_id"),
                    (scope.get("client") or ("", 0))[0],
                )

    def refused(self, method: str | None, path: str | None, status: int, client: str) -> None:
        """Count and log a request the HTTP protocol answered itself, before the app (a head too
        large or too slow, bytes that are not HTTP, a connection past the limit): ``method`` and
        ``path`` are None when the request did not get as far as saying them."""
        route = route_label(path, self.base_path, self.routes) if path is not None else "other"
        self.metrics.observe(method or UNKNOWN_METHOD, route, str(status), None)
        if self.access_log is not None:
            self.access_log.request(method, path, status, None, None, client)
