"""Cursors of cursor-based pagination (RFC 9865): what a ``nextCursor`` says, as an opaque string.

A cursor is stateless: it carries where the next page starts, so it never expires and the server
keeps nothing per client. An unsorted query pages by ``id`` (the unique index of the store), and
its cursor holds the last id returned: inserts and deletes between pages neither repeat nor skip a
resource that exists throughout. A query with ``sortBy`` keeps its order, its ties broken by id,
and its cursor holds the key of the last resource returned (:class:`SortKey`: the value the store
sorted it by and its id), so that it neither repeats nor skips either, but for a resource whose
value changes between the pages. Cursors of sorted queries issued before they held keys hold the
offset of the next page, and still page by position.

Each cursor also holds a digest of the query it belongs to (resource type, filter, sort): RFC 9865
has the client repeat the query unchanged with the cursor, and a cursor brought to another query
is refused with ``invalidCursor`` rather than answered with a page of something else, and so is a
cursor of the other kind than its query pages by (a position for an unsorted query, an id for a
sorted one). The digest guards against mistakes, not forgery: a cursor is not signed, so one
edited by hand pages from wherever it says, but always within the requesting tenant and with
the query's own filter.

The text is base64url without padding, which holds only RFC 3986 unreserved characters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from dataclasses import dataclass

from provisor.scim.errors import InvalidCursor
from provisor.scim.filter.ast import AttrPath, Filter

__all__ = ["Cursor", "SortKey", "decode_cursor", "encode_cursor", "query_digest"]

_VERSION = "1"
_AFTER, _OFFSET, _KEY = "a", "o", "k"
#: No page starts further in (the store's 64-bit integers, with room for the page after).
_MAX_OFFSET = 2**62


@dataclass(frozen=True, slots=True)
class SortKey:
    """Where a resource stands in a sorted query: the value the store sorts it by (None: it has
    none; ``store.base.Query.ties_by_id``) and its id, which breaks ties."""

    value: str | int | float | None
    id: str


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page starts: after the resource with id ``after`` (an unsorted query), after the
    resource with ``key`` (a sorted one), or at 0-based ``offset`` (a sorted one)."""

    digest: str
    after: str | None = None
    offset: int | None = None
    key: SortKey | None = None


def query_digest(
    resource_type: str, filter_: Filter | None, sort_by: AttrPath | None, descending: bool
) -> str:
    """A short digest of what a query selects and in which order (not its page or projection)."""
    shape = repr((resource_type, filter_, sort_by, descending if sort_by is not None else False))
    return hashlib.blake2b(shape.encode(), digest_size=6).hexdigest()


def encode_cursor(cursor: Cursor) -> str:
    if cursor.after is not None:
        body = f"{_VERSION}.{cursor.digest}.{_AFTER}.{cursor.after}"
    elif cursor.key is not None:
        key = json.dumps([cursor.key.value, cursor.key.id], ensure_ascii=False, separators=(",", ":"))
        body = f"{_VERSION}.{cursor.digest}.{_KEY}.{key}"
    else:
        body = f"{_VERSION}.{cursor.digest}.{_OFFSET}.{cursor.offset or 0}"
    return base64.urlsafe_b64encode(body.encode()).decode("ascii").rstrip("=")


def decode_cursor(text: str, digest: str, *, sorted_query: bool) -> Cursor:
    """The cursor in ``text`` for the query whose digest is ``digest``; ``sorted_query``: whether
    that query has ``sortBy`` (its cursors hold a key or an offset; an unsorted query's an id).

    :raises InvalidCursor: not a cursor of this server, or one of another query.
    """
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        version, found, kind, value = raw.split(".", 3)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor(
            "cursor is not one this server issued: send an empty cursor for the first page, "
            "then the nextCursor of the previous page"
        ) from None
    if version != _VERSION or kind not in (_AFTER, _OFFSET, _KEY):
        raise InvalidCursor("cursor is not one this server issued")
    if found != digest:
        raise InvalidCursor(
            "cursor belongs to another query: repeat the filter, sortBy and sortOrder of the "
            "query that returned it"
        )
    if (kind != _AFTER) is not sorted_query:
        raise InvalidCursor("cursor is not one this server issued for this query")
    if kind == _AFTER:
        return Cursor(digest, after=value)
    if kind == _KEY:
        return Cursor(digest, key=_sort_key(value))
    if not value.isdigit() or len(value) > 19 or int(value) > _MAX_OFFSET:
        raise InvalidCursor("cursor is not one this server issued")
    return Cursor(digest, offset=int(value))


def _sort_key(text: str) -> SortKey:
    """The :class:`SortKey` a cursor's JSON ``[value, id]`` holds."""
    try:
        value, id = json.loads(text)
    except (ValueError, TypeError):
        raise InvalidCursor("cursor is not one this server issued") from None
    plain = value is None or isinstance(value, str)
    if isinstance(value, int) and not isinstance(value, bool):
        plain = -(2**63) <= value < 2**63  # a stored integer is 64 bits, as any a store binds
    elif isinstance(value, float):
        plain = math.isfinite(value)  # json reads NaN and Infinity, which no stored number is
    if (
        not plain
        or not isinstance(id, str)
        or not id
        or not _utf8(id)
        or (isinstance(value, str) and not _utf8(value))
    ):
        raise InvalidCursor("cursor is not one this server issued")
    return SortKey(value, id)


def _utf8(text: str) -> bool:
    """Whether ``text`` is UTF-8 text: a JSON ``\\uXXXX`` escape may name half of a surrogate
    pair, which no stored text (nor the database's binding of a parameter) holds."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
