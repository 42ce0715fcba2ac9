"""/Bulk (RFC 7644 section 3.7): many operations in one request, with bulkId references.

Operations run in order, each in its own transaction (RFC 7644 does not make a bulk request
atomic). An operation whose data or path names ``bulkId:X`` of a later POST (a value, or a
string in a PATCH path's filter) has X's POST run first, as if it had been sent first;
references that can never resolve (unknown, or circular in a way ``bulk_cycles`` cannot
resolve) fail with 409. ``failOnErrors`` stops processing once that many operations have failed.

Every result but a failed POST carries ``location`` (RFC 7644 section 3.7: "REQUIRED in a
response, except in the event of a POST failure"), the URL of the resource the operation
addressed, in the form of ``meta.location``; see :meth:`BulkProcessor._location` for the paths
that address no resource. A ``version`` is the resource's ETag, a string; ``null`` is the same as
no version (RFC 7643 section 2.5), any other JSON value fails its operation with 400
``invalidSyntax`` like every other malformed operation member. A ``path`` is read as a request's
(``bulk_paths``): one malformed (400 ``invalidPath``), naming no resource (404), not taking the
operation's method (405) or ``/Me`` (501) fails that operation before anything is done. Member
names, of the request and of its operations, are matched in any case (RFC 7643 section 2.1), as
those of a PatchOp are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from provisor.scim.compat.credentials import without_tokens
from provisor.scim.errors import Conflict, InvalidSyntax, InvalidValue, PayloadTooLarge, ScimError
from provisor.scim.schema.model import SchemaRegistry
from provisor.server import bulk_paths
from provisor.server.bulk_cycles import CycleResolver
from provisor.server.bulk_refs import (
    REF,
    Unresolved,
    check_depth,
    failure,
    method_of,
    substitute,
    substitute_in_paths,
)
from provisor.server.errors import to_scim_error
from provisor.server.queries import Projection
from provisor.server.service import Outcome, ResourceService, precondition
from provisor.server.tenancy import TenantContext

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class BulkProcessor:
    def __init__(
        self,
        service: ResourceService,
        registry: SchemaRegistry,
        *,
        max_operations: int,
        logger: Callable[..., None],
    ) -> None:
        self.service = service
        self.registry = registry
        self.max_operations = max_operations
        self._log = logger
        self._cycles = CycleResolver(service, registry, self._scim_error, logger)

    def run(self, ctx: TenantContext, body: Any, base_url: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InvalidSyntax("a BulkRequest must be a JSON object")
        schemas = member(body, "schemas")
        if not isinstance(schemas, list) or BULK_REQUEST.lower() not in [str(s).lower() for s in schemas]:
            raise InvalidSyntax(f"schemas must contain {BULK_REQUEST}")
        ops = operations(body)
        if not isinstance(ops, list) or not ops:
            raise InvalidSyntax("Operations must be a non-empty list")
        if len(ops) > self.max_operations:
            raise PayloadTooLarge(
                f"{len(ops)} operations exceed maxOperations {self.max_operations}", scim_type="tooMany"
            )
        fail_on = member(body, "failOnErrors")
        if fail_on is not None and (isinstance(fail_on, bool) or not isinstance(fail_on, int) or fail_on < 1):
            raise InvalidValue("failOnErrors must be a positive integer")
        ops = [spelled_out(op) for op in ops]
        seen: set[str] = set()
        for op in ops:
            bid = op.get("bulkId") if isinstance(op, dict) else None
            if isinstance(bid, str):
                if bid in seen:
                    raise InvalidValue(f"bulkId {bid!r} is used twice")
                seen.add(bid)

        return {"schemas": [BULK_RESPONSE], "Operations": self._settle(ctx, ops, fail_on, base_url)}

    def _settle(self, ctx: TenantContext, ops: list[Any], fail_on: int | None, base_url: str) -> list[Any]:
        """Run ``ops`` in request order and return their results in request order.

        An operation that names ``bulkId:X`` of a later POST not yet run has that POST run first,
        then runs itself, and the operations between them run after both, in order: the request
        reads as if X's POST had been sent first, and every other operation keeps its place (RFC
        7644 section 3.7: an optimised order must reach "the same stateful result"; a PATCH of X
        before X's POST and another after it apply in that order). The POST may name yet another
        later POST, run before it in turn (a chain of N POSTs each naming the next takes two tries
        each, not N passes). An operation caught in a cycle of such references, or waiting on
        one, waits: it runs after the rest of the request, out of its place (a later operation
        may so come first, and take a displayName it meant to create). Once a pass has run
        everything else, :class:`CycleResolver` settles what it can and another pass runs what
        waited; if it settles nothing, the waiting operations fail with 409, in request order, as
        many as ``failOnErrors`` still allows.
        """
        posts: dict[str, int] = {}  # bulkId -> index of the POST that defines it
        for i, op in enumerate(ops):
            bid = op.get("bulkId") if isinstance(op, dict) else None
            if isinstance(bid, str) and method_of(op) == "POST":
                posts[bid] = i
        ids: dict[str, str] = {}
        results: dict[int, dict[str, Any]] = {}
        errors = 0

        def stopped() -> bool:
            return fail_on is not None and errors >= fail_on

        def run(first: int, waiting: set[int]) -> None:
            """Run operation ``first``, the later POSTs it names first; what waits on a cycle
            joins ``waiting``."""
            nonlocal errors
            stack = [first]  # each operation runs after the POST above it
            while stack and not stopped():
                i = stack[-1]
                try:
                    result = self._one(ctx, ops[i], ids, base_url)
                except Unresolved as exc:
                    j = posts.get(exc.bulk_id)
                    if exc.bulk_id not in ids and j is not None and j not in results:
                        if j not in stack and j not in waiting:
                            stack.append(j)
                            continue
                        waiting.update(stack)  # a cycle, or a POST waiting on one
                        return
                    result = failure(
                        ops[i],
                        Conflict(f"unresolved bulkId reference {exc.bulk_id!r}", scim_type="invalidValue"),
                        self._location(ops[i], ids, base_url),
                    )
                stack.pop()
                results[i] = result
                if result["status"][0] in "45":
                    errors += 1

        while True:
            waiting: set[int] = set()
            for i in range(len(ops)):
                if stopped():
                    break
                if i not in results and i not in waiting:
                    run(i, waiting)
            if not waiting or stopped():
                break
            left = sorted(waiting)
            allowed = None if fail_on is None else fail_on - errors
            broken = self._cycles.resolve(ctx, ops, left, ids, results, base_url, allowed)
            if not broken:
                # each fails: as many as failOnErrors still allows, in request order
                for i in left if fail_on is None else left[: fail_on - errors]:
                    results[i] = failure(
                        ops[i],
                        Conflict("circular bulkId references", scim_type="invalidValue"),
                        self._location(ops[i], ids, base_url),
                    )
                break
            errors += sum(1 for i in broken if results[i]["status"][0] in "45")
        return [results[i] for i in sorted(results)]

    def _one(self, ctx: TenantContext, op: Any, ids: dict[str, str], base_url: str) -> dict[str, Any]:
        if not isinstance(op, dict):
            return failure({}, InvalidSyntax("each operation must be a JSON object"))
        method = method_of(op) or ""
        bulk_id = op.get("bulkId")
        path = op.get("path")
        try:
            if method not in _METHODS:
                raise InvalidSyntax(f"method must be one of {', '.join(_METHODS)}")
            if method == "POST" and not isinstance(bulk_id, str):
                raise InvalidSyntax("POST operations need a bulkId")
            version = op.get("version")
            if version is not None and not isinstance(version, str):
                raise InvalidSyntax('version must be a string, the resource\'s ETag such as W/"3"')
            condition = precondition(version)  # the operation's If-Match (RFC 7644 section 3.7)
            check_depth(op.get("data"))  # before anything walks it: waiting ops have passed here
            where = bulk_paths.target(self.registry, method, path)  # 400, 404 or 405: nothing done
            rt, id = where.rt, None if where.id is None else substitute(where.id, ids)
            data = substitute(op.get("data"), ids)
            outcome: Outcome
            if id is None:
                outcome = self.service.create(ctx, rt, data, base_url, Projection())
            elif method == "PUT":
                outcome = self.service.replace(ctx, rt, id, data, base_url, None, condition)
            elif method == "PATCH":
                data = substitute_in_paths(data, ids)
                outcome = self.service.patch(ctx, rt, id, data, base_url, None, condition)
            else:
                outcome = self.service.delete(ctx, rt, id, condition)
        except Unresolved:
            raise
        except Exception as exc:
            return failure(op, self._scim_error(exc), self._location(op, ids, base_url))
        result: dict[str, Any] = {"method": method, "status": str(outcome.status)}
        if isinstance(bulk_id, str):
            result["bulkId"] = bulk_id
        location = outcome.headers.get("Location") or self._location(op, ids, base_url)
        if location is not None:
            result["location"] = location
        if "ETag" in outcome.headers:
            result["version"] = outcome.headers["ETag"]
        if method == "POST" and isinstance(bulk_id, str) and outcome.id is not None:
            ids[bulk_id] = outcome.id
        return result

    def _scim_error(self, exc: Exception) -> ScimError:
        error = to_scim_error(exc)
        if error is None:
            self._log("bulk operation failed", exc_info=exc)
            error = ScimError("internal server error")
            error.status = 500
        return error

    def _location(self, op: Any, ids: dict[str, str], base_url: str) -> str | None:
        """The ``location`` of a result that has no Location of its own to report (a DELETE, a
        failure): ``{base_url}{endpoint}/{id}`` for the resource the path names, with a
        ``bulkId:X`` id replaced by X's created id, the id percent-encoded.

        None, and the result goes without ``location``, when there is no resource to point at:
        for a POST (a failed POST has none, RFC 7644 section 3.7; a created one reports the
        created resource's), and when the path names no single resource of a known type (any
        path ``bulk_paths`` refuses, or one without an id) or names ``bulkId:X`` for an X
        that was never created. RFC 7644 requires ``location`` there too, but any URL would
        point at a resource that the operation did not address, which a client could mistake
        for one that exists.
        """
        if not isinstance(op, dict) or method_of(op) == "POST":
            return None
        try:
            where = bulk_paths.addressed(self.registry, op.get("path"))
        except ScimError:
            return None
        id = where.id
        if id is not None and id.startswith(REF):
            id = ids.get(id[len(REF) :])
        if id is None:
            return None
        # a Secret Token pasted as the id is redacted, as in the error's detail beside it (the
        # IdP shows both in its provisioning logs)
        return f"{base_url}{where.rt.endpoint}/{quote(without_tokens(id), safe='')}"


def operations(body: dict[str, Any]) -> Any:
    """The value of a BulkRequest's ``Operations``; None when there is none. What
    :meth:`BulkProcessor.run` runs, and so what a rate limit charges for."""
    return member(body, "Operations")


def member(message: dict[str, Any], name: str) -> Any:
    """The value of member ``name`` of a BulkRequest or of one of its operations, its name in any
    case (RFC 7643 section 2.1: attribute names are case-insensitive); None when there is none.
    400 invalidSyntax for a name sent twice in two cases, which no reading could choose between."""
    low = name.lower()
    found = [v for k, v in message.items() if k.lower() == low]
    if len(found) > 1:
        raise InvalidSyntax(f'"{name}" is given twice, in two cases (member names are case-insensitive)')
    return found[0] if found else None


#: The members of a Bulk operation (RFC 7644 section 3.7), by their names in lower case.
_OPERATION_MEMBERS = {name.lower(): name for name in ("method", "bulkId", "version", "path", "data")}


def spelled_out(op: Any) -> Any:
    """Operation ``op`` with its members named as RFC 7644 spells them, whatever their case (a
    ``Version`` read as absent would make a conditional write unconditional). A name sent twice in
    two cases is 400 invalidSyntax, as in :func:`member`; other members are kept as sent, and what
    is no object is left for its result to refuse."""
    if not isinstance(op, dict):
        return op
    out: dict[str, Any] = {}
    for key, value in op.items():
        name = _OPERATION_MEMBERS.get(str(key).lower(), str(key))
        if name in out:
            raise InvalidSyntax(
                f'an operation gives "{name}" twice, in two cases (member names are case-insensitive)'
            )
        out[name] = value
    return out
