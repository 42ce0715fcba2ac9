"""Removing an extension schema with its stored values in short steps, so that writes go on meanwhile.

One transaction for the whole purge held the database's write lock as long as it took: 3.3 s for
100,000 Users holding values, on this project's machine, growing with the store. Every server on
the database waited that long for any write, and past its busy timeout (5 s) answered 503. So a
purge now goes in steps:

1. One transaction marks the declaration (``schema_extensions.removing``). From then on no store
   puts it in its registry (``extensions``): a running server, which reads the declarations again
   every 2 s, no longer lists it in discovery, takes a write carrying its values as one carrying an
   undeclared extension's, and reads leave out the values still stored (``rows.stored``).
   ``schema add`` refuses its URN.
2. It waits until :data:`SETTLE_SECONDS` have passed since the mark: by then no server stores
   values of it any more, so the walk that follows misses none. The walk reads the resources of
   its type by key, :data:`KEYS` keys a statement, in transactions of about 50 ms with the write
   lock free between them (``steps``). A resource holding values of it loses them, and gets
   the ``version`` and ``lastModified`` reads have shown it with since the mark (``rows.shown_as``:
   the next version, last modified when the removal began or later): a client holding the ETag of
   the document with the values saw the change at the mark, and the rewrite changes nothing shown.
3. The last transaction deletes the declaration.

Each step is whole or not at all. A purge stopped anywhere (a crash, Ctrl-C) leaves the
declaration marked and every resource with or without its values; running the purge again goes
on (it walks every key again: the resources already rewritten have nothing left to find). Two runs
at once share the work; one that finds, at the start of a step, that the other finished (the mark is
gone) stops there, so that values of a declaration of the URN made since stay.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, case, delete, func, select, update
from sqlalchemy.sql.elements import BindParameter

from provisor.scim.schema.model import default_registry
from provisor.store.base import PurgeProgress, SchemaExtensionNotFound
from provisor.store.sql.dialect import like_escape
from provisor.store.sql.rows import withdrawn_key
from provisor.store.sql.steps import BATCH, Steps
from provisor.store.sql.tables import resource_counts as COUNTS
from provisor.store.sql.tables import resources as R
from provisor.store.sql.tables import schema_extensions as X
from provisor.store.sql.values import dumps, loads

#: How long after the mark the walk begins: a running server reads the declarations every 2 s
#: (``ServerConfig.schema_check_seconds``), and a request it began before may still be writing.
SETTLE_SECONDS = 3.0
#: Keys a statement reads at most. Each holder is decoded, re-encoded and rewritten: a range of
#: ``steps.BATCH`` keys, all holders, took ~35 ms, so a step often held the lock for two (median
#: 69 ms, at most 114 ms, purging 100,000 Users beside other tests, load ~5); with a quarter of it
#: the steps held it 54 ms, at most 61 ms.
KEYS = BATCH // 4

_RT: BindParameter[str] = bindparam("rt")
#: the resources of the type in a range of keys, each with its document when it may hold values
_RANGE = select(
    R.c.pk,
    R.c.version,
    R.c.last_modified,
    case((R.c.data.like(bindparam("needle"), escape="\\"), R.c.data), else_=None),
).where(R.c.pk > bindparam("after"), R.c.pk <= bindparam("upto"), R.c.resource_type == _RT)
#: a document without the values (unless a write changed it since it was read: then, made by a
#: store whose registry no longer has the extension, it holds none)
_REWRITE = (
    update(R)
    .where(R.c.pk == bindparam("key"), R.c.version == bindparam("was"))
    .values(data=bindparam("d"), version=bindparam("v"), last_modified=bindparam("now"))
)
#: the declaration as this run marked it (gone once another run finished the purge)
_MARKED = select(X.c.urn_key).where(X.c.urn_key == bindparam("key"), X.c.removing == bindparam("mark"))
_TOTAL = select(func.coalesce(func.sum(COUNTS.c.n), 0)).where(COUNTS.c.resource_type == _RT)
_LAST = select(func.max(R.c.pk))


def type_name(resource_type: str) -> str:
    """A declaration's resource type as stores name it (a hand-edited row may spell it otherwise)."""
    rt = default_registry().resource_type(resource_type)
    return rt.name if rt else resource_type


def holder_params(urn: str, resource_type: str) -> dict[str, str]:
    """The resource type and the LIKE pattern of documents that may hold values of ``urn``: the URN
    as a JSON key. LIKE only narrows (it ignores case, and the text may be inside a value): whether
    the document holds the key is checked on the decoded document."""
    return {"rt": type_name(resource_type), "needle": "%" + like_escape(withdrawn_key(urn)) + "%"}


def without(text: str, urn: str) -> str | None:
    """The document ``text`` without the values of ``urn`` (the key as the schema spells it, which
    is how documents store it); None when it holds none. A canonical document stays canonical."""
    data: dict[str, Any] = loads(text)
    if data.pop(urn, None) is None:
        return None
    return dumps(data)


class _FinishedBeside(Exception):
    """Another run of the purge finished it while this one was walking."""


def purge_extension(
    engine: Engine,
    urn: str,
    *,
    now: Callable[[], int],
    progress: Callable[[PurgeProgress], None] | None = None,
    pause: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Remove the extension ``urn`` (any case) and its values from every stored resource, in steps,
    as the module says; ``now`` gives the time (microseconds) of the mark.
    Returns how many resources this run rewrote; SchemaExtensionNotFound when none is declared."""
    with engine.begin() as conn:
        found = conn.execute(select(X).where(X.c.urn_key == urn.lower())).first()
        if found is None:
            raise SchemaExtensionNotFound(f"no extension schema {urn} is declared")
        mark = found.removing
        if mark is None:
            mark = now()
            conn.execute(update(X).where(X.c.urn_key == found.urn_key).values(removing=mark))
    settle = (mark - now()) / 1e6 + SETTLE_SECONDS
    if settle > 0:
        pause(settle)
    params = holder_params(found.urn, found.resource_type)
    checked = purged = total = 0

    def report() -> None:
        if progress is not None:
            progress(PurgeProgress(found.urn, checked, total, purged))

    def still_marked(conn: Connection) -> None:
        # values stored once another run has finished the purge belong to a declaration of the
        # URN made since, if any: this run leaves them (each step looks, in its transaction)
        if conn.execute(_MARKED, {"key": found.urn_key, "mark": mark}).first() is None:
            raise _FinishedBeside

    try:
        with Steps(engine, pause=pause, clock=clock, after_step=report, begin_step=still_marked) as steps:
            total = int(steps.conn.execute(_TOTAL, params).scalar_one())
            # a resource made after this holds no values: every server has dropped the extension
            last = steps.conn.execute(_LAST).scalar() or 0
            after = 0
            while after < last:
                rewrites = []
                keys = {**params, "after": after, "upto": after + KEYS}
                for pk, version, last_modified, text in steps.conn.execute(_RANGE, keys):
                    checked += 1
                    rewritten = None if text is None else without(text, found.urn)
                    if rewritten is not None:  # as reads have shown it since the mark (shown_as)
                        when = max(mark, last_modified)
                        rewrites.append(
                            {"key": pk, "was": version, "v": version + 1, "d": rewritten, "now": when}
                        )
                if rewrites:
                    steps.conn.execute(_REWRITE, rewrites)
                    purged += len(rewrites)
                after += KEYS
                steps.tick()
            # only the declaration this run marked (as the step's look found it)
            steps.conn.execute(delete(X).where(X.c.urn_key == found.urn_key, X.c.removing == mark))
    except _FinishedBeside:
        pass  # what is stored now is not this run's to change
    report()
    return purged


__all__ = ["KEYS", "SETTLE_SECONDS", "holder_params", "purge_extension", "type_name", "without"]
