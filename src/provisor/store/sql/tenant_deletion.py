"""Deleting a tenant in short steps, so that the other tenants' writes go on meanwhile.

One transaction for the whole tenant held the database's write lock as long as it took: ~4 s for
100,000 Users in 100 groups on this project's machine, growing with the tenant. Every server on
the database waited that long for any write of any tenant, and past its busy timeout (5 s)
answered 503. So a deletion now goes in steps:

1. One transaction marks the tenant (``tenants.deleting``) and deletes its tokens: from then on
   no server accepts them (a server's token cache forgets within a second), ``token create`` and
   ``tenant set`` refuse the tenant, and its name stays taken.
2. Transactions of about 50 ms each (``steps``) delete its memberships, a group's members a
   range of keys at a time (a group of 100,000 does not go in one statement), then its resources
   ``steps.BATCH`` at a time with their emails. Between two of them the lock is free for long
   enough that a waiting write gets in.
3. The last transaction, the one in which no resource is left, deletes its request traces and
   counts, and the row. Resources a server wrote between two steps (its token cache honours a
   token up to a second after it is deleted) are found by the next step, as any other.

Each step is whole or not at all. A deletion stopped anywhere (a crash, Ctrl-C) leaves a marked
tenant whose remaining rows are consistent; running the deletion again goes on from there.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, bindparam, delete, func, select, update
from sqlalchemy.sql.elements import BindParameter

from provisor.store.base import DeletionProgress, Tenant, TenantNotFound
from provisor.store.sql.steps import BATCH, Steps
from provisor.store.sql.tables import emails as E
from provisor.store.sql.tables import memberships as M
from provisor.store.sql.tables import request_traces as TR
from provisor.store.sql.tables import resource_counts as COUNTS
from provisor.store.sql.tables import resources as R
from provisor.store.sql.tables import tenants as T
from provisor.store.sql.tables import tokens as K

_TENANT: BindParameter[str] = bindparam("tenant")
_GROUP: BindParameter[int] = bindparam("group")
_PKS: BindParameter[list[int]] = bindparam("pks", expanding=True)
#: the tenant's groups (only groups have members)
_GROUPS = select(R.c.pk).where(R.c.tenant_id == _TENANT, R.c.resource_type == "Group")
#: the key of a group's BATCH-th member, the last one of the next range to delete
_RANGE_END = (
    select(M.c.member_pk).where(M.c.group_pk == _GROUP).order_by(M.c.member_pk).limit(1).offset(BATCH - 1)
)
_NEXT_RESOURCES = select(R.c.pk).where(R.c.tenant_id == _TENANT).limit(BATCH)


def delete_tenant(
    engine: Engine,
    key: str,
    *,
    find: Callable[[Connection, str], Tenant | None],
    now: int,
    progress: Callable[[DeletionProgress], None] | None = None,
) -> Tenant:
    """Delete the tenant ``key`` (a name or an id; ``find`` reads its row) in steps, as the module
    says; ``now`` (microseconds) is the mark of a deletion that begins here. Returns the tenant as
    it was; TenantNotFound when there is none."""
    with engine.begin() as conn:
        found = find(conn, key)
        if found is None:
            raise TenantNotFound(f"no tenant {key!r}")
        tenant_id = found.id
        if found.deleting is None:
            conn.execute(update(T).where(T.c.id == tenant_id).values(deleting=now))
        conn.execute(delete(K).where(K.c.tenant_id == tenant_id))
        tenant = find(conn, tenant_id) or found
        counted = select(func.count()).select_from(R).where(R.c.tenant_id == tenant_id)
        total = int(conn.execute(counted).scalar_one())
    deleted = 0

    def report() -> None:
        if progress is not None:
            progress(DeletionProgress(tenant, deleted, total))

    params = {"tenant": tenant_id}
    with Steps(engine, after_step=report) as steps:
        groups = [pk for (pk,) in steps.conn.execute(_GROUPS, params)]
        for group in groups:
            while True:
                end = steps.conn.execute(_RANGE_END, {"group": group}).scalar()
                members = delete(M).where(M.c.group_pk == _GROUP)
                if end is not None:
                    members = members.where(M.c.member_pk <= end)
                steps.conn.execute(members, {"group": group})
                steps.tick()
                if end is None:
                    break
        while pks := list(steps.conn.scalars(_NEXT_RESOURCES, params)):
            chunk = {"pks": pks}
            steps.conn.execute(delete(E).where(E.c.resource_pk.in_(_PKS)), chunk)
            steps.conn.execute(delete(M).where(M.c.member_pk.in_(_PKS)), chunk)
            steps.conn.execute(delete(M).where(M.c.group_pk.in_(_PKS)), chunk)
            steps.conn.execute(delete(R).where(R.c.pk.in_(_PKS)), chunk)
            deleted += len(pks)
            steps.tick()
        # The loop above ends in this transaction, which holds the write lock: no resource of the
        # tenant is left, those a server wrote between two steps included (its token cache honours
        # a token up to a second after it is deleted), and none can come before the commit.
        conn = steps.conn
        conn.execute(delete(COUNTS).where(COUNTS.c.tenant_id == tenant_id))
        conn.execute(delete(K).where(K.c.tenant_id == tenant_id))
        conn.execute(delete(TR).where(TR.c.tenant_id == tenant_id))
        conn.execute(delete(T).where(T.c.id == tenant_id))
    report()
    return tenant


__all__ = ["delete_tenant"]
