"""Group membership as its own relation: every change costs O(changed members), not O(group size).

Member values are resource ids; they are resolved to primary keys with the tenant in the WHERE
clause, so a group can only ever contain Users and Groups of its own tenant. The statements are
prepared once per store (:class:`Statements`) and run in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, bindparam, delete, func, literal, select

from provisor.store.base import Member, MemberDelta, SelfMember, UnknownMember
from provisor.store.sql.dialect import SqlDialect
from provisor.store.sql.filters import member_display
from provisor.store.sql.prepared import Prepared, PreparedIn, Runner, Transaction, in_list
from provisor.store.sql.tables import memberships as M
from provisor.store.sql.tables import resources as R

#: (primary key, resource type, display) of each member value that exists in the tenant.
Resolved = dict[str, tuple[int, str, str | None]]

_MEMBER_TYPES = R.c.resource_type.in_([literal("User"), literal("Group")])
_member = R.alias("member")


class Statements:
    """The membership statements, compiled for one engine."""

    def __init__(self, engine: Engine, dialect: SqlDialect) -> None:
        tenant = R.c.tenant_id == bindparam("tenant")
        self.resolve = PreparedIn(
            engine,
            "id",
            lambda ids: select(
                R.c.id, R.c.pk, R.c.resource_type, func.coalesce(R.c.display_name, R.c.user_name)
            ).where(tenant, _MEMBER_TYPES, R.c.id.in_(in_list(ids))),
        )
        self.remove = PreparedIn(
            engine,
            "id",
            lambda ids: delete(M).where(
                M.c.group_pk == bindparam("group"),
                M.c.member_pk.in_(
                    select(R.c.pk).where(tenant, _MEMBER_TYPES, R.c.id.in_(in_list(ids))).scalar_subquery()
                ),
            ),
        )
        self.clear = Prepared(engine, delete(M).where(M.c.group_pk == bindparam("group")))
        self.insert = Prepared(engine, dialect.insert_ignore(M))
        self.load = PreparedIn(
            engine,
            "g",
            lambda groups: (
                select(M.c.group_pk, _member.c.id, M.c.member_type, member_display(_member, M))
                .select_from(M.join(_member, _member.c.pk == M.c.member_pk))
                .where(M.c.group_pk.in_(in_list(groups)))
                .order_by(M.c.group_pk, M.c.member_pk)
            ),
        )

    def resolve_ids(self, tx: Runner, tenant_id: str, values: Iterable[str]) -> Resolved:
        """Look up member values (ids of Users or Groups in the tenant); unknown values are absent."""
        found: Resolved = {}
        for statement, params in self.resolve.parts({"tenant": tenant_id}, list(dict.fromkeys(values))):
            for id_, pk, type_, display in tx.rows(statement, params):
                found[id_] = (pk, type_, display)
        return found

    def require(self, tx: Runner, tenant_id: str, members: Sequence[Member]) -> Resolved:
        """:meth:`resolve_ids`, raising UnknownMember naming every value that is not in the tenant."""
        found = self.resolve_ids(tx, tenant_id, (m.value for m in members))
        missing = list(dict.fromkeys(m.value for m in members if m.value not in found))
        if missing:
            raise UnknownMember(missing)
        return found

    def add(self, tx: Transaction, group_pk: int, members: Sequence[Member], found: Resolved) -> int:
        """Add members (already resolved); ones already in the group are left as they are. Returns
        the rows added, as the driver counts them (-1 when it cannot tell)."""
        rows: list[dict[str, Any]] = [
            {
                "group_pk": group_pk,
                "member_pk": found[m.value][0],
                "member_type": found[m.value][1],
                "display": m.display,
            }
            for m in members
        ]
        return tx.many(self.insert, rows) if rows else 0

    def require_delta(self, tx: Runner, tenant_id: str, delta: MemberDelta) -> Resolved:
        """:meth:`require` of every value a delta adds (its ``replace`` and its ``add``)."""
        adding = [*(delta.replace or ()), *delta.add]
        return self.require(tx, tenant_id, adding) if adding else {}

    def apply(
        self,
        tx: Transaction,
        tenant_id: str,
        group_pk: int,
        delta: MemberDelta,
        found: Resolved | None = None,
    ) -> int:
        """Apply a delta in O(k): ``replace`` (clear, then add), then ``remove``, then ``add``.

        Every added value must exist in the tenant (UnknownMember otherwise; ``found``: what
        :meth:`require_delta` gave, when the caller has it already); removing a value that is not a
        member is not an error. Returns how many membership rows an add/remove delta changed (0:
        none, the group is as it was); -1 for a replace, or when the driver cannot tell.
        """
        if found is None:
            found = self.require_delta(tx, tenant_id, delta)
        itself = next((value for value, (pk, _, _) in found.items() if pk == group_pk), None)
        if itself is not None:
            raise SelfMember(itself)
        changed = 0
        if delta.replace is not None:
            tx.execute(self.clear, {"group": group_pk})
            self.add(tx, group_pk, delta.replace, found)
            changed = -1
        if delta.remove:
            values = list(dict.fromkeys(delta.remove))
            for statement, params in self.remove.parts({"group": group_pk, "tenant": tenant_id}, values):
                changed = _plus(changed, tx.execute(statement, params).rowcount)
        return _plus(changed, self.add(tx, group_pk, delta.add, found))

    def load_members(self, tx: Runner, group_pks: Sequence[int]) -> dict[int, list[Member]]:
        """The members of each group, ordered by when each member resource was created."""
        out: dict[int, list[Member]] = {pk: [] for pk in group_pks}
        for statement, params in self.load.parts({}, list(dict.fromkeys(group_pks))):
            for group_pk, id_, type_, display in tx.rows(statement, params):
                out[group_pk].append(Member(id_, type_, display))
        return out


def _plus(total: int, rows: int) -> int:
    """Add a statement's changed rows to a total; -1 (unknown) on either side stays -1."""
    return -1 if total < 0 or rows < 0 else total + rows


def as_members(members: Sequence[Member], found: Resolved) -> tuple[Member, ...]:
    """Members as the store reports them: real type, the display sent (else the member's own),
    first occurrence only."""
    out: dict[str, Member] = {}
    for m in members:
        if m.value not in out:
            _, type_, display = found[m.value]
            out[m.value] = Member(m.value, type_, m.display if m.display is not None else display)
    return tuple(out.values())
