"""The application factory: the server's composition root.

Requests under ``{base_path}`` go straight to the SCIM app (:class:`ScimApp`); everything else
(``/healthz``, ``/readyz``, ``/metrics``, the SCIM-Error 404 fallback) is a Starlette
application. Routing under the base is resolved by hand so that resource endpoints match
case-insensitively (``/users`` and ``/Users``; Microsoft's reference tests use both) and every 404
and 405 is a SCIM Error; skipping Starlette's router and middleware stack there halves the
framework's share of Entra's hot path.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from provisor.scim.errors import (
    BadRequest,
    Forbidden,
    InvalidFilter,
    MethodNotAllowed,
    NotFound,
    NotImplementedByServer,
    Unauthorized,
)
from provisor.scim.schema.model import ResourceType, SchemaRegistry, default_registry
from provisor.server.access_log import AccessLog
from provisor.server.auth import BEARER_HINT, Authenticator
from provisor.server.bulk import BulkProcessor, operations
from provisor.server.bulk_paths import ME_NOT_SUPPORTED
from provisor.server.config import ServerConfig
from provisor.server.discovery import resource_types, schemas, service_provider_config
from provisor.server.errors import error_response, render_error
from provisor.server.http import ScimRequest, response_media_type, send_response
from provisor.server.networks import client_allowed
from provisor.server.observability import SCIM_ROUTES, Metrics, ObservabilityMiddleware
from provisor.server.queries import ListRequest, Projection, build_list_request, search_params
from provisor.server.ratelimit import RateLimiter
from provisor.server.service import Body, Outcome, ResourceService, list_response, precondition
from provisor.server.tenancy import UNREADABLE_SETTINGS, TenantContext, TenantContexts
from provisor.server.tracing import traced
from provisor.server.writes import WriteBatcher
from provisor.store.base import Precondition

log = logging.getLogger("provisor.server")

Handler = Callable[[ScimRequest, TenantContext, list[str]], Awaitable[Outcome]]
#: The projection of a request without a query string: neither ``attributes`` nor ``excludedAttributes``.
_NO_PROJECTION = Projection(None, None)


class ScimApp:
    """The request handlers of one server, bound to its store and configuration."""

    def __init__(
        self, store: Any, config: ServerConfig, registry: SchemaRegistry, metrics: Metrics | None = None
    ) -> None:
        self.store = store
        self.config = config
        self.service = ResourceService(store)
        self.writes = WriteBatcher(store, observe=metrics.write_batch.observe if metrics else None)
        self.auth = Authenticator(store, ttl=config.token_cache_seconds)
        self._public_base = (
            None if config.public_url is None else config.public_url.rstrip("/") + config.base_path
        )
        self.contexts = TenantContexts(config.max_page_size)
        self.limiter = RateLimiter()
        self.adopt(registry)
        # A store that follows declared extension schemas is asked every schema_check_seconds.
        self._follows_schemas = config.schema_check_seconds > 0 and hasattr(store, "reload_schemas")
        self._schemas_due = time.monotonic() + config.schema_check_seconds

    def adopt(self, registry: SchemaRegistry) -> None:
        """Speak ``registry`` from the next request on (a request under way keeps the one it began with)."""
        self.registry = registry
        self._endpoints = {rt.endpoint.lower().lstrip("/"): rt for rt in registry.resource_types}
        self._types = {rt.name: rt for rt in registry.resource_types}
        self.bulk = BulkProcessor(
            self.service, registry, max_operations=self.config.bulk_max_operations, logger=log.error
        )

    def route_names(self) -> list[str]:
        """The first path segments under the base that this app routes (its resource types'
        endpoints and the RFC's other endpoints), as the request metrics label them."""
        return [*(rt.endpoint.lstrip("/") for rt in self.registry.resource_types), *SCIM_ROUTES]

    def _check_schemas(self, now: float) -> None:
        """Adopt the store's schemas if extensions were declared or removed since it last looked."""
        self._schemas_due = now + self.config.schema_check_seconds
        try:
            registry: SchemaRegistry | None = self.store.reload_schemas()
        except Exception:  # the schemas in use stay; the next check tries again
            log.warning("could not read the declared extension schemas", exc_info=True)
            return
        if registry is not None:
            self.adopt(registry)
            log.info("extension schemas changed: now %s", ", ".join(s.id for s in registry.schemas))

    # -- plumbing -------------------------------------------------------------------------------

    def base_url(self, request: ScimRequest) -> str:
        if self._public_base is not None:
            return self._public_base
        scope = request.scope
        host = request.headers.get("host") or "localhost"
        return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}{self.config.base_path}"

    async def json_body(self, request: ScimRequest, limit: int | None = None) -> Any:
        return await request.json(limit or self.config.max_body_bytes)

    # -- dispatch -------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send, route: str) -> None:
        request = ScimRequest(scope, receive, route)
        ctx: TenantContext | None = None
        try:
            request.check_host()
            # before routing: nothing for strangers
            token, tenant, variant = self.auth.identify(request.credentials())
            if self._follows_schemas and (now := time.monotonic()) >= self._schemas_due:
                self._check_schemas(now)
            ctx = self.contexts.of(tenant)
            if variant and not ctx.compat.on("bearer_scheme_variants"):
                raise Unauthorized(BEARER_HINT)  # the token is not accepted: no tenant in the log
            scope.setdefault("state", {})["tenant_id"] = tenant.id
            if ctx.networks is not None and not client_allowed(ctx.networks, scope.get("client")):
                raise Forbidden(
                    UNREADABLE_SETTINGS
                    if tenant.unreadable
                    else "this tenant accepts requests only from its allowed networks"
                )
            self.auth.accepted(token)  # its "last used" (token list) counts accepted requests only
            if ctx.rate_limit is not None and not _is_bulk(request):  # a Bulk pays in post_bulk
                self.limiter.take(tenant.id, ctx.rate_limit)
            handler, args = self.route(request.method, request.route)
            outcome = await handler(request, ctx, args)
        except Exception as exc:
            status, body, headers = render_error(exc)
            media = response_media_type(request.headers.get("accept"))
            await send_response(send, status, body, headers, media)
            if ctx is not None and ctx.trace:
                await self._trace(ctx, request, status, body)
            return
        answer = None if outcome.body is None else orjson.dumps(outcome.body)
        media = response_media_type(request.headers.get("accept"))
        await send_response(send, outcome.status, answer, outcome.headers, media)
        if ctx.trace:
            await self._trace(ctx, request, outcome.status, answer)

    async def _trace(self, ctx: TenantContext, request: ScimRequest, status: int, body: bytes | None) -> None:
        """Keep this request of a tenant with tracing on (``server/tracing.py``), once answered.

        The trace is written at once when the database's write lock is free; otherwise it waits
        in the write batcher like any write, never on the event loop (a read of a traced tenant
        would stop every request while another process holds the lock)."""
        add = getattr(self.store, "add_trace", None)
        if add is None:
            return
        try:
            kept = traced(
                request.scope.get("path", ""), request.scope.get("query_string", b""), request.body, body
            )
            when = datetime.now(UTC)
            await self.writes.run_eagerly(
                lambda: add(
                    ctx.id,
                    time=when,
                    method=request.method,
                    target=kept.target,
                    status=status,
                    request=kept.request,
                    response=kept.response,
                    keep=ctx.trace,
                )
            )
        except Exception:  # the answer is out; a trace that could not be kept costs only itself
            log.warning("could not keep a request trace of tenant %s", ctx.id, exc_info=True)

    def route(self, method: str, rest: str) -> tuple[Handler, list[str]]:
        parts = [p for p in rest.split("/") if p]
        head = parts[0].lower() if parts else ""
        table: dict[str, Handler]
        if not parts:  # the base itself: a query across resource types (RFC 7644 section 3.4.2.1)
            table = {"GET": self.get_root_search}
        elif head == "me":
            raise NotImplementedByServer(ME_NOT_SUPPORTED)
        elif head == "serviceproviderconfig" and len(parts) == 1:
            table = {"GET": self.get_spc}
        elif head == "resourcetypes" and len(parts) <= 2:
            table = {"GET": self.get_resource_types}
        elif head == "schemas" and len(parts) <= 2:
            table = {"GET": self.get_schemas}
        elif head == "bulk" and len(parts) == 1:
            table = {"POST": self.post_bulk}
        elif head == ".search" and len(parts) == 1:
            table = {"POST": self.post_root_search}
        else:
            rt = self._endpoints.get(parts[0].lower())
            if rt is None or len(parts) > 2:
                raise NotFound(f"no SCIM endpoint /{'/'.join(parts)}")
            parts[0] = rt.name
            if len(parts) == 1:
                table = {"GET": self.list_resources, "POST": self.create_resource}
            elif parts[1] == ".search":
                table = {"POST": self.search_resources}
            else:
                table = {
                    "GET": self.get_resource,
                    "PUT": self.replace_resource,
                    "PATCH": self.patch_resource,
                    "DELETE": self.delete_resource,
                }
        wanted = method.upper()
        handler = table.get("GET" if wanted == "HEAD" else wanted)  # uvicorn leaves out HEAD's body
        if handler is None:
            allowed = tuple(sorted([*table, "HEAD"] if "GET" in table else table))
            raise MethodNotAllowed(f"{method} is not allowed here; allowed: {', '.join(allowed)}", allowed)
        return handler, parts

    def _rt(self, parts: list[str]) -> ResourceType:
        return self._types[parts[0]]

    def _projection(self, request: ScimRequest, rt: ResourceType, ctx: TenantContext) -> Projection:
        if not request.query:  # no query string: what the general path gives for it, shared (frozen)
            return _NO_PROJECTION
        params = {k.lower(): v for k, v in request.query.items()}
        short = ctx.compat.on("unquoted_filter_values")
        return Projection.of(
            params.get("attributes"), params.get("excludedattributes"), rt, short_names=short
        )

    # -- discovery ------------------------------------------------------------------------------

    async def get_spc(self, request: ScimRequest, ctx: TenantContext, parts: list[str]) -> Outcome:
        _refuse_filter(request)
        return Outcome(200, service_provider_config(self.config, self.base_url(request), ctx.max_page_size))

    async def get_resource_types(self, request: ScimRequest, ctx: TenantContext, parts: list[str]) -> Outcome:
        _refuse_filter(request)
        items = resource_types(self.registry, self.base_url(request))
        return self._discovery(items, parts, "ResourceType", key="id")

    async def get_schemas(self, request: ScimRequest, ctx: TenantContext, parts: list[str]) -> Outcome:
        _refuse_filter(request)
        items = schemas(self.registry, self.base_url(request))
        return self._discovery(items, parts, "Schema", key="id")

    @staticmethod
    def _discovery(items: list[dict[str, Any]], parts: list[str], what: str, key: str) -> Outcome:
        if len(parts) == 1:
            return Outcome(200, list_response(len(items), 1, items))
        wanted = parts[1].lower()
        for item in items:
            if str(item[key]).lower() == wanted:
                return Outcome(200, item)
        raise NotFound(f"no {what} {parts[1]!r}")

    # -- resources ------------------------------------------------------------------------------

    def _list_request(
        self, params: Mapping[str, Any], rt: ResourceType, ctx: TenantContext, *, across_types: bool = False
    ) -> ListRequest:
        """The list or search of ``params`` (query string or SearchRequest body), with the server's
        page size and budget of group references (``config.PAGE_GROUP_REFS``)."""
        return build_list_request(
            params,
            rt,
            ctx,
            default_page_size=self.config.default_page_size,
            across_types=across_types,
            group_budget=self.config.page_group_refs,
        )

    async def list_resources(self, request: ScimRequest, ctx: TenantContext, parts: list[str]) -> Outcome:
        rt = self._rt(parts)
        req = self._list_request(request.query, rt, ctx)
        return self.service.search(ctx, rt, req, self.base_url(request))

    async def search_resources(self, request: ScimRequest, ctx: TenantContext, parts: list[str]) -> Outcome:
        rt = self._rt(parts)
        params = search_params(await self.json_body(request))
        req = self._list_request(params, rt, ctx)
        return self.service.search(ctx, rt, req, self.base_url(request))

    async def post_root_search(self, request: ScimRequest, ctx: TenantContext, parts: list[str]) -> Outcome:
        """POST /.search across resource types (RFC 7644 section 3.4.3), paged over the combined set."""
        return self._root_search(search_params(await self.json_body(request)), request, ctx)

    async def get_root_search(self, request: ScimRequest, ctx: TenantContext, parts: list[str]) -> Outcome:
        """GET on the base with query parameters: the same search across resource types (RFC 7644
        section 3.4.2.1, "queries ... against a SCIM service provider root")."""
        return self._root_search(request.query, request, ctx)

    def _root_search(self, params: Mapping[str, Any], request: ScimRequest, ctx: TenantContext) -> Outcome:
        start = None
        total = 0
        resources: list[Body] = []
        cut = False
        base = self.base_url(request)
        self._check_filter_somewhere(params, ctx)
        requests = [
            (rt, self._list_request(params, rt, ctx, across_types=True))
            for rt in self.registry.resource_types
        ]
        for _, req in requests:
            if req.query.sort_by is not None:
                raise BadRequest("sortBy is not supported on a search across resource types", "invalidValue")
            if req.cursor is not None:
                raise BadRequest(
                    "cursor paging is not supported on a search across resource types; use startIndex",
                    "invalidValue",
                )
        # every count and page in one snapshot: totalResults counts what the page was read from
        with self.service.store.snapshot() as reads:
            for rt, req in requests:
                start = req.start_index  # the same for every type: the one asked, echoed
                count = req.query.count
                page = reads.search(
                    ctx.id,
                    rt.name,
                    replace(req.query, start_index=1, count=0, with_members=False, with_groups=False),
                )
                skip = max(0, req.query.start_index - 1 - total)  # the store's (capped) index
                take = 0 if cut else max(0, count - len(resources))
                if take and skip < page.total:
                    part = reads.search(ctx.id, rt.name, replace(req.query, start_index=skip + 1, count=take))
                    resources.extend(self.service.render(rt, r, base, req.projection) for r in part.resources)
                    # a page cut short by its Users' groups ends there: the next page (startIndex +
                    # itemsPerPage) starts with the next User, not with the resources of a later type
                    cut = part.cut
                total += page.total
        return Outcome(200, list_response(total, start or 1, resources))

    def _check_filter_somewhere(self, params: Mapping[str, Any], ctx: TenantContext) -> None:
        """A search across resource types reads an attribute one type lacks as without a value
        there (RFC 7644 3.4.2.1); a filter that no resource type can read is still a 400."""
        first: InvalidFilter | None = None
        for rt in self.registry.resource_types:
            try:
                self._list_request(params, rt, ctx)
                return
            except InvalidFilter as exc:
                first = first or exc
        if first is not None:
            raise first

    async def create_resource(self, request: ScimRequest, ctx: TenantContext, parts: list[str]) -> Outcome:
        rt = self._rt(parts)
        body = await self.json_body(request)
        base, projection = self.base_url(request), self._projection(request, rt, ctx)
        return await self.writes.run(lambda: self.service.create(ctx, rt, body, base, projection))

    async def get_resource(self, request: ScimRequest, ctx: TenantContext, parts: list[str]) -> Outcome:
        rt = self._rt(parts)
        return self.service.get(
            ctx,
            rt,
            parts[1],
            self.base_url(request),
            self._projection(request, rt, ctx),
            _precondition(request),
        )

    async def replace_resource(self, request: ScimRequest, ctx: TenantContext, parts: list[str]) -> Outcome:
        rt = self._rt(parts)
        body = await self.json_body(request)
        base, projection, condition = (
            self.base_url(request),
            self._projection(request, rt, ctx),
            _precondition(request),
        )
        return await self.writes.run(
            lambda: self.service.replace(ctx, rt, parts[1], body, base, projection, condition)
        )

    async def patch_resource(self, request: ScimRequest, ctx: TenantContext, parts: list[str]) -> Outcome:
        rt = self._rt(parts)
        body = await self.json_body(request)
        base, projection, condition = (
            self.base_url(request),
            self._projection(request, rt, ctx),
            _precondition(request),
        )
        return await self.writes.run(
            lambda: self.service.patch(ctx, rt, parts[1], body, base, projection, condition)
        )

    async def delete_resource(self, request: ScimRequest, ctx: TenantContext, parts: list[str]) -> Outcome:
        rt, condition = self._rt(parts), _precondition(request)
        return await self.writes.run(lambda: self.service.delete(ctx, rt, parts[1], condition))

    async def post_bulk(self, request: ScimRequest, ctx: TenantContext, parts: list[str]) -> Outcome:
        limit = ctx.rate_limit
        try:
            body = await self.json_body(request, self.config.bulk_payload_limit)
        except Exception:
            if limit is not None:  # a body that is no BulkRequest costs what any request costs
                self.limiter.take(ctx.id, limit)
            raise
        if limit is not None:
            # one charge for the whole request, a token per operation the processor will run
            # (found as it finds them), at most the burst: a full bucket admits any Bulk
            ops = operations(body) if isinstance(body, dict) else None
            self.limiter.take(ctx.id, limit, len(ops) if isinstance(ops, list) else 1)
        base = self.base_url(request)
        response = await self.writes.run(lambda: self.bulk.run(ctx, body, base), several_writes=True)
        # An operation answered 503 (the database busy, nothing stored) may be sent again: the
        # Bulk response says when, as a 503 of its own would (RFC 7231 section 7.1.3).
        busy = any(result.get("status") == "503" for result in response["Operations"])
        return Outcome(200, response, {"Retry-After": "1"} if busy else {})


def _is_bulk(request: ScimRequest) -> bool:
    """Whether ``route`` sends this request to ``post_bulk``: a POST to ``/Bulk``, in any case."""
    return request.method == "POST" and request.route.strip("/").lower() == "bulk"


def _precondition(request: ScimRequest) -> Precondition | None:
    """The request's If-Match and If-None-Match (RFC 7232 section 3; RFC 7644 section 3.14)."""
    return precondition(request.header_list("if-match"), request.header_list("if-none-match"))


def _refuse_filter(request: ScimRequest) -> None:
    """RFC 7644 section 4: the discovery endpoints ignore filtering, and a filter sent to one gets
    403, so that no client takes the filter's conditions for applied."""
    if any(name.lower() == "filter" for name in request.query):
        raise Forbidden("the discovery endpoints do not filter; send the request without 'filter'")


class ProvisorApp:
    """The ASGI application: SCIM under ``base_path``, Starlette for the rest, one observability layer."""

    def __init__(
        self,
        scim: ScimApp,
        rest: Starlette,
        metrics: Metrics,
        base_path: str,
        access_log: AccessLog | None = None,
    ) -> None:
        self.scim = scim
        self.rest = rest
        self.metrics = metrics
        self.base = base_path
        self.access_log = access_log
        self._observed = ObservabilityMiddleware(
            self._dispatch, metrics, base_path, access_log, routes=scim.route_names()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._observed(scope, receive, send)

    def refused(self, method: str | None, path: str | None, status: int, client: str) -> None:
        """Count and log a request the HTTP protocol answered itself, before this app
        (``ObservabilityMiddleware.refused``; ``cli/coalescing.py`` calls it)."""
        self._observed.refused(method, path, status, client)

    def close(self) -> None:
        """Write what the access log keeps; for when the server has stopped."""
        if self.access_log is not None:
            self.access_log.close()

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            base = self.base
            if path.startswith(base) and (len(path) == len(base) or path[len(base)] == "/"):
                await self.scim(scope, receive, send, path[len(base) :])
                return
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.rest(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """ASGI lifespan: nothing to start; at shutdown, write the access log's last lines (before
        uvicorn, stopped by a signal, raises that signal again and the process ends)."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(
    store: Any,
    config: ServerConfig | None = None,
    registry: SchemaRegistry | None = None,
    *,
    access_log: AccessLog | None = None,
) -> ProvisorApp:
    """Build the ASGI app over ``store`` (a ResourceStore that is also a TenantStore).

    The server speaks the store's schemas (a store that keeps canonical documents drops what its
    schemas do not declare); ``registry`` is for stores that have none of their own. With
    ``config.access_log`` on, requests are logged to ``access_log``, by default an
    :class:`AccessLog` on standard error; call the app's ``close`` when the server stops.
    """
    config = config or ServerConfig()
    metrics = Metrics()
    own: SchemaRegistry | None = getattr(store, "registry", None)
    if registry is not None and own is not None and registry is not own:
        raise ValueError("the server and its store must speak the same schemas: pass the store's registry")
    scim = ScimApp(store, config, registry or own or default_registry(), metrics)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        """Ready when the store answers a read (a load balancer's readiness check); /healthz
        says only that the process is up."""
        ping = getattr(store, "ping", None)
        try:
            if ping is not None:
                ping()
        except Exception as exc:
            log.warning(
                "not ready: the store failed a read: %s",
                (str(exc).strip().splitlines() or [type(exc).__name__])[0],
            )
            return JSONResponse({"status": "unavailable", "detail": "the database cannot be read"}, 503)
        return JSONResponse({"status": "ok"})

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def fallback(request: Request) -> Response:
        missing = NotFound(f"nothing at {request.url.path}; the SCIM base is {config.base_path}")
        return error_response(missing, request.headers.get("accept"))

    def only_read(
        endpoint: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        """``endpoint`` for GET and HEAD; 405 with ``Allow`` for any other method (the route
        takes them all: Starlette would otherwise hand them to the 404 fallback)."""

        async def read_only(request: Request) -> Response:
            if request.method not in ("GET", "HEAD"):
                refused = MethodNotAllowed(
                    f"{request.method} is not allowed here; allowed: GET, HEAD", ("GET", "HEAD")
                )
                return error_response(refused, request.headers.get("accept"))
            return await endpoint(request)

        return read_only

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    rest = Starlette(
        routes=[
            Route("/healthz", only_read(healthz), methods=methods),
            Route("/readyz", only_read(readyz), methods=methods),
            Route("/metrics", only_read(metrics_endpoint), methods=methods),
            Route("/{rest:path}", fallback, methods=methods),
        ]
    )

    # what no route takes (a request target that is no path, such as OPTIONS *, or an unusual
    # method) is a SCIM Error too, not Starlette's plain-text 404
    async def no_route(scope: Scope, receive: Receive, send: Send) -> None:
        response = await fallback(Request(scope, receive))
        await response(scope, receive, send)

    rest.router.default = no_route
    if not config.access_log:
        access_log = None
    elif access_log is None:
        access_log = AccessLog(sys.stderr)
    return ProvisorApp(scim, rest, metrics, config.base_path.rstrip("/"), access_log)
