"""An answer that takes several reads shows one state of the database: its ``totalResults`` counts
what its page was read from, whatever another process writes between the reads.

A search across resource types (``POST /.search``, RFC 7644 section 3.4.3) counts and pages each
type; a cursor page after a key (RFC 9865) reads the page, then the total of its query. Another
store on the same file (a second ``provisor serve``, the CLI) writes right after the answer's first
statement (an engine event on the server's store, run in the server's thread), so the write comes
between the reads every time, not by chance of timing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from tests.conftest import LiveServer, create_group, create_user, serving

from provisor.store.sql import SqlStore

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[LiveServer, SqlStore]]:
    """A server on loopback, and another store on its database file."""
    url = f"sqlite:///{tmp_path / 'provisor.db'}"
    with serving(url) as live:
        writer = SqlStore(url)
        try:
            yield live, writer
        finally:
            writer.close()


def _reads_resources(sql: str) -> bool:
    low = " ".join(sql.lower().split())
    return low.startswith("select") and ("from resources" in low or "from resource_counts" in low)


@contextmanager
def write_after_the_first_read(live: LiveServer, write: Callable[[], None]) -> Iterator[list[str]]:
    """Run ``write`` once, right after the server's first statement that reads resources (or
    their kept counts) inside the block; yields the statements the server read them with."""
    seen: list[str] = []

    def after(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if _reads_resources(statement):
            seen.append(statement)
            if len(seen) == 1:
                write()

    def observed(sql: str, rowcount: int) -> None:
        after(None, None, sql)

    event.listen(live.store.engine, "after_cursor_execute", after)
    live.store.connections.observers.append(observed)
    try:
        yield seen
    finally:
        live.store.connections.observers.remove(observed)
        event.remove(live.store.engine, "after_cursor_execute", after)


def test_a_search_across_types_counts_what_it_pages(pair: tuple[LiveServer, SqlStore]) -> None:
    """A User created after the Users were counted is not on the page either (or is counted)."""
    live, writer = pair
    tenant, token = live.new_tenant()
    with live.client(token) as c:
        users = {create_user(c, name)["id"] for name in ("a@x.com", "b@x.com")}
        group = create_group(c, "G")["id"]
        made: list[str] = []

        def create() -> None:
            made.append(writer.create(tenant, "User", {"userName": "late@x.com", "active": True}).id)

        with write_after_the_first_read(live, create) as seen:
            r = c.post("/.search", json={"schemas": [SEARCH], "startIndex": 1, "count": 10})
        assert r.status_code == 200, r.text
        assert made and len(seen) > 1  # the write came between two of the answer's reads
        body = r.json()
        ids = {res["id"] for res in body["Resources"]}
        before, after = users | {group}, users | {group, made[0]}
        assert (body["totalResults"], ids) in ((3, before), (4, after)), body
        assert body["itemsPerPage"] == body["totalResults"]


def test_a_search_across_types_with_a_filter_counts_what_it_pages(pair: tuple[LiveServer, SqlStore]) -> None:
    """The same with a filter each type reads by index (Entra's match, one statement alone):
    a deletion between the count and the page leaves no resource counted and not shown."""
    live, writer = pair
    tenant, token = live.new_tenant()
    with live.client(token) as c:
        first = create_user(c, "a@x.com", externalId="e")["id"]
        second = create_user(c, "b@x.com", externalId="e")["id"]
        with write_after_the_first_read(live, lambda: writer.delete(tenant, "User", first)) as seen:
            search = {"schemas": [SEARCH], "filter": 'externalId eq "e"', "startIndex": 1, "count": 10}
            r = c.post("/.search", json=search)
        assert r.status_code == 200, r.text
        assert len(seen) > 1
        body = r.json()
        got = (body["totalResults"], [res["id"] for res in body["Resources"]])
        assert got in ((2, [first, second]), (1, [second])), body


def test_a_cursor_page_after_a_key_counts_what_it_was_read_from(pair: tuple[LiveServer, SqlStore]) -> None:
    """The page after ``a`` is read (``b``, ``c``), then ``b`` is deleted, then the total: it is
    the total of the state the page shows (3 with ``b``), not of the next one (2, without)."""
    live, writer = pair
    tenant, token = live.new_tenant()
    with live.client(token) as c:
        a, b, cc = (create_user(c, f"{n}@x.com")["id"] for n in "abc")
        first = c.get("/Users", params={"count": 1, "cursor": ""}).json()
        assert [u["id"] for u in first["Resources"]] == [a] and first["totalResults"] == 3
        with write_after_the_first_read(live, lambda: writer.delete(tenant, "User", b)) as seen:
            r = c.get("/Users", params={"count": 1, "cursor": first["nextCursor"]})
        assert r.status_code == 200, r.text
        assert len(seen) > 1
        body = r.json()
        got = (body["totalResults"], [u["id"] for u in body["Resources"]])
        assert got in ((3, [b]), (2, [cc])), body
        # the same listing its ids alone (``search_ids``)
        with write_after_the_first_read(live, lambda: writer.delete(tenant, "User", cc)) as seen:
            r = c.get("/Users", params={"count": 1, "cursor": first["nextCursor"], "attributes": "id"})
        assert r.status_code == 200, r.text
        assert len(seen) > 1
        body = r.json()
        got = (body["totalResults"], [u["id"] for u in body["Resources"]])
        assert got in ((2, [cc]), (1, [])), body
