"""Write coalescing: one write per event-loop turn, in order, flushed before close; and a real
server on loopback that answers pipelined, closing and large requests correctly through it."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from tests.conftest import USER

from provisor.cli.coalescing import (
    MAX_HEAD_BYTES,
    CoalescingHttpToolsProtocol,
    CoalescingTransport,
    HttpToolsMissing,
    coalescing_protocol,
)


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.unsent = 0  # bytes the socket would not take
        self.high_water: int | None = None

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.high_water = high

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


def _wrap(fake: FakeTransport) -> CoalescingTransport:
    return CoalescingTransport(fake, asyncio.get_running_loop())  # type: ignore[arg-type]


def test_the_writes_of_one_turn_leave_as_one_write_in_order() -> None:
    async def main() -> list[bytes]:
        fake = FakeTransport()
        t = _wrap(fake)
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"")  # nothing to send: not a write of its own
        t.write(bytearray(b"body"))
        t.writelines([b"-", memoryview(b"end")])
        assert fake.writes == []  # nothing left yet: the turn is not over
        await asyncio.sleep(0)
        t.write(b"next")
        await asyncio.sleep(0)
        return fake.writes

    assert asyncio.run(main()) == [b"HTTP/1.1 200 OK\r\n\r\nbody-end", b"next"]


def test_close_sends_what_is_kept_first_and_abort_drops_it() -> None:
    async def main() -> tuple[FakeTransport, FakeTransport]:
        closing, aborting = FakeTransport(), FakeTransport()
        t = _wrap(closing)
        t.write(b"last words")
        t.close()
        u = _wrap(aborting)
        u.write(b"never sent")
        u.abort()
        await asyncio.sleep(0)  # the scheduled flushes find nothing (and do not write after close)
        return closing, aborting

    closing, aborting = asyncio.run(main())
    assert closing.writes == [b"last words"] and closing.closed
    assert aborting.writes == [] and aborting.aborted
    assert closing.high_water is None  # the socket took everything: flow control untouched


def test_a_close_with_bytes_the_socket_did_not_take_pauses_the_protocol_until_they_leave() -> None:
    """A high-water mark of 0: the protocol is paused, and so its write timeout runs, until the
    last byte has left (else a client reading nothing holds a closing connection for good)."""

    async def main() -> FakeTransport:
        fake = FakeTransport()
        fake.unsent = 10
        _wrap(fake).close()
        return fake

    fake = asyncio.run(main())
    assert fake.closed and fake.high_water == 0


def test_everything_else_is_the_real_transports() -> None:
    async def main() -> object:
        return _wrap(FakeTransport()).get_extra_info("peername")

    assert asyncio.run(main()) == ("127.0.0.1", 1)


def test_the_server_runs_on_the_coalescing_protocol(live) -> None:
    assert live.server.server.config.http is coalescing_protocol()


def _exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def _responses(raw: bytes) -> list[tuple[bytes, bytes]]:
    """Split HTTP/1.1 responses with Content-Length into (head, body) pairs."""
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        out.append((head, rest[:length]))
        raw = rest[length:]
    return out


@pytest.fixture
def port(live) -> int:
    return live.server.port


def test_pipelined_requests_are_answered_in_order(port) -> None:
    requests = (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    got = _responses(_exchange(port, requests))
    assert [h.split(b"\r\n")[0] for h, _ in got] == [
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 404 Not Found",
        b"HTTP/1.1 200 OK",
    ]
    assert got[0][1] == got[2][1] == b'{"status":"ok"}'
    assert b"scim:api:messages:2.0:Error" in got[1][1]


def test_a_large_response_arrives_whole(port, tenant) -> None:
    _, token = tenant
    request = (
        f"GET /scim/v2/Schemas HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    [(head, body)] = _responses(_exchange(port, request))
    assert head.startswith(b"HTTP/1.1 200") and len(body) > 10_000
    assert body.startswith(b'{"schemas"') and body.endswith(b"}")


@pytest.mark.parametrize(
    "payload",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n",
    ],
    ids=["garbage", "bad-header"],
)
def test_what_is_not_http_gets_a_scim_error_and_the_connection_closes(port: int, payload: bytes) -> None:
    _assert_scim_400(_exchange(port, payload))


@pytest.mark.parametrize(
    "line",
    [b"GET /healthz HTTP/2.0", b"GET /healthz", b"GET /healthz HTTP/0.9"],
    ids=["2.0", "no-version", "0.9"],
)
def test_a_request_line_of_another_http_version_is_505(port: int, line: bytes) -> None:
    """httptools reads these; answering them as HTTP/1.1 requests answers what was not asked
    (RFC 9110 section 15.6.6). The SCIM Error says which version to send."""
    ((head, body),) = _responses(_exchange(port, line + b"\r\nHost: x\r\n\r\n"))
    lines = head.lower().split(b"\r\n")
    assert lines[0] == b"http/1.1 505 http version not supported"
    assert b"connection: close" in lines
    error = json.loads(body)
    assert error["status"] == "505" and "HTTP/1.1" in error["detail"]


@pytest.mark.parametrize(
    ("target", "base"),
    [
        ("http://scim.example.com:9443", "http://scim.example.com:9443"),
        ("HTTPS://Scim.Example.com", "https://Scim.Example.com"),
        ("http://[::1]:8443", "http://[::1]:8443"),
    ],
)
def test_a_target_in_absolute_form_names_the_host_of_the_locations(
    port: int, tenant: tuple[str, str], target: str, base: str
) -> None:
    """RFC 9112 section 3.2.2: with the target in absolute form a server MUST ignore the Host
    header and use the target's host (section 3.3: the target URI is the request-target)."""
    _, token = tenant
    body = json.dumps({"schemas": [USER], "userName": f"abs-{port}-{base}"}).encode()
    request = (
        f"POST {target}/scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/scim+json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    [(head, answer)] = _responses(_exchange(port, request))
    assert head.startswith(b"HTTP/1.1 201"), head + answer
    created = json.loads(answer)
    location = f"{base}/scim/v2/Users/{created['id']}"
    assert created["meta"]["location"] == location
    headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
    assert {k.lower(): v for k, v in headers.items()}[b"location"] == location.encode()


@pytest.mark.parametrize("version", [b"1.0", b"1.1"])
def test_http_1_requests_are_served(port: int, version: bytes) -> None:
    raw = _exchange(port, b"GET /healthz HTTP/" + version + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
    ((head, body),) = _responses(raw)
    assert head.startswith(b"HTTP/1.1 200") and body == b'{"status":"ok"}'


@pytest.mark.parametrize("pieces", [False, True], ids=["whole", "in-pieces"])
def test_a_request_target_beyond_what_is_read_is_414(port: int, pieces: bool) -> None:
    # httptools' URL parser reads no target of 65,536 bytes or more; the answer says so
    head = b"GET /scim/v2/Users?filter=" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = _send_head_in_pieces(port, head) if pieces else _exchange(port, head)
    ((status, body),) = _responses(raw)
    assert status.split(b"\r\n")[0] == b"HTTP/1.1 414 URI Too Long"
    error = json.loads(body)
    assert error["status"] == "414" and ".search" in error["detail"]


@pytest.mark.parametrize("pieces", [False, True], ids=["whole", "in-pieces"])
def test_a_complete_head_is_held_to_the_limit_however_it_arrives(port: int, pieces: bool) -> None:
    def exchange(header_bytes: int) -> bytes:
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * header_bytes + b"\r\n"
        head += b"Connection: close\r\n\r\n"
        return _send_head_in_pieces(port, head, piece=40_000) if pieces else _exchange(port, head)

    ((status, _),) = _responses(exchange(MAX_HEAD_BYTES - 200))
    assert status.startswith(b"HTTP/1.1 200")
    for size in (MAX_HEAD_BYTES, 2 * MAX_HEAD_BYTES - 10_000):
        ((status, body),) = _responses(exchange(size))
        assert status.split(b"\r\n")[0] == b"HTTP/1.1 431 Request Header Fields Too Large", size
        assert json.loads(body)["status"] == "431"


def _assert_scim_400(raw: bytes) -> None:
    ((head, body),) = _responses(raw)  # one response, then the server closed the connection
    lines = head.lower().split(b"\r\n")
    assert lines[0] == b"http/1.1 400 bad request"
    assert b"content-type: application/scim+json" in lines and b"connection: close" in lines
    error = json.loads(body)
    assert error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert error["status"] == "400" and error["scimType"] == "invalidSyntax"


def _send_head_in_pieces(port: int, head: bytes, piece: int = 8192) -> bytes:
    """Send ``head`` piece by piece, reading whatever the server answers; stop when it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            for start in range(0, len(head), piece):
                s.sendall(head[start : start + piece])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the rest was sent
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize("shape", ["one-big-header", "many-headers"])
def test_a_request_head_beyond_the_limit_is_431_before_it_is_complete(port: int, shape: str) -> None:
    # without a limit httptools keeps every byte of an unfinished head, before any token is checked
    if shape == "one-big-header":
        head = b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (2 * MAX_HEAD_BYTES)
    else:
        head = b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n" + b"X-H: 1234567890\r\n" * 20_000
    raw = _send_head_in_pieces(port, head)  # never terminated by an empty line
    ((status, body),) = _responses(raw)
    assert status.split(b"\r\n")[0] == b"HTTP/1.1 431 Request Header Fields Too Large"
    error = json.loads(body)
    assert error["status"] == "431" and str(MAX_HEAD_BYTES) in error["detail"]


def test_a_large_body_and_pipelined_requests_are_not_a_large_head(port: int) -> None:
    body = b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "count": 1, "x": "'
    body += b"y" * (3 * MAX_HEAD_BYTES) + b'"}'
    one = (
        b"POST /scim/v2/Users/.search HTTP/1.1\r\nHost: x\r\nContent-Type: application/scim+json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    raw = _exchange(port, one + one + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    statuses = [head.split(b"\r\n")[0] for head, _ in _responses(raw)]
    assert statuses == [b"HTTP/1.1 401 Unauthorized", b"HTTP/1.1 401 Unauthorized", b"HTTP/1.1 200 OK"]


def test_without_httptools_there_is_no_protocol_to_serve_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn would fall back to h11, which has none of the read timeouts: refused instead."""
    import provisor.cli.coalescing

    assert coalescing_protocol() is CoalescingHttpToolsProtocol
    monkeypatch.setattr(provisor.cli.coalescing, "HttpToolsProtocol", None)
    with pytest.raises(HttpToolsMissing, match="httptools"):
        coalescing_protocol()
