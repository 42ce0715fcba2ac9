"""Which attributes a response carries: ``attributes`` / ``excludedAttributes`` (RFC 7644 section
3.4.2.5, also 3.3, 3.4.1, 3.5) combined with each attribute's ``returned`` (RFC 7643 section 7).

- ``always`` (``id``): returned whatever the parameters say; ``schemas`` is always kept too.
- ``never`` (``password``): never returned.
- ``default``: returned unless excluded, or unless ``attributes`` is given and does not list it.
- ``request``: returned only when listed in ``attributes``.

A listed sub-attribute (``name.givenName``) keeps only that sub-attribute of its parent (plus the
parent's ``always`` sub-attributes); a listed parent keeps all its default sub-attributes.
Extension attributes are addressed as ``AttrPath(urn=<extension>, attr=...)``; the whole extension
as ``AttrPath(urn=<extension>, attr="")`` or ``AttrPath(urn=None, attr=<extension>)``. An extension
left without attributes disappears, and so does its URN from ``schemas`` (RFC 7643 section 3:
``schemas`` names the schemas of the attributes present).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from provisor.scim.filter.ast import AttrPath
from provisor.scim.schema.model import Attribute, ResourceType, Returned

#: (extension URN lower-cased or None, attribute name lower-cased; "" = the whole extension)
_Key = tuple[str | None, str]
#: key -> None (the whole attribute) or the lower-cased sub-attribute names listed
_Index = dict[_Key, set[str] | None]


def project(
    rt: ResourceType,
    representation: Mapping[str, Any],
    attributes: Sequence[AttrPath] | None = None,
    excluded: Sequence[AttrPath] | None = None,
) -> dict[str, Any]:
    """The representation reduced per RFC 7644 section 3.4.2.5 and RFC 7643 ``returned``.

    ``attributes`` and ``excluded`` are parsed attribute paths. ``attributes`` None is not given;
    empty, it was given naming nothing the resource type has, and leaves the ``always`` attributes
    alone. When both are given, ``attributes`` selects first and ``excluded`` then removes.
    """
    wanted = _index(rt, attributes) if attributes is not None else None
    dropped = _index(rt, excluded) if excluded else {}
    out: dict[str, Any] = {}
    schemas_key: str | None = None
    for key, value in representation.items():
        if key.lower() == "schemas":
            schemas_key = key
            continue
        ext = rt.extension(key)
        if ext is not None:
            urn = ext.id.lower()
            if not isinstance(value, Mapping) or (urn, "") in dropped:
                continue
            whole = wanted is not None and (urn, "") in wanted
            inner: dict[str, Any] = {}
            for name, inner_value in value.items():
                attribute = ext.attribute(name)
                kept = _attribute(
                    attribute, (urn, name.lower()), inner_value, None if whole else wanted, dropped
                )
                if kept is not _DROP:
                    inner[name] = kept
            if inner:
                out[key] = inner
            continue
        resolved = rt.attribute(None, key)
        attribute = resolved[1] if resolved is not None else None
        kept = _attribute(attribute, (None, key.lower()), value, wanted, dropped)
        if kept is not _DROP:
            out[key] = kept
    if schemas_key is not None:
        schemas = representation[schemas_key]
        if isinstance(schemas, list):
            present = {k.lower() for k in out}
            schemas = [s for s in schemas if rt.extension(s) is None or s.lower() in present]
        out = {schemas_key: schemas, **out}
    return out


class _Drop:
    """Marker: the attribute is not returned."""


_DROP: Any = _Drop()


def _index(rt: ResourceType, paths: Sequence[AttrPath]) -> _Index:
    index: _Index = {}
    for path in paths:
        urn = path.urn.lower() if path.urn else None
        attr = path.attr.lower()
        if urn is None and rt.extension(path.attr) is not None:
            urn, attr = path.attr.lower(), ""
        key = (urn, attr)
        if path.sub is None or attr == "":
            index[key] = None
        elif key not in index or index[key] is not None:
            subs = index.get(key) or set()
            subs.add(path.sub.lower())
            index[key] = subs
    return index


def _attribute(
    attribute: Attribute | None, key: _Key, value: Any, wanted: _Index | None, dropped: _Index
) -> Any:
    """One top-level attribute's projected value, or ``_DROP``."""
    returned = attribute.returned if attribute is not None else Returned.DEFAULT
    if returned is Returned.NEVER:
        return _DROP
    if returned is Returned.ALWAYS:
        return value
    subs: set[str] | None = None
    if wanted is not None:
        if key not in wanted:
            return _DROP
        subs = wanted[key]
    elif returned is Returned.REQUEST:
        return _DROP
    if key in dropped and dropped[key] is None:
        return _DROP
    excluded_subs = dropped.get(key) or set()
    if attribute is None or not attribute.sub_attributes:
        return value
    return _complex(attribute, value, subs, excluded_subs)


def _complex(attribute: Attribute, value: Any, subs: set[str] | None, excluded_subs: set[str]) -> Any:
    if isinstance(value, list):
        elements = [_sub_attributes(attribute, e, subs, excluded_subs) for e in value]
        kept = [e for e in elements if e is not _DROP]
        return kept if kept else _DROP
    return _sub_attributes(attribute, value, subs, excluded_subs)


def _sub_attributes(attribute: Attribute, value: Any, subs: set[str] | None, excluded_subs: set[str]) -> Any:
    if not isinstance(value, Mapping):
        return value
    out: dict[str, Any] = {}
    for name, sub_value in value.items():
        sub = attribute.sub(name)
        returned = sub.returned if sub is not None else Returned.DEFAULT
        low = name.lower()
        if returned is Returned.ALWAYS:
            keep = True
        elif returned is Returned.NEVER:
            keep = False
        elif subs is not None:
            keep = low in subs and low not in excluded_subs
        else:
            keep = returned is Returned.DEFAULT and low not in excluded_subs
        if keep:
            out[name] = sub_value
    return out if out else _DROP
