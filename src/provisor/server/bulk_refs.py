"""bulkId references of /Bulk operations (RFC 7644 section 3.7.1), and the result entry of an
operation that failed."""

from __future__ import annotations

import json
from typing import Any

from provisor.scim.errors import InvalidValue, ScimError
from provisor.scim.filter.lexer import STRING, ScanError, decode_string, tokenize
from provisor.server.errors import error_body

#: How an operation names the resource a POST of the same request creates: ``bulkId:<its bulkId>``.
REF = "bulkId:"

#: The deepest an operation's ``data`` may nest (objects and arrays), well past any SCIM resource
#: or PatchOp (a PatchOp's sub-attribute value is 6 deep); what walks it here recurses.
MAX_DEPTH = 64


def check_depth(value: Any) -> None:
    """400 invalidValue when ``value`` nests objects and arrays deeper than :data:`MAX_DEPTH`, found
    without recursion: what :func:`references` and :func:`substitute` walk stays shallow enough
    for them (a deeper one ended the whole /Bulk in a RecursionError, a 500)."""
    todo: list[tuple[Any, int]] = [(value, 1)]
    while todo:
        item, depth = todo.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > MAX_DEPTH:
            raise InvalidValue(
                f"data nests deeper than {MAX_DEPTH} levels, which no SCIM resource or PatchOp does"
            )
        todo.extend((child, depth + 1) for child in children)


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


def substitute_in_paths(data: Any, ids: dict[str, str]) -> Any:
    """PATCH ``data`` with every ``"bulkId:X"`` string literal in its operations' paths replaced
    by X's created id, as :func:`substitute` replaces values (Unresolved if none). RFC 7644
    section 3.7.2 has the string replaced, and Entra's member remove names the member in the
    path's filter, ``members[value eq "bulkId:X"]``: left as it was, that filter matches no member
    and the remove answers success having removed nothing. Anything that is no PatchOp is left
    for the PATCH to refuse."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for key, ops in data.items():
        if str(key).lower() == "operations" and isinstance(ops, list):
            out[key] = [_with_path(op, ids) for op in ops]
    return out


def _with_path(op: Any, ids: dict[str, str]) -> Any:
    if not isinstance(op, dict):
        return op
    return {k: _in_filter(v, ids) if str(k).lower() == "path" else v for k, v in op.items()}


def _in_filter(path: Any, ids: dict[str, str]) -> Any:
    """``path`` with each string literal that is a bulkId reference replaced by the id's literal;
    a path that does not scan is left for the PATCH parser to report."""
    if not isinstance(path, str) or REF not in path:
        return path
    try:
        tokens = tokenize(path)
    except ScanError:
        return path
    parts: list[str] = []
    done = 0
    for kind, text, at in tokens:
        if kind != STRING:
            continue
        try:
            value = decode_string(text, at)
        except ScanError:
            continue
        if value.startswith(REF):
            parts += [path[done:at], json.dumps(substitute(value, ids))]
            done = at + len(text)
    return "".join([*parts, path[done:]])


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
