"""Entra's membership PATCHes over HTTP cost O(changed members), not O(group size)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from tests.conftest import PATCH_OP, create_group, create_user

SMALL, LARGE = 10, 300


class Statements:
    """Every statement the live store runs: the prepared hot path on raw DBAPI cursors
    (``connections.observers``) and the rest through SQLAlchemy (``after_cursor_execute``).
    Token lookups and the look at declared extension schemas are left out: both run on a timer
    (the token cache's expiry, ``schema_check_seconds``), not per request."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def add(self, sql: str, rowcount: int) -> None:
        low = sql.lower()
        if "tokens" not in low and "schema_extensions" not in low:
            self.seen.append((sql, rowcount))

    def during(self, request: Any) -> list[tuple[str, int]]:
        self.seen.clear()
        request()
        return list(self.seen)


@pytest.fixture
def statements(live) -> Iterator[Statements]:
    rec = Statements()

    def after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        rec.add(statement, cursor.rowcount)

    event.listen(live.store.engine, "after_cursor_execute", after)
    live.store.connections.observers.append(rec.add)
    yield rec
    live.store.connections.observers.remove(rec.add)
    event.remove(live.store.engine, "after_cursor_execute", after)


def entra_add(member: str) -> dict:
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Add", "path": "members", "value": [{"value": member}]}],
    }


def entra_remove(member: str) -> dict:
    return {"schemas": [PATCH_OP], "Operations": [{"op": "Remove", "path": f'members[value eq "{member}"]'}]}


def test_member_add_and_remove_cost_does_not_grow_with_the_group(client, statements):
    """Adding or removing one member of a 10- and a 300-member group runs the same few statements,
    none of which reads (or touches more than one row of) the group's memberships."""
    users = [create_user(client, f"cost{i}@x.com")["id"] for i in range(LARGE + 1)]
    runs: dict[int, dict[str, list[tuple[str, int]]]] = {}
    for size in (SMALL, LARGE):
        group = create_group(client, f"Cost {size}", users[:size])["id"]
        newcomer, leaver = users[LARGE], users[0]

        def send(body: dict, group: str = group) -> None:
            r = client.patch(f"/Groups/{group}", json=body)
            assert r.status_code in (200, 204), r.text

        runs[size] = {
            "add": statements.during(lambda: send(entra_add(newcomer))),
            "remove": statements.during(lambda: send(entra_remove(leaver))),
        }
        got = client.get(f"/Groups/{group}").json()["members"]
        assert {m["value"] for m in got} == {*users[1:size], newcomer}
    for kind in ("add", "remove"):
        small, large = runs[SMALL][kind], runs[LARGE][kind]
        assert small and len(small) <= 6, small
        assert len(small) == len(large), (small, large)
        assert [sql for sql, _ in small] == [sql for sql, _ in large]
        for sql, rowcount in large:
            if "memberships" in sql.lower():
                assert not sql.lstrip().upper().startswith("SELECT"), sql
                assert rowcount <= 1, (sql, rowcount)
