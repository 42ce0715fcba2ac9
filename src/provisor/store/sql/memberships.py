"""Group membership as its own relation: every change costs O(changed members), not O(group size).

Member values are resource ids; they are resolved to primary keys with the tenant in the WHERE
clause, so a group can only ever contain Users and Groups of its own tenant. The statements are
prepared once per store (:class:`Statements`) and run in the caller's transaction.

A membership shows in two representations besides the group's own members: in each User's
``groups`` (RFC 7643 section 4.1.2, direct and, through nested groups, indirect) and in the
``members[].display`` of a group (the member's name unless the client sent one). A weak ETag
changes on every significant change of the representation (RFC 7232 section 2.1), and
``meta.version`` is the ETag (RFC 7643 section 3.1), so the statements here also give the Users
whose ``groups`` a change alters, and the groups showing a renamed member, a new version and
lastModified (:meth:`Statements.touch_users`, :meth:`Statements.touch_containers`), set-based in
the write's own transaction: a change of k memberships costs O(k) and the Users below the k
members when they are groups, never O(group size).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    Update,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.sql.elements import BindParameter

from provisor.store.base import Member, MemberDelta, SelfMember, UnknownMember
from provisor.store.sql.dialect import SqlDialect
from provisor.store.sql.filters import member_display
from provisor.store.sql.prepared import Prepared, PreparedIn, Runner, Transaction, in_list
from provisor.store.sql.tables import memberships as M
from provisor.store.sql.tables import nested_membership
from provisor.store.sql.tables import resources as R

#: (primary key, resource type, display) of each member value that exists in the tenant.
Resolved = dict[str, tuple[int, str, str | None]]

_MEMBER_TYPES = R.c.resource_type.in_([literal("User"), literal("Group")])
_member = R.alias("member")
_seed = R.alias("seed")
_NOW: BindParameter[int] = bindparam("now")
#: what a change a resource did not make itself writes: a new version, and lastModified ``now``
#: unless the row's is later (a clock stepped back never moves lastModified backwards)
TOUCHED: dict[str, ColumnElement[Any]] = {
    "version": R.c.version + 1,
    "last_modified": case((R.c.last_modified > _NOW, R.c.last_modified), else_=_NOW),
}


def _in_group(pk: ColumnElement[Any]) -> ColumnElement[bool]:
    """Whether the resource of ``pk`` is a direct member of the group ``:group`` (one key probe)."""
    return exists(select(literal_column("1")).where(M.c.group_pk == bindparam("group"), M.c.member_pk == pk))


def _not_in_group(pk: ColumnElement[Any]) -> ColumnElement[bool]:
    return ~_in_group(pk)


#: the condition on the listed resources a :class:`Touches` touches: any, the ones not in
#: ``:group`` yet (run before adding them: one in it already is left as it is, and so are its
#: Users), the ones in it (run before removing them)
Condition = Callable[[ColumnElement[Any]], ColumnElement[bool]] | None
_USER = R.c.resource_type == literal_column("'User'")


def _users_below(groups: Select[Any]) -> Update:
    """Touch (``TOUCHED``) every User in the groups of ``groups`` (a SELECT of primary keys named
    ``pk``) or in a group nested in them at any depth: the Users whose ``groups`` change when
    those groups join or leave a group, are renamed or deleted.

    The walk follows nested memberships only (``ix_memberships_nested``) and UNION ends it on a
    cycle; the Users are then found as the members of the groups reached, so the cost is the
    subtree's, every User of which changes.
    """
    down = groups.cte("down", recursive=True)
    step = M.alias("step")
    down = down.union(
        select(step.c.member_pk).where(step.c.group_pk == down.c.pk, nested_membership(step.c.member_type))
    )
    members = select(M.c.member_pk).where(M.c.group_pk.in_(select(down.c.pk)))
    return update(R).where(R.c.pk.in_(members), _USER).values(TOUCHED)


class Touches:
    """Touch the resources of a list of primary keys whose membership changed, meeting a
    :data:`Condition`: the Users among them (a plain UPDATE, the usual case) and the Users below
    the Groups among them (:func:`_users_below`, a recursive query, run only when there are)."""

    def __init__(self, engine: Engine, condition: Condition) -> None:
        def listed(pk: ColumnElement[Any], names: list[str]) -> list[ColumnElement[bool]]:
            return [pk.in_(in_list(names)), *([condition(pk)] if condition is not None else [])]

        self.users = PreparedIn(
            engine, "p", lambda names: update(R).where(*listed(R.c.pk, names), _USER).values(TOUCHED)
        )
        self.below = PreparedIn(
            engine,
            "p",
            lambda names: _users_below(select(_seed.c.pk).where(*listed(_seed.c.pk, names))),
        )

    def run(self, tx: Transaction, resolved: Iterable[tuple[int, str]], params: dict[str, Any]) -> None:
        """Touch the resources of ``resolved`` (primary key, resource type), each listed once."""
        users: list[int] = []
        groups: list[int] = []
        for pk, type_ in dict(resolved).items():
            (users if type_ == "User" else groups).append(pk)
        for statement, values in [*self.users.parts(params, users), *self.below.parts(params, groups)]:
            tx.execute(statement, values)


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
        #: the memberships in ``:group`` of members already resolved (:meth:`resolve_ids`)
        self.remove = PreparedIn(
            engine,
            "p",
            lambda pks: delete(M).where(M.c.group_pk == bindparam("group"), M.c.member_pk.in_(in_list(pks))),
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
        self.members = Prepared(
            engine, select(M.c.member_pk, M.c.member_type).where(M.c.group_pk == bindparam("group"))
        )
        #: the display sent for each member of ``:group``, as stored (NULL: none was sent)
        self.sent_displays = Prepared(
            engine, select(M.c.member_pk, M.c.display).where(M.c.group_pk == bindparam("group"))
        )
        self.set_display = Prepared(
            engine,
            update(M)
            .where(M.c.group_pk == bindparam("group"), M.c.member_pk == bindparam("member"))
            .values(display=bindparam("sent")),
        )
        #: the listed resources, whatever their memberships (a group's new members, a renamed
        #: or deleted group), the ones joining ``:group`` and the ones leaving it
        self.touch_listed = Touches(engine, None)
        self.touch_joining = Touches(engine, _not_in_group)
        self.touch_leaving = Touches(engine, _in_group)
        #: the groups that show ``:member`` under its own name (no display sent for it): a
        #: rename of the member changes their ``members[].display``
        self.touch_containers = Prepared(
            engine,
            update(R)
            .where(
                R.c.pk.in_(
                    select(M.c.group_pk)
                    .where(M.c.member_pk == bindparam("member"), M.c.display.is_(None))
                    .scalar_subquery()
                )
            )
            .values(TOUCHED),
        )

    def resolve_ids(self, tx: Runner, tenant_id: str, values: Iterable[str]) -> Resolved:
        """Look up member values (ids of Users or Groups in the tenant); unknown values are absent."""
        found: Resolved = {}
        for statement, params in self.resolve.parts({"tenant": tenant_id}, list(dict.fromkeys(values))):
            for id_, pk, type_, display in tx.rows(statement, params):
                found[id_] = (pk, type_, display)
        return found

    def lookup(self, tx: Runner, tenant_id: str, values: Iterable[str]) -> dict[str, Member]:
        """What member values name (``MemberLookup``): the member each id of a User or Group of
        the tenant is shown as with no display sent (its type, its own name); O(values)."""
        found = self.resolve_ids(tx, tenant_id, values)
        return {value: Member(value, type_, display) for value, (_, type_, display) in found.items()}

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
        *,
        now: int,
    ) -> int:
        """Apply a delta in O(k): ``replace`` (clear, then add), then ``remove``, then ``add``.

        Every added value must exist in the tenant (UnknownMember otherwise; ``found``: what
        :meth:`require_delta` gave, when the caller has it already); removing a value that is not a
        member is not an error. Returns how many membership rows an add/remove delta changed (0:
        none, the group is as it was); -1 for a replace, or when the driver cannot tell.

        Each member that joins or leaves is touched (new version, lastModified ``now``), with the
        Users below it when it is a group: their ``groups`` change. One already in (or not in)
        the group is left as it is. A replace reads the group's members to know which changed.
        """
        if found is None:
            found = self.require_delta(tx, tenant_id, delta)
        itself = next((value for value, (pk, _, _) in found.items() if pk == group_pk), None)
        if itself is not None:
            raise SelfMember(itself)
        changed = 0
        group = {"group": group_pk}
        if delta.replace is not None:
            before: dict[int, str] = dict(tx.rows(self.members, group))
            members = (
                self._stored_displays(tx, group_pk, delta.replace, found, delta.shown)
                if delta.shown
                else delta.replace
            )
            tx.execute(self.clear, group)
            self.add(tx, group_pk, members, found)
            after = {pk: type_ for pk, type_, _ in (found[m.value] for m in delta.replace)}
            flipped = before.keys() ^ after.keys()
            self.touch(tx, [(pk, before.get(pk) or after[pk]) for pk in sorted(flipped)], now)
            changed = -1
        if delta.remove:
            leaving = [(pk, type_) for pk, type_, _ in self.resolve_ids(tx, tenant_id, delta.remove).values()]
            self.touch_leaving.run(tx, leaving, {**group, "now": now})
            for statement, params in self.remove.parts(group, [pk for pk, _ in leaving]):
                changed = _plus(changed, tx.execute(statement, params).rowcount)
        if delta.add:
            joining = [found[m.value][:2] for m in delta.add]
            self.touch_joining.run(tx, joining, {**group, "now": now})
        return _plus(changed, self.add(tx, group_pk, delta.add, found))

    def _stored_displays(
        self,
        tx: Transaction,
        group_pk: int,
        members: Sequence[Member],
        found: Resolved,
        shown: frozenset[str],
    ) -> list[Member]:
        """``members``, each of ``shown`` (``MemberDelta.shown``) that shows what it showed with
        the display stored for it (None: none sent, the member's own name is shown), so that a
        change of one member's display does not make the names shown for the others sent."""
        stored: dict[int, str | None] = dict(tx.rows(self.sent_displays, {"group": group_pk}))
        out = []
        for m in members:
            pk, _, own = found[m.value]
            if (
                m.value in shown
                and pk in stored
                and m.display == (stored[pk] if stored[pk] is not None else own)
            ):
                m = Member(m.value, m.type, stored[pk])
            out.append(m)
        return out

    def keep_displays(
        self,
        tx: Transaction,
        group_pk: int,
        members: Sequence[Member],
        found: Resolved,
        shown: frozenset[str] = frozenset(),
    ) -> None:
        """After a replace with the members the group has, each shown as it was (no new version):
        store the display sent for each (NULL for none), as a replace that changes something
        does. The group shows a member's own name unless a display was sent for it, so a display
        sent equal to that name must still outlast the member's rename, and one no longer sent
        must follow it; else what a PUT leaves depends on whether anything else in it changed."""
        sent: dict[int, str | None] = {}
        for m in members:
            if m.value not in shown:  # (``MemberDelta.shown``: no display the client sent)
                sent.setdefault(found[m.value][0], m.display)  # the first occurrence, as as_members
        group = {"group": group_pk}
        stored: dict[int, str | None] = dict(tx.rows(self.sent_displays, group))
        changed = [{**group, "member": pk, "sent": d} for pk, d in sent.items() if stored.get(pk) != d]
        if changed:
            tx.many(self.set_display, changed)

    def touch(self, tx: Transaction, resolved: Iterable[tuple[int, str]], now: int) -> None:
        """Touch the resources of ``resolved`` (primary key, resource type): the Users among them
        and the Users below the Groups among them (:class:`Touches`): their ``groups`` changed."""
        self.touch_listed.run(tx, resolved, {"now": now})

    def touch_renamed(self, tx: Transaction, pk: int, now: int, *, shown: bool, group_name: bool) -> None:
        """After a rename of the resource of ``pk``: ``shown``, the name a group shows for it
        (``member_display``) changed: touch the groups it is directly in that show that name;
        ``group_name``, it is a Group whose displayName changed: touch every User in it, directly
        or through nested groups (their ``groups[].display``). The first costs O(groups it is
        in), the second O(the group's subtree): all of those representations changed."""
        if shown:
            tx.execute(self.touch_containers, {"member": pk, "now": now})
        if group_name:
            self.touch(tx, [(pk, "Group")], now)

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
    first occurrence only, in the order :meth:`Statements.load_members` reads them (by when each
    member was created), so that a create answers with the members a GET of the same version
    shows, not in the order the client sent them."""
    out: dict[str, Member] = {}
    for m in members:
        if m.value not in out:
            _, type_, display = found[m.value]
            out[m.value] = Member(m.value, type_, m.display if m.display is not None else display)
    return tuple(sorted(out.values(), key=lambda m: found[m.value][0]))
