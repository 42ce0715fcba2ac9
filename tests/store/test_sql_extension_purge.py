"""An extension's values purged in steps (``store/sql/extension_purge``): the write lock is free
between them, a stopped purge leaves a marked declaration that no registry holds and whose values no
read shows, running it again finishes it, and what other stores write meanwhile ends up without
values."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from provisor.scim.schema import default_registry
from provisor.scim.schema.extensions import SchemaExtension, parse_extension
from provisor.server import ServerConfig
from provisor.store.base import (
    Change,
    PurgeProgress,
    Query,
    SchemaExtensionInUse,
    SchemaExtensionRemoving,
    StoredResource,
)
from provisor.store.sql import SqlStore, extension_purge, steps
from provisor.store.sql.engine import txn
from provisor.store.sql.tables import resources
from provisor.store.sql.values import to_micros

URN = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"
TEAM = "urn:example:scim:Team:2.0:Group"
USERS = 2 * steps.BATCH + 500  # per tenant: many ranges of keys
SETTLE = extension_purge.SETTLE_SECONDS  # as the module has it, before the fixture below


def custom(urn: str = URN, resource_type: str = "User") -> SchemaExtension:
    attributes = [{"name": "costCode", "type": "string"}]
    return parse_extension({"id": urn, "attributes": attributes}, default_registry(), resource_type)


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    # every statement its own step, and no pause: the steps are what is tested, not their timing
    monkeypatch.setattr(steps, "STEP_SECONDS", 0.0)
    monkeypatch.setattr(steps, "PAUSE_SECONDS", 0.0)
    monkeypatch.setattr(extension_purge, "SETTLE_SECONDS", 0.0)


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A database declaring URN (User) and TEAM (Group), with two tenants: in each, USERS Users of
    which every other one holds values of URN, and a Group holding values of TEAM."""
    url = f"sqlite:///{tmp_path / 'p.db'}"
    first = SqlStore(url)
    first.add_schema_extension(custom())
    first.add_schema_extension(custom(TEAM, "Group"))
    first.close()
    store = SqlStore(url)
    try:
        for name in ("contoso", "fabrikam"):
            tenant = store.create_tenant(name).id
            with store.batch():
                for i in range(USERS):
                    data: dict[str, Any] = {"userName": f"u{i}", "emails": [{"value": f"u{i}@x"}]}
                    if i % 2 == 0:
                        data[URN] = {"costCode": f"CC-{i}"}
                    store.create(tenant, "User", data)
            store.create(tenant, "Group", {"displayName": "team", TEAM: {"costCode": "T"}})
    finally:
        store.close()
    return url


@pytest.fixture
def store(url: str) -> Iterator[SqlStore]:
    s = SqlStore(url)
    yield s
    s.close()


def everything(store: SqlStore, resource_type: str = "User") -> dict[str, StoredResource]:
    """Every resource of the type in every tenant, by id, as the store reads them."""
    out: dict[str, StoredResource] = {}
    for tenant in store.list_tenants():
        page = store.search(tenant.id, resource_type, Query(count=10 * USERS))
        out.update((r.id, r) for r in page.resources)
    return out


def holders(store: SqlStore, urn: str = URN) -> int:
    """Stored documents holding values of ``urn``, as their text is (not as reads show them)."""
    with store.engine.connect() as conn:
        like = resources.c.data.like(f'%"{urn}":%')
        return int(conn.execute(select(func.count()).select_from(resources).where(like)).scalar_one())


def test_the_write_lock_is_free_between_steps_and_holders_are_rewritten_as_updated(
    url: str, store: SqlStore
) -> None:
    before = everything(store)
    groups_before = everything(store, "Group")
    path = store.engine.url.database
    assert path is not None
    left: list[int] = []
    heard: list[PurgeProgress] = []

    def between(step: PurgeProgress) -> None:
        heard.append(step)
        # another process takes the write lock at once, without waiting: the step let it go
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            left.append(
                other.execute(
                    "SELECT count(*) FROM resources WHERE data LIKE ?", (f'%"{URN}":%',)
                ).fetchone()[0]
            )
            other.execute("ROLLBACK")
        finally:
            other.close()

    assert (
        store.remove_schema_extension(URN.upper(), purge=True, progress=between) == USERS
    )  # half of each tenant's

    assert holders(store) == 0 and [e.urn for e in store.schema_extensions()] == [TEAM]
    after = everything(store)
    for id, was in before.items():
        now = after[id]
        if URN in was.data:
            assert now.data == {k: v for k, v in was.data.items() if k != URN}
            assert now.version == was.version + 1 and now.last_modified >= was.last_modified
        else:
            assert now == was
    assert everything(store, "Group") == groups_before  # TEAM's values stay
    # the holders went a range of keys at a time, never more than a range's in one step
    drops = [a - b for a, b in zip(left, left[1:], strict=False)]
    assert len(left) >= 2 * USERS / extension_purge.KEYS - 1 and max(drops) <= extension_purge.KEYS
    # progress counts the Users of every tenant up to all of them
    assert {s.total for s in heard} == {2 * USERS} and heard[-1].checked == 2 * USERS
    assert heard[-1].purged == USERS and heard[-1].urn == URN
    assert [s.checked for s in heard] == sorted(s.checked for s in heard)
    reopened = SqlStore(url)
    try:
        assert reopened.registry.schema(URN) is None and reopened.registry.schema(TEAM) is not None
    finally:
        reopened.close()


def test_a_stopped_purge_leaves_a_marked_declaration_whose_values_no_read_shows(
    url: str, store: SqlStore
) -> None:
    before = everything(store)
    calls = 0

    def stop_at_the_second(step: PurgeProgress) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.remove_schema_extension(URN, purge=True, progress=stop_at_the_second)

    assert 0 < holders(store) < USERS  # partly purged, each document whole
    # still declared, marked, in no registry
    assert [e.urn for e in store.schema_extensions()] == [URN, TEAM]
    assert list(store.schema_removals()) == [URN]
    later = SqlStore(url)
    try:
        assert later.registry.schema(URN) is None and later.registry.schema(TEAM) is not None
        # what reads show holds no value of it, whether read by id, in a page or by a filter
        shown = everything(later)
        assert len(shown) == 2 * USERS
        assert not any(URN in r.data or URN in (r.document_json or "") for r in shown.values())
        tenant = later.get_tenant("fabrikam").id  # whose Users come after contoso's: not reached
        got = later.get(tenant, "User", later.search(tenant, "User", Query(count=1)).resources[0].id)
        assert got.data == {"userName": "u0", "emails": [{"value": "u0@x"}]}
        assert got.document_json == '{"userName":"u0","emails":[{"value":"u0@x"}]}'
        # the URN cannot be declared again; without --purge the removal is refused and stays as it is
        with pytest.raises(SchemaExtensionRemoving, match="is being removed"):
            later.add_schema_extension(custom())
        with pytest.raises(SchemaExtensionInUse):
            later.remove_schema_extension(URN)
        assert list(later.schema_removals()) == [URN]

        # once marked, a holder is shown as the next version, last modified when the removal began
        began = later.schema_removals()[URN]
        for id, was in before.items():
            now = shown[id]
            if URN in was.data:  # (the first step's, rewritten, too)
                assert (now.version, now.last_modified) == (was.version + 1, max(was.last_modified, began))
                assert now.data == {k: v for k, v in was.data.items() if k != URN}
            else:
                assert now == was

        assert later.remove_schema_extension(URN, purge=True) > 0  # the second run finishes it
        assert holders(later) == 0 and later.schema_removals() == {}
        # the purge gave each holder the version and date it was shown with: nothing shown changed
        assert everything(later) == shown
        assert [e.urn for e in later.schema_extensions()] == [TEAM]
        later.add_schema_extension(custom())  # a new declaration: nothing stored shows again
        again = SqlStore(url)
        try:
            assert not any(URN in r.data for r in everything(again).values())
        finally:
            again.close()
    finally:
        later.close()


def test_a_store_that_still_speaks_the_extension_while_the_purge_settles_is_purged_too(
    url: str, store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A running server takes up to its schema check (2 s) to drop the extension: what it writes
    in that time is purged, since the walk begins once that time has passed."""
    monkeypatch.setattr(extension_purge, "SETTLE_SECONDS", SETTLE)  # waited by ``pause`` below
    lagging = SqlStore(url)  # opened before the mark, and never looking again
    tenant = lagging.get_tenant("contoso").id
    first = lagging.search(tenant, "User", Query(count=2)).resources
    pauses: list[float] = []
    made: list[str] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 1:  # the settling, before the walk: the lagging store writes values
            lagging.update(
                tenant, "User", first[1].id, lambda r: Change({**r.data, URN: {"costCode": "late"}})
            )
            made.append(lagging.create(tenant, "User", {"userName": "late", URN: {"costCode": "new"}}).id)

    try:
        purged = extension_purge.purge_extension(
            txn(store.engine, "write"), URN, now=lambda: to_micros(datetime.now(UTC)), pause=pause
        )
    finally:
        lagging.close()

    assert SETTLE - 1 < pauses[0] <= SETTLE and purged == USERS + 2
    assert holders(store) == 0
    assert URN not in store.get(tenant, "User", made[0]).data


def test_settling_outlasts_a_running_servers_schema_check() -> None:
    assert SETTLE > ServerConfig().schema_check_seconds


def test_an_update_between_steps_drops_the_values_and_the_purge_leaves_it(url: str, store: SqlStore) -> None:
    """A store that follows the declarations (a server that looked since the mark) writes a holder
    the walk has not reached: the update starts from the document without the values and stores it
    so, and the walk then finds nothing to rewrite there."""
    follower = SqlStore(url)
    tenant = follower.get_tenant("fabrikam").id
    last = follower.search(tenant, "User", Query(count=1, start_index=USERS - 1)).resources[0]
    assert URN in last.data and last.data["userName"] == f"u{USERS - 2}"
    written: list[StoredResource] = []

    def write_between(step: PurgeProgress) -> None:
        if not written:
            assert follower.reload_schemas() is not None  # it sees the mark
            seen: list[dict[str, Any]] = []

            def rename(current: StoredResource) -> Change:
                seen.append(current.data)
                return Change({**current.data, "displayName": "renamed"})

            written.append(follower.update(tenant, "User", last.id, rename))
            assert URN not in seen[0]

    try:
        store.remove_schema_extension(URN, purge=True, progress=write_between)
    finally:
        follower.close()

    now = store.get(tenant, "User", last.id)
    # the update's, one past the version reads showed without the values; the purge's walk left it
    assert now.version == last.version + 2 == written[0].version
    assert now.data == {**{k: v for k, v in last.data.items() if k != URN}, "displayName": "renamed"}
    assert holders(store) == 0


def test_a_purge_finished_beside_it_and_the_urn_declared_anew_keeps_the_new_declaration_and_values(
    url: str, store: SqlStore
) -> None:
    """A run that another run finished while it walked, and whose URN was declared anew and given
    values since, stops at its next step: it leaves the new values, on resources it has not
    reached yet too, and the new declaration."""
    tenant = store.get_tenant("fabrikam").id  # whose Users come after contoso's: not reached
    last = store.search(tenant, "User", Query(count=1, start_index=USERS)).resources[0]
    heard: list[PurgeProgress] = []

    def finish_and_declare_again(step: PurgeProgress) -> None:
        heard.append(step)
        if len(heard) > 1:
            return
        store.remove_schema_extension(URN, purge=True)  # another run, to the end
        store.add_schema_extension(custom())
        anew = SqlStore(url)  # a server that reads the new declaration
        try:
            anew.update(tenant, "User", last.id, lambda r: Change({**r.data, URN: {"costCode": "new"}}))
        finally:
            anew.close()

    store.remove_schema_extension(URN, purge=True, progress=finish_and_declare_again)

    assert [e.urn for e in store.schema_extensions()] == [TEAM, URN] and store.schema_removals() == {}
    assert holders(store) == 1 and heard[-1].checked < 2 * USERS  # it stopped at its next step
    reader = SqlStore(url)
    try:
        assert reader.get(tenant, "User", last.id).data[URN] == {"costCode": "new"}
    finally:
        reader.close()


def test_last_modified_does_not_go_back_with_a_clock_set_back(store: SqlStore) -> None:
    tenant = store.get_tenant("contoso").id
    holder = store.search(tenant, "User", Query(count=1)).resources[0]
    assert URN in holder.data
    earlier = holder.last_modified - timedelta(hours=1)
    store._clock = lambda: earlier  # type: ignore[method-assign]

    store.remove_schema_extension(URN, purge=True)

    now = store.get(tenant, "User", holder.id)
    assert URN not in now.data and now.version == holder.version + 1
    assert now.last_modified == holder.last_modified
