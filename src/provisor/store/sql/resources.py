"""Users and Groups in SQL: the ``ResourceStore`` half of :class:`provisor.store.sql.SqlStore`.

Reads by id and Entra's match lookups are single prepared statements; writes run in one
``BEGIN IMMEDIATE`` transaction each, as prepared statements on a DBAPI connection of the pool
(see ``prepared``). Only searches with general filters go through SQLAlchemy's ``Connection``.
userName uniqueness (per tenant, case-insensitively) is enforced by a unique index, and the
DBAPI's IntegrityError is translated to UniquenessViolation.

A User's ``groups`` (RFC 7643 section 4.1.2) are read in the same statement as the User, when
asked for (``lookups.groups_column``), and, for a User in a group that is itself in a group, with
one recursive query more (``lookups.ancestry``: the groups above its groups, for a whole page at
once); they are derived, never stored. A page of Users ends early when their groups reach the
query's ``group_budget`` (:class:`PageReader`). Their changes, and a member's rename a group shows,
give the resources whose representation they change a new version and lastModified in the write's
own transaction (``memberships.Touches``, ``Statements.touch_renamed``; store/base.py says which
and at what cost).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime
from itertools import chain
from typing import Any, NoReturn

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update

from provisor.scim.resources import document
from provisor.scim.schema.model import ENTERPRISE_USER, ResourceType, SchemaRegistry
from provisor.store import base
from provisor.store.base import (
    Change,
    GroupRef,
    IdPage,
    Member,
    MemberDelta,
    Page,
    Precondition,
    Query,
    ResourceNotFound,
    SortKey,
    StoredResource,
    TenantNotFound,
    UniquenessViolation,
    Updater,
)
from provisor.store.sql import memberships
from provisor.store.sql.dialect import SqlDialect
from provisor.store.sql.filters import cacheable, compile_filter
from provisor.store.sql.ids import new_id
from provisor.store.sql.lookups import COLUMNS, SCOPE, Lookup, Lookups
from provisor.store.sql.paging import PageCursors
from provisor.store.sql.prepared import (
    Connections,
    NeedsSnapshot,
    OnConnection,
    OneStatement,
    Prepared,
    Runner,
    Scanner,
    Transaction,
)
from provisor.store.sql.rows import (
    Ancestry,
    DirectGroups,
    Withdrawn,
    derived,
    direct_groups,
    email_rows,
    shown_as,
    stored,
)
from provisor.store.sql.sorting import after_position, index_scope, order_by, sort_key
from provisor.store.sql.tables import emails as E
from provisor.store.sql.tables import memberships as M
from provisor.store.sql.tables import resource_counts as C
from provisor.store.sql.tables import resources as R
from provisor.store.sql.tables import tenants as T
from provisor.store.sql.values import dumps, from_micros, loads, to_micros

#: Every column of ``resources`` but the primary key, in insert order.
_INSERTED = tuple(c.name for c in R.c if c is not R.c.pk)
#: The columns an update rewrites (``_pk`` names the row).
_UPDATED = (
    "data",
    "user_name",
    "user_name_key",
    "external_id",
    "display_name",
    "display_name_key",
    "manager_key",
    "last_modified",
    "version",
)


class Writes:
    """The write statements of one store, compiled for its engine."""

    def __init__(self, engine: Engine) -> None:
        def prepare(statement: Any) -> Prepared:
            return Prepared(engine, statement)

        new_row = insert(R).values({n: bindparam(n) for n in _INSERTED})
        #: Whether ``insert`` returns the new row's pk (``INSERT ... RETURNING``). On SQLite the pk
        #: is the rowid, which the cursor's ``lastrowid`` gives after a plain INSERT: RETURNING
        #: costs SQLite an ephemeral table per insert, about 4 % of an in-process POST /Users.
        self.insert_returns_pk = engine.dialect.name != "sqlite"
        self.insert = prepare(new_row.returning(R.c.pk) if self.insert_returns_pk else new_row)
        self.update = prepare(
            update(R).where(R.c.pk == bindparam("_pk")).values({n: bindparam(n) for n in _UPDATED})
        )
        self.insert_emails = prepare(
            insert(E).values({n: bindparam(n) for n in ("resource_pk", "value_key", "type_key")})
        )
        self.delete_emails = prepare(delete(E).where(E.c.resource_pk == bindparam("rpk")))
        self.touch_groups = prepare(
            update(R)
            .where(
                R.c.pk.in_(select(M.c.group_pk).where(M.c.member_pk == bindparam("rpk")).scalar_subquery())
            )
            .values(memberships.TOUCHED)
        )
        self.delete_memberships = prepare(
            delete(M).where((M.c.group_pk == bindparam("rpk")) | (M.c.member_pk == bindparam("rpk")))
        )
        self.delete = prepare(delete(R).where(R.c.pk == bindparam("rpk")))
        #: the Users whose manager is the User ``manager`` (``ix_resources_manager``)
        self.reports = prepare(
            select(*COLUMNS).where(
                R.c.tenant_id == bindparam("tenant"), R.c.manager_key == bindparam("manager")
            )
        )
        scope = (C.c.tenant_id == bindparam("tenant"), C.c.resource_type == bindparam("rt"))
        self.count_add = prepare(
            update(C).where(*scope).values(n=C.c.n + bindparam("d"), removed=C.c.removed + bindparam("gone"))
        )
        self.count_insert = prepare(
            insert(C).values(
                tenant_id=bindparam("tenant"),
                resource_type=bindparam("rt"),
                n=bindparam("d"),
                removed=bindparam("gone"),
            )
        )


#: Rows fetched at a time by a listing whose reader may stop early (:class:`PageReader`).
_FETCH = 16


class PageReader:
    """The rows of a page of Users read with the ``groups`` column, within a budget of group
    references (``Query.group_budget``): one GET of a thousand Users each in a thousand groups
    would otherwise render a million references, some 160 MB of JSON and several times that in
    memory, from one request.

    :meth:`read` takes the rows as the database computes them, counting each User's direct
    groups; once they reach the budget it reads no further row but one, to know whether the page
    was cut short (a short last page is not); a listing fetches them a few at a time, so the
    database may have computed the rest of that fetch. :meth:`finish` then finds the groups of the Users
    read, direct and indirect (``expand``), and ends the page at the User whose groups reach the
    budget. At least one User is always kept, whole: a page is never cut inside a User.
    """

    __slots__ = ("_budget", "_direct", "_expand", "_more", "_rows", "groups")

    def __init__(
        self,
        expand: Callable[[list[DirectGroups]], list[tuple[GroupRef, ...]]],
        budget: int | None,
    ) -> None:
        self._expand = expand
        self._budget = budget
        self._rows: list[Any] = []
        self._direct: list[DirectGroups] = []
        self._more = False
        #: each kept row's groups, once :meth:`finish` ran
        self.groups: list[tuple[GroupRef, ...]] = []

    def read(self, rows: Iterable[Any]) -> None:
        budget, spent = self._budget, 0
        found = iter(rows)
        for row in found:
            direct = direct_groups(row[6])
            self._rows.append(row)
            self._direct.append(direct)
            spent += len(direct)
            if budget is not None and spent >= budget:
                self._more = next(found, None) is not None
                return

    def finish(self) -> tuple[list[Any], bool]:
        """(the rows kept, whether rows that matched were left out)."""
        self.groups = self._expand(self._direct)
        rows, more = self._rows, self._more
        if len(self.groups) < len(rows):
            rows, more = rows[: len(self.groups)], True
        return rows, more


class MemberBudget:
    """The rows of a page of Groups read with each one's number of members (the last column),
    within a budget of members (``Query.group_budget``, the page's references): a page of a
    hundred Groups of 20,000 members each would otherwise be some 80 MB of JSON from one request.

    :meth:`read` takes the rows as the database computes them and, once the members counted reach
    the budget, reads no further row but one, to know whether the page was cut short. At least
    one Group is always kept, whole: a page is never cut inside a Group (a GET of that Group by id
    returns all its members too)."""

    __slots__ = ("_budget", "_more", "_rows")

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._rows: list[Any] = []
        self._more = False

    def read(self, rows: Iterable[Any]) -> None:
        spent = 0
        found = iter(rows)
        for row in found:
            self._rows.append(row)
            spent += int(row[6] or 0)
            if spent >= self._budget:
                self._more = next(found, None) is not None
                return

    def finish(self) -> tuple[list[Any], bool]:
        """(the rows kept, whether rows that matched were left out)."""
        return self._rows, self._more


class SqlResources:
    """Create, read, search, update and delete resources; every statement is scoped by tenant."""

    engine: Engine
    connections: Connections
    _lookups: Lookups
    _writes: Writes
    _members: memberships.Statements
    _cursors: PageCursors
    _read: Engine
    _dialect: SqlDialect
    _registry: SchemaRegistry
    #: resource type -> the extensions being removed whose values reads leave out (``rows.stored``)
    _withdrawn: dict[str, Withdrawn]
    _clock: Callable[[], datetime]

    @property
    def registry(self) -> SchemaRegistry:
        """The schemas the store keeps documents by (``document`` drops what they do not declare)."""
        return self._registry

    def _rt(self, resource_type: str) -> ResourceType:
        rt = self._registry.resource_type(resource_type)
        if rt is None:
            raise ValueError(f"unknown resource type {resource_type!r}")
        return rt

    # -- create --------------------------------------------------------------------------------

    def create(
        self, tenant_id: str, resource_type: str, data: dict[str, Any], members: Sequence[Member] = ()
    ) -> StoredResource:
        """Store a new resource with version 1 (RFC 7644 section 3.3); groups may start with members."""
        rt = self._rt(resource_type)
        if members and rt.name != "Group":
            raise ValueError(f"a {rt.name} has no members")
        now = to_micros(self._clock())
        data = document(rt, data)
        text = dumps(data)
        values = {
            "tenant_id": tenant_id,
            "resource_type": rt.name,
            "id": new_id(),
            "data": text,
            "created": now,
            "last_modified": now,
            "version": 1,
            **derived(rt.name, data),
        }
        w = self._writes
        tried: set[str] = set()
        with self.connections.write() as tx:
            self._check_group_name(tx, tenant_id, rt.name, values["display_name_key"], data)
            found = self._members.require(tx, tenant_id, members) if members else {}
            pk: int | None = None
            while pk is None:
                try:
                    if w.insert_returns_pk:
                        pk = tx.scalar(w.insert, values)
                    else:
                        pk = tx.execute(w.insert, values).lastrowid
                except self.connections.IntegrityError as exc:
                    if not _id_taken(exc) or values["id"] in tried:
                        _integrity(exc, data)
                    tried.add(values["id"])  # 74 random bits in one millisecond: all but impossible
                    values["id"] = new_id()
            self._write_emails(tx, pk, rt.name, data)
            if members:
                self._members.add(tx, pk, members, found)
                self._members.touch(tx, [(pk, type_) for pk, type_, _ in found.values()], now)
            self._count(tx, tenant_id, rt.name, 1)
        created = from_micros(now)  # lastModified too: one (immutable) datetime for both
        return StoredResource(
            id=values["id"],
            resource_type=rt.name,
            data=data,
            created=created,
            last_modified=created,
            version=1,
            members=memberships.as_members(members, found) if rt.name == "Group" else None,
            groups=() if rt.name == "User" else None,  # a new User is in no group yet
            document_json=text,
        )

    # -- read ----------------------------------------------------------------------------------

    def get(
        self,
        tenant_id: str,
        resource_type: str,
        id: str,
        *,
        with_members: bool = True,
        with_groups: bool = True,
    ) -> StoredResource:
        """One resource by id (RFC 7644 section 3.4.1); ResourceNotFound if not in this tenant.

        A User with ``with_groups`` is read with its groups in the same statement.
        """
        rt = self._rt(resource_type)
        params = {"tenant": tenant_id, "rt": rt.name, "id": id}
        if not (with_members and rt.name == "Group"):
            lookups = self._lookups
            statement = lookups.get_groups if with_groups and rt.name == "User" else lookups.get
            try:
                return self._read_one(OneStatement(self.connections), rt.name, id, statement, params)
            except NeedsSnapshot:  # a User in nested groups: the groups above are another statement
                with self.connections.read() as tx:
                    return self._read_one(tx, rt.name, id, statement, params)
        with self.connections.read() as tx:
            row = tx.first(self._lookups.get, params)
            if row is None:
                raise ResourceNotFound(f"{rt.name} {id} not found")
            found = self._members.load_members(tx, [row[0]])
        return stored(row, rt.name, tuple(found[row[0]]), withdrawn=self._withdrawn.get(rt.name, ()))

    def _read_one(
        self, runner: Runner, resource_type: str, id: str, statement: Prepared, params: dict[str, Any]
    ) -> StoredResource:
        """The resource ``statement`` reads by id, with its groups when it reads them."""
        rows = runner.rows(statement, params)
        if not rows:
            raise ResourceNotFound(f"{resource_type} {id} not found")
        hit = rows[0]
        withdrawn = self._withdrawn.get(resource_type, ())
        if statement is self._lookups.get_groups:
            return stored(hit, resource_type, None, self._groups(runner, hit), withdrawn)
        return stored(hit, resource_type, withdrawn=withdrawn)

    def _groups(self, runner: Runner, row: Any) -> tuple[GroupRef, ...]:
        """The groups of a User row read with the ``groups`` column (see :meth:`_member_groups`)."""
        direct = direct_groups(row[6])
        if isinstance(direct, tuple):  # none nested: what a read by id mostly finds
            return direct
        return self._member_groups(runner, [direct], None)[0]

    def _member_groups(
        self, runner: Runner, direct: Sequence[DirectGroups], budget: int | None
    ) -> list[tuple[GroupRef, ...]]:
        """The groups of each member whose direct groups are ``direct`` (``rows.direct_groups``), in
        order: its direct groups, and for one in a group that is itself in a group, the groups
        above too, found with one recursive query for the groups of all such members
        (``lookups.ancestry``).

        ``budget``: the groups of the members listed so far reaching it, the list ends there (at
        least one member is listed); the caller drops the members left out."""
        nested = [d for d in direct if isinstance(d, list)]
        if not nested:  # the usual page: the groups as read, and the reader kept them in budget
            out = [d for d in direct if isinstance(d, tuple)]
            if budget is None or sum(map(len, out)) < budget:
                return out
        starts = sorted({item[0] for items in nested for item in items if item[3]})
        found: list[Any] = []
        for statement, params in self._lookups.ancestry.parts({}, starts):
            found.extend(runner.rows(statement, params))
        ancestry = Ancestry(found)
        out = []
        spent = 0
        for groups in direct:  # walked up to the budget, not past it
            refs = groups if isinstance(groups, tuple) else ancestry.member_groups(groups)
            out.append(refs)
            spent += len(refs)
            if budget is not None and spent >= budget:
                break
        return out

    def _user_page(self, runner: Runner, budget: int | None) -> PageReader:
        """A reader of User rows with the ``groups`` column (:class:`PageReader`) whose groups
        are found with ``runner``."""
        return PageReader(lambda direct: self._member_groups(runner, direct, budget), budget)

    def search(self, tenant_id: str, resource_type: str, query: Query) -> Page:
        """Filter, sort and page (RFC 7644 section 3.4.2); ``total`` counts every match.

        Entra's match lookups (``userName eq`` etc., unsorted) run as prepared statements, in
        autocommit mode when one statement answers; everything else is compiled from the filter.
        Every answer is read in one snapshot.
        """
        rt = self._rt(resource_type)
        fast = self._fast(tenant_id, rt, query)
        if fast is not None and self._member_budget(rt, query, fast[0]):
            fast = None  # Groups that may be many, with their members: a listing within the budget
        if fast is not None:
            lookup, params = fast
            if not (query.with_members and rt.name == "Group"):
                try:
                    return self._matched(OneStatement(self.connections), rt.name, lookup, params, query)
                except NeedsSnapshot:
                    pass
            # more than one statement (the members of groups, the groups above nested groups, a
            # count of a full page): one snapshot, so that another process's write between them
            # never shows a version with the members or groups of another
            with self.connections.read() as tx:
                return self._matched(tx, rt.name, lookup, params, query)
        with self._read.connect() as conn:
            return self._compiled(conn, tenant_id, rt, query)

    @staticmethod
    def _member_budget(rt: ResourceType, query: Query, lookup: Lookup) -> bool:
        """Whether a lookup's Groups, with their members, are read as a listing within the
        page's budget of members (:class:`MemberBudget`): a lookup that may match many does."""
        return (
            query.with_members and rt.name == "Group" and query.group_budget is not None and not lookup.single
        )

    def snapshot(self) -> AbstractContextManager[base.Reads]:
        """Reads that see one state of the database, for an answer that takes several (see
        ``base.ResourceStore.snapshot``): a read transaction on one connection, which SQLite's
        WAL lets writers go on beside, rolled back at the end."""
        return _Snapshot(self)

    def _fast(self, tenant_id: str, rt: ResourceType, query: Query) -> tuple[Lookup, dict[str, Any]] | None:
        """The indexed lookup (``Lookups.match``) that answers ``query``, with its parameters."""
        if not query.filter or query.sort_by is not None:
            return None
        fast = self._lookups.match(query.filter, rt)
        if fast is None:
            return None
        lookup, params = fast
        params.update(
            tenant=tenant_id, rt=rt.name, lim=max(query.count, 0), off=max(query.start_index, 1) - 1
        )
        return lookup, params

    def _compiled(self, conn: Connection, tenant_id: str, rt: ResourceType, query: Query) -> Page:
        """A page of ``query`` compiled to SQL, read on ``conn`` (in its transaction)."""
        groups = query.with_groups and rt.name == "User"
        columns = self._lookups.columns_groups if groups else COLUMNS
        reader: PageReader | MemberBudget | None = (
            self._user_page(OnConnection(conn), query.group_budget) if groups else None
        )
        if query.with_members and rt.name == "Group" and query.group_budget is not None:
            columns, reader = self._lookups.columns_member_count, MemberBudget(query.group_budget)
        total, rows, cut = self._listing(conn, tenant_id, rt, query, columns, reader)
        loaded = {}
        if query.with_members and rt.name == "Group" and rows:
            loaded = self._members.load_members(OnConnection(conn), [r[0] for r in rows])
        groups_read = reader.groups if isinstance(reader, PageReader) else None
        found = _page(total, rows, rt.name, loaded, groups_read, cut, self._withdrawn.get(rt.name, ()))
        positions = _positions(query, rows)
        return found if positions is None else replace(found, positions=positions)

    def _matched(
        self, runner: Scanner, resource_type: str, lookup: Lookup, params: dict[str, Any], query: Query
    ) -> Page:
        """A page of an indexed lookup (``Lookups.match``), read with ``runner``. Entra's match
        (``userName eq``, ``externalId eq``, a group's ``displayName eq`` without its members) is
        one statement; a page that needs more reads them all with ``runner`` too."""
        offset, count = params["off"], params["lim"]
        groups = query.with_groups and resource_type == "User"
        rows: list[Any] = []
        cut = False
        every: list[tuple[GroupRef, ...]] | None = None
        if groups and count and lookup.single:
            # at most one User (Entra's match query): it is never cut, so no reader is needed
            rows = runner.rows(lookup.page_groups, params)
            every = [self._groups(runner, row) for row in rows]
        elif groups and count:
            # the groups are found once the page's rows are read (the statement is done with)
            paged = self._user_page(runner, query.group_budget)
            runner.scan(lookup.page_groups, params, paged.read)
            rows, cut = paged.finish()
            every = paged.groups
        elif count:
            rows = runner.rows(lookup.page, params)
        total = None if cut else _total(offset, count, rows)
        if total is None:
            total = runner.rows(lookup.count, params)[0][0]
        loaded: dict[int, list[Member]] = {}
        if query.with_members and resource_type == "Group" and rows:
            loaded = self._members.load_members(runner, [r[0] for r in rows])
        return _page(total, rows, resource_type, loaded, every, cut, self._withdrawn.get(resource_type, ()))

    def count_resources(self, tenant_id: str) -> dict[str, int]:
        """How many resources of each type the tenant holds, from the counts kept with every
        create and delete (no COUNT over the tenant); types it never held are absent. A tenant
        being deleted has its rows counted instead: its deletion removes resources in steps and
        the kept counts only at the end (``tenant_deletion``), so they say what it held before."""
        kept = (
            select(C.c.resource_type, C.c.n, T.c.deleting)
            .select_from(T.outerjoin(C, C.c.tenant_id == T.c.id))
            .where(T.c.id == tenant_id)
        )
        with self._read.connect() as conn:
            rows = conn.execute(kept).all()
            if rows and rows[0].deleting is not None:
                counted = (
                    select(R.c.resource_type, func.count())
                    .where(R.c.tenant_id == tenant_id)
                    .group_by(R.c.resource_type)
                )
                return {resource_type: int(n) for resource_type, n in conn.execute(counted)}
        return {resource_type: int(n) for resource_type, n, _ in rows if resource_type is not None}

    def search_ids(self, tenant_id: str, resource_type: str, query: Query) -> IdPage:
        """``search`` selecting the ``id`` column alone (``attributes=id`` listings): no document is
        read or decoded, which is what listing every id of a large tenant costs otherwise."""
        with self._read.connect() as conn:
            return self._ids(conn, tenant_id, resource_type, query)

    def _ids(self, conn: Connection, tenant_id: str, resource_type: str, query: Query) -> IdPage:
        total, rows, _ = self._listing(conn, tenant_id, self._rt(resource_type), query, (R.c.pk, R.c.id))
        return IdPage(total, [r[1] for r in rows], _positions(query, rows))

    def _listing(
        self,
        conn: Connection,
        tenant_id: str,
        rt: ResourceType,
        query: Query,
        columns: Sequence[Any],
        reader: PageReader | MemberBudget | None = None,
    ) -> tuple[int, list[Any], bool]:
        """(totalResults, the page's rows of ``columns``, the first of which is ``pk``, whether
        ``reader`` cut the page short) for a filter compiled to SQL, sorted and paged. An
        unfiltered, unsorted listing takes its total from the kept count, not a COUNT, and reads
        a deep page after the key where the previous page ended when nothing was deleted since
        (``paging``): the page as returned, so a page cut short is followed from where it ends.
        A query sorted with ties by id (``Query.ties_by_id``) gets each row's value of the sort
        as its last column (``_positions``), and one ``after`` a position the rows after it; its
        total still counts every match."""
        offset = max(query.start_index, 1) - 1
        count = max(query.count, 0)
        scope = {"tenant": tenant_id, "rt": rt.name}
        where = list(SCOPE)
        if query.filter is not None:
            where.append(compile_filter(query.filter, rt, self._dialect, tenant_id))
        key = None if query.sort_by is None else sort_key(query.sort_by, rt, self._dialect)
        if key is not None:
            where += index_scope(key, rt)
        page_where = where
        if key is not None and query.ties_by_id:
            columns = (*columns, key)
            if query.after is not None:
                page_where = [*where, after_position(key, query.descending, rt, query.after)]
        keyed = query.filter is None and query.sort_by is None and self._dialect.name == "sqlite"
        held = self._held(conn, tenant_id, rt.name) if keyed else None
        rows: list[Any] = []
        cut = False
        # a large filter's statement is compiled afresh, not kept (``filters.CACHED_TERMS``)
        options = {} if query.filter is None or cacheable(query.filter) else {"compiled_cache": None}
        if count:
            page = select(*columns).where(*page_where).limit(count)
            after = None
            if held is not None and offset:
                after = self._cursors.start(tenant_id, rt.name, offset, held[1])
            if after is None:
                terms = order_by(key, query.descending, rt, ties_by_id=query.ties_by_id)
                page = page.order_by(*terms)
                page = page.offset(offset)
            else:
                page = page.where(R.c.pk > after).order_by(R.c.pk)
            cut = False
            if reader is None:
                rows = list(conn.execute(page, scope, execution_options=options).all())
            else:
                result = conn.execute(page, scope, execution_options=options)
                try:
                    # a few rows a fetch: SQLAlchemy's machinery costs per fetch, not per row
                    reader.read(chain.from_iterable(result.partitions(_FETCH)))
                finally:
                    result.close()  # the rows the reader left are never computed
                rows, cut = reader.finish()
            if held is not None and rows:
                self._cursors.note(tenant_id, rt.name, offset + len(rows), rows[-1][0], held[1])
        total = None if cut or page_where is not where else _total(offset, count, rows)
        if total is None and not query.with_total:
            total = offset + len(rows)
        if total is None:
            if held is not None:
                total = held[0]
            elif query.filter is not None:
                counted = select(func.count()).select_from(R).where(*where)
                total = conn.execute(counted, scope, execution_options=options).scalar_one()
            else:
                total = self._held(conn, tenant_id, rt.name)[0]
        return total, rows, cut

    # -- update --------------------------------------------------------------------------------

    def update(
        self,
        tenant_id: str,
        resource_type: str,
        id: str,
        updater: Updater,
        *,
        precondition: Precondition | None = None,
        with_members: bool = False,
        with_groups: bool = False,
    ) -> StoredResource:
        """Read, apply ``updater`` and write in one write transaction (see base.ResourceStore.update).

        A User's groups (``with_groups``) are read with the row: changing a User never changes
        the memberships it is part of.
        """
        rt = self._rt(resource_type)
        group = rt.name == "Group"
        w = self._writes
        read = self._lookups.get_groups if with_groups and rt.name == "User" else self._lookups.get
        with self.connections.write() as tx:
            row = tx.first(read, {"tenant": tenant_id, "rt": rt.name, "id": id})
            if row is None:
                raise ResourceNotFound(f"{rt.name} {id} not found")
            pk, withdrawn = row[0], self._withdrawn.get(rt.name, ())
            # the version and date shown, which a document holding withdrawn values is not stored with
            version, last_modified = shown_as(row, withdrawn)
            if precondition is not None:
                precondition.check(f"{rt.name} {id}", version)
            members = tuple(self._members.load_members(tx, [pk])[pk]) if with_members and group else None
            groups = self._groups(tx, row) if read is self._lookups.get_groups else None
            current = stored(row, rt.name, members, groups, withdrawn)
            # the email rows the table holds, taken before an updater could touch the document
            emails_before = email_rows(rt.name, current.data) if rt.name == "User" else []
            change = updater(current)  # any exception rolls the transaction back and propagates
            if not isinstance(change, Change):
                raise TypeError(f"the updater returned {type(change).__name__}, not Change")
            delta = change.members
            if not isinstance(delta, MemberDelta):  # read in this transaction: what a later write sees
                delta = delta(lambda values: self._members.lookup(tx, tenant_id, values))
            if not delta.empty and not group:
                raise ValueError(f"a {rt.name} has no members")
            data = document(rt, change.data)
            text = dumps(data)
            found = self._members.require_delta(tx, tenant_id, delta) if not delta.empty else {}
            clock = to_micros(self._clock())
            # the document shown, decoded only when the text differs: the same document with its
            # keys in another order (a PATCH replacing an element with its own values) changes nothing
            shown = current.document_json or row[2]  # (stored() always hands the text over)
            before = data if text == shown else loads(shown)
            same = before == data
            loaded = current.members
            if same and group and delta.replace is not None and loaded is None:
                # a whole-list replace of members that were not read (a PATCH answered 204): read
                # them, so a replace with the same members keeps the version as a PUT's does
                loaded = tuple(self._members.load_members(tx, [pk])[pk])
            if same and (delta.empty or _same_members(loaded, delta, found)):
                if delta.replace:
                    self._members.keep_displays(tx, pk, delta.replace, found, delta.shown)
                return current  # nothing shown changed: keep the version (and ETag)
            applied = False
            if same and delta.replace is None:
                # members alone: a PATCH adding present members or removing absent ones keeps
                # the version too; anything else goes on to the new version below
                if self._members.apply(tx, tenant_id, pk, delta, found, now=clock) == 0:
                    return current
                applied = True
            key = derived(rt.name, data)
            old = derived(rt.name, before)
            if group and key["display_name_key"] != old["display_name_key"]:
                self._check_group_name(tx, tenant_id, rt.name, key["display_name_key"], data)
            now = max(clock, last_modified)
            values = {"_pk": pk, "data": text, "last_modified": now, "version": version + 1}
            try:
                tx.execute(w.update, {**values, **key})
            except self.connections.IntegrityError as exc:
                _integrity(exc, data)
            self._write_emails(tx, pk, rt.name, data, before=emails_before)
            self._members.touch_renamed(
                tx,
                pk,
                clock,
                shown=_shown(key) != _shown(old),
                group_name=group and key["display_name"] != old["display_name"],
            )
            if not delta.empty and not applied:
                self._members.apply(tx, tenant_id, pk, delta, found, now=clock)
            if with_members and group:
                members = tuple(self._members.load_members(tx, [pk])[pk])
        return StoredResource(
            id=current.id,
            resource_type=rt.name,
            data=data,
            created=current.created,
            last_modified=from_micros(now),
            version=version + 1,
            members=members,
            groups=current.groups,
            document_json=text,
        )

    def _check_group_name(
        self, tx: Transaction, tenant_id: str, resource_type: str, key: str | None, data: dict[str, Any]
    ) -> None:
        """A Group's displayName is unique in its tenant, case-insensitively: Entra and Okta match
        groups on it (entra-behaviour.md 1.6) and take no action when two answer. Checked inside
        the write transaction, which holds the database's write lock (``BEGIN IMMEDIATE``)."""
        if resource_type != "Group" or key is None:
            return
        params = {"tenant": tenant_id, "rt": "Group", "v": key, "lim": 1, "off": 0}
        if tx.first(self._lookups.by["displayName"].page, params) is not None:
            raise UniquenessViolation("displayName", str(data.get("displayName")))

    def _write_emails(
        self,
        tx: Transaction,
        pk: int,
        resource_type: str,
        data: dict[str, Any],
        *,
        before: list[tuple[str | None, str | None]] | None = None,
    ) -> None:
        """The ``emails`` rows of a new document, or of a changed one (``before``: the rows of the
        document it replaces, which the table holds), rewritten only when they differ."""
        w = self._writes
        rows = email_rows(resource_type, data)
        if before is not None:
            if resource_type != "User" or before == rows:
                return
            tx.execute(w.delete_emails, {"rpk": pk})
        if len(rows) == 1:  # the usual case: one statement, no executemany machinery
            tx.execute(w.insert_emails, {"resource_pk": pk, "value_key": rows[0][0], "type_key": rows[0][1]})
        elif rows:
            tx.many(w.insert_emails, [{"resource_pk": pk, "value_key": v, "type_key": t} for v, t in rows])

    # -- delete --------------------------------------------------------------------------------

    def delete(
        self, tenant_id: str, resource_type: str, id: str, *, precondition: Precondition | None = None
    ) -> None:
        """Delete a resource, its email rows and every membership it is part of (RFC 7644 section 3.6).

        Groups that lose it as a member get a new version and lastModified, and so does every
        User in a deleted group, directly or through nesting (it leaves their ``groups``).
        """
        rt = self._rt(resource_type)
        w = self._writes
        with self.connections.write() as tx:
            row = tx.first(self._lookups.get, {"tenant": tenant_id, "rt": rt.name, "id": id})
            if row is None:
                raise ResourceNotFound(f"{rt.name} {id} not found")
            if precondition is not None:
                precondition.check(f"{rt.name} {id}", shown_as(row, self._withdrawn.get(rt.name, ()))[0])
            params = {"rpk": row[0]}
            now = to_micros(self._clock())
            tx.execute(w.touch_groups, {**params, "now": now})
            if rt.name == "Group":  # its Users, direct and indirect, lose it from their groups
                self._members.touch(tx, [(row[0], "Group")], now)
            else:
                self._unmanage(tx, tenant_id, row, now)
            tx.execute(w.delete_memberships, params)
            tx.execute(w.delete_emails, params)
            tx.execute(w.delete, params)
            self._count(tx, tenant_id, rt.name, -1)

    def _unmanage(self, tx: Transaction, tenant_id: str, manager: Any, now: int) -> None:
        """Take the User ``manager`` (a row being deleted) off the Users it manages: each loses its
        ``manager``, as a PATCH removing it would (a new version and lastModified). A reference to
        nothing is no manager, and Entra may send no operation to clear one (entra-behaviour.md 1.4)."""
        withdrawn = self._withdrawn.get("User", ())
        rt = self._rt("User")
        for row in tx.rows(self._writes.reports, {"tenant": tenant_id, "manager": manager[1]}):
            if row[0] == manager[0]:
                continue  # its own manager: it goes too
            version, last_modified = shown_as(row, withdrawn)
            data = dict(stored(row, "User", withdrawn=withdrawn).data)
            enterprise = {k: v for k, v in data.pop(ENTERPRISE_USER).items() if k != "manager"}
            if enterprise:
                data[ENTERPRISE_USER] = enterprise
            data = document(rt, data)
            values = {"_pk": row[0], "data": dumps(data), "last_modified": max(now, last_modified)}
            tx.execute(self._writes.update, {**values, "version": version + 1, **derived("User", data)})

    def _count(self, tx: Transaction, tenant_id: str, resource_type: str, d: int) -> None:
        """Keep ``resource_counts`` in the write's own transaction (writes are serialised): the
        change is deferred to the commit, so a group commit updates each count once."""
        tx.defer((tenant_id, resource_type), (d, max(-d, 0)), self._write_count)

    def _write_count(self, tx: Transaction, key: Hashable, totals: tuple[int, ...]) -> None:
        assert isinstance(key, tuple)
        params = {"tenant": key[0], "rt": key[1], "d": totals[0], "gone": totals[1]}
        if tx.execute(self._writes.count_add, params).rowcount == 0:
            tx.execute(self._writes.count_insert, params)

    def _held(self, conn: Connection, tenant_id: str, resource_type: str) -> tuple[int, int]:
        """(how many ``resource_type`` resources the tenant holds, how many it ever deleted), by key
        (no COUNT over the tenant), read in the listing's own snapshot."""
        rows = OnConnection(conn).rows(self._lookups.held, {"tenant": tenant_id, "rt": resource_type})
        return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)


class _Snapshot:
    """``SqlResources.snapshot``: ``search`` and ``search_ids`` on one connection in one read
    transaction, begun with the first of them (SQLite's snapshot is taken at the first read)."""

    def __init__(self, resources: SqlResources) -> None:
        self._resources = resources
        self._conn: Connection | None = None

    def __enter__(self) -> _Snapshot:
        self._conn = self._resources._read.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()  # rolls the read transaction back

    def _on(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("a snapshot is read inside its with block")
        return self._conn

    def search(self, tenant_id: str, resource_type: str, query: Query) -> Page:
        resources, conn = self._resources, self._on()
        rt = resources._rt(resource_type)
        fast = resources._fast(tenant_id, rt, query)
        if fast is not None and not resources._member_budget(rt, query, fast[0]):
            return resources._matched(OnConnection(conn), rt.name, fast[0], fast[1], query)
        return resources._compiled(conn, tenant_id, rt, query)

    def search_ids(self, tenant_id: str, resource_type: str, query: Query) -> IdPage:
        return self._resources._ids(self._on(), tenant_id, resource_type, query)


def _shown(key: dict[str, Any]) -> str | None:
    """The name a group shows for a member with these ``derived`` columns when no display was
    sent for it (``filters.member_display``: its displayName, else its userName)."""
    shown: str | None = key["display_name"]
    return shown if shown is not None else key["user_name"]


def _same_members(
    current: tuple[Member, ...] | None, delta: MemberDelta, found: memberships.Resolved
) -> bool:
    """Whether ``delta`` replaces a Group's loaded members with the same members, as they would be
    stored and shown (each one's type, and the display sent or else its own): a PUT that changes
    nothing keeps its version. Only for a plain replace of loaded members."""
    if delta.replace is None or delta.add or delta.remove or current is None:
        return False
    after = {m.value: (m.type, m.display) for m in memberships.as_members(delta.replace, found)}
    return after == {m.value: (m.type, m.display) for m in current}


def _total(offset: int, count: int, rows: list[Any]) -> int | None:
    """totalResults without a COUNT when the page shows it: a short page is the last one."""
    if count and (0 < len(rows) < count or (offset == 0 and not rows)):
        return offset + len(rows)
    return None


def _positions(query: Query, rows: list[Any]) -> list[SortKey] | None:
    """Each row's position in a listing sorted with ties by id: its value of the sort (the last
    column ``_listing`` added) and its id (the second)."""
    if query.sort_by is None or not query.ties_by_id:
        return None
    return [SortKey(r[-1], r[1]) for r in rows]


def _page(
    total: int,
    rows: list[Any],
    resource_type: str,
    loaded: dict[int, list[Member]],
    groups: list[tuple[GroupRef, ...]] | None = None,
    cut: bool = False,
    withdrawn: Withdrawn = (),
) -> Page:
    if loaded:
        return Page(
            total, [stored(r, resource_type, tuple(loaded[r[0]]), None, withdrawn) for r in rows], cut
        )
    if groups is not None:
        found = [stored(r, resource_type, None, groups[i], withdrawn) for i, r in enumerate(rows)]
        return Page(total, found, cut)
    return Page(total, [stored(r, resource_type, withdrawn=withdrawn) for r in rows])


def _id_taken(exc: Exception) -> bool:
    """Whether an IntegrityError is the unique index of resource ids (SQLite names its columns,
    PostgreSQL the index)."""
    text = str(exc).lower()
    return "resources.id" in text or "ux_resources_id" in text


def _integrity(exc: Exception, data: dict[str, Any]) -> NoReturn:
    """Translate the DBAPI's IntegrityError into the store's exception (raised from ``exc``)."""
    text = str(exc).lower()
    if _id_taken(exc):
        raise base.StoreError("a new resource id was taken already") from exc
    if "user_name" in text:
        raise UniquenessViolation("userName", str(data.get("userName"))) from exc
    if "foreign key" in text or "tenant" in text:
        raise TenantNotFound("no such tenant") from exc
    raise base.StoreError(f"constraint failed: {exc}") from exc
