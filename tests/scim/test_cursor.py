"""Cursors of cursor-based pagination (RFC 9865; ``provisor.scim.cursor``): opaque, unreserved
characters only, tied to the query that issued them."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisor.scim.cursor import Cursor, SortKey, decode_cursor, encode_cursor, query_digest
from provisor.scim.errors import InvalidCursor
from provisor.scim.filter.parser import parse_attr_path, parse_filter
from provisor.scim.schema.model import default_registry

USER_RT = default_registry().resource_type("User")
assert USER_RT is not None
UNRESERVED = re.compile(r"[A-Za-z0-9\-._~]+")  # RFC 3986 section 2.3


def digest(filter_text: str | None = None, sort: str | None = None, descending: bool = False) -> str:
    f = parse_filter(filter_text, USER_RT) if filter_text else None
    s = parse_attr_path(sort, USER_RT) if sort else None
    return query_digest("User", f, s, descending)


@given(after=st.text(min_size=1, max_size=80), offset=st.integers(min_value=0, max_value=2**62))
def test_cursors_round_trip_in_unreserved_characters(after: str, offset: int) -> None:
    d = digest('userName sw "J"')
    for cursor, sorted_query in ((Cursor(d, after=after), False), (Cursor(d, offset=offset), True)):
        text = encode_cursor(cursor)
        assert UNRESERVED.fullmatch(text), text
        assert decode_cursor(text, d, sorted_query=sorted_query) == cursor


KEY_VALUES = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)


@given(value=KEY_VALUES, id=st.text(min_size=1, max_size=40))
def test_sorted_query_keys_round_trip_in_unreserved_characters(value: str | float | None, id: str) -> None:
    """Any value a sorted attribute holds (or none), and any id: dots, quotes and non-ASCII too."""
    d = digest(sort="title")
    cursor = Cursor(d, key=SortKey(value, id))
    text = encode_cursor(cursor)
    assert UNRESERVED.fullmatch(text), text
    assert decode_cursor(text, d, sorted_query=True) == cursor


def _keyed(payload: str, d: str) -> str:
    return base64.urlsafe_b64encode(f"1.{d}.k.{payload}".encode()).decode().rstrip("=")


#: Not a JSON [value, id] of a plain value (or null) and a non-empty id string
BAD_KEYS = ["", "[]", '["a"]', '["a","b","c"]', '{"v":1}', '[true,"u1"]', '[{"a":1},"u1"]', '[["a"],"u1"]']
BAD_KEYS += ['["a",""]', '["a",7]', '[NaN,"u1"]', '[Infinity,"u1"]', '[-Infinity,"u1"]', "not json"]
BAD_KEYS += [f'[{2**63},"u1"]', f'[{-(2**63) - 1},"u1"]', f'[{2**70},"u1"]']  # past 64 bits
BAD_KEYS += ['["\\ud800","u1"]', '["a","u\\udfff"]']  # half a surrogate pair


@pytest.mark.parametrize("payload", BAD_KEYS)
def test_a_key_that_is_no_value_and_id_is_an_invalid_cursor(payload: str) -> None:
    d = digest(sort="title")
    with pytest.raises(InvalidCursor, match="not one this server issued"):
        decode_cursor(_keyed(payload, d), d, sorted_query=True)


def test_the_digest_tells_queries_apart_but_not_their_pages() -> None:
    assert digest('userName sw "J"') == digest('userName sw "J"')
    assert digest('userName sw "J"') != digest('userName sw "K"')
    assert digest(sort="userName") != digest(sort="userName", descending=True)
    assert digest() == digest(descending=True)  # sortOrder means nothing without sortBy
    assert query_digest("User", None, None, False) != query_digest("Group", None, None, False)


@pytest.mark.parametrize(
    "text",
    ["", "!!!", "bm90IGEgY3Vyc29y", encode_cursor(Cursor("abc", after="x"))[:-3] + "%%%", "MS5hYmMuby5ub3Q"],
)
def test_anything_else_is_an_invalid_cursor(text: str) -> None:
    with pytest.raises(InvalidCursor) as refused:
        decode_cursor(text, digest(), sorted_query=False)
    assert refused.value.status == 400 and refused.value.scim_type == "invalidCursor"


def test_a_cursor_of_another_query_is_refused() -> None:
    text = encode_cursor(Cursor(digest('userName sw "J"'), after="u1"))
    with pytest.raises(InvalidCursor, match="another query"):
        decode_cursor(text, digest('userName sw "K"'), sorted_query=False)


def test_a_cursor_of_the_other_kind_than_its_query_pages_by_is_refused() -> None:
    # an unsorted query pages by id, a sorted one by position: an offset brought to an unsorted
    # query would restart the walk (a client would loop), an id to a sorted one would be ignored
    d = digest('userName sw "J"')
    with pytest.raises(InvalidCursor, match="not one this server issued"):
        decode_cursor(encode_cursor(Cursor(d, offset=5)), d, sorted_query=False)
    with pytest.raises(InvalidCursor, match="not one this server issued"):
        decode_cursor(encode_cursor(Cursor(d, after="u1")), d, sorted_query=True)
    with pytest.raises(InvalidCursor, match="not one this server issued"):  # a key to an unsorted one
        decode_cursor(encode_cursor(Cursor(d, key=SortKey("a", "u1"))), d, sorted_query=False)
