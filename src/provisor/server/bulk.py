"""/Bulk (RFC 7644 section 3.7): many operations in one request, with bulkId references.

Operations run in order, each in its own transaction (RFC 7644 does not make a bulk request
atomic). An operation whose data or path names ``bulkId:X`` of a later POST waits until X is
created; references that can never resolve (unknown or circular) fail with 409. ``failOnErrors``
stops processing once that many operations have failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from provisor.scim.errors import Conflict, InvalidSyntax, InvalidValue, PayloadTooLarge, ScimError
from provisor.scim.schema.model import SchemaRegistry
from provisor.server.errors import error_body, to_scim_error
from provisor.server.queries import Projection
from provisor.server.service import Outcome, ResourceService
from provisor.server.tenancy import TenantContext

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class _Unresolved(Exception):
    """An operation refers to a bulkId that is not (yet) created."""

    def __init__(self, bulk_id: str) -> None:
        super().__init__(bulk_id)
        self.bulk_id = bulk_id


def _substitute(value: Any, ids: dict[str, str]) -> Any:
    """Replace every ``bulkId:X`` string in ``value`` with X's created id."""
    if isinstance(value, str):
        if value.startswith("bulkId:"):
            key = value[len("bulkId:") :]
            if key not in ids:
                raise _Unresolved(key)
            return ids[key]
        return value
    if isinstance(value, list):
        return [_substitute(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, ids) for k, v in value.items()}
    return value


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

    def run(self, ctx: TenantContext, body: Any, base_url: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InvalidSyntax("a BulkRequest must be a JSON object")
        schemas = body.get("schemas")
        if not isinstance(schemas, list) or BULK_REQUEST.lower() not in [str(s).lower() for s in schemas]:
            raise InvalidSyntax(f"schemas must contain {BULK_REQUEST}")
        ops = next((v for k, v in body.items() if k.lower() == "operations"), None)
        if not isinstance(ops, list) or not ops:
            raise InvalidSyntax("Operations must be a non-empty list")
        if len(ops) > self.max_operations:
            raise PayloadTooLarge(
                f"{len(ops)} operations exceed maxOperations {self.max_operations}", scim_type="tooMany"
            )
        fail_on = body.get("failOnErrors")
        if fail_on is not None and (isinstance(fail_on, bool) or not isinstance(fail_on, int) or fail_on < 1):
            raise InvalidValue("failOnErrors must be a positive integer")
        seen: set[str] = set()
        for op in ops:
            bid = op.get("bulkId") if isinstance(op, dict) else None
            if isinstance(bid, str):
                if bid in seen:
                    raise InvalidValue(f"bulkId {bid!r} is used twice")
                seen.add(bid)

        ids: dict[str, str] = {}
        results: dict[int, dict[str, Any]] = {}
        pending = list(range(len(ops)))
        errors = 0
        while pending:
            progressed = False
            waiting: list[int] = []
            for i in pending:
                if fail_on is not None and errors >= fail_on:
                    break
                try:
                    results[i] = self._one(ctx, ops[i], ids, base_url)
                    progressed = True
                except _Unresolved as exc:
                    if (
                        exc.bulk_id in seen
                        and exc.bulk_id not in ids
                        and _defined_later(ops, exc.bulk_id, results)
                    ):
                        waiting.append(i)
                        continue
                    results[i] = _failure(
                        ops[i],
                        Conflict(f"unresolved bulkId reference {exc.bulk_id!r}", scim_type="invalidValue"),
                    )
                    progressed = True
                if results[i]["status"][0] in "45":
                    errors += 1
            if fail_on is not None and errors >= fail_on:
                break
            if not progressed:
                for i in waiting:
                    results[i] = _failure(
                        ops[i], Conflict("circular bulkId references", scim_type="invalidValue")
                    )
                break
            pending = waiting
        return {"schemas": [BULK_RESPONSE], "Operations": [results[i] for i in sorted(results)]}

    def _one(self, ctx: TenantContext, op: Any, ids: dict[str, str], base_url: str) -> dict[str, Any]:
        if not isinstance(op, dict):
            return _failure({}, InvalidSyntax("each operation must be a JSON object"))
        method = str(op.get("method", "")).upper()
        bulk_id = op.get("bulkId")
        path = op.get("path")
        try:
            if method not in _METHODS:
                raise InvalidSyntax(f"method must be one of {', '.join(_METHODS)}")
            if method == "POST" and not isinstance(bulk_id, str):
                raise InvalidSyntax("POST operations need a bulkId")
            if not isinstance(path, str) or not path.startswith("/"):
                raise InvalidSyntax("path must be a resource path such as /Users or /Users/{id}")
            parts = [_substitute(p, ids) for p in path.strip("/").split("/")]
            rt = self.registry.by_endpoint(parts[0])
            if rt is None:
                raise InvalidValue(f"unknown resource endpoint {parts[0]!r}")
            data = _substitute(op.get("data"), ids)
            version = op.get("version") if isinstance(op.get("version"), str) else None
            outcome: Outcome
            if method == "POST":
                if len(parts) != 1:
                    raise InvalidSyntax("POST takes a resource endpoint path such as /Users")
                outcome = self.service.create(ctx, rt, data, base_url, Projection())
            else:
                if len(parts) != 2:
                    raise InvalidSyntax(f"{method} takes a path with an id, such as /Users/{{id}}")
                if method == "PUT":
                    outcome = self.service.replace(ctx, rt, parts[1], data, base_url, None, version)
                elif method == "PATCH":
                    outcome = self.service.patch(ctx, rt, parts[1], data, base_url, None, version)
                else:
                    outcome = self.service.delete(ctx, rt, parts[1], version)
        except _Unresolved:
            raise
        except Exception as exc:
            error = to_scim_error(exc)
            if error is None:
                self._log("bulk operation failed", exc_info=exc)
                error = ScimError("internal server error")
                error.status = 500
            return _failure(op, error)
        result: dict[str, Any] = {"method": method, "status": str(outcome.status)}
        if isinstance(bulk_id, str):
            result["bulkId"] = bulk_id
        if "Location" in outcome.headers:
            result["location"] = outcome.headers["Location"]
        if "ETag" in outcome.headers:
            result["version"] = outcome.headers["ETag"]
        if method == "POST" and isinstance(bulk_id, str) and outcome.id is not None:
            ids[bulk_id] = outcome.id
        return result


def _defined_later(ops: list[Any], bulk_id: str, done: dict[int, dict[str, Any]]) -> bool:
    return any(
        isinstance(op, dict)
        and op.get("bulkId") == bulk_id
        and str(op.get("method", "")).upper() == "POST"
        and i not in done
        for i, op in enumerate(ops)
    )


def _failure(op: Any, error: ScimError) -> dict[str, Any]:
    result: dict[str, Any] = {
        "method": str(op.get("method", "")).upper() if isinstance(op, dict) else "",
        "status": str(error.status),
        "response": error_body(error),
    }
    if isinstance(op, dict) and isinstance(op.get("bulkId"), str):
        result["bulkId"] = op["bulkId"]
    return result
