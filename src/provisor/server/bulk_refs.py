"""bulkId references of /Bulk operations (RFC 7644 section 3.7.1), and the result entry of an
operation that failed."""

from __future__ import annotations

from typing import Any

from provisor.scim.errors import ScimError
from provisor.server.errors import error_body

#: How an operation names the resource a POST of the same request creates: ``bulkId:<its bulkId>``.
REF = "bulkId:"


class Unresolved(Exception):
    """An operation refers to a bulkId that is not (yet) created."""

    def __init__(self, bulk_id: str) -> None:
        super().__init__(bulk_id)
        self.bulk_id = bulk_id


def references(value: Any) -> set[str]:
    """The X of every ``bulkId:X`` string in ``value``."""
    if isinstance(value, str):
        return {value[len(REF) :]} if value.startswith(REF) else set()
    if isinstance(value, list):
        return {ref for v in value for ref in references(v)}
    if isinstance(value, dict):
        return {ref for v in value.values() for ref in references(v)}
    return set()


def substitute(value: Any, ids: dict[str, str]) -> Any:
    """Replace every ``bulkId:X`` string in ``value`` with X's created id."""
    if isinstance(value, str):
        if value.startswith(REF):
            key = value[len(REF) :]
            if key not in ids:
                raise Unresolved(key)
            return ids[key]
        return value
    if isinstance(value, list):
        return [substitute(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, ids) for k, v in value.items()}
    return value


def method_of(op: Any) -> str | None:
    """The ``method`` of operation ``op``, upper-cased; None when it names none (absent, null, not
    a string, or ``op`` no object)."""
    method = op.get("method") if isinstance(op, dict) else None
    return method.upper() if isinstance(method, str) else None


def failure(op: Any, error: ScimError, location: str | None = None) -> dict[str, Any]:
    """The result of operation ``op`` that failed with ``error``: its method as sent (none when it
    named none: no method is made up for it), its bulkId, ``location``, and the error."""
    result: dict[str, Any] = {}
    method = method_of(op)
    if method is not None:
        result["method"] = method
    if isinstance(op, dict) and isinstance(op.get("bulkId"), str):
        result["bulkId"] = op["bulkId"]
    if location is not None:
        result["location"] = location
    result["status"] = str(error.status)
    result["response"] = error_body(error)
    return result
