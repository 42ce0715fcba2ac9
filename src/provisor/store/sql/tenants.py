"""Tenants and their Secret Tokens in SQL: the ``TenantStore`` half of ``SqlStore``.

Tokens are stored as their SHA-256 hash only (unique index, so lookup by hash is one probe); the
server compares in constant time and checks ``revoked``/``expires`` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import Connection, Engine, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import BindParameter

from provisor.store.base import (
    DeletionProgress,
    StoreError,
    Tenant,
    TenantDeleting,
    TenantExists,
    TenantNotFound,
    TokenInfo,
    TokenNotFound,
    check_tenant_name,
)
from provisor.store.sql import tenant_deletion
from provisor.store.sql.prepared import Connections, Prepared
from provisor.store.sql.tables import tenants as T
from provisor.store.sql.tables import tokens as K
from provisor.store.sql.values import dumps, from_micros, loads, opt_from_micros, to_micros

_KEY: BindParameter[str] = bindparam("key")
# An id wins over a name spelled like one (names of that shape are refused, but may predate that).
_TENANT = select(T).where(or_(T.c.name == _KEY, T.c.id == _KEY)).order_by((T.c.id == _KEY).desc())
_TOKEN_COLUMNS = (
    K.c.id,
    K.c.tenant_id,
    K.c.label,
    K.c.prefix,
    K.c.created,
    K.c.expires,
    K.c.revoked,
    K.c.last_used,
)
_BY_HASH = (
    select(*_TOKEN_COLUMNS, K.c.hash, T.c.name, T.c.settings, T.c.created.label("tenant_created"))
    .join_from(K, T, T.c.id == K.c.tenant_id)
    .where(K.c.hash == bindparam("hash"), T.c.deleting.is_(None))
)
_TOKEN = select(*_TOKEN_COLUMNS).where(K.c.id == bindparam("id"))
#: A token's last use (``touch_token``; prepared by the store as ``_touch_token``).
TOUCH_TOKEN = update(K).where(K.c.id == bindparam("token")).values(last_used=bindparam("when"))


#: What a stored JSON value is, for ``read_settings``'s reason.
_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false"}


def read_settings(text: str | bytes) -> tuple[dict[str, Any], str | None]:
    """Stored tenant settings and None; or, where a hand edit left them unreadable, no settings
    and why (``Tenant.unreadable``). Never raises."""
    try:
        value = loads(text)
    except (ValueError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
        return {}, f"they are not JSON: {str(exc).split(':')[0]}"
    if isinstance(value, dict):
        return value, None
    kind = "null" if value is None else _JSON_KINDS.get(type(value), "no object")
    return {}, f"they are {kind} where a JSON object belongs"


def _tenant(row: Any) -> Tenant:
    settings, unreadable = read_settings(row.settings)
    return Tenant(
        id=row.id,
        name=row.name,
        settings=settings,
        created=from_micros(row.created),
        deleting=opt_from_micros(row.deleting),
        unreadable=unreadable,
    )


def _find(conn: Connection, key: str) -> Tenant | None:
    row = conn.execute(_TENANT, {"key": key}).first()
    return None if row is None else _tenant(row)


def _not_deleting(tenant: Tenant) -> None:
    if tenant.deleting is not None:
        raise TenantDeleting(f"tenant {tenant.name!r} is being deleted", tenant.name)


def _token(row: Any) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        tenant_id=row.tenant_id,
        label=row.label,
        prefix=row.prefix,
        created=from_micros(row.created),
        expires=opt_from_micros(row.expires),
        revoked=opt_from_micros(row.revoked),
        last_used=opt_from_micros(row.last_used),
    )


def merge_settings(
    stored: Mapping[str, Any], change: Mapping[str, Any], replacing: Collection[str] = ()
) -> dict[str, Any]:
    """``change`` applied to ``stored``: a key replaces the stored value, except that a mapping
    merges into a stored mapping (``{"compat": {"x": False}}`` changes one switch, keeping the
    others) unless its key is in ``replacing``; a None value, at either level, removes the key.
    Unreadable stored settings (``Tenant.unreadable``) are read as none, so the change replaces
    them."""
    merged = dict(stored)
    for key, value in change.items():
        held = merged.get(key)
        if isinstance(value, Mapping) and isinstance(held, Mapping) and key not in replacing:
            value = {k: v for k, v in {**held, **value}.items() if v is not None}
        merged[key] = value
    return {k: v for k, v in merged.items() if v is not None}


class SqlTenants:
    """Create, find, configure and delete tenants; add, find, list and revoke their tokens."""

    _write: Engine
    _single: Engine
    _read: Engine
    _clock: Callable[[], datetime]
    connections: Connections
    _touch_token: Prepared

    def create_tenant(self, name: str, settings: Mapping[str, Any] | None = None) -> Tenant:
        """A new tenant; TenantExists if the name is taken, InvalidTenantName (see ``check_tenant_name``)."""
        check_tenant_name(name)
        tenant = Tenant(id=uuid4().hex, name=name, settings=dict(settings or {}), created=self._clock())
        created = to_micros(tenant.created)
        row = {"id": tenant.id, "name": name, "settings": dumps(tenant.settings), "created": created}
        try:
            with self._write.begin() as conn:
                conn.execute(insert(T), row)
        except IntegrityError as exc:
            with self._single.connect() as conn:
                taken = _find(conn, name)
            if taken is not None and taken.deleting is not None:
                message = f"tenant {name!r} is being deleted; its name is taken until then"
                raise TenantDeleting(message, name) from exc
            raise TenantExists(f"tenant {name!r} already exists") from exc
        return Tenant(tenant.id, name, tenant.settings, from_micros(created))

    def get_tenant(self, name_or_id: str) -> Tenant:
        """A tenant by name or id (also one being deleted: ``Tenant.deleting``); TenantNotFound otherwise."""
        with self._single.connect() as conn:
            tenant = _find(conn, name_or_id)
        if tenant is None:
            raise TenantNotFound(f"no tenant {name_or_id!r}")
        return tenant

    def list_tenants(self) -> list[Tenant]:
        with self._single.connect() as conn:
            return [_tenant(r) for r in conn.execute(select(T).order_by(T.c.name))]

    def delete_tenant(
        self, name_or_id: str, *, progress: Callable[[DeletionProgress], None] | None = None
    ) -> None:
        """Delete a tenant with its tokens, resources, email rows, memberships and request traces,
        in short transactions (``tenant_deletion``)."""
        tenant_deletion.delete_tenant(
            self._write, name_or_id, find=_find, now=to_micros(self._clock()), progress=progress
        )

    def update_settings(
        self, name_or_id: str, settings: Mapping[str, Any], replacing: Collection[str] = ()
    ) -> Tenant:
        """Merge ``settings`` into the tenant's (see ``merge_settings``) in one write transaction,
        so that two admins changing different settings, or different switches of ``compat``, at
        once both keep their change; TenantNotFound, or TenantDeleting for a tenant being deleted."""
        with self._write.begin() as conn:
            tenant = _find(conn, name_or_id)
            if tenant is None:
                raise TenantNotFound(f"no tenant {name_or_id!r}")
            _not_deleting(tenant)
            merged = merge_settings(tenant.settings, settings, replacing)
            conn.execute(update(T).where(T.c.id == tenant.id).values(settings=dumps(merged)))
        return replace(tenant, settings=merged, unreadable=None)

    # -- tokens --------------------------------------------------------------------------------

    def add_token(
        self, tenant_id: str, token_hash: bytes, prefix: str, label: str, expires: datetime | None
    ) -> TokenInfo:
        """Record a token's hash for a tenant (given by id or name); TenantNotFound, or
        TenantDeleting for a tenant being deleted."""
        created = to_micros(self._clock())
        with self._write.begin() as conn:
            tenant = _find(conn, tenant_id)
            if tenant is None:
                raise TenantNotFound(f"no tenant {tenant_id!r}")
            _not_deleting(tenant)
            row: dict[str, Any] = {
                "id": uuid4().hex,
                "tenant_id": tenant.id,
                "hash": bytes(token_hash),
                "prefix": prefix,
                "label": label,
                "created": created,
                "expires": to_micros(expires) if expires is not None else None,
                "revoked": None,
                "last_used": None,
            }
            try:
                conn.execute(insert(K), row)
            except IntegrityError as exc:
                raise StoreError("a token with this hash is already recorded") from exc
        return TokenInfo(
            id=row["id"],
            tenant_id=tenant.id,
            label=label,
            prefix=prefix,
            created=from_micros(created),
            expires=opt_from_micros(row["expires"]),
            revoked=None,
        )

    def token_by_hash(self, token_hash: bytes) -> tuple[TokenInfo, Tenant] | None:
        """The token with this hash and its tenant, or None (revocation and expiry are the caller's)."""
        with self._single.connect() as conn:
            row = conn.execute(_BY_HASH, {"hash": bytes(token_hash)}).first()
        if row is None:
            return None
        settings, unreadable = read_settings(row.settings)
        tenant = Tenant(
            row.tenant_id, row.name, settings, from_micros(row.tenant_created), unreadable=unreadable
        )
        return replace(_token(row), hash=bytes(row.hash)), tenant

    def list_tokens(self, tenant_id: str) -> list[TokenInfo]:
        with self._single.connect() as conn:
            rows = conn.execute(
                select(*_TOKEN_COLUMNS).where(K.c.tenant_id == tenant_id).order_by(K.c.created)
            )
            return [_token(r) for r in rows]

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Mark a token revoked (idempotent: the first revocation time is kept); TokenNotFound otherwise."""
        with self._write.begin() as conn:
            row = conn.execute(_TOKEN, {"id": token_id}).first()
            if row is None:
                raise TokenNotFound(f"no token {token_id!r}")
            if row.revoked is None:
                conn.execute(update(K).where(K.c.id == token_id).values(revoked=to_micros(self._clock())))
                row = conn.execute(_TOKEN, {"id": token_id}).one()
        return _token(row)

    def touch_token(self, token_id: str, when: datetime, *, wait: bool = True) -> None:
        """Record that a token was used at ``when`` (for ``provisor token list``); unknown ids are
        ignored. Without ``wait``, StoreBusy at once if another writer holds the database."""
        params = {"token": token_id, "when": to_micros(when)}
        if not wait:
            self.connections.write_now(self._touch_token, params)
            return
        with self._write.begin() as conn:
            conn.execute(TOUCH_TOKEN, params)
