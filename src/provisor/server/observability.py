"""Structured access log and Prometheus metrics, as one thin ASGI middleware.

The access log is one JSON line per request (method, path, status, duration, tenant); it never
records headers, so Secret Tokens cannot leak into it. Query strings are logged without values of
``filter`` (they hold user names and e-mail addresses).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("provisor.access")


class Metrics:
    """The server's Prometheus metrics in their own registry (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "provisor_http_requests_total",
            "HTTP requests by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.write_batch = Histogram(
            "provisor_write_batch_size",
            "Writes sharing one database commit (group commit).",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64),
        )
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self.latency = Histogram(
            "provisor_http_request_duration_seconds",
            "Request latency by route.",
            ["route"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )

    def observe(self, method: str, route: str, status: str, seconds: float) -> None:
        """Count one request; the labelled children are cached (``labels()`` is slow on a hot path)."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(method, route, status), self.latency.labels(route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def route_label(path: str, base_path: str) -> str:
    """A low-cardinality route name: ``/scim/v2/Users/abc`` -> ``Users/{id}``."""
    if not path.startswith(base_path):
        return path if path in ("/healthz", "/metrics") else "other"
    parts = [p for p in path[len(base_path) :].split("/") if p]
    if not parts:
        return "root"
    head = parts[0]
    if len(parts) == 1:
        return head
    if parts[1] == ".search":
        return f"{head}/.search"
    return f"{head}/{{id}}"


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, base_path: str, log_requests: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.base_path = base_path
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = route_label(scope["path"], self.base_path)
            self.metrics.observe(scope["method"], route, str(status), elapsed)
            if self.log_requests and access_log.isEnabledFor(logging.INFO):
                state: dict[str, Any] = scope.get("state") or {}
                record = {
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                    "tenant": state.get("tenant_id"),
                    "client": (scope.get("client") or ("", 0))[0],
                }
                access_log.info(orjson.dumps(record).decode())
