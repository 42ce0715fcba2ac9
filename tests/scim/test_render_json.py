"""provisor.scim.resources.document and render_json: the canonical document a store keeps, and the
representation spliced from its JSON text, held byte for byte to ``to_representation`` (the oracle)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.scim.test_resources import ENTRA_CREATE, GROUPS, LENIENT, USERS, bodies_, compats, valid_users

from provisor.scim.errors import ScimError
from provisor.scim.patch.members import Member
from provisor.scim.resources import document, parse_resource, render_json, to_representation
from provisor.scim.schema import ENTERPRISE_USER, USER
from provisor.scim.schema.model import ResourceType

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _both(
    rt: ResourceType,
    data: dict[str, Any],
    *,
    id: str = "i",
    modified: datetime = T0,
    members: list[Member] | None = None,
    groups: list[dict[str, Any]] | None = None,
    location: str = "https://h/scim/v2/Users/i",
) -> tuple[bytes, bytes]:
    """(render_json from the canonical document's text, orjson.dumps of to_representation)."""
    kwargs: dict[str, Any] = {
        "created": T0,
        "last_modified": modified,
        "version": 4,
        "location": location,
        "members": members,
        "member_base_url": "https://h/scim/v2",
        "groups": groups,
    }
    text = orjson.dumps(document(rt, data)).decode()
    return render_json(rt, id, text, **kwargs), orjson.dumps(to_representation(rt, id, data, **kwargs))


def test_the_canonical_document_orders_and_drops_what_is_never_shown() -> None:
    data = {
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": None, "department": "S"},
        "title": None,
        "displayName": "Alice",
        "password": "never kept",
        "userName": "alice",
        "externalId": "a-1",
        "nonsense": 1,
    }
    doc = document(USERS, data)
    assert list(doc) == ["externalId", "userName", "displayName", ENTERPRISE_USER]
    assert doc[ENTERPRISE_USER] == {"department": "S"}
    assert document(USERS, {"userName": "a", ENTERPRISE_USER: {"manager": None}}) == {"userName": "a"}
    assert document(USERS, doc) == doc  # idempotent
    assert document(GROUPS, {"displayName": "G", "members": [{"value": "x"}]}) == {"displayName": "G"}


def test_an_entra_user_renders_the_same_spliced_and_built() -> None:
    data = parse_resource(USERS, ENTRA_CREATE, LENIENT)
    spliced, built = _both(USERS, data, modified=T0 + timedelta(seconds=5))
    assert spliced == built
    rep = orjson.loads(spliced)
    assert rep["schemas"] == [USER, ENTERPRISE_USER]
    assert list(rep)[:3] == ["schemas", "id", "externalId"] and list(rep)[-1] == "meta"


def test_groups_members_and_empty_documents_splice_in_place() -> None:
    groups = [{"value": "g1", "$ref": "https://h/scim/v2/Groups/g1", "display": "Sales", "type": "direct"}]
    spliced, built = _both(USERS, {"userName": "a"}, groups=groups)
    assert spliced == built and list(orjson.loads(spliced))[-2:] == ["groups", "meta"]
    members = [Member("u1", "User", "Alice"), Member("g2", "Group")]
    spliced, built = _both(GROUPS, {"displayName": "G", "externalId": "e"}, members=members)
    assert spliced == built and orjson.loads(spliced)["members"][1]["$ref"] == "https://h/scim/v2/Groups/g2"
    for rt in (USERS, GROUPS):  # nothing but id and meta
        spliced, built = _both(rt, {})
        assert spliced == built
        assert list(orjson.loads(spliced)) == ["schemas", "id", "meta"]


@pytest.mark.parametrize(
    "value",
    [
        'quote " and \\ backslash',
        '"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{',
        "é ü ✓ 😀",
    ],
)
def test_text_that_looks_like_json_or_an_extension_key_stays_a_value(value: str) -> None:
    """An extension is listed in ``schemas`` by its key in the text; a value holding the same
    characters is escaped in JSON and is never taken for the key."""
    spliced, built = _both(USERS, {"userName": value, "displayName": value}, id=value, location=value)
    assert spliced == built
    rep = orjson.loads(spliced)
    assert rep["schemas"] == [USER] and rep["userName"] == value and rep["meta"]["location"] == value


@settings(max_examples=300, deadline=None)
@given(body=bodies_, compat=compats, groups=st.booleans())
def test_any_accepted_body_renders_the_same_spliced_and_built(
    body: dict[str, Any], compat: Any, groups: bool
) -> None:
    for rt in (USERS, GROUPS):
        try:
            data = parse_resource(rt, body, compat)
        except ScimError:
            continue
        data.pop("members", None)  # a relation of its own: the service hands members over apart
        refs = [{"value": "g", "type": "direct"}] if groups and rt is USERS else None
        members = [Member("m", "User")] if groups and rt is GROUPS else None
        spliced, built = _both(rt, data, groups=refs, members=members)
        assert spliced == built
        # the document keeps everything a representation shows
        assert to_representation(
            rt, "i", document(rt, data), created=T0, last_modified=T0, version=1, location="/"
        ) == (to_representation(rt, "i", data, created=T0, last_modified=T0, version=1, location="/"))


@settings(max_examples=150, deadline=None)
@given(body=valid_users)
def test_valid_users_render_the_same_spliced_and_built(body: dict[str, Any]) -> None:
    data = parse_resource(USERS, body, LENIENT)
    spliced, built = _both(USERS, data, groups=[{"value": "g", "type": "direct"}])
    assert spliced == built
