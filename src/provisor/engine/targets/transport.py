"""A lean HTTP/1.1 keep-alive transport for :class:`~provisor.engine.targets.ScimTarget`.

httpx's default transport (httpcore) spends more CPU per request than the SCIM conversation it
carries: pool bookkeeping under anyio locks, a readability probe of the socket before every
reuse, and (without sniffio installed) a failed import per request. The engine sends hundreds of
thousands of small requests in an initial cycle from one process, so that overhead was most of a
cycle's time. This transport does one thing: requests on kept-alive asyncio stream connections,
one request at a time per connection, as many connections as requests in flight (ScimTarget
bounds those by its concurrency).

Failure semantics follow httpx's, which ScimTarget's retry rules rely on (POSTs are retried only
when they surely never reached the target): a connection that cannot be opened raises
``httpx.ConnectError``; a kept-alive connection the server has closed is noticed before it is
reused (EOF seen, or idle past ``idle_seconds``, shorter than the usual server keep-alive) and
dropped; a failure after the request was written raises ``httpx.ReadError`` or
``httpx.RemoteProtocolError`` (outcome unknown); a cancelled or failed exchange never returns its
connection to the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from dataclasses import dataclass

import httpx

__all__ = ["LeanTransport"]

_HEAD_LIMIT = 64 * 1024


@dataclass(slots=True)
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float

    def usable(self, now: float, idle_seconds: float) -> bool:
        return (
            not self.writer.is_closing() and not self.reader.at_eof() and now - self.idle_since < idle_seconds
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio streams with a keep-alive pool per origin (http and https)."""

    def __init__(
        self,
        *,
        max_idle: int = 64,
        idle_seconds: float = 4.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._idle: dict[tuple[str, str, int], deque[_Conn]] = {}
        self._max_idle = max_idle
        self._idle_seconds = idle_seconds
        self._ssl = ssl_context
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise httpx.ConnectError("the transport is closed", request=request)
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {scheme!r}", request=request)
        host = url.host
        port = url.port or (443 if scheme == "https" else 80)
        body = await request.aread()
        status, headers, content = await self.exchange(
            scheme, host, port, self._head(request, body), body, method=request.method, request=request
        )
        return httpx.Response(
            status,
            headers=headers,
            stream=httpx.ByteStream(content),
            extensions={"http_version": b"HTTP/1.1"},
            request=request,
        )

    async def exchange(
        self,
        scheme: str,
        host: str,
        port: int,
        head: bytes,
        body: bytes,
        *,
        method: str,
        request: httpx.Request | None = None,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """One request whose head (request line and headers, ``\\r\\n\\r\\n`` included) is
        already encoded: (status, raw headers, body). Same connections and failures as
        :meth:`handle_async_request`, without building an ``httpx.Request`` (ScimTarget's fast path).
        """
        if self._closed:
            raise httpx.ConnectError("the transport is closed", request=request)
        key = (scheme, host, port)
        conn = self._take(key)
        if conn is None:
            conn = await self._open(scheme, host, port, request)
        try:
            try:
                conn.writer.write(head + body if len(body) < 65536 else head)
                if len(body) >= 65536:
                    conn.writer.write(body)
                await conn.writer.drain()
            except (ConnectionError, OSError) as exc:
                raise httpx.WriteError(f"{type(exc).__name__}: {exc}", request=request) from exc
            status, headers, content, keep = await self._response(conn, method, request)
        except BaseException:
            conn.close()
            raise
        if keep and not self._closed:
            self._give(key, conn)
        else:
            conn.close()
        return status, headers, content

    async def aclose(self) -> None:
        self._closed = True
        for pool in self._idle.values():
            while pool:
                pool.pop().close()
        self._idle.clear()

    # -- connections -------------------------------------------------------------------------

    def _take(self, key: tuple[str, str, int]) -> _Conn | None:
        pool = self._idle.get(key)
        now = time.monotonic()
        while pool:
            conn = pool.pop()  # the most recently used: the least likely to have timed out
            if conn.usable(now, self._idle_seconds):
                return conn
            conn.close()
        return None

    def _give(self, key: tuple[str, str, int], conn: _Conn) -> None:
        pool = self._idle.setdefault(key, deque())
        if len(pool) >= self._max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        pool.append(conn)

    async def _open(self, scheme: str, host: str, port: int, request: httpx.Request | None) -> _Conn:
        context: ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            context = self._ssl
        try:
            reader, writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=host if context else None, limit=_HEAD_LIMIT
            )
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}", request=request) from exc
        return _Conn(reader, writer, time.monotonic())

    # -- the exchange ------------------------------------------------------------------------

    @staticmethod
    def _head(request: httpx.Request, body: bytes) -> bytes:
        target = request.url.raw_path
        lines = [request.method.encode("ascii") + b" " + target + b" HTTP/1.1"]
        has_length = False
        for name, value in request.headers.raw:
            lower = name.lower()
            if lower == b"content-length":
                has_length = True
            elif lower == b"transfer-encoding":
                continue  # the body is sent whole, with its length
            lines.append(name + b": " + value)
        if not has_length and (body or request.method in ("POST", "PUT", "PATCH")):
            lines.append(b"Content-Length: " + str(len(body)).encode("ascii"))
        return b"\r\n".join(lines) + b"\r\n\r\n"

    async def _response(
        self, conn: _Conn, method: str, request: httpx.Request | None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        reader = conn.reader
        while True:
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response.", request=request
                    ) from exc
                raise httpx.ReadError("the response head was cut short", request=request) from exc
            except asyncio.LimitOverrunError as exc:
                raise httpx.RemoteProtocolError("response head too large", request=request) from exc
            except (ConnectionError, OSError) as exc:
                raise httpx.ReadError(f"{type(exc).__name__}: {exc}", request=request) from exc
            lines = raw[:-4].split(b"\r\n")
            parts = lines[0].split(b" ", 2)
            try:
                version, status = parts[0], int(parts[1])
            except (IndexError, ValueError) as exc:
                raise httpx.RemoteProtocolError(
                    f"bad status line {lines[0][:80]!r}", request=request
                ) from exc
            if 100 <= status < 200 and status != 101:
                continue  # an interim response (100 Continue): the final one follows
            break
        headers: list[tuple[bytes, bytes]] = []
        length: int | None = None
        chunked = False
        close = version == b"HTTP/1.0"
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                continue
            value = value.strip()
            headers.append((name.strip(), value))
            lower = name.strip().lower()
            if lower == b"content-length":
                try:
                    length = int(value)
                except ValueError as exc:
                    raise httpx.RemoteProtocolError("bad Content-Length", request=request) from exc
            elif lower == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif lower == b"connection":
                token = value.lower()
                close = b"close" in token or (version == b"HTTP/1.0" and b"keep-alive" not in token)
        try:
            if method == "HEAD" or status in (204, 304):
                content = b""
            elif chunked:
                content = await self._chunked(reader)
            elif length is not None:
                content = await reader.readexactly(length)
            else:
                content = await reader.read()  # delimited by the connection's end
                close = True
        except asyncio.IncompleteReadError as exc:
            raise httpx.ReadError("the response body was cut short", request=request) from exc
        except (ConnectionError, OSError) as exc:
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}", request=request) from exc
        return status, headers, content, not close

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        chunks: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            except ValueError as exc:
                raise httpx.RemoteProtocolError("bad chunk size") from exc
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
