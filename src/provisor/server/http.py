"""The little HTTP vocabulary the SCIM handlers need, read straight from the ASGI scope.

The SCIM endpoints are the hot path (Entra sends a query or a PATCH per object); building
Starlette ``Request`` objects and multi-dicts costs more than the database lookup they lead to, so
the SCIM app reads the scope itself. Everything else (health, metrics, the 404 fallback) is plain
Starlette.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from provisor.scim.errors import BadRequest, InvalidSyntax, InvalidValue, PayloadTooLarge, Unauthorized

#: The scope key under which the status the client was really given is kept when it is not the
#: app's: the server's 408 for a body that did not come in time (``cli/coalescing.py``), or
#: :data:`CLIENT_CLOSED` for a client that went before its body did. The access log and metrics
#: count that status, not the app's answer, which went nowhere.
ANSWERED = "provisor.answered"
#: The status logged for a request whose client closed the connection before sending all of it
#: (nginx's 499 "client closed request"; never sent: there is no one left to send it to).
CLIENT_CLOSED = 499

#: A Host header's value (RFC 9110 section 7.2, RFC 3986 section 3.2.2): an IP literal in brackets
#: or a reg-name / IPv4 address, then an optional port; empty is allowed (RFC 9112 section 3.2).
#: The server builds ``meta.location``, ``Location`` and ``$ref`` from it (unless ``--public-url``
#: is set), so what passes here can only be a URI's authority: no ``/ ? # @`` or spaces.
_HOST = re.compile(r"(?:\[[0-9A-Za-z:.%_~-]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(?::[0-9]{0,5})?")

JSON_TYPES = ("application/scim+json", "application/json")
SCIM_MEDIA_TYPE = b"application/scim+json"
JSON_MEDIA_TYPE = b"application/json"


#: two hex digits, in any case, -> the byte they write (``%xx`` escapes, RFC 3986 section 2.1)
_HEX: dict[str, int] = {
    a + b: int(a + b, 16) for a in "0123456789abcdefABCDEF" for b in "0123456789abcdefABCDEF"
}


def unquote_query(text: str, errors: str = "replace") -> str:
    """One name or value of a query string (``application/x-www-form-urlencoded``): ``+`` is a
    space, ``%xx`` a byte, and the bytes are UTF-8 (invalid sequences become U+FFFD; with
    ``errors="strict"`` they raise UnicodeDecodeError).

    ``text`` is the raw query decoded as latin-1 (one character a byte), so unescaped UTF-8 sent
    by a lax client decodes too. What ``urllib.parse.unquote_plus`` gives for the same ASCII text
    (the oracle of a property test), at about half the cost: Entra's filter on every request is
    escaped.
    """
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text if text.isascii() else text.encode("latin-1").decode("utf-8", errors)
    parts = text.split("%")
    out = bytearray(parts[0], "latin-1")
    hex_byte = _HEX.get
    for part in parts[1:]:
        byte = hex_byte(part[:2])
        if byte is None:  # not an escape: a literal "%"
            out += b"%"
            out += part.encode("latin-1")
        else:
            out.append(byte)
            out += part[2:].encode("latin-1")
    return out.decode("utf-8", errors)


def _quality(accept: str, media: str) -> float:
    """The q an Accept header gives ``media`` (``type/subtype``, lower case): that of its most
    specific matching range (RFC 9110 section 12.5.1), 0 when none matches."""
    kind = media.split("/")[0]
    best, specificity = 0.0, -1
    for part in accept.split(","):
        range_, *params = part.split(";")
        range_ = range_.strip().lower()
        if range_ == media:
            rank = 2
        elif range_ == f"{kind}/*":
            rank = 1
        elif range_ == "*/*":
            rank = 0
        else:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0  # a q that is no number accepts nothing it names
        if rank > specificity:
            best, specificity = q, rank
    return best


_NEGOTIATED: dict[str, bytes] = {}
#: Distinct Accept headers remembered (clients send one or two; a hostile one is not cached).
_NEGOTIATED_MAX = 64


def response_media_type(accept: str | None) -> bytes:
    """The Content-Type of an answer to a request with this Accept header (RFC 7644 section 3.1).

    ``application/scim+json`` by default, and whenever the client accepts it at least as well as
    ``application/json``; ``application/json`` when the client asks for that (``Accept:
    application/json``, as generic HTTP clients and some SCIM client libraries send) and prefers
    it. A header that accepts neither is disregarded (RFC 9110 section 12.5.1 allows that instead
    of 406): the answer is SCIM JSON, which is what every SCIM client reads.
    """
    if accept is None:
        return SCIM_MEDIA_TYPE
    found = _NEGOTIATED.get(accept)
    if found is None:
        found = SCIM_MEDIA_TYPE
        if _quality(accept, "application/json") > _quality(accept, "application/scim+json"):
            found = JSON_MEDIA_TYPE
        if len(_NEGOTIATED) < _NEGOTIATED_MAX:
            _NEGOTIATED[accept] = found
    return found


#: The query parameters of RFC 7644 (sections 3.4.2 and 3.9) and RFC 9865 (``cursor``), in lower
#: case: the SCIM app reads their names in any case.
SCIM_PARAMETERS = frozenset(
    {"filter", "sortby", "sortorder", "startindex", "count", "attributes", "excludedattributes", "cursor"}
)


def parse_query(raw: bytes) -> dict[str, str]:
    """``a=1&b=x+y`` -> {"a": "1", "b": "x y"}; names keep their case, the last value wins. 400
    ``invalidValue`` for bytes that are not UTF-8: read with U+FFFD in their place, a filter
    such as ``userName ne "%FF"`` would have matched what the client never named. 400
    ``invalidValue`` too for a SCIM parameter given twice, in one case or two (``filter`` and
    ``Filter``): which of two filters the client meant, no reading can tell."""
    out: dict[str, str] = {}
    if not raw:
        return out
    text = raw.decode("latin-1")
    pairs = 0
    for pair in text.split("&"):
        if not pair:
            continue
        pairs += 1
        name, _, value = pair.partition("=")
        try:
            out[unquote_query(name, "strict")] = unquote_query(value, "strict")
        except UnicodeDecodeError:
            shown = unquote_query(name)
            raise InvalidValue(
                f"the query parameter {shown!r} is not UTF-8 text once its %-escapes are decoded "
                "(RFC 3986 section 2.5)"
            ) from None
    if pairs > 1:  # Entra's query is one parameter: the look for a repeated one costs it nothing
        _refuse_repeated(text)
    return out


def _refuse_repeated(text: str) -> None:
    """400 for a SCIM parameter the query string ``text`` gives twice, in one case or two."""
    seen: set[str] = set()
    for pair in text.split("&"):
        name = unquote_query(pair.partition("=")[0])
        low = name.lower()
        if low in SCIM_PARAMETERS:
            if low in seen:
                raise InvalidValue(
                    f"the query parameter {name!r} is given twice (parameter names are case-insensitive); "
                    "send it once"
                )
            seen.add(low)


class ScimRequest:
    """One request to the SCIM app: method, route path, headers, query, and the body stream."""

    __slots__ = ("_query", "body", "headers", "method", "receive", "route", "scope")

    def __init__(self, scope: Scope, receive: Receive, route: str) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.route = route
        self.headers: dict[str, str] = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self._query: dict[str, str] | None = None
        #: The body's bytes once :meth:`json` has read them (a request trace shows them).
        self.body: bytes | None = None

    def check_host(self) -> None:
        """400 unless the request names one well-formed Host (RFC 9112 section 3.2: a server MUST
        answer 400 to an HTTP/1.1 request without one, with several, or with an invalid one)."""
        host = self.headers.get("host")
        if host is None:
            if self.scope.get("http_version") == "1.0":
                return
            raise BadRequest("an HTTP/1.1 request needs a Host header (RFC 9112 section 3.2)")
        if _HOST.fullmatch(host) is None:
            raise BadRequest("the Host header is not a host name or address with an optional port")
        if len(self._lines("host")) > 1:
            raise BadRequest("send one Host header, not several (RFC 9112 section 3.2)")

    def credentials(self) -> str | None:
        """The Authorization header, None when absent; 401 when it is sent more than once, so
        that no client has one of two credentials chosen for it."""
        found = self.headers.get("authorization")
        if found is not None and len(self._lines("authorization")) > 1:
            raise Unauthorized("send one Authorization header, not several")
        return found

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            self._query = parse_query(self.scope.get("query_string", b""))
        return self._query

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def header_list(self, name: str) -> str | None:
        """A list-valued header (RFC 9110 section 5.3: If-Match, If-None-Match): its lines joined
        with commas, as one line would send them; None when absent. ``name`` is lower case."""
        found = self.headers.get(name)
        return found if found is None else ", ".join(self._lines(name))

    def _lines(self, name: str) -> list[str]:
        """Every line of the header ``name`` (lower case), in order; ``headers`` keeps the last."""
        raw = self.scope["headers"]
        if len(self.headers) == len(raw):  # no header repeats: ``headers`` has them all
            found = self.headers.get(name)
            return [] if found is None else [found]
        key = name.encode("latin-1")
        return [v.decode("latin-1") for k, v in raw if k.lower() == key]

    async def json(self, limit: int) -> Any:
        """The body as JSON; 413 beyond ``limit`` bytes, 400 invalidSyntax when not JSON."""
        length = self.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
        ctype = self.headers.get("content-type")
        if ctype is not None and ctype not in JSON_TYPES:  # a bare JSON type passes as it is
            media, _, params = ctype.partition(";")
            media = media.strip().lower()
            if media and media not in JSON_TYPES:
                raise InvalidSyntax(f"Content-Type {media!r} is not supported; send application/scim+json")
            charset = _charset(params)
            if charset is not None and charset not in ("utf-8", "utf8"):
                raise InvalidSyntax(
                    f"charset {charset!r} is not supported: SCIM JSON is UTF-8 (RFC 8259 section 8.1)"
                )
        coding = self.headers.get("content-encoding")
        if coding is not None and coding.strip().lower() not in ("", "identity"):
            raise InvalidSyntax(
                f"Content-Encoding {coding.strip()!r} is not supported; send the body uncompressed"
            )
        chunks: list[bytes] = []
        size = 0
        while True:  # what ``stream`` yields, read here without an async generator per request
            message = await self.receive()
            if message["type"] == "http.disconnect":
                # the client went before the whole body came (or the server timed it out): nothing
                # of it is run, and the access log and metrics count it as what the client got
                self.scope.setdefault(ANSWERED, CLIENT_CLOSED)
                raise InvalidSyntax("the connection closed before the whole request body arrived")
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        raw = self.body = b"".join(chunks)
        if not raw.strip():
            raise InvalidSyntax("the request body is empty; a JSON object is expected")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            where = _first_invalid_utf8(raw)  # orjson's message speaks of surrogates whatever the bytes
            if where is not None:
                raise InvalidSyntax(
                    "the request body is not UTF-8 text (RFC 8259 section 8.1): "
                    f"the bytes at offset {where} are not"
                ) from None
            raise InvalidSyntax(f"the request body is not valid JSON: {exc}") from None


def _first_invalid_utf8(raw: bytes) -> int | None:
    """The offset of the first byte of ``raw`` that is not UTF-8; None when it all is."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return None


def _charset(params: str) -> str | None:
    """The lower-cased ``charset`` parameter of a Content-Type's parameters, quotes removed."""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


async def send_response(
    send: Send,
    status: int,
    body: bytes | None,
    headers: dict[str, str] | None = None,
    media_type: bytes = SCIM_MEDIA_TYPE,
) -> None:
    raw: list[tuple[bytes, bytes]] = []
    if body is not None:
        raw.append((b"content-type", media_type))
        raw.append((b"content-length", str(len(body)).encode()))
    elif status != 304 and status != 204:
        raw.append((b"content-length", b"0"))
    if headers:
        for k, v in headers.items():  # a loop, not extend(generator): no generator per response
            raw.append((k.lower().encode("latin-1"), v.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body or b""})
