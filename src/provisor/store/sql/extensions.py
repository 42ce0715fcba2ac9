"""Declared extension schemas in SQL: the ``schema_extensions`` table behind ``provisor schema``.

The store reads them into its registry when it opens (:func:`load_extensions`), and again when
:meth:`SqlSchemaExtensions.reload_schemas` finds the declarations changed, which a running server
asks every few seconds (``ServerConfig.schema_check_seconds``). Removing an
extension whose values are stored either fails (:class:`SchemaExtensionInUse`) or, with
``purge``, rewrites each such document without them in the same transaction, as an update: a new
``version`` and ``lastModified``, so that a client holding the old ETag sees the change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from provisor.scim.resources import document
from provisor.scim.schema.extensions import InvalidSchemaDefinition, SchemaExtension, extend, parse_extension
from provisor.scim.schema.model import SchemaRegistry, default_registry
from provisor.store.base import SchemaExtensionExists, SchemaExtensionInUse, SchemaExtensionNotFound
from provisor.store.sql.dialect import like_escape
from provisor.store.sql.tables import resources as R
from provisor.store.sql.tables import schema_extensions as X
from provisor.store.sql.values import dumps, loads, to_micros

log = logging.getLogger("provisor.store")

_ALL = select(X).order_by(X.c.created, X.c.urn_key)
_FINGERPRINT = select(X.c.urn_key, X.c.created).order_by(X.c.created, X.c.urn_key)

#: What identifies the declarations at one moment: each URN with when it was declared.
Fingerprint = tuple[tuple[str, int], ...]
_HOLDERS = select(R.c.pk, R.c.data, R.c.version).where(
    R.c.resource_type == bindparam("rt"), R.c.data.like(bindparam("needle"), escape="\\")
)


def load_extensions(conn: Connection) -> list[SchemaExtension]:
    """Every declared extension, in the order they were added (see :func:`_load`)."""
    return _load(conn)[1]


def store_registry(engine: Engine) -> tuple[SchemaRegistry, Fingerprint]:
    """The default schemas with every declared extension, and the fingerprint of those declarations:
    what a store opened on ``engine`` speaks."""
    with engine.connect() as conn:
        registry, _, fingerprint = _load(conn)
    return registry, fingerprint


def _load(
    conn: Connection, without: str | None = None
) -> tuple[SchemaRegistry, list[SchemaExtension], Fingerprint]:
    """The registry of the declarations (but the one whose ``urn_key`` is ``without``), the
    extensions in it, and the fingerprint of every declaration, from one read. Each is checked again
    as ``schema add`` checks it; one that no longer passes (a hand-edited row, say) is left out with
    a warning, so that the server still starts and ``provisor schema remove`` can take it away."""
    registry = default_registry()
    out: list[SchemaExtension] = []
    seen: list[tuple[str, int]] = []
    for row in conn.execute(_ALL):
        seen.append((row.urn_key, row.created))
        if row.urn_key == without:
            continue
        try:
            found = parse_extension(
                loads(row.definition), registry, row.resource_type, required=bool(row.required)
            )
        except (InvalidSchemaDefinition, ValueError) as exc:  # a JSON decoding error is a ValueError
            log.warning(
                "the declared extension schema %s cannot be read and is left out (%s); remove it with: "
                "provisor schema remove %s",
                row.urn,
                exc,
                row.urn,
            )
            continue
        registry = extend(registry, [found])
        out.append(found)
    return registry, out, tuple(seen)


def _fingerprint(conn: Connection) -> Fingerprint:
    return tuple((row.urn_key, row.created) for row in conn.execute(_FINGERPRINT))


class SqlSchemaExtensions:
    """Declare, list and remove the deployment's extension schemas (for every tenant)."""

    _write: Engine
    _single: Engine
    _clock: Callable[[], datetime]
    _registry: SchemaRegistry
    #: The declarations ``_registry`` was built from; None when the store was given its registry.
    _schemas_seen: Fingerprint | None

    def reload_schemas(self) -> SchemaRegistry | None:
        """The registry of the declarations as they are now, when they changed since the store last
        read them (the store then speaks it); None when they did not, or when the store was given
        its registry. One read of the URNs and their dates, a few microseconds when nothing changed.
        """
        if self._schemas_seen is None:
            return None
        with self._single.connect() as conn:
            if _fingerprint(conn) == self._schemas_seen:
                return None
        registry, self._schemas_seen = store_registry(self._single)
        self._registry = registry
        return registry

    def schema_extensions(self) -> list[SchemaExtension]:
        """The declared extensions as stored now (a store's registry holds those of its opening)."""
        with self._single.connect() as conn:
            return load_extensions(conn)

    def add_schema_extension(self, extension: SchemaExtension) -> None:
        """Declare ``extension`` (checked by ``parse_extension``); SchemaExtensionExists if its URN is."""
        row = {
            "urn_key": extension.urn.lower(),
            "urn": extension.urn,
            "resource_type": extension.resource_type,
            "required": int(extension.required),
            "definition": dumps(extension.schema.to_json()),
            "created": to_micros(self._clock()),
        }
        try:
            with self._write.begin() as conn:
                conn.execute(insert(X), row)
        except IntegrityError as exc:
            raise SchemaExtensionExists(f"the extension schema {extension.urn} is declared already") from exc

    def remove_schema_extension(self, urn: str, *, purge: bool = False) -> int:
        """Remove the extension ``urn`` (any case); returns how many stored resources held values of it.

        Without ``purge`` those resources must be none (SchemaExtensionInUse otherwise); with it, each
        loses those values as an update does (new version, lastModified now).
        """
        with self._write.begin() as conn:
            found = conn.execute(select(X).where(X.c.urn_key == urn.lower())).first()
            if found is None:
                raise SchemaExtensionNotFound(f"no extension schema {urn} is declared")
            rt = _load(conn, without=found.urn_key)[0].resource_type(found.resource_type)
            needle = '%"' + like_escape(found.urn) + '":%'
            changed = []
            # (no such resource type, in a hand-edited row: no resource of it holds anything)
            if rt is not None:
                for row in conn.execute(_HOLDERS, {"rt": rt.name, "needle": needle}):
                    data = loads(row.data)
                    if found.urn in data:  # LIKE only narrows: the key must be the URN as stored
                        changed.append({"key": row.pk, "d": dumps(document(rt, data)), "v": row.version + 1})
            if changed and not purge:
                raise SchemaExtensionInUse(found.urn, len(changed))
            if changed:
                now = to_micros(self._clock())
                conn.execute(
                    update(R)
                    .where(R.c.pk == bindparam("key"))
                    .values(data=bindparam("d"), version=bindparam("v"), last_modified=now),
                    changed,
                )
            conn.execute(delete(X).where(X.c.urn_key == found.urn_key))
        return len(changed)
