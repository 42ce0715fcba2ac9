"""provisor.server.http: query strings decoded as urllib decodes them (the oracle), a little faster."""

from __future__ import annotations

from urllib.parse import quote, quote_plus, unquote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisor.scim.errors import InvalidValue
from provisor.server import http
from provisor.server.http import parse_query, response_media_type, unquote_query


@given(st.text())
def test_an_escaped_value_decodes_to_what_was_escaped(value: str) -> None:
    for escaped in (quote_plus(value), quote(value, safe="")):
        assert unquote_query(escaped) == value == unquote_plus(escaped)


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_any_ascii_text_decodes_as_urllib_decodes_it(text: str) -> None:
    """Stray and truncated escapes (``%``, ``%4``, ``%zz``) stay literal; invalid UTF-8 is U+FFFD."""
    assert unquote_query(text) == unquote_plus(text, encoding="utf-8", errors="replace")


@given(st.text().filter(lambda t: "%" not in t and "+" not in t))
def test_unescaped_utf8_from_a_lax_client_decodes_too(value: str) -> None:
    raw = value.encode("utf-8").decode("latin-1")  # what parse_query hands over: a byte a character
    assert unquote_query(raw) == value


def test_parse_query_keeps_names_and_the_last_value() -> None:
    """Of a parameter that is no SCIM parameter; a SCIM parameter given twice is refused."""
    raw = b"filter=userName%20eq%20%22a%2Bb%40x.com%22&count=2&x=1&X=2&x=3&&flag&y=%E2%9C%93+%zz"
    assert parse_query(raw) == {
        "filter": 'userName eq "a+b@x.com"',
        "count": "2",
        "x": "3",
        "X": "2",
        "flag": "",
        "y": "✓ %zz",
    }
    for twice in (b"count=2&Count=3", b"count=2&count=2", b"sortBy=a&SORTBY=a", b"cursor=&cursor=x"):
        with pytest.raises(InvalidValue, match="is given twice"):
            parse_query(twice)
    assert parse_query(b"") == {}


@pytest.mark.parametrize("raw", [b"filter=userName+ne+%22%FF%22", b"x=%C3", b"%FE=1", b"filter=\xe9"])
def test_a_query_that_is_not_utf8_is_refused_not_read_with_replacement_characters(raw: bytes) -> None:
    with pytest.raises(InvalidValue, match="not UTF-8"):
        parse_query(raw)


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, b"application/scim+json"),
        ("application/scim+json", b"application/scim+json"),
        ("*/*", b"application/scim+json"),
        ("application/*", b"application/scim+json"),
        ("application/json", b"application/json"),
        ("Application/JSON; charset=utf-8", b"application/json"),
        ("application/json, application/scim+json", b"application/scim+json"),  # a tie: SCIM's own
        ("application/scim+json;q=0.5, application/json", b"application/json"),
        ("application/json;q=0.4, application/scim+json;q=0.9", b"application/scim+json"),
        ("application/json, */*;q=0.1", b"application/json"),
        ("application/*;q=0.2, application/json;q=0.8", b"application/json"),
        ("application/json;q=0", b"application/scim+json"),  # refused: disregarded
        ("application/json;q=oops", b"application/scim+json"),
        ("text/html", b"application/scim+json"),  # accepts neither: disregarded, not 406
        ("", b"application/scim+json"),
    ],
)
def test_the_answer_is_scim_json_unless_the_client_prefers_json(accept: str | None, media: bytes) -> None:
    assert response_media_type(accept) == media
    assert response_media_type(accept) == media  # the remembered answer is the same


def test_a_flood_of_distinct_accept_headers_is_answered_but_not_remembered() -> None:
    for i in range(200):
        assert response_media_type(f"application/json;v={i}") == b"application/json"
    assert response_media_type("application/json;v=last") == b"application/json"
    assert len(http._NEGOTIATED) <= http._NEGOTIATED_MAX
