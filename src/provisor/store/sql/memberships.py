"""Group membership as its own relation: every change costs O(changed members), not O(group size).

Member values are resource ids; they are resolved to primary keys with the tenant in the WHERE
clause, so a group can only ever contain Users and Groups of its own tenant.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select

from provisor.store.base import Member, MemberDelta, UnknownMember
from provisor.store.sql.dialect import SqlDialect
from provisor.store.sql.filters import member_display
from provisor.store.sql.tables import memberships as M
from provisor.store.sql.tables import resources as R

#: At most this many values go in one IN (...) list (SQLite's default limit is 32766 parameters).
CHUNK = 500

_MEMBER_TYPES = ("User", "Group")

#: (primary key, resource type, display) of each member value that exists in the tenant.
Resolved = dict[str, tuple[int, str, str | None]]

_RESOLVE = select(R.c.id, R.c.pk, R.c.resource_type, func.coalesce(R.c.display_name, R.c.user_name)).where(
    R.c.tenant_id == bindparam("tenant"),
    R.c.resource_type.in_(_MEMBER_TYPES),
    R.c.id.in_(bindparam("ids", expanding=True)),
)

_MEMBER_PKS = select(R.c.pk).where(
    R.c.tenant_id == bindparam("tenant"),
    R.c.resource_type.in_(_MEMBER_TYPES),
    R.c.id.in_(bindparam("ids", expanding=True)),
)

_REMOVE = delete(M).where(
    M.c.group_pk == bindparam("group"), M.c.member_pk.in_(_MEMBER_PKS.scalar_subquery())
)

_CLEAR = delete(M).where(M.c.group_pk == bindparam("group"))

_member = R.alias("member")
_LOAD = (
    select(M.c.group_pk, _member.c.id, M.c.member_type, member_display(_member, M))
    .select_from(M.join(_member, _member.c.pk == M.c.member_pk))
    .where(M.c.group_pk.in_(bindparam("groups", expanding=True)))
    .order_by(M.c.group_pk, M.c.member_pk)
)


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def resolve(conn: Connection, tenant_id: str, values: Iterable[str]) -> Resolved:
    """Look up member values (ids of Users or Groups in the tenant); unknown values are absent."""
    wanted = list(dict.fromkeys(values))
    found: Resolved = {}
    for part in chunks(wanted):
        for id_, pk, type_, display in conn.execute(_RESOLVE, {"tenant": tenant_id, "ids": list(part)}):
            found[id_] = (pk, type_, display)
    return found


def require(conn: Connection, tenant_id: str, members: Sequence[Member]) -> Resolved:
    """:func:`resolve`, raising UnknownMember naming every value that is not in the tenant."""
    found = resolve(conn, tenant_id, (m.value for m in members))
    missing = list(dict.fromkeys(m.value for m in members if m.value not in found))
    if missing:
        raise UnknownMember(missing)
    return found


def insert(
    conn: Connection, dialect: SqlDialect, group_pk: int, members: Sequence[Member], found: Resolved
) -> None:
    """Add members (already resolved); ones already in the group are left as they are."""
    rows = [
        {
            "group_pk": group_pk,
            "member_pk": found[m.value][0],
            "member_type": found[m.value][1],
            "display": m.display,
        }
        for m in members
    ]
    if rows:
        conn.execute(dialect.insert_ignore(M), rows)


def as_members(members: Sequence[Member], found: Resolved) -> tuple[Member, ...]:
    """Members as the store reports them: real type, the display sent (else the member's own),
    first occurrence only."""
    out: dict[str, Member] = {}
    for m in members:
        if m.value not in out:
            _, type_, display = found[m.value]
            out[m.value] = Member(m.value, type_, m.display if m.display is not None else display)
    return tuple(out.values())


def apply(conn: Connection, dialect: SqlDialect, tenant_id: str, group_pk: int, delta: MemberDelta) -> None:
    """Apply a delta in O(k): ``replace`` (clear, then add), then ``remove``, then ``add``.

    Every added value must exist in the tenant (UnknownMember otherwise); removing a value that is
    not a member is not an error.
    """
    adding = [*(delta.replace or ()), *delta.add]
    found = require(conn, tenant_id, adding) if adding else {}
    if delta.replace is not None:
        conn.execute(_CLEAR, {"group": group_pk})
        insert(conn, dialect, group_pk, delta.replace, found)
    if delta.remove:
        values = list(dict.fromkeys(delta.remove))
        for part in chunks(values):
            conn.execute(_REMOVE, {"group": group_pk, "tenant": tenant_id, "ids": list(part)})
    insert(conn, dialect, group_pk, delta.add, found)


def load(conn: Connection, group_pks: Sequence[int]) -> dict[int, list[Member]]:
    """The members of each group, ordered by when each member resource was created."""
    out: dict[int, list[Member]] = {pk: [] for pk in group_pks}
    for part in chunks(list(group_pks)):
        for group_pk, id_, type_, display in conn.execute(_LOAD, {"groups": list(part)}):
            out[group_pk].append(Member(id_, type_, display))
    return out
