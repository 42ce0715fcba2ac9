"""SqlStore specifics: O(k) membership changes, Entra's excludedAttributes=members path, indexes,
emails rows, no-op updates, migrations."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text
from tests.store.conftest import Recorder

from provisor.scim.filter.parser import parse_filter
from provisor.scim.schema.model import default_registry
from provisor.store.base import Change, Member, MemberDelta, Query, UniquenessViolation
from provisor.store.sql import SqlStore
from provisor.store.sql.migrate import head_revision
from provisor.store.sql.tables import emails, memberships, metadata, resources
from provisor.store.sql.values import dumps, to_micros

USER_RT = default_registry().resource_type("User")
GROUP_RT = default_registry().resource_type("Group")
assert USER_RT is not None and GROUP_RT is not None


def bulk_users(store: SqlStore, tenant: str, n: int, prefix: str = "u") -> list[str]:
    """Insert n Users straight into the table (fast set-up for big groups)."""
    now = to_micros(datetime.now(UTC))
    rows = []
    for i in range(n):
        name = f"{prefix}{i}@contoso.com"
        rows.append(
            {
                "tenant_id": tenant,
                "resource_type": "User",
                "id": uuid4().hex,
                "data": dumps({"userName": name}),
                "user_name": name,
                "user_name_key": name,
                "created": now,
                "last_modified": now,
                "version": 1,
            }
        )
    with store.engine.begin() as conn:
        conn.execute(insert(resources), rows)
        conn.execute(  # the store keeps the counts itself; rows inserted behind its back must too
            text(
                "INSERT INTO resource_counts (tenant_id, resource_type, n) VALUES (:t, 'User', :n) "
                "ON CONFLICT (tenant_id, resource_type) DO UPDATE SET n = n + :n"
            ),
            {"t": tenant, "n": n},
        )
    return [r["id"] for r in rows]


def dml_rows(recorder: Recorder, table: str) -> int:
    """Rows changed by INSERT/UPDATE/DELETE statements writing ``table`` (not those that only
    read it in a subquery)."""
    writes = re.compile(rf"\s*(INSERT\b.*?\bINTO|UPDATE|DELETE\s+FROM)\s+{table}\b", re.I | re.S)
    return sum(rowcount for statement, rowcount in recorder.statements if writes.match(statement))


def test_member_add_and_remove_touch_only_k_rows(
    sql_store: SqlStore, tenant_id: str, recorder: Recorder
) -> None:
    ids = bulk_users(sql_store, tenant_id, 10_010)
    group = sql_store.create(tenant_id, "Group", {"displayName": "All"}, [Member(i) for i in ids[:10_000]])
    recorder.clear()
    add = tuple(Member(i) for i in ids[10_000:10_003])
    remove = tuple(ids[:2])
    after = sql_store.update(
        tenant_id, "Group", group.id, lambda cur: Change(cur.data, MemberDelta(add, remove))
    )
    assert after.version == 2 and after.members is None
    assert dml_rows(recorder, "memberships") == 5
    assert dml_rows(recorder, "resources") == 1 + 5  # the group, and the Users whose groups changed
    # nothing reads the member list: only the k changes go to the memberships table
    assert all(not s.lstrip().upper().startswith("SELECT") for s, _ in recorder.mentioning("memberships"))
    assert all(n <= 3 for s, n in recorder.statements if not s.lstrip().upper().startswith("SELECT"))
    with sql_store.engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM memberships")).scalar_one()
    assert count == 10_001


def test_excluded_members_never_touch_memberships(
    sql_store: SqlStore, tenant_id: str, recorder: Recorder
) -> None:
    """Entra's GET /Groups?excludedAttributes=members&filter=displayName eq ... (entra-behaviour 1.6)."""
    ids = bulk_users(sql_store, tenant_id, 50)
    group = sql_store.create(tenant_id, "Group", {"displayName": "Sales"}, [Member(i) for i in ids])
    recorder.clear()
    q = Query(filter=parse_filter('displayName eq "Sales"', GROUP_RT), with_members=False)
    page = sql_store.search(tenant_id, "Group", q)
    assert page.total == 1 and page.resources[0].members is None
    assert sql_store.get(tenant_id, "Group", group.id, with_members=False).members is None
    assert recorder.statements and recorder.mentioning("memberships") == []
    # a rename neither reads nor rewrites the members: memberships are only walked to give the
    # groups showing the name, and the Users whose groups[].display it is, a new version
    renamed = sql_store.update(tenant_id, "Group", group.id, lambda cur: Change({"displayName": "Sales EU"}))
    assert renamed.data == {"displayName": "Sales EU"}
    touches = recorder.mentioning("memberships")
    assert touches and all("UPDATE resources SET" in sql for sql, _ in touches), touches
    # and with members, they are there
    assert len(sql_store.get(tenant_id, "Group", group.id).members or ()) == 50


def test_user_name_lookup_and_get_use_indexes(sql_store: SqlStore, tenant_id: str) -> None:
    bulk_users(sql_store, tenant_id, 100)
    raw = sqlite3.connect(sql_store.engine.url.database or "")
    plan = " ".join(
        str(r[-1])
        for r in raw.execute(
            "EXPLAIN QUERY PLAN SELECT pk FROM resources"
            " WHERE tenant_id=? AND resource_type=? AND user_name_key=?",
            (tenant_id, "User", "u1@contoso.com"),
        )
    )
    assert "ux_resources_user_name" in plan
    plan = " ".join(
        str(r[-1])
        for r in raw.execute(
            "EXPLAIN QUERY PLAN SELECT pk FROM resources"
            " WHERE pk IN (SELECT resource_pk FROM emails WHERE value_key=?)",
            ("x",),
        )
    )
    assert "ix_emails_value" in plan
    raw.close()


def test_emails_rows_follow_the_document(sql_store: SqlStore, tenant_id: str) -> None:
    u = sql_store.create(
        tenant_id,
        "User",
        {"userName": "a", "emails": [{"value": "A@X.com", "type": "Work"}, {"type": "home"}]},
    )

    def rows() -> list[tuple[str | None, str | None]]:
        with sql_store.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(select(emails.c.value_key, emails.c.type_key))]  # type: ignore[misc]

    assert rows() == [("a@x.com", "work"), (None, "home")]
    sql_store.update(
        tenant_id, "User", u.id, lambda cur: Change({"userName": "a", "emails": [{"value": "b@y.org"}]})
    )
    assert rows() == [("b@y.org", None)]
    q = Query(filter=parse_filter('emails.value eq "B@Y.ORG"', USER_RT))
    assert sql_store.search(tenant_id, "User", q).total == 1
    sql_store.delete(tenant_id, "User", u.id)
    assert rows() == []


def test_emails_rows_are_rewritten_only_when_they_change(
    sql_store: SqlStore, tenant_id: str, recorder: Recorder
) -> None:
    """The rows an update replaces are those of the document before it, taken before the updater
    runs: an updater that changes the document it was given in place still rewrites them."""
    u = sql_store.create(tenant_id, "User", {"userName": "a", "emails": [{"value": "a@x.com"}]})
    recorder.clear()
    sql_store.update(tenant_id, "User", u.id, lambda cur: Change({**cur.data, "title": "T"}))
    assert recorder.mentioning("emails") == []  # the emails did not change: not a statement

    def in_place(cur: Any) -> Change:
        cur.data["emails"][0]["value"] = "New@X.com"
        return Change(cur.data)

    sql_store.update(tenant_id, "User", u.id, in_place)
    with sql_store.engine.connect() as conn:
        assert conn.execute(select(emails.c.value_key)).scalars().all() == ["new@x.com"]
    q = Query(filter=parse_filter('emails.value eq "new@x.com"', USER_RT))
    assert sql_store.search(tenant_id, "User", q).total == 1


def test_no_op_update_keeps_the_version(sql_store: SqlStore, tenant_id: str) -> None:
    u = sql_store.create(tenant_id, "User", {"userName": "a", "title": "x"})
    same = sql_store.update(tenant_id, "User", u.id, lambda cur: Change(dict(cur.data)))
    assert same.version == 1 and same.last_modified == u.last_modified
    changed = sql_store.update(tenant_id, "User", u.id, lambda cur: Change({**cur.data, "title": "y"}))
    assert changed.version == 2


def test_uniqueness_violation_reports_the_value(sql_store: SqlStore, tenant_id: str) -> None:
    sql_store.create(tenant_id, "User", {"userName": "Zoë@contoso.com"})
    with pytest.raises(UniquenessViolation) as caught:
        sql_store.create(tenant_id, "User", {"userName": "ZOË@CONTOSO.COM"})
    assert caught.value.value == "ZOË@CONTOSO.COM"  # Unicode folding, not just ASCII


def test_a_group_display_name_is_unique_in_its_tenant_and_users_have_no_members(
    sql_store: SqlStore, tenant_id: str
) -> None:
    # Entra and Okta match groups on displayName (entra-behaviour.md 1.6): two answers stop them
    a = sql_store.create(tenant_id, "Group", {"displayName": "Same"})
    with pytest.raises(UniquenessViolation, match="displayName"):
        sql_store.create(tenant_id, "Group", {"displayName": "same"})
    b = sql_store.create(tenant_id, "Group", {"displayName": "Other"})
    with pytest.raises(UniquenessViolation, match="displayName"):
        sql_store.update(tenant_id, "Group", b.id, lambda cur: Change({**cur.data, "displayName": "SAME"}))
    assert sql_store.get(tenant_id, "Group", b.id).data["displayName"] == "Other"
    renamed = sql_store.update(
        tenant_id, "Group", a.id, lambda cur: Change({**cur.data, "displayName": "SAME"})
    )
    assert renamed.data["displayName"] == "SAME"  # its own name in another case
    other_tenant = sql_store.create_tenant("elsewhere").id
    assert sql_store.create(other_tenant, "Group", {"displayName": "Same"}).id != a.id
    assert sql_store.create(tenant_id, "User", {"userName": "x", "displayName": "Same"}).id
    with pytest.raises(ValueError):
        sql_store.create(tenant_id, "User", {"userName": "y"}, [Member(a.id)])


def test_delete_group_removes_its_memberships(sql_store: SqlStore, tenant_id: str) -> None:
    ids = bulk_users(sql_store, tenant_id, 3)
    parent = sql_store.create(tenant_id, "Group", {"displayName": "P"})
    child = sql_store.create(tenant_id, "Group", {"displayName": "C"}, [Member(i) for i in ids])
    sql_store.update(
        tenant_id, "Group", parent.id, lambda cur: Change(cur.data, MemberDelta(add=(Member(child.id),)))
    )
    sql_store.delete(tenant_id, "Group", child.id)
    with sql_store.engine.connect() as conn:
        assert conn.execute(select(memberships)).all() == []
    got = sql_store.get(tenant_id, "Group", parent.id)
    assert got.members == () and got.version == 3


def test_migrations_are_idempotent_and_match_the_tables(db_url: str) -> None:
    first = SqlStore(db_url)
    first.close()
    second = SqlStore.open(db_url)  # opening again migrates nothing
    with second.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [
            head_revision()
        ]
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        journal = conn.execute(text("PRAGMA journal_mode")).scalar_one()
    assert diff == []
    assert journal == "wal"
    assert set(inspect(second.engine).get_table_names()) >= {
        "tenants",
        "tokens",
        "resources",
        "emails",
        "memberships",
    }
    second.close()


def test_lookup_pages_count_exactly(sql_store: SqlStore, tenant_id: str) -> None:
    for i in range(5):
        sql_store.create(tenant_id, "User", {"userName": f"u{i}", "displayName": "Same"})
    f = parse_filter('displayName eq "SAME"', USER_RT)
    for start, size in ((1, 2), (3, 2), (5, 1), (9, 0), (0, 2)):
        page = sql_store.search(tenant_id, "User", Query(filter=f, start_index=start, count=2))
        assert (page.total, len(page.resources)) == (5, size)
    firsts = sql_store.search(tenant_id, "User", Query(filter=f, count=2)).resources
    seconds = sql_store.search(tenant_id, "User", Query(filter=f, count=2, start_index=3)).resources
    assert [r.data["userName"] for r in firsts + seconds] == ["u0", "u1", "u2", "u3"]


def _counted(store: SqlStore, tenant: str, resource_type: str) -> int:
    with store.engine.connect() as conn:
        return conn.execute(
            text("SELECT COUNT(*) FROM resources WHERE tenant_id = :t AND resource_type = :r"),
            {"t": tenant, "r": resource_type},
        ).scalar_one()


def test_unfiltered_totals_are_kept_counts_that_match_the_table(sql_store: SqlStore, tenant_id: str) -> None:
    """totalResults of an unfiltered page comes from ``resource_counts``; every create, delete,
    failed write, batch and tenant deletion must leave it equal to a real COUNT."""
    other = sql_store.create_tenant(f"other-{uuid4().hex[:6]}").id
    users = [sql_store.create(tenant_id, "User", {"userName": f"c{i}@x.com"}) for i in range(7)]
    sql_store.create(other, "User", {"userName": "c0@x.com"})
    group = sql_store.create(tenant_id, "Group", {"displayName": "G"}, [Member(users[0].id)])
    sql_store.delete(tenant_id, "User", users[1].id)
    with pytest.raises(UniquenessViolation):
        sql_store.create(tenant_id, "User", {"userName": "C2@x.com"})
    with sql_store.batch():  # a failing write inside a group commit rolls back alone
        sql_store.create(tenant_id, "User", {"userName": "batched@x.com"})
        with pytest.raises(UniquenessViolation):
            sql_store.create(tenant_id, "User", {"userName": "c3@x.com"})
    sql_store.delete(tenant_id, "Group", group.id)
    for tenant in (tenant_id, other):
        for rt in ("User", "Group"):
            # a full first page of one forces the total to be looked up, not inferred from the page
            total = sql_store.search(tenant, rt, Query(count=1)).total
            ids = sql_store.search_ids(tenant, rt, Query(count=1)).total
            assert total == ids == _counted(sql_store, tenant, rt), (tenant, rt)
    assert sql_store.search(tenant_id, "User", Query(count=1)).total == 7
    sql_store.delete_tenant(other)
    with sql_store.engine.connect() as conn:
        left = conn.execute(text("SELECT COUNT(*) FROM resource_counts WHERE tenant_id = :t"), {"t": other})
        assert left.scalar_one() == 0


def _stored_at(db_url: str, revision: str, rows: list[tuple[str, str, str]]) -> None:
    """A database migrated up to ``revision`` only, holding tenant ``t1`` with ``rows`` of
    (resource type, id, data text), written as that revision's code would have."""
    from alembic import command

    from provisor.store.sql.engine import create_store_engine
    from provisor.store.sql.migrate import STORE

    engine = create_store_engine(db_url)
    with engine.begin() as conn:
        cfg = STORE.config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.execute(text("INSERT INTO tenants (id, name, settings, created) VALUES ('t1', 'one', '{}', 0)"))
        for rt, id, data in rows:
            conn.execute(
                text(
                    "INSERT INTO resources (tenant_id, resource_type, id, data, created, last_modified,"
                    " version) VALUES ('t1', :rt, :id, :data, 0, 0, 1)"
                ),
                {"rt": rt, "id": id, "data": data},
            )
    engine.dispose()


def test_the_counts_migration_counts_what_is_stored(db_url: str) -> None:
    _stored_at(
        db_url, "0001", [(rt, f"r{i}", "{}") for i, rt in enumerate(["User", "User", "User", "Group"])]
    )
    store = SqlStore(db_url)  # migrates to head
    try:
        assert store.search("t1", "User", Query(count=1)).total == 3
        assert store.search("t1", "Group", Query(count=0, start_index=5)).total == 1
    finally:
        store.close()


def _stored_text(store: SqlStore, id: str) -> str:
    with store.engine.connect() as conn:
        return str(conn.execute(select(resources.c.data).where(resources.c.id == id)).scalar_one())


def test_documents_are_stored_canonical_and_handed_over_as_text(sql_store: SqlStore, tenant_id: str) -> None:
    """The store keeps the canonical document (``document``): what a read splices into a response."""
    ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    made = sql_store.create(
        tenant_id, "User", {ext: {"department": "S"}, "title": None, "userName": "a", "externalId": "x"}
    )
    canonical = (
        '{"externalId":"x","userName":"a",'
        '"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"S"}}'
    )
    assert made.document_json == _stored_text(sql_store, made.id) == canonical
    assert made.data == {"externalId": "x", "userName": "a", ext: {"department": "S"}}
    got = sql_store.get(tenant_id, "User", made.id)
    assert got.document_json == canonical and got.data == made.data and got == made
    updated = sql_store.update(
        tenant_id, "User", made.id, lambda cur: Change({"displayName": "A", **cur.data, ext: {}})
    )
    assert (
        updated.document_json
        == _stored_text(sql_store, made.id)
        == '{"externalId":"x","userName":"a","displayName":"A"}'
    )
    # the same document in another key order is no change at all: the version stays
    again = sql_store.update(tenant_id, "User", made.id, lambda cur: Change(dict(reversed(cur.data.items()))))
    assert again.version == updated.version == 2


def test_the_canonical_documents_migration_rewrites_what_is_stored(db_url: str) -> None:
    ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    legacy = {
        "r0": ("User", {ext: {"department": "S", "manager": None}, "userName": "a", "externalId": "x"}),
        "r1": ("Group", {"displayName": "G"}),  # canonical already
        "r2": ("Gadget", {"b": 1, "a": None}),  # not a type of the default schemas: left alone
    }
    _stored_at(db_url, "0004", [(rt, id, dumps(data)) for id, (rt, data) in legacy.items()])
    store = SqlStore(db_url)  # migrates to head
    try:
        assert _stored_text(store, "r0") == (
            '{"externalId":"x","userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":'
            '{"department":"S"}}'
        )
        assert _stored_text(store, "r1") == '{"displayName":"G"}'
        assert _stored_text(store, "r2") == '{"b":1,"a":null}'
        assert store.get("t1", "User", "r0").data == {
            "externalId": "x",
            "userName": "a",
            ext: {"department": "S"},
        }
    finally:
        store.close()


def test_count_resources_reads_the_kept_counts_of_one_tenant(sql_store: SqlStore, tenant_id: str) -> None:
    assert sql_store.count_resources(tenant_id) == {}
    other = sql_store.create_tenant("other").id
    made = [sql_store.create(tenant_id, "User", {"userName": f"c{i}"}) for i in range(4)]
    sql_store.create(tenant_id, "Group", {"displayName": "G"}, [Member(made[0].id)])
    sql_store.create(other, "User", {"userName": "c0"})
    sql_store.delete(tenant_id, "User", made[1].id)
    assert sql_store.count_resources(tenant_id) == {"User": 3, "Group": 1}
    assert sql_store.count_resources(other) == {"User": 1}


ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def test_deleting_a_user_takes_it_off_the_users_it_manages(sql_store: SqlStore, tenant_id: str) -> None:
    """Each report loses its ``manager`` (and an extension left empty), with a new version and
    lastModified; Users managed by another, and the same id in another tenant, keep theirs."""
    boss = sql_store.create(tenant_id, "User", {"userName": "boss"})
    other = sql_store.create(tenant_id, "User", {"userName": "other"})
    managed = {"value": boss.id, "displayName": "Boss"}
    both = sql_store.create(
        tenant_id, "User", {"userName": "r1", ENTERPRISE: {"department": "S", "manager": managed}}
    )
    only = sql_store.create(
        tenant_id, "User", {"userName": "r2", ENTERPRISE: {"manager": {"value": boss.id}}}
    )
    elsewhere = sql_store.create(
        tenant_id, "User", {"userName": "r3", ENTERPRISE: {"manager": {"value": other.id}}}
    )
    self_managed = sql_store.update(
        tenant_id, "User", boss.id, lambda r: Change({**r.data, ENTERPRISE: {"manager": {"value": boss.id}}})
    )
    foreign_tenant = sql_store.create_tenant(f"t-{uuid4().hex[:8]}").id
    foreign = sql_store.create(
        foreign_tenant, "User", {"userName": "r1", ENTERPRISE: {"manager": {"value": boss.id}}}
    )

    sql_store.delete(tenant_id, "User", self_managed.id)

    now_both = sql_store.get(tenant_id, "User", both.id)
    assert now_both.data == {"userName": "r1", ENTERPRISE: {"department": "S"}}
    assert now_both.version == both.version + 1 and now_both.last_modified >= both.last_modified
    now_only = sql_store.get(tenant_id, "User", only.id)
    assert now_only.data == {"userName": "r2"} and now_only.version == only.version + 1
    assert _stored_text(sql_store, only.id) == '{"userName":"r2"}'  # canonical: no empty extension
    assert sql_store.get(tenant_id, "User", elsewhere.id) == elsewhere
    assert sql_store.get(foreign_tenant, "User", foreign.id) == foreign
    with sql_store.engine.connect() as conn:
        keys = dict(conn.execute(select(resources.c.id, resources.c.manager_key)).all())
    assert keys[both.id] is None and keys[only.id] is None and keys[elsewhere.id] == other.id


def test_the_manager_migration_reads_each_users_manager(db_url: str) -> None:
    """Documents stored before the manager column: the migration fills it, so that deleting a
    manager stored then takes it off its reports."""
    report = {"userName": "r", ENTERPRISE: {"department": "S", "manager": {"value": "m1"}}}
    _stored_at(
        db_url,
        "0010",
        [
            ("User", "m1", '{"userName":"m"}'),
            ("User", "r1", dumps(report)),
            ("User", "r2", dumps({"userName": "s", ENTERPRISE: {"manager": "m1"}})),  # not a reference
            ("Group", "g1", dumps({"displayName": "g", "manager": {"value": "m1"}})),
        ],
    )
    store = SqlStore(db_url)  # migrates to head
    try:
        with store.engine.connect() as conn:
            keys = dict(conn.execute(select(resources.c.id, resources.c.manager_key)).all())
        assert keys == {"m1": None, "r1": "m1", "r2": None, "g1": None}
        store.delete("t1", "User", "m1")
        assert store.get("t1", "User", "r1").data == {"userName": "r", ENTERPRISE: {"department": "S"}}
    finally:
        store.close()
