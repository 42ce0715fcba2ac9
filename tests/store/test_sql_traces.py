"""Request traces in the SQL store: the newest N kept per tenant, read oldest first, gone with the
tenant or on request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from provisor.store.sql import SqlStore
from provisor.store.sql.tables import tenants

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def add(store: SqlStore, tenant: str, n: int, keep: int) -> None:
    store.add_trace(
        tenant,
        time=T0 + timedelta(seconds=n),
        method="GET",
        target=f"/scim/v2/Users?n={n}",
        status=200,
        request=None,
        response=f'{{"n":{n}}}',
        keep=keep,
    )


def test_only_the_newest_traces_are_kept_per_tenant(sql_store: SqlStore) -> None:
    a = sql_store.create_tenant("a", {"trace": 3}).id
    b = sql_store.create_tenant("b", {"trace": 10}).id
    for n in range(6):
        add(sql_store, a, n, keep=3)
        add(sql_store, b, n, keep=10)
    kept = sql_store.traces(a)
    assert [t.target for t in kept] == ["/scim/v2/Users?n=3", "/scim/v2/Users?n=4", "/scim/v2/Users?n=5"]
    assert (
        kept[0].time == T0 + timedelta(seconds=3)
        and kept[0].response == '{"n":3}'
        and kept[0].request is None
    )
    assert len(sql_store.traces(b)) == 6
    assert [t.target for t in sql_store.traces(b, limit=2)] == ["/scim/v2/Users?n=4", "/scim/v2/Users?n=5"]
    add(sql_store, a, 6, keep=1)  # a smaller setting takes effect at the next request
    assert [t.target for t in sql_store.traces(a)] == ["/scim/v2/Users?n=6"]


def test_traces_go_with_their_tenant_or_on_request(sql_store: SqlStore) -> None:
    a = sql_store.create_tenant("a", {"trace": 3}).id
    b = sql_store.create_tenant("b", {"trace": 10}).id
    for n in range(3):
        add(sql_store, a, n, keep=10)
        add(sql_store, b, n, keep=10)
    assert sql_store.delete_traces(a) == 3
    assert sql_store.traces(a) == [] and len(sql_store.traces(b)) == 3
    sql_store.delete_tenant("b")
    with sql_store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM request_traces").scalar() == 0


def test_a_trace_is_kept_only_while_the_stored_settings_trace(sql_store: SqlStore) -> None:
    """A server passes the settings it read with the token, up to a second old: after `tenant set
    --no-trace` (the setting off, the traces deleted) nothing it sends is kept."""
    a = sql_store.create_tenant("a", {"trace": 5}).id
    add(sql_store, a, 0, keep=5)
    sql_store.update_settings(a, {"trace": None})
    sql_store.delete_traces(a)
    add(sql_store, a, 1, keep=5)
    assert sql_store.traces(a) == []
    for setting in (0, True, "5"):  # not tracing either (as the server reads them)
        sql_store.update_settings(a, {"trace": setting})
        add(sql_store, a, 2, keep=5)
        assert sql_store.traces(a) == []
    for text in ("{not json", "[5]"):  # settings that cannot be read trace nothing, and fail nothing
        sql_store.update_settings(a, {"trace": 5})
        with sql_store.engine.begin() as conn:
            conn.execute(tenants.update().where(tenants.c.id == a).values(settings=text))
        add(sql_store, a, 2, keep=5)
        assert sql_store.traces(a) == []
    sql_store.delete_tenant("a")
    add(sql_store, a, 3, keep=5)  # a tenant deleted meanwhile: nothing, and no error
