"""A fault-injecting HTTP/1.1 proxy on 127.0.0.1 for cycle tests (entra-behaviour.md 1.8, 4.3).

It forwards requests to an upstream SCIM server and, on a seeded-random ``fault_rate`` of them,
injects one of the faults a real target shows:

``429``    answered ``429 Too Many Requests`` with ``Retry-After``, never forwarded (4.3);
``500``    a SCIM 500 error; half the time *after* forwarding (the write happened, the answer broke);
``delay``  forwarded, then the answer held back until the client gives up (its timeout) and
           hangs up, however long that takes on a busy machine (``delay`` seconds at most);
``drop``   the connection aborted without an answer; half the time after forwarding.

The faults that happen after forwarding are the dangerous ones: a client that re-POSTs blindly
creates duplicates. ``log`` records every request with its fault and the upstream status, and
:meth:`FaultyProxy.quiesce` waits until no forward is in flight (the gap between two cycles).
Only ``Content-Length`` bodies are supported (what httpx sends). Under concurrency the arrival
order, hence which request gets which fault, varies between runs; the rates do not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

FAULTS = ("429", "500", "delay", "drop")
_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


@dataclass(frozen=True, slots=True)
class Record:
    """One request seen: its fault (None = passed through) and the upstream status (None = not sent)."""

    method: str
    target: str
    fault: str | None
    upstream_status: int | None


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


class FaultyProxy:
    def __init__(
        self,
        upstream: str,
        *,
        fault_rate: float = 0.2,
        faults: Sequence[str] = FAULTS,
        seed: int = 0,
        delay: float = 1.0,
        retry_after: str = "1",
    ) -> None:
        unknown = set(faults) - set(FAULTS)
        if unknown or not 0 <= fault_rate <= 1:
            raise ValueError(f"bad fault settings: {unknown or fault_rate}")
        self.upstream = upstream.rstrip("/")
        self.fault_rate = fault_rate
        self.faults = tuple(faults)
        self.delay = delay
        self.retry_after = retry_after
        self.log: list[Record] = []
        self._rng = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._forwarding = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start(self) -> FaultyProxy:
        self._client = httpx.AsyncClient(base_url=self.upstream, timeout=30)
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    async def __aenter__(self) -> FaultyProxy:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def quiesce(self) -> None:
        """Wait until every request already forwarded has been answered upstream."""
        await self._idle.wait()

    def faults_injected(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.log:
            if record.fault:
                counts[record.fault] = counts.get(record.fault, 0) + 1
        return counts

    # -- connections ------------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                request = await _read_request(reader)
                if request is None or not await self._handle(request, reader, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(
        self, request: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; False closes the connection."""
        fault = self._rng.choice(self.faults) if self._rng.random() < self.fault_rate else None
        forward_first = self._rng.random() < 0.5
        status: int | None = None
        if fault == "429":
            self.log.append(Record(request.method, request.target, fault, None))
            body = _error_body(429, "slow down")
            await _write(writer, 429, body, [("Retry-After", self.retry_after)])
            return True
        if fault in ("500", "drop") and not forward_first:
            self.log.append(Record(request.method, request.target, fault, None))
            if fault == "drop":
                writer.transport.abort()
                return False
            await _write(writer, 500, _error_body(500, "injected failure"))
            return True
        status, content_type, body = await self._forward(request)
        self.log.append(Record(request.method, request.target, fault, status))
        if fault == "drop":
            writer.transport.abort()
            return False
        if fault == "500":
            await _write(writer, 500, _error_body(500, "injected failure after the write"))
            return True
        if fault == "delay":
            # A fixed hold raced the client's timeout: on a busy machine the client's clock ran
            # past it before the hold ended, or not; the client hanging up is the fact to wait for.
            with contextlib.suppress(TimeoutError, ConnectionError):
                async with asyncio.timeout(self.delay):
                    await reader.read()  # to its end: the client closed the connection
            if reader.at_eof():
                return False  # nobody is left to answer
        await _write(writer, status, body, [("Content-Type", content_type)] if content_type else [])
        return fault != "delay"

    async def _forward(self, request: _Request) -> tuple[int, str | None, bytes]:
        assert self._client is not None
        self._forwarding += 1
        self._idle.clear()
        try:
            keep = {"authorization", "content-type", "accept"}
            headers = [(k, v) for k, v in request.headers if k.lower() in keep]
            response = await self._client.request(
                request.method, request.target, headers=headers, content=request.body or None
            )
            return response.status_code, response.headers.get("content-type"), response.content
        finally:
            self._forwarding -= 1
            if self._forwarding == 0:
                self._idle.set()


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
    body = await reader.readexactly(length) if length else b""
    return _Request(method, target, headers, body)


def _error_body(status: int, detail: str) -> bytes:
    return json.dumps(
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(status), "detail": detail}
    ).encode()


async def _write(
    writer: asyncio.StreamWriter, status: int, body: bytes, headers: list[tuple[str, str]] | None = None
) -> None:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"Content-Length: {len(body)}"]
    if status in (429, 500):
        lines.append("Content-Type: application/scim+json")
    lines += [f"{k}: {v}" for k, v in headers or []]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    with contextlib.suppress(ConnectionError):
        await writer.drain()
