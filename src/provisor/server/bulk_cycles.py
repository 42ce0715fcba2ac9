"""Circular bulkId references between the members of Groups created in one /Bulk request
(RFC 7644 section 3.7.1: the service provider MUST try to resolve them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provisor.scim.errors import Conflict, ScimError
from provisor.scim.schema.model import ResourceType, SchemaRegistry
from provisor.server import bulk_paths
from provisor.server.bulk_refs import REF, failure, references, substitute
from provisor.server.queries import Projection
from provisor.server.service import ResourceService
from provisor.server.tenancy import TenantContext

_PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@dataclass(frozen=True, slots=True)
class _Deferred:
    """A Group POST split for :meth:`CycleResolver.resolve`: ``data`` is created first, the
    ``later`` members (whose values are ``bulkId:X`` of the POSTs in ``waits``) are added after."""

    rt: ResourceType
    data: dict[str, Any]
    later: list[dict[str, Any]]
    waits: frozenset[str]


class CycleResolver:
    """Creates the Groups of member cycles without those members, then adds them (see :meth:`resolve`)."""

    def __init__(
        self,
        service: ResourceService,
        registry: SchemaRegistry,
        scim_error: Callable[[Exception], ScimError],
        logger: Callable[..., None],
    ) -> None:
        self.service = service
        self.registry = registry
        self._scim_error = scim_error
        self._log = logger

    def resolve(
        self,
        ctx: TenantContext,
        ops: list[Any],
        waiting: list[int],
        ids: dict[str, str],
        results: dict[int, dict[str, Any]],
        base_url: str,
        allowed: int | None = None,
    ) -> list[int]:
        """Resolve circular bulkId references (RFC 7644 section 3.7.1) when nothing else can
        proceed; returns the operations it settled (a result each), none if it found no cycle.

        Only Group members can close a cycle here: the waiting Group POSTs whose unresolved
        references are all member values naming other such POSTs, and which such a POST names
        (the cycles and what joins them; a Group that only waits on them is left to run after
        them, as usual). Each is created without those members, then the members are added in a
        PATCH; its result is its create's (201, location) with the version after the PATCH.
        A POST whose creation or member PATCH fails reports that error, and every other Group
        of the set that would miss it as a member is deleted again and reports 409, so no
        operation leaves a Group without the members it asked for. Any other cycle (a User's
        manager, a reference in a path or outside ``members``) still fails with 409.

        Each set of Groups joined by such references is processed as one step, the sets in the
        request order of their first POST. ``allowed`` is how many more errors ``failOnErrors``
        accepts (None: no limit); a set stops at it as /Bulk does (:meth:`_settle_set`), and the
        sets after it are left waiting, unsettled, as the operations after the limit are.
        """
        plans = {i: plan for i in waiting if (plan := self._deferrable(ops[i], ids)) is not None}
        while True:
            named = {ops[i]["bulkId"] for i in plans}
            wanted = {ref for plan in plans.values() for ref in plan.waits}
            kept = {
                i: plan for i, plan in plans.items() if plan.waits <= named and ops[i]["bulkId"] in wanted
            }
            if len(kept) == len(plans):
                break
            plans = kept
        settled: list[int] = []
        for joined in _joined_sets(ops, plans):
            errors = _Errors(results, allowed)
            self._settle_set(ctx, ops, joined, ids, errors, base_url)
            settled += [i for i in joined if i in results]
            if errors.full:
                break
            if allowed is not None:
                allowed -= errors.count
        return settled

    def _settle_set(
        self,
        ctx: TenantContext,
        ops: list[Any],
        plans: dict[int, _Deferred],
        ids: dict[str, str],
        errors: _Errors,
        base_url: str,
    ) -> None:
        """Create the Groups of ``plans`` (one set of :meth:`resolve`) in request order, then add
        their members; a result each, but within the errors failOnErrors allows.

        A POST that names a member whose POST already failed fails with 409 before it creates
        anything, as it would run after that POST. Once the limit is reached no more of the set
        is created, as /Bulk runs no more operations (RFC 7644 section 3.7.3): those POSTs are
        not run and have no result. A Group created before that is still completed, or deleted
        again when it would miss a member whose POST failed or was not run; deleted past the
        limit, it has no result either, as nothing of it is left (an operation a client may
        send again, like those not run).
        """
        results = errors.results
        standing: dict[int, str] = {}
        failed: set[str] = set()  # the bulkIds of the POSTs that failed, or were not run
        for i, plan in plans.items():
            if errors.full:
                failed.add(ops[i]["bulkId"])
                continue
            if missing := plan.waits & failed:
                failed.add(ops[i]["bulkId"])
                errors.fail(i, _partner_failed(ops[i], missing))
                continue
            try:
                outcome = self.service.create(ctx, plan.rt, plan.data, base_url, Projection())
            except Exception as exc:
                failed.add(ops[i]["bulkId"])
                errors.fail(i, failure(ops[i], self._scim_error(exc)))
                continue
            assert outcome.id is not None
            standing[i] = ids[ops[i]["bulkId"]] = outcome.id
            results[i] = {
                "method": "POST",
                "bulkId": ops[i]["bulkId"],
                "location": outcome.headers["Location"],
                "status": str(outcome.status),
            }
        self._roll_back(ctx, ops, plans, standing, failed, ids, errors)
        for i in list(standing):
            if i not in standing:
                continue
            plan = plans[i]
            add = {"op": "add", "path": "members", "value": substitute(plan.later, ids)}
            try:
                outcome = self.service.patch(
                    ctx, plan.rt, standing[i], {"schemas": [_PATCH_OP], "Operations": [add]}, base_url
                )
            except Exception as exc:
                self._delete(ctx, plan.rt, standing.pop(i))
                del ids[ops[i]["bulkId"]]
                failed.add(ops[i]["bulkId"])
                errors.fail(i, failure(ops[i], self._scim_error(exc)))
                self._roll_back(ctx, ops, plans, standing, failed, ids, errors)
                continue
            results[i]["version"] = outcome.headers["ETag"]

    def _deferrable(self, op: Any, ids: dict[str, str]) -> _Deferred | None:
        """``op`` split for :meth:`_break_cycles` when it is a Group POST whose only unresolved
        references are member values (``{"value": "bulkId:X"}``); None otherwise."""
        if not isinstance(op, dict) or str(op.get("method", "")).upper() != "POST":
            return None
        path, data = op.get("path"), op.get("data")
        if not isinstance(op.get("bulkId"), str) or not isinstance(path, str) or not isinstance(data, dict):
            return None
        try:
            where = bulk_paths.addressed(self.registry, path)
        except ScimError:
            return None  # its result is the path's error (``BulkProcessor._one``)
        rt = where.rt if where.id is None else None
        key = next((k for k in data if k.lower() == "members"), None)
        if rt is None or rt.name != "Group" or key is None or not isinstance(data[key], list):
            return None
        now: list[Any] = []
        later: list[dict[str, Any]] = []
        for member in data[key]:
            value = member.get("value") if isinstance(member, dict) else None
            if isinstance(value, str) and value.startswith(REF) and value[len(REF) :] not in ids:
                later.append(member)
            else:
                now.append(member)
        rest = {k: v for k, v in data.items() if k != key}
        others = [rest, now, [{k: v for k, v in m.items() if k != "value"} for m in later]]
        if not later or references(others) - ids.keys():
            return None
        if now:
            rest[key] = now
        waits = frozenset(m["value"][len(REF) :] for m in later)
        return _Deferred(rt, substitute(rest, ids), later, waits)

    def _roll_back(
        self,
        ctx: TenantContext,
        ops: list[Any],
        plans: dict[int, _Deferred],
        standing: dict[int, str],
        failed: set[str],
        ids: dict[str, str],
        errors: _Errors,
    ) -> None:
        """Delete again every created Group of ``plans`` that would miss a member whose POST is in
        ``failed``, until none would; each fails with 409 naming the members it could not have."""
        while lost := {i: plans[i].waits & failed for i in standing if plans[i].waits & failed}:
            for i, refs in lost.items():
                self._delete(ctx, plans[i].rt, standing.pop(i))
                del ids[ops[i]["bulkId"]]
                failed.add(ops[i]["bulkId"])
                errors.fail(i, _partner_failed(ops[i], refs))

    def _delete(self, ctx: TenantContext, rt: ResourceType, id: str) -> None:
        try:
            self.service.delete(ctx, rt, id)
        except Exception as exc:
            self._log("bulk could not delete a group it created for a circular reference", exc_info=exc)


class _Errors:
    """The results of one set of :meth:`CycleResolver.resolve`, and its failures, which it
    reports while failOnErrors allows (``allowed`` more; None: no limit)."""

    def __init__(self, results: dict[int, dict[str, Any]], allowed: int | None) -> None:
        self.results = results
        self.allowed = allowed
        self.count = 0

    @property
    def full(self) -> bool:
        """Whether the limit is reached: the set runs nothing more, and reports no more errors."""
        return self.allowed is not None and self.count >= self.allowed

    def fail(self, i: int, result: dict[str, Any]) -> None:
        """Operation ``i`` failed with ``result``; past the limit it has no result, its 201 gone too."""
        if self.full:
            self.results.pop(i, None)
        else:
            self.results[i] = result
            self.count += 1


def _partner_failed(op: Any, refs: set[str] | frozenset[str]) -> dict[str, Any]:
    names = ", ".join(repr(r) for r in sorted(refs))
    error = Conflict(f"unresolved bulkId reference {names}: that POST failed", scim_type="invalidValue")
    return failure(op, error)


def _joined_sets(ops: list[Any], plans: dict[int, _Deferred]) -> list[dict[int, _Deferred]]:
    """``plans`` split into the sets joined by member references (either way), in the request
    order of each set's first POST."""
    index = {ops[i]["bulkId"]: i for i in plans}
    linked: dict[int, set[int]] = {i: set() for i in plans}
    for i, plan in plans.items():
        for ref in plan.waits:  # each names a plan: ``resolve`` keeps no other
            linked[i].add(index[ref])
            linked[index[ref]].add(i)
    sets: list[dict[int, _Deferred]] = []
    seen: set[int] = set()
    for first in sorted(plans):
        if first in seen:
            continue
        found, todo = {first}, [first]
        while todo:
            for j in linked[todo.pop()] - found:
                found.add(j)
                todo.append(j)
        seen |= found
        sets.append({i: plans[i] for i in sorted(found)})
    return sets
