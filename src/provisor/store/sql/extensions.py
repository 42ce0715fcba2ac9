"""Declared extension schemas in SQL: the ``schema_extensions`` table behind ``provisor schema``.

The store reads them into its registry when it opens (:func:`read_declarations`), and again when
:meth:`SqlSchemaExtensions.reload_schemas` finds the declarations changed, which a running server
asks every few seconds (``ServerConfig.schema_check_seconds``). Removing an extension whose values
are stored either fails (:class:`SchemaExtensionInUse`) or, with ``purge``, rewrites each such
document without them (``extension_purge``). A declaration whose removal began is in no registry,
and reads leave its values out of the documents that still hold them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from provisor.scim.schema.extensions import InvalidSchemaDefinition, SchemaExtension, extend, parse_extension
from provisor.scim.schema.model import SchemaRegistry, default_registry
from provisor.store.base import (
    PurgeProgress,
    RequiredExtensionMissing,
    SchemaExtensionExists,
    SchemaExtensionInUse,
    SchemaExtensionNotFound,
    SchemaExtensionRemoving,
)
from provisor.store.sql.extension_purge import holder_params, purge_extension, type_name
from provisor.store.sql.rows import Withdrawn, withdrawn_key
from provisor.store.sql.tables import resources as R
from provisor.store.sql.tables import schema_extensions as X
from provisor.store.sql.values import dumps, from_micros, loads, to_micros

log = logging.getLogger("provisor.store")

_ALL = select(X).order_by(X.c.created, X.c.urn_key)
_FINGERPRINT = select(X.c.urn_key, X.c.created, X.c.removing).order_by(X.c.created, X.c.urn_key)

#: What identifies the declarations at one moment: each URN with when it was declared and when its
#: removal began (None while it is not being removed).
Fingerprint = tuple[tuple[str, int, int | None], ...]
_HOLDERS = select(R.c.data).where(
    R.c.resource_type == bindparam("rt"), R.c.data.like(bindparam("needle"), escape="\\")
)


@dataclass(frozen=True, slots=True)
class Declarations:
    """The declared extension schemas, from one read of the table."""

    #: the default schemas with every declaration that can be read and is not being removed
    registry: SchemaRegistry
    #: every declaration that can be read, in the order added (those being removed too)
    extensions: list[SchemaExtension]
    #: URN -> when its removal began, for the declarations being removed
    removals: dict[str, datetime]
    #: resource type -> the extensions being removed, whose values reads leave out
    withdrawn: dict[str, Withdrawn]
    fingerprint: Fingerprint


def read_declarations(engine: Engine) -> Declarations:
    """The declarations as a store opened on ``engine`` reads them.

    Each is checked again as ``schema add`` checks it; one that no longer passes (a hand-edited
    row, say) is left out with a warning, so that the server still starts and ``provisor schema
    remove`` can take it away."""
    registry = default_registry()
    extensions: list[SchemaExtension] = []
    removals: dict[str, datetime] = {}
    withdrawn: dict[str, Withdrawn] = {}
    seen: list[tuple[str, int, int | None]] = []
    with engine.connect() as conn:
        rows = conn.execute(_ALL).all()
    for row in rows:
        seen.append((row.urn_key, row.created, row.removing))
        if row.removing is not None:
            removals[row.urn] = from_micros(row.removing)
            rt = type_name(row.resource_type)
            withdrawn[rt] = (*withdrawn.get(rt, ()), (row.urn, withdrawn_key(row.urn), row.removing))
        try:
            found = parse_extension(
                loads(row.definition), registry, row.resource_type, required=bool(row.required), stored=True
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
        extensions.append(found)
        if row.removing is None:
            registry = extend(registry, [found])
    return Declarations(registry, extensions, removals, withdrawn, tuple(seen))


def _fingerprint(conn: Connection) -> Fingerprint:
    return tuple((row.urn_key, row.created, row.removing) for row in conn.execute(_FINGERPRINT))


class SqlSchemaExtensions:
    """Declare, list and remove the deployment's extension schemas (for every tenant)."""

    _write: Engine
    _single: Engine
    _clock: Callable[[], datetime]
    _registry: SchemaRegistry
    _withdrawn: dict[str, Withdrawn]
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
        declared = read_declarations(self._single)
        self._registry, self._withdrawn = declared.registry, declared.withdrawn
        self._schemas_seen = declared.fingerprint
        return declared.registry

    def schema_extensions(self) -> list[SchemaExtension]:
        """The declared extensions as stored now, those being removed too (a store's registry holds
        the ones of its opening, or of its last ``reload_schemas``, but none being removed)."""
        return read_declarations(self._single).extensions

    def schema_removals(self) -> dict[str, datetime]:
        """When the removal of each declared extension being removed began, by URN."""
        return read_declarations(self._single).removals

    def add_schema_extension(self, extension: SchemaExtension) -> None:
        """Declare ``extension`` (checked by ``parse_extension``); SchemaExtensionExists if its URN
        is, SchemaExtensionRemoving if its removal began and was not finished,
        RequiredExtensionMissing for a required one while resources of its type exist."""
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
                if extension.required:  # in the insert's transaction: no resource comes between
                    held = select(func.count()).where(R.c.resource_type == extension.resource_type)
                    if count := conn.execute(held).scalar_one():
                        raise RequiredExtensionMissing(extension.urn, extension.resource_type, count)
                conn.execute(insert(X), row)
        except IntegrityError as exc:
            with self._single.connect() as conn:
                taken = conn.execute(
                    select(X.c.urn, X.c.removing).where(X.c.urn_key == row["urn_key"])
                ).first()
            if taken is not None and taken.removing is not None:
                raise SchemaExtensionRemoving(taken.urn) from exc
            raise SchemaExtensionExists(f"the extension schema {extension.urn} is declared already") from exc

    def remove_schema_extension(
        self, urn: str, *, purge: bool = False, progress: Callable[[PurgeProgress], None] | None = None
    ) -> int:
        """Remove the extension ``urn`` (any case); returns how many stored resources lost values of it.

        Without ``purge`` those resources must be none (SchemaExtensionInUse otherwise), and the
        declaration goes in one transaction. With it, each loses those values as an update does
        (new version, lastModified now), in steps that let other writers in between
        (``extension_purge``; ``progress`` hears after each). A purge that was interrupted leaves
        the declaration marked (``schema_removals``); purging again finishes it.
        """
        if purge:
            return purge_extension(self._write, urn, now=lambda: to_micros(self._clock()), progress=progress)
        with self._write.begin() as conn:
            found = conn.execute(select(X).where(X.c.urn_key == urn.lower())).first()
            if found is None:
                raise SchemaExtensionNotFound(f"no extension schema {urn} is declared")
            rows = conn.execute(_HOLDERS, holder_params(found.urn, found.resource_type))
            # LIKE only narrows: the key must be the URN as stored
            holders = sum(1 for (text,) in rows if found.urn in loads(text))
            if holders:
                raise SchemaExtensionInUse(found.urn, holders)
            conn.execute(delete(X).where(X.c.urn_key == found.urn_key))
        return 0
