"""Test helpers for the differential tests of ``sortBy`` and of filters over stored resources: the
Python model of RFC 7644 section 3.4.2.3 the SQL order is held to, and resources as rendered.

Not a test module (no ``test_`` prefix). The model, as ``store/sql/sorting.py`` documents it:

* strings compare case-insensitively (``str.lower``, the evaluator's folding) unless caseExact,
  then by code point ("Unicode alphabetic sort order with no specific locale implied");
  references and binaries are strings; dateTimes compare as instants, numbers numerically,
  booleans false before true;
* a multi-valued attribute sorts by its primary value, else its first (RFC 7643 section 2.4);
  ``emails`` (complex, with a ``value``) by ``emails.value``; an element without the sorted
  sub-attribute gives no value, so ``emails.type`` is the type of the first element with a type,
  that of the primary one when it has one;
* a resource with no value sorts last ascending and first descending, and ties (equal values,
  all the missing ones) keep creation order in both directions (id order, in a walk by keyed
  cursors). ``""`` is a value, the least one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from provisor.scim.filter.ast import AttrPath
from provisor.scim.filter.evaluate import fold
from provisor.scim.filter.lexer import parse_number, to_datetime
from provisor.scim.filter.parser import lookup_attribute
from provisor.scim.resources.representation import to_representation
from provisor.scim.schema.model import Attribute, AttributeType, ResourceType, Returned
from provisor.server.service import groups_json
from provisor.store.base import StoredResource

BASE_URL = "https://scim.example.com/scim/v2"

#: Attributes the server refuses as ``sortBy`` (computed when rendering, or never stored).
_UNSORTABLE = frozenset({"members", "groups", "schemas"})


def rendered(rt: ResourceType, r: StoredResource) -> dict[str, Any]:
    """What the server renders for ``r`` (the evaluator's input): ``to_representation``, with a
    User's ``groups`` as the server lists them and a Group's ``members`` as the store read them."""
    return to_representation(
        rt,
        r.id,
        r.data,
        created=r.created,
        last_modified=r.last_modified,
        version=r.version,
        location=f"{BASE_URL}{rt.endpoint}/{r.id}",
        members=r.members,
        member_base_url=BASE_URL,
        groups=groups_json(r.groups, BASE_URL) if r.groups else None,
    )


def sortable_paths(rt: ResourceType) -> list[AttrPath]:
    """Every path the server takes as ``sortBy`` for ``rt``: simple attributes, complex ones with
    a ``value``, each sub-attribute; ``id``, ``externalId`` and the stored ``meta`` values."""
    out = [
        AttrPath(None, "id"),
        AttrPath(None, "externalId"),
        AttrPath(None, "meta", "created"),
        AttrPath(None, "meta", "lastModified"),
        AttrPath(None, "meta", "resourceType"),
    ]
    schemas = [(None, rt.schema), *((ext.id, ext) for ext, _ in rt.extensions)]
    for urn, schema in schemas:
        for a in schema.attributes:
            if (urn is None and a.name in _UNSORTABLE) or a.returned is Returned.NEVER:
                continue
            if a.type is AttributeType.COMPLEX:
                if a.sub("value") is not None:
                    out.append(AttrPath(urn, a.name))
                out.extend(AttrPath(urn, a.name, s.name) for s in a.sub_attributes)
            else:
                out.append(AttrPath(urn, a.name))
    return out


def _typed(value: Any, leaf: Attribute | None) -> Any:
    """The value to order by, or None: no value of the attribute's type."""
    t = leaf.type if leaf is not None else AttributeType.STRING
    if t in (AttributeType.INTEGER, AttributeType.DECIMAL):
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return value
        return parse_number(value.strip()) if isinstance(value, str) else None
    if t is AttributeType.DATETIME:
        return to_datetime(value) if isinstance(value, str) else None
    if t is AttributeType.BOOLEAN:
        return int(value) if isinstance(value, bool) else None
    if not isinstance(value, str):
        return None
    return value if leaf is not None and leaf.case_exact else fold(value)


def sort_value(doc: Mapping[str, Any], path: AttrPath, rt: ResourceType) -> Any:
    """The value ``doc`` (a representation) sorts by on ``sortBy=path``; None when it has none."""
    found = lookup_attribute(rt, path.urn, path.attr)
    assert found is not None, path
    top = found[1]
    sub = path.sub
    if sub is None and top.type is AttributeType.COMPLEX and top.sub("value") is not None:
        sub = "value"
    leaf = top if sub is None else top.sub(sub)
    assert leaf is not None, path
    host = doc if path.urn is None else doc.get(path.urn, {})
    value = host.get(top.name)
    if sub is not None:
        sub = leaf.name
    if top.multi_valued:
        values = [
            (e.get(sub) if sub is not None else e, sub is not None and e.get("primary") is True)
            for e in value or ()
        ]
        given = [(v, primary) for v, primary in values if v is not None]
        chosen = next((v for v, primary in given if primary), given[0][0] if given else None)
    elif sub is None:
        chosen = value
    else:
        chosen = value.get(sub) if isinstance(value, Mapping) else None
    return _typed(chosen, leaf)


def model_order(
    docs: Sequence[Mapping[str, Any]],
    path: AttrPath,
    descending: bool,
    rt: ResourceType,
    *,
    ties_by_id: bool = False,
) -> list[str]:
    """The ids of ``docs`` (representations, in creation order) as ``sortBy=path`` orders them;
    ``ties_by_id``: ties in id order (a keyed cursor walk's, ``Query.ties_by_id``), not creation
    order."""
    if ties_by_id:
        docs = sorted(docs, key=lambda d: str(d["id"]))
    keyed = [(sort_value(d, path, rt), d["id"]) for d in docs]
    present = [(k, i) for k, i in keyed if k is not None]
    missing = [i for k, i in keyed if k is None]
    ordered = [i for _, i in sorted(present, key=lambda t: t[0], reverse=descending)]  # stable
    return missing + ordered if descending else ordered + missing
