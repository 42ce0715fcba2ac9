"""Users and Groups in SQL: the ``ResourceStore`` half of :class:`provisor.store.sql.SqlStore`.

Reads are single prepared statements (SQLAlchemy's compiled cache does the preparing); writes run
in one ``BEGIN IMMEDIATE`` transaction each. userName uniqueness (per tenant, case-insensitive) is
enforced by a unique index, and the IntegrityError is translated to UniquenessViolation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NoReturn
from uuid import uuid4

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from provisor.scim.schema.model import ResourceType, SchemaRegistry
from provisor.store import base
from provisor.store.base import (
    Change,
    Member,
    Page,
    Query,
    ResourceNotFound,
    StoredResource,
    TenantNotFound,
    UniquenessViolation,
    Updater,
    VersionMismatch,
)
from provisor.store.sql import memberships
from provisor.store.sql.dialect import SqlDialect
from provisor.store.sql.filters import compile_filter
from provisor.store.sql.lookups import COLUMNS, GET, Lookups
from provisor.store.sql.rows import derived, email_rows, stored
from provisor.store.sql.sorting import order_by
from provisor.store.sql.tables import emails as E
from provisor.store.sql.tables import memberships as M
from provisor.store.sql.tables import resources as R
from provisor.store.sql.values import dumps, from_micros, to_micros

_GET = GET
_INSERT = insert(R)
_UPDATE = (
    update(R)
    .where(R.c.pk == bindparam("_pk"))
    .values(
        data=bindparam("data"),
        user_name=bindparam("user_name"),
        user_name_key=bindparam("user_name_key"),
        external_id=bindparam("external_id"),
        display_name=bindparam("display_name"),
        display_name_key=bindparam("display_name_key"),
        last_modified=bindparam("last_modified"),
        version=bindparam("version"),
    )
)
_INSERT_EMAILS = insert(E)
_DELETE_EMAILS = delete(E).where(E.c.resource_pk == bindparam("rpk"))
_SELECT_EMAILS = select(E.c.value_key, E.c.type_key).where(E.c.resource_pk == bindparam("rpk"))
_TOUCH_GROUPS = (
    update(R)
    .where(R.c.pk.in_(select(M.c.group_pk).where(M.c.member_pk == bindparam("rpk")).scalar_subquery()))
    .values(version=R.c.version + 1, last_modified=bindparam("now"))
)
_DELETE_MEMBERSHIPS = delete(M).where(
    (M.c.group_pk == bindparam("rpk")) | (M.c.member_pk == bindparam("rpk"))
)
_DELETE = delete(R).where(R.c.pk == bindparam("rpk"))


class SqlResources:
    """Create, read, search, update and delete resources; every statement is scoped by tenant."""

    engine: Engine
    _lookups: Lookups
    _write: Engine
    _read: Engine
    _single: Engine
    _dialect: SqlDialect
    _registry: SchemaRegistry
    _clock: Callable[[], datetime]

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
        text = dumps(data)
        values = {
            "tenant_id": tenant_id,
            "resource_type": rt.name,
            "id": uuid4().hex,
            "data": text,
            "created": now,
            "last_modified": now,
            "version": 1,
            **derived(rt.name, data),
        }
        with self._write.begin() as conn:
            found = memberships.require(conn, tenant_id, members) if members else {}
            try:
                pk: int = conn.execute(_INSERT, values).inserted_primary_key[0]  # type: ignore[index]
            except IntegrityError as exc:
                _integrity(exc, data)
            self._write_emails(conn, pk, rt.name, data, replace=False)
            if members:
                memberships.insert(conn, self._dialect, pk, members, found)
        return StoredResource(
            id=values["id"],
            resource_type=rt.name,
            data=data,
            created=from_micros(now),
            last_modified=from_micros(now),
            version=1,
            members=memberships.as_members(members, found) if rt.name == "Group" else None,
        )

    # -- read ----------------------------------------------------------------------------------

    def get(
        self, tenant_id: str, resource_type: str, id: str, *, with_members: bool = True
    ) -> StoredResource:
        """One resource by id (RFC 7644 section 3.4.1); ResourceNotFound if not in this tenant."""
        rt = self._rt(resource_type)
        params = {"tenant": tenant_id, "rt": rt.name, "id": id}
        if not (with_members and rt.name == "Group"):
            rows = self._lookups.get.all(self.engine, params)
            if not rows:
                raise ResourceNotFound(f"{rt.name} {id} not found")
            return stored(rows[0], rt.name)
        with self._read.connect() as conn:
            row = conn.execute(_GET, params).first()
            if row is None:
                raise ResourceNotFound(f"{rt.name} {id} not found")
            found = memberships.load(conn, [row.pk])
        return stored(row, rt.name, tuple(found[row.pk]))

    def search(self, tenant_id: str, resource_type: str, query: Query) -> Page:
        """Filter, sort and page (RFC 7644 section 3.4.2); ``total`` counts every match.

        Entra's match lookups (``userName eq`` etc., unsorted) run as prepared statements in
        autocommit mode; everything else is compiled from the filter and read in one snapshot.
        """
        rt = self._rt(resource_type)
        offset = max(query.start_index, 1) - 1
        count = max(query.count, 0)
        fast = self._lookups.match(query.filter, rt) if query.filter and query.sort_by is None else None
        if fast is not None:
            lookup, params = fast
            params.update(tenant=tenant_id, rt=rt.name, lim=count, off=offset)
            rows: list[Any] = lookup.page.all(self.engine, params) if count else []
            total = _total(offset, count, rows)
            if total is None:
                total = lookup.count.all(self.engine, params)[0][0]
            loaded: dict[int, list[Member]] = {}
            if query.with_members and rt.name == "Group" and rows:
                with self._read.connect() as conn:
                    loaded = memberships.load(conn, [r[0] for r in rows])
            return _page(total, rows, rt.name, loaded)
        where = [R.c.tenant_id == tenant_id, R.c.resource_type == rt.name]
        if query.filter is not None:
            where.append(compile_filter(query.filter, rt, self._dialect, tenant_id))
        counting = select(func.count()).select_from(R).where(*where)
        with self._read.connect() as conn:
            rows = []
            if count:
                page = (
                    select(*COLUMNS)
                    .where(*where)
                    .order_by(*order_by(query.sort_by, query.descending, rt, self._dialect))
                    .limit(count)
                    .offset(offset)
                )
                rows = list(conn.execute(page).all())
            total = _total(offset, count, rows)
            if total is None:
                total = conn.execute(counting).scalar_one()
            loaded = {}
            if query.with_members and rt.name == "Group" and rows:
                loaded = memberships.load(conn, [r[0] for r in rows])
        return _page(total, rows, rt.name, loaded)

    # -- update --------------------------------------------------------------------------------

    def update(
        self,
        tenant_id: str,
        resource_type: str,
        id: str,
        updater: Updater,
        *,
        if_match: int | None = None,
        with_members: bool = False,
    ) -> StoredResource:
        """Read, apply ``updater`` and write in one write transaction (see base.ResourceStore.update)."""
        rt = self._rt(resource_type)
        group = rt.name == "Group"
        with self._write.begin() as conn:
            row = conn.execute(_GET, {"tenant": tenant_id, "rt": rt.name, "id": id}).first()
            if row is None:
                raise ResourceNotFound(f"{rt.name} {id} not found")
            if if_match is not None and row.version != if_match:
                raise VersionMismatch(f"{rt.name} {id} is at version {row.version}, not {if_match}")
            members = tuple(memberships.load(conn, [row.pk])[row.pk]) if with_members and group else None
            current = stored(row, rt.name, members)
            change = updater(current)  # any exception rolls the transaction back and propagates
            if not isinstance(change, Change):
                raise TypeError(f"the updater returned {type(change).__name__}, not Change")
            if not change.members.empty and not group:
                raise ValueError(f"a {rt.name} has no members")
            text = dumps(change.data)
            if text == row.data and change.members.empty:
                return current  # nothing changed: keep the version (and ETag)
            now = max(to_micros(self._clock()), row.last_modified)
            values = {"_pk": row.pk, "data": text, "last_modified": now, "version": row.version + 1}
            try:
                conn.execute(_UPDATE, {**values, **derived(rt.name, change.data)})
            except IntegrityError as exc:
                _integrity(exc, change.data)
            self._write_emails(conn, row.pk, rt.name, change.data, replace=True)
            if group and not change.members.empty:
                memberships.apply(conn, self._dialect, tenant_id, row.pk, change.members)
            if with_members and group:
                members = tuple(memberships.load(conn, [row.pk])[row.pk])
        return StoredResource(
            id=row.id,
            resource_type=rt.name,
            data=change.data,
            created=current.created,
            last_modified=from_micros(now),
            version=row.version + 1,
            members=members,
        )

    def _write_emails(
        self, conn: Connection, pk: int, resource_type: str, data: dict[str, Any], *, replace: bool
    ) -> None:
        rows = email_rows(resource_type, data)
        if replace:
            if resource_type != "User":
                return
            old = [(r.value_key, r.type_key) for r in conn.execute(_SELECT_EMAILS, {"rpk": pk})]
            if old == rows:
                return
            conn.execute(_DELETE_EMAILS, {"rpk": pk})
        if rows:
            conn.execute(
                _INSERT_EMAILS, [{"resource_pk": pk, "value_key": v, "type_key": t} for v, t in rows]
            )

    # -- delete --------------------------------------------------------------------------------

    def delete(self, tenant_id: str, resource_type: str, id: str, *, if_match: int | None = None) -> None:
        """Delete a resource, its email rows and every membership it is part of (RFC 7644 section 3.6).

        Groups that lose it as a member get a new version and lastModified.
        """
        rt = self._rt(resource_type)
        with self._write.begin() as conn:
            row = conn.execute(_GET, {"tenant": tenant_id, "rt": rt.name, "id": id}).first()
            if row is None:
                raise ResourceNotFound(f"{rt.name} {id} not found")
            if if_match is not None and row.version != if_match:
                raise VersionMismatch(f"{rt.name} {id} is at version {row.version}, not {if_match}")
            conn.execute(_TOUCH_GROUPS, {"rpk": row.pk, "now": to_micros(self._clock())})
            conn.execute(_DELETE_MEMBERSHIPS, {"rpk": row.pk})
            conn.execute(_DELETE_EMAILS, {"rpk": row.pk})
            conn.execute(_DELETE, {"rpk": row.pk})


def _total(offset: int, count: int, rows: list[Any]) -> int | None:
    """totalResults without a COUNT when the page shows it: a short page is the last one."""
    if count and (0 < len(rows) < count or (offset == 0 and not rows)):
        return offset + len(rows)
    return None


def _page(total: int, rows: list[Any], resource_type: str, loaded: dict[int, list[Member]]) -> Page:
    if loaded:
        return Page(total, [stored(r, resource_type, tuple(loaded[r[0]])) for r in rows])
    return Page(total, [stored(r, resource_type) for r in rows])


def _integrity(exc: IntegrityError, data: dict[str, Any]) -> NoReturn:
    """Translate a constraint failure into the store's exception (raised from ``exc``)."""
    text = str(exc.orig).lower()
    if "user_name" in text:
        raise UniquenessViolation("userName", str(data.get("userName"))) from exc
    if "foreign key" in text or "tenant" in text:
        raise TenantNotFound("no such tenant") from exc
    raise base.StoreError(f"constraint failed: {exc.orig}") from exc
