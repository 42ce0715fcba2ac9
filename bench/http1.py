"""A minimal asyncio HTTP/1.1 keep-alive client for the benchmark's loading and its fallback load generator.

One connection per client, one request at a time; a pool of these is far cheaper per request than a shared
httpx.AsyncClient, so the client side does not cap what is measured. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import quote

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class HTTPError(Exception):
    pass


def query(params: dict[str, str]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())


class Connection:
    def __init__(self, host: str, port: int, headers: dict[str, str], timeout: float = 60.0) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"the benchmark only talks to loopback, not {host}")
        self.host, self.port, self.timeout = host, port, timeout
        fixed = {"Host": f"{host}:{port}", **headers}
        self._head = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """(status, body). Reconnects once if a kept-alive connection turns out closed."""
        for attempt in (1, 2):
            fresh = self._writer is None
            try:
                return await asyncio.wait_for(self._exchange(method, path, body), self.timeout)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                await self.close()
                if fresh or attempt == 2:
                    raise HTTPError(f"{method} {path}: {exc!r}") from exc
            except TimeoutError as exc:
                await self.close()
                raise HTTPError(f"{method} {path}: timed out after {self.timeout}s") from exc
        raise AssertionError("unreachable")

    async def _exchange(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._reader, self._writer
        assert reader is not None
        payload = body or b""
        head = f"{method} {path} HTTP/1.1\r\n{self._head}Content-Length: {len(payload)}\r\n\r\n"
        writer.write(head.encode("latin-1") + payload)
        await writer.drain()
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # no trailers expected
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            data = b"".join(chunks)
        elif "content-length" in headers:
            data = await reader.readexactly(int(headers["content-length"]))
        elif status in (204, 304) or method == "HEAD":
            data = b""
        else:
            data = await reader.read()  # until the server closes
            await self.close()
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, data
