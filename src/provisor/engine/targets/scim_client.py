"""The SCIM conversation Entra's provisioning service has with an app (entra-behaviour.md 1.2-1.6).

:class:`ScimTarget` is the engine's only way to the target: Test Connection (1.2), the match query
of query-before-create (1.3), read/create/update/disable/delete (1.3-1.5) and group membership in
batches (1.6). Failures are :mod:`~provisor.engine.targets.errors` named by Entra's log codes (1.8).

Retries (1.8, 4.3): 429 waits ``Retry-After`` (capped); 5xx, timeouts and connection errors back
off exponentially with full jitter, up to ``max_retries``. A POST is *not* idempotent: it is retried
only when it surely never reached the target (connection refused, connect timeout, pool wait) or was
refused unprocessed (429). A POST that timed out, lost its connection or got a 5xx may have created
the object, so it raises a retryable error with ``outcome_unknown=True`` instead; the engine's next
cycle runs query-before-create (1.3) again and finds the object if it was made. That, and never a
blind re-POST, is what keeps a flaky target free of duplicate accounts.

The Secret Token is sent in ``Authorization: Bearer`` only; it is in no log, message or repr.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final, Literal
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx
import orjson

from provisor.engine.jobs.model import PatchDialect, Secret, TargetConfig
from provisor.engine.model import ObjectKind
from provisor.engine.targets.errors import (
    MultipleEntries,
    ProtocolError,
    ServiceIncompatible,
    TargetError,
    TimeoutError_,
    error_for_status,
)
from provisor.engine.targets.filters import FilterValue, eq_filter
from provisor.engine.targets.patch import PatchOperation, render_patch
from provisor.engine.targets.patch import add_members as add_members_op
from provisor.engine.targets.patch import remove_members as remove_members_op
from provisor.engine.targets.responses import error_detail, list_resources, parse_json, resource
from provisor.engine.targets.retry import RetryPolicy, parse_retry_after
from provisor.engine.targets.stats import StatsRecorder, TargetStats
from provisor.engine.targets.transport import LeanTransport

__all__ = ["SCIM_MEDIA_TYPE", "ScimTarget"]

log = logging.getLogger(__name__)

SCIM_MEDIA_TYPE: Final = "application/scim+json"
#: Entra behaviour flags travel in the Tenant URL's query string (1.1); they are never sent on.
FLAG_PARAMETER: Final = "aadOptscim062020"
_ENDPOINTS: Final = {ObjectKind.USER: "/Users", ObjectKind.GROUP: "/Groups"}
#: Failures after which the request surely never reached the target: a POST may be retried.
_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

Kind = ObjectKind | Literal["user", "group"]
Sleep = Callable[[float], Awaitable[None]]


def _split_base(base_url: str) -> tuple[str, PatchDialect | None]:
    """The base URL without its query string, and the dialect its ``aadOptscim062020`` flag asks for."""
    parts = urlsplit(base_url)
    flags = {k.lower(): v.lower() for k, _, v in (p.partition("=") for p in parts.query.split("&") if p)}
    flagged = flags.get(FLAG_PARAMETER.lower()) in {"true", "1", ""}
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return base, (PatchDialect.AAD_OPT_SCIM_062020 if flagged else None)


class ScimTarget:
    """An async SCIM 2.0 client speaking as Entra's provisioning service (entra-behaviour.md 1).

    ``dialect`` chooses the PATCH shapes (:mod:`~provisor.engine.targets.patch`); ``None`` reads
    the ``aadOptscim062020`` flag from ``base_url`` (1.1) and otherwise means ``entra``. At most
    ``concurrency`` requests are in flight over keep-alive connections; each attempt must finish
    within ``timeout`` seconds. ``transport``, ``sleep``, ``rng`` and ``clock`` are for tests.
    """

    def __init__(
        self,
        base_url: str,
        token: str | Secret,
        *,
        dialect: PatchDialect | str | None = None,
        concurrency: int = 8,
        timeout: float = 30.0,
        max_retries: int = 5,
        member_batch: int = 100,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if concurrency < 1 or member_batch < 1 or timeout <= 0:
            raise ValueError("concurrency, member_batch and timeout must be positive")
        base, flagged = _split_base(base_url)
        self._base = base
        self._dialect = PatchDialect(dialect) if dialect is not None else flagged or PatchDialect.ENTRA
        self._token = token if isinstance(token, Secret) else Secret(token)
        self._timeout = timeout
        self._retry = retry or RetryPolicy(max_retries=max_retries)
        self._member_batch = member_batch
        self._sleep = sleep
        self._rng = rng or random.Random()  # jitter, not cryptography
        self._clock = clock
        self._semaphore = asyncio.Semaphore(concurrency)
        self._stats = StatsRecorder()
        self._client = httpx.AsyncClient(
            base_url=base,
            transport=transport,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={"Accept": SCIM_MEDIA_TYPE, "User-Agent": "Provisor-Provisioning/1.0"},
            follow_redirects=False,
        )
        # Requests go straight to the transport the client would choose for the base URL (its own
        # or an environment proxy's): AsyncClient.request's per-request machinery (URL and header
        # merging, cookies, auth and redirect flows, event hooks) cost about a third of a cycle's
        # CPU. The client stays the transports' owner (aclose).
        self._transport = self._client._transport_for_url(httpx.URL(base + "/"))
        self._headers = {
            "Accept": SCIM_MEDIA_TYPE,
            "User-Agent": "Provisor-Provisioning/1.0",
            "Accept-Encoding": "gzip, deflate",
        }
        self._extensions = {"timeout": httpx.Timeout(timeout).as_dict()}
        # With a LeanTransport (what sync uses) the request head is written here, bytes for bytes
        # what httpx would send minus Accept-Encoding (no compressed answers to decode): building
        # an httpx.Request (URL parsing) and reading its Response cost more than the exchange.
        self._lean: LeanTransport | None = None
        if isinstance(self._transport, LeanTransport):
            url = httpx.URL(base + "/")
            if url.scheme in ("http", "https"):
                self._lean = self._transport
                self._origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
                self._path = url.raw_path.decode("ascii").rstrip("/")
                self._fixed_head = (
                    f"Host: {url.netloc.decode('ascii')}\r\n"
                    f"Accept: {SCIM_MEDIA_TYPE}\r\n"
                    "User-Agent: Provisor-Provisioning/1.0\r\n"
                ).encode("ascii")

    @classmethod
    def from_config(cls, config: TargetConfig, **options: Any) -> ScimTarget:
        """A client for a job's target (entra-behaviour.md 2.1); ``options`` as for the constructor.

        The job's ``patch_dialect`` defaults to Entra's; left at that default, the Tenant URL's
        ``?aadOptscim062020`` flag (1.1) still selects the compliant dialect, as in Entra.
        """
        default = config.patch_dialect is PatchDialect.ENTRA
        return cls(
            config.url,
            config.token,
            dialect=options.pop("dialect", None if default else config.patch_dialect),
            concurrency=options.pop("concurrency", config.concurrency),
            timeout=options.pop("timeout", config.timeout_seconds),
            **options,
        )

    def __repr__(self) -> str:
        return f"ScimTarget(base_url={self._base!r}, dialect={self._dialect.value!r})"

    @property
    def base_url(self) -> str:
        return self._base

    @property
    def dialect(self) -> PatchDialect:
        return self._dialect

    @property
    def stats(self) -> TargetStats:
        """Requests by method and outcome, and retries, so far (a snapshot)."""
        return self._stats.snapshot()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> ScimTarget:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    # -- operations -------------------------------------------------------------------------------

    async def test_connection(self, user_matching_attr: str = "userName", groups: bool = True) -> None:
        """Entra's Test Connection (1.2): query a random GUID; expect 200 and an empty ListResponse.

        Raises InvalidCredentials (401/403), ScimComplianceError (404 instead of 200, Q14) or
        ServiceIncompatible (not a ListResponse, or results for a value no object can have).
        """
        probes: list[tuple[ObjectKind, str]] = [(ObjectKind.USER, user_matching_attr)]
        if groups:
            probes.append((ObjectKind.GROUP, "displayName"))
        for kind, attribute in probes:
            guid = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
            found = await self.find(kind, attribute, guid)
            if found:
                raise ServiceIncompatible(
                    f"GET {_ENDPOINTS[kind]} with filter {attribute} eq <random GUID> returned "
                    f"{len(found)} resource(s): the target ignores the filter"
                )

    async def find(self, kind: Kind, attribute_path: str, value: FilterValue) -> list[dict[str, Any]]:
        """The match query (1.3 step 1, 1.6 Match): ``GET /Users?filter=<path> eq "<value>"``.

        Groups are queried with ``excludedAttributes=members``; a group answered with members
        anyway raises MultipleEntries (Q10).
        """
        endpoint = _endpoint(kind)
        params: list[tuple[str, str]] = []
        if endpoint == "/Groups":
            params.append(("excludedAttributes", "members"))
        params.append(("filter", eq_filter(attribute_path, value)))
        context = f"GET {endpoint}?filter={attribute_path} eq ..."
        response = await self._request("GET", endpoint, context, params=params)
        if response.status_code != 200:
            raise self._error(response, context, query=True)
        resources = list_resources(parse_json(response, context), context)
        if endpoint == "/Groups" and any(r.get("members") for r in resources):
            raise MultipleEntries(f"{context} returned members although excludedAttributes=members")
        return resources

    async def get(self, kind: Kind, id: str) -> dict[str, Any] | None:
        """``GET /Users/{id}`` (1.4 step 1; groups with ``excludedAttributes=members``, 1.6); a 404
        means the object is gone (Entra's ``InvalidAnchor``) and returns ``None``."""
        endpoint = _endpoint(kind)
        path = f"{endpoint}/{_segment(id)}"
        params = [("excludedAttributes", "members")] if endpoint == "/Groups" else None
        context = f"GET {path}"
        response = await self._request("GET", path, context, params=params)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._error(response, context)
        return resource(parse_json(response, context), context)

    async def create(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /Users`` (1.3 step 3-4): expects 201 with an ``id``; 409 raises Conflict.

        Never blindly retried once it may have reached the target (see the module docstring).
        """
        endpoint = _endpoint(kind)
        context = f"POST {endpoint}"
        response = await self._request("POST", endpoint, context, body=body, idempotent=False)
        if response.status_code not in (200, 201):
            raise self._error(response, context)
        return resource(parse_json(response, context), context)

    async def patch(self, kind: Kind, id: str, operations: Sequence[PatchOperation]) -> None:
        """``PATCH /Users/{id}`` in the target's dialect (1.4-1.6); 200 or 204. No operations, no
        request (Entra's ``RedundantExport``). A 404 raises NotFoundError."""
        if not operations:
            return
        path = f"{_endpoint(kind)}/{_segment(id)}"
        context = f"PATCH {path}"
        body = render_patch(operations, self._dialect)
        response = await self._request("PATCH", path, context, body=body)
        if response.status_code not in (200, 204):
            raise self._error(response, context)

    async def delete(self, kind: Kind, id: str) -> bool:
        """``DELETE /Users/{id}`` (1.5): True when deleted, False when it was already gone (404)."""
        path = f"{_endpoint(kind)}/{_segment(id)}"
        context = f"DELETE {path}"
        response = await self._request("DELETE", path, context)
        if response.status_code == 404:
            return False
        if response.status_code not in (200, 204):
            raise self._error(response, context)
        return True

    async def add_members(self, group_id: str, member_ids: Iterable[str]) -> int:
        """Add members, ``member_batch`` per PATCH (1.6, gallery checklist); returns PATCHes sent."""
        return await self._members(group_id, member_ids, add_members_op)

    async def remove_members(self, group_id: str, member_ids: Iterable[str]) -> int:
        """Remove only the listed members, ``member_batch`` per PATCH (1.6, Q3); returns PATCHes sent."""
        return await self._members(group_id, member_ids, remove_members_op)

    async def _members(
        self, group_id: str, member_ids: Iterable[str], make: Callable[[Iterable[str]], PatchOperation]
    ) -> int:
        ids = list(dict.fromkeys(member_ids))
        batches = [ids[i : i + self._member_batch] for i in range(0, len(ids), self._member_batch)]
        for batch in batches:
            await self.patch(ObjectKind.GROUP, group_id, [make(batch)])
        return len(batches)

    # -- the wire ---------------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        context: str,
        *,
        params: list[tuple[str, str]] | None = None,
        body: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """Send with retries; returns the first answer that is neither 429 nor (retried) 5xx."""
        content = orjson.dumps(body) if body is not None else None
        query = "?" + urlencode(params) if params else ""
        send: Callable[[], Awaitable[httpx.Response]]
        if self._lean is not None:
            head = self._head(method, path + query, content)
            payload = content or b""

            def send() -> Awaitable[httpx.Response]:
                return self._send_lean(method, head, payload)

        else:
            headers = {**self._headers, "Authorization": f"Bearer {self._token.reveal()}"}
            if content is not None:
                headers["Content-Type"] = SCIM_MEDIA_TYPE
            request = httpx.Request(
                method,
                self._base + path + query,
                headers=headers,
                content=content,
                extensions=self._extensions,
            )

            def send() -> Awaitable[httpx.Response]:
                return self._send(request)

        retry = 0
        while True:
            error: TargetError
            try:
                async with self._semaphore, asyncio.timeout(self._timeout):
                    response = await send()
            except (httpx.TransportError, TimeoutError) as exc:
                not_sent = isinstance(exc, _NOT_SENT)
                error = _transport_error(exc, context, unknown=not idempotent and not not_sent)
                self._stats.request(method, error.code)
                retry_allowed = idempotent or not_sent
            else:
                self._stats.request(method, response.status_code)
                status = response.status_code
                if status != 429 and status < 500:
                    return response
                error = self._error(response, context)
                # a 429 was refused unprocessed; a 5xx POST may have been applied (1.3).
                retry_allowed = status == 429 or idempotent
                if not retry_allowed:
                    error.outcome_unknown = True
            if not retry_allowed or retry >= self._retry.max_retries:
                raise error
            if error.retry_after is not None:
                delay = self._retry.honour(error.retry_after)
            else:
                delay = self._retry.backoff(retry, self._rng)
            self._stats.retry(error.code, delay)
            log.debug("%s: %s; retry %d in %.2fs", context, error.code, retry + 1, delay)
            retry += 1
            await self._sleep(delay)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """One exchange on the transport, the body read whole (what ``AsyncClient.request`` does
        without ``stream=True``); the response is closed even when reading it fails."""
        response = await self._transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    def _head(self, method: str, target: str, content: bytes | None) -> bytes:
        """The request line and headers for the lean path (``target`` is already percent-encoded)."""
        head = [
            f"{method} {self._path}{target} HTTP/1.1\r\n".encode("ascii"),
            self._fixed_head,
            f"Authorization: Bearer {self._token.reveal()}\r\n".encode(),
        ]
        if content is not None:
            head.append(f"Content-Type: {SCIM_MEDIA_TYPE}\r\nContent-Length: {len(content)}\r\n".encode())
        elif method in ("POST", "PUT", "PATCH"):
            head.append(b"Content-Length: 0\r\n")
        head.append(b"\r\n")
        return b"".join(head)

    async def _send_lean(self, method: str, head: bytes, body: bytes) -> httpx.Response:
        assert self._lean is not None
        scheme, host, port = self._origin
        status, headers, content = await self._lean.exchange(scheme, host, port, head, body, method=method)
        response = httpx.Response(status, headers=headers, stream=httpx.ByteStream(content))
        if any(name.lower() == b"content-encoding" for name, _ in headers):
            await response.aread()  # decoded by httpx
        else:
            response._content = content  # the body is whole already: what Response.aread() stores
        return response

    def _error(self, response: httpx.Response, context: str, *, query: bool = False) -> TargetError:
        detail, scim_type = error_detail(response)
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
        return error_for_status(
            response.status_code,
            context,
            detail=detail,
            scim_type=scim_type,
            query=query,
            retry_after=retry_after,
        )


def _transport_error(exc: Exception, context: str, *, unknown: bool) -> TargetError:
    what = type(exc).__name__
    note = " (it may have been applied: run query-before-create again)" if unknown else ""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return TimeoutError_(f"{context} timed out ({what}){note}", outcome_unknown=unknown)
    return ProtocolError(f"{context} failed: connection error ({what}){note}", outcome_unknown=unknown)


def _endpoint(kind: Kind) -> str:
    return _ENDPOINTS[ObjectKind(kind)]


def _segment(id: str) -> str:
    if not id:
        raise ValueError("an empty resource id")
    return quote(id, safe="")
