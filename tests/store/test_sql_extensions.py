"""Declared extension schemas in the SQL store: kept across openings, in the registry of the next
store opened, refused twice, and removed only with the values they declared (or with none left)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from provisor.scim.schema import ENTERPRISE_USER, USER, default_registry
from provisor.scim.schema.extensions import SchemaExtension, parse_extension
from provisor.store.base import (
    SchemaExtensionExists,
    SchemaExtensionInUse,
    SchemaExtensionNotFound,
    StoreError,
)
from provisor.store.sql import SqlStore

URN = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"
TEAM = "urn:example:scim:Team:2.0:Group"


def custom(urn: str = URN, resource_type: str = "User", *, required: bool = False) -> SchemaExtension:
    return parse_extension(
        {
            "id": urn,
            "attributes": [
                {"name": "costCode", "type": "string"},
                {"name": "badgeNumber", "type": "integer"},
            ],
        },
        default_registry(),
        resource_type,
        required=required,
    )


def reopened(db_url: str) -> SqlStore:
    return SqlStore(db_url)


def test_a_declared_extension_is_in_the_registry_of_every_store_opened_after(
    db_url: str, sql_store: SqlStore
) -> None:
    assert sql_store.schema_extensions() == []
    sql_store.add_schema_extension(custom())
    sql_store.add_schema_extension(custom(TEAM, "Group", required=True))
    # the store that declared them keeps the schemas it opened with (as a running server does)
    assert sql_store.registry.schema(URN) is None
    later = reopened(db_url)
    try:
        assert [(e.urn, e.resource_type, e.required) for e in later.schema_extensions()] == [
            (URN, "User", False),
            (TEAM, "Group", True),
        ]
        assert later.schema_extensions()[0].schema == custom().schema
        users = later.registry.resource_type("User")
        groups = later.registry.resource_type("Group")
        assert users is not None and users.schema_ids == (USER, ENTERPRISE_USER, URN)
        assert groups is not None and groups.extensions[-1][0].id == TEAM and groups.extensions[-1][1] is True
    finally:
        later.close()


def test_a_store_given_a_registry_speaks_that_one(db_url: str, sql_store: SqlStore) -> None:
    sql_store.add_schema_extension(custom())
    given = SqlStore(db_url, registry=default_registry())
    try:
        assert given.registry is default_registry()
    finally:
        given.close()


def test_the_same_urn_in_any_case_is_refused(sql_store: SqlStore) -> None:
    sql_store.add_schema_extension(custom())
    with pytest.raises(SchemaExtensionExists, match="declared already"):
        sql_store.add_schema_extension(custom(URN.lower()))
    assert [e.urn for e in sql_store.schema_extensions()] == [URN]


def _with_values(db_url: str) -> tuple[SqlStore, str, dict[str, Any]]:
    """A reopened store with the extension, a tenant, a user holding its values and one without."""
    first = SqlStore(db_url)
    first.add_schema_extension(custom())
    first.close()
    store = SqlStore(db_url)
    tenant = store.create_tenant("contoso").id
    holder = store.create(tenant, "User", {"userName": "a@x", URN: {"costCode": "CC-1", "badgeNumber": 7}})
    other = store.create(tenant, "User", {"userName": "b@x", ENTERPRISE_USER: {"department": "Sales"}})
    assert holder.data[URN] == {"costCode": "CC-1", "badgeNumber": 7}
    return store, tenant, {"holder": holder, "other": other}


def test_removing_an_extension_whose_values_are_stored_is_refused_and_changes_nothing(db_url: str) -> None:
    store, tenant, made = _with_values(db_url)
    try:
        with pytest.raises(SchemaExtensionInUse) as raised:
            store.remove_schema_extension(URN.upper())
        assert raised.value.holders == 1 and raised.value.urn == URN
        assert [e.urn for e in store.schema_extensions()] == [URN]
        assert store.get(tenant, "User", made["holder"].id) == made["holder"]
    finally:
        store.close()


def test_purge_removes_the_values_as_an_update_does(db_url: str) -> None:
    store, tenant, made = _with_values(db_url)
    later = datetime.now(UTC) + timedelta(minutes=5)
    store._clock = lambda: later  # type: ignore[method-assign]
    try:
        assert store.remove_schema_extension(URN, purge=True) == 1
        assert store.schema_extensions() == []
        holder = store.get(tenant, "User", made["holder"].id)
        assert URN not in holder.data and holder.data["userName"] == "a@x"
        assert holder.version == made["holder"].version + 1
        assert holder.last_modified == later and holder.created == made["holder"].created
        assert store.get(tenant, "User", made["other"].id) == made["other"]  # untouched
    finally:
        store.close()
    again = reopened(db_url)
    try:
        assert again.registry.schema(URN) is None
        assert again.get(tenant, "User", made["holder"].id).document_json == '{"userName":"a@x"}'
    finally:
        again.close()


def test_an_extension_with_no_stored_values_is_removed_without_purge(
    db_url: str, sql_store: SqlStore
) -> None:
    sql_store.add_schema_extension(custom())
    tenant = sql_store.create_tenant("contoso").id
    # a userName that spells the URN is a value, not a key: the LIKE prefilter's match is checked
    user = sql_store.create(tenant, "User", {"userName": f'"{URN}":x'})
    assert sql_store.remove_schema_extension(URN) == 0
    assert sql_store.get(tenant, "User", user.id) == user
    with pytest.raises(SchemaExtensionNotFound, match=f"no extension schema {URN}"):
        sql_store.remove_schema_extension(URN)


def test_removing_an_unknown_extension_is_refused(sql_store: SqlStore) -> None:
    with pytest.raises(SchemaExtensionNotFound):
        sql_store.remove_schema_extension("urn:example:none")
    with pytest.raises(StoreError):  # what the CLI turns into one line
        sql_store.remove_schema_extension("urn:example:none", purge=True)


def test_reload_schemas_follows_declarations_made_by_another_store(db_url: str, sql_store: SqlStore) -> None:
    assert sql_store.reload_schemas() is None  # nothing changed
    other = SqlStore(db_url)
    try:
        other.add_schema_extension(custom())
        registry = sql_store.reload_schemas()
        assert registry is not None and registry is sql_store.registry
        assert registry.schema(URN) is not None
        assert sql_store.reload_schemas() is None  # seen now
        other.remove_schema_extension(URN)
        other.add_schema_extension(custom(TEAM, "Group"))  # as many declarations as before, others
        registry = sql_store.reload_schemas()
        assert registry is not None and registry.schema(URN) is None and registry.schema(TEAM) is not None
    finally:
        other.close()
    given = SqlStore(db_url, registry=default_registry())
    try:
        assert given.reload_schemas() is None  # a store given its registry keeps it
    finally:
        given.close()


@pytest.mark.parametrize(
    ("definition", "resource_type"),
    [
        ("{not json", "User"),
        ('{"id": "urn:example:broken", "attributes": []}', "User"),
        ('{"id": "urn:example:broken", "attributes": [{"name": "x", "type": "string"}]}', "Widget"),
    ],
)
def test_an_unreadable_declaration_is_left_out_and_can_be_removed(
    db_url: str, sql_store: SqlStore, caplog: pytest.LogCaptureFixture, definition: str, resource_type: str
) -> None:
    """A hand-edited row that no longer passes ``schema add``'s checks does not stop the store from
    opening: it is left out with a warning naming the command that removes it."""
    sql_store.add_schema_extension(custom())
    with sql_store.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO schema_extensions (urn_key, urn, resource_type, required, definition, created) "
            "VALUES ('urn:example:broken', 'urn:example:broken', ?, 0, ?, 9999999999999999)",
            (resource_type, definition),
        )
    later = reopened(db_url)
    try:
        assert [e.urn for e in later.schema_extensions()] == [URN]
        assert later.registry.schema(URN) is not None and later.registry.schema("urn:example:broken") is None
        assert "provisor schema remove urn:example:broken" in caplog.text
        assert later.remove_schema_extension("urn:example:broken") == 0
        with later.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM schema_extensions").scalar() == 1
    finally:
        later.close()
