"""LeanTransport: the engine's HTTP/1.1 keep-alive transport (engine/targets/transport.py).

Its failure semantics are what ScimTarget's no-duplicates rule rests on: a connection that could
not be opened is ConnectError (the request was never sent), a stale kept-alive connection is
dropped before reuse, and a broken exchange never goes back to the pool.
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from tests.conftest import LiveServer
from tests.engine.targets.faulty_proxy import FaultyProxy
from tests.engine.targets.test_faulty_proxy import COUNT, HOLD, TIMEOUT, converge

from provisor.engine.targets import ScimTarget
from provisor.engine.targets.patch import PatchOperation
from provisor.engine.targets.transport import LeanTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


def test_keep_alive_reuses_one_connection_and_sends_the_body() -> None:
    connections = 0
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                seen.append(await read_request(reader))
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
                )
                await writer.drain()
        except asyncio.IncompleteReadError:
            writer.close()

    async def main() -> list[httpx.Response]:
        server, url = await serve(handler)
        async with server, httpx.AsyncClient(transport=LeanTransport(), base_url=url) as client:
            return [await client.post("/x", content=b'{"a": 1}'), await client.get("/y", params={"q": "a b"})]

    first, second = asyncio.run(main())
    assert first.status_code == 200 and first.json() == {} and second.json() == {}
    assert connections == 1
    assert seen[0].startswith(b"POST /x HTTP/1.1\r\n") and seen[0].endswith(b'\r\n\r\n{"a": 1}')
    assert b"content-length: 8" in seen[0].lower()
    assert seen[1].startswith(b"GET /y?q=a+b HTTP/1.1\r\n") or seen[1].startswith(
        b"GET /y?q=a%20b HTTP/1.1\r\n"
    )


def test_a_connection_the_server_closed_is_not_reused() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        # answers keep-alive, then closes anyway (a server's keep-alive timeout)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        writer.close()

    async def main() -> list[int]:
        server, url = await serve(handler)
        statuses = []
        async with server, httpx.AsyncClient(transport=LeanTransport(), base_url=url) as client:
            for _ in range(3):
                statuses.append((await client.post("/x", content=b"{}")).status_code)
                await asyncio.sleep(0.05)  # the EOF arrives
        return statuses

    assert asyncio.run(main()) == [204, 204, 204]
    assert connections == 3


def test_idle_connections_are_dropped_after_idle_seconds() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                await read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except asyncio.IncompleteReadError:
            writer.close()

    async def main() -> None:
        server, url = await serve(handler)
        async with server, httpx.AsyncClient(transport=LeanTransport(idle_seconds=0.05), base_url=url) as c:
            await c.get("/a")
            await asyncio.sleep(0.1)
            await c.get("/b")

    asyncio.run(main())
    assert connections == 2


def test_chunked_and_close_delimited_bodies() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        if request.startswith(b"GET /chunked"):
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"
            )
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    async def main() -> list[bytes]:
        server, url = await serve(handler)
        async with server, httpx.AsyncClient(transport=LeanTransport(), base_url=url) as client:
            chunked = (await client.get("/chunked")).content
            await asyncio.sleep(0.05)  # the server closed that connection: let the EOF arrive
            return [chunked, (await client.get("/close")).content]

    assert asyncio.run(main()) == [b"hello world", b"until the end"]


def test_refused_connection_is_connect_error_and_a_dropped_answer_is_not() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()  # received the request, never answered

    async def main() -> list[type[BaseException]]:
        raised: list[type[BaseException]] = []
        async with httpx.AsyncClient(transport=LeanTransport()) as client:
            try:
                await client.post(f"http://127.0.0.1:{free}/x", content=b"{}")
            except httpx.HTTPError as exc:
                raised.append(type(exc))
            server, url = await serve(drop)
            async with server:
                try:
                    await client.post(url + "/x", content=b"{}")
                except httpx.HTTPError as exc:
                    raised.append(type(exc))
        return raised

    connect, dropped = asyncio.run(main())
    assert connect is httpx.ConnectError
    assert dropped is httpx.RemoteProtocolError  # maybe applied: ScimTarget marks a POST outcome-unknown


def test_a_cancelled_exchange_does_not_return_its_connection() -> None:
    connections = 0

    async def slow_then_fast(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            first = True
            while True:
                await read_request(reader)
                if first:
                    first = False
                    await asyncio.sleep(0.3)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n" + str(connections).encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> bytes:
        server, url = await serve(slow_then_fast)
        async with server, httpx.AsyncClient(transport=LeanTransport(), base_url=url) as client:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await client.get("/slow")
            return (await client.get("/fast")).content  # a fresh connection, not the late answer

    assert asyncio.run(main()) == b"2"


@pytest.mark.slow
def test_200_objects_through_20_percent_faults_with_the_lean_transport(live: LiveServer) -> None:
    """The faulty-proxy convergence (test_faulty_proxy.py) on this transport: no duplicates."""
    _, token = live.new_tenant()

    async def fake_sleep(seconds: float) -> None:
        return None

    async def main() -> tuple[FaultyProxy, Any, int, Counter[str]]:
        faults = FaultyProxy(live.root, fault_rate=0.2, seed=20240601, delay=HOLD, retry_after="2")
        async with faults as proxy:
            async with ScimTarget(
                proxy.url + "/scim/v2",
                token,
                timeout=TIMEOUT,
                max_retries=4,
                concurrency=8,
                sleep=fake_sleep,
                transport=LeanTransport(),
            ) as target:
                cycles, escrows = await converge(target, proxy)
                return proxy, target.stats, cycles, escrows

    proxy, stats, _, _ = asyncio.run(main())
    assert set(proxy.faults_injected()) == {"429", "500", "delay", "drop"}
    assert stats.count("POST", "Timeout") + stats.count("POST", "WebExceptionProtocolError") >= 1
    upstream_posts = Counter(r.upstream_status for r in proxy.log if r.method == "POST" and r.upstream_status)
    assert upstream_posts == {201: COUNT}, upstream_posts
    with httpx.Client(base_url=live.base, headers={"Authorization": f"Bearer {token}"}) as client:
        assert client.get("/Users", params={"count": 0}).json()["totalResults"] == COUNT


def test_scim_target_writes_the_same_requests_on_the_lean_path_as_through_httpx() -> None:
    """ScimTarget writes request heads itself over a LeanTransport (its fast path): the request
    line, headers and body are what httpx sends, less Accept-Encoding and Connection."""
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await read_request(reader)
                seen.append(request)
                line = request.split(b"\r\n", 1)[0]
                if line.startswith(b"POST"):
                    body = b'{"id":"n\\u00e9w"}'
                    writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                elif line.startswith(b"GET"):
                    body = b'{"Resources":[],"totalResults":0}'
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                else:
                    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def normalised(raw: bytes) -> tuple[bytes, frozenset[bytes], bytes]:
        head, _, body = raw.partition(b"\r\n\r\n")
        line, *headers = head.split(b"\r\n")
        skip = (b"accept-encoding:", b"connection:")
        kept = frozenset(h.lower() for h in headers if not h.lower().startswith(skip))
        return line, kept, body

    async def conversation(transport: httpx.AsyncBaseTransport, url: str) -> None:
        async with ScimTarget(url + "/scim/v2?aadOptscim062020=true", "s3cret", transport=transport) as t:
            assert await t.find("user", "userName", 'a b+"c"@x\u00e9.com') == []
            assert (await t.create("user", {"userName": "\u00e9", "active": True}))["id"] == "n\u00e9w"
            await t.patch("user", "id/1 x", [PatchOperation("replace", "title", "CTO")])
            assert await t.delete("group", "g 1") is True
            assert await t.find("group", "displayName", "G") == []

    async def main() -> tuple[list[bytes], list[bytes]]:
        server, url = await serve(handler)
        async with server:
            await conversation(LeanTransport(), url)
            lean = seen[:]
            seen.clear()
            await conversation(httpx.AsyncHTTPTransport(), url)
            return lean, seen[:]

    lean, plain = asyncio.run(main())
    assert len(lean) == 5
    assert [normalised(r) for r in lean] == [normalised(r) for r in plain]
