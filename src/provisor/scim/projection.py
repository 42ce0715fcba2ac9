"""Which attributes a response carries: ``attributes`` / ``excludedAttributes`` (RFC 7644 section
3.4.2.5, also 3.3, 3.4.1, 3.5) combined with each attribute's ``returned`` (RFC 7643 section 7).

- ``always`` (``id``): returned whatever the parameters say; ``schemas`` is always kept too.
- ``never`` (``password``): never returned.
- ``default``: returned unless excluded, or unless ``attributes`` is given and does not list it.
- ``request``: returned only when listed in ``attributes``, or in the response to a write that
  specified it (``specified``: "returned in response to any PUT, POST, or PATCH operations if the
  attribute was specified by the client").

A listed sub-attribute (``name.givenName``) keeps only that sub-attribute of its parent (plus the
parent's ``always`` sub-attributes); a listed parent keeps all its default sub-attributes.
Extension attributes are addressed as ``AttrPath(urn=<extension>, attr=...)``; the whole extension
as ``AttrPath(urn=<extension>, attr="")`` or ``AttrPath(urn=None, attr=<extension>)``. An extension
left without attributes disappears, and so does its URN from ``schemas`` (RFC 7643 section 3:
``schemas`` names the schemas of the attributes present).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from provisor.scim.filter.ast import AttrPath, PatchPath
from provisor.scim.filter.evaluate import is_element, matches_element
from provisor.scim.schema.model import Attribute, ResourceType, Returned

#: (extension URN lower-cased or None, attribute name lower-cased; "" = the whole extension)
Key = tuple[str | None, str]
#: key -> None (the whole attribute) or the lower-cased sub-attribute names listed
_Index = dict[Key, set[str] | None]
#: What a write's request specified: top-level attribute -> its sub-attributes specified, names
#: lower-cased (:func:`specified_keys`, :func:`changed_keys`, :func:`named_keys`)
Specified = Mapping[Key, frozenset[str]]
_NONE: frozenset[str] = frozenset()


def project(
    rt: ResourceType,
    representation: Mapping[str, Any],
    attributes: Sequence[AttrPath] | None = None,
    excluded: Sequence[AttrPath] | None = None,
    specified: Specified | None = None,
) -> dict[str, Any]:
    """The representation reduced per RFC 7644 section 3.4.2.5 and RFC 7643 ``returned``.

    ``attributes`` and ``excluded`` are parsed attribute paths. ``attributes`` None is not given;
    empty, it was given naming nothing the resource type has, and leaves the ``always`` attributes
    alone. When both are given, ``attributes`` selects first and ``excluded`` then removes.
    ``specified``: what a write's request specified (:func:`specified_keys`, :func:`changed_keys`):
    its ``request`` attributes and sub-attributes there the response shows as if listed.
    """
    wanted = _index(rt, attributes) if attributes is not None else None
    dropped = _index(rt, excluded) if excluded else {}
    given: Specified = specified or {}
    out: dict[str, Any] = {}
    schemas_key: str | None = None
    for key, value in representation.items():
        if key.lower() == "schemas":
            schemas_key = key
            continue
        ext = rt.extension(key)
        if ext is not None:
            urn = ext.id.lower()
            if not isinstance(value, Mapping):
                continue
            whole = wanted is not None and (urn, "") in wanted
            gone = (urn, "") in dropped  # the extension excluded: but for its "always" attributes
            inner: dict[str, Any] = {}
            for name, inner_value in value.items():
                attribute = ext.attribute(name)
                if gone and (attribute is None or attribute.returned is not Returned.ALWAYS):
                    continue
                kept = _attribute(
                    attribute, (urn, name.lower()), inner_value, None if whole else wanted, dropped, given
                )
                if kept is not _DROP:
                    inner[name] = kept
            if inner:
                out[key] = inner
            continue
        resolved = rt.attribute(None, key)
        attribute = resolved[1] if resolved is not None else None
        kept = _attribute(attribute, (None, key.lower()), value, wanted, dropped, given)
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
    attribute: Attribute | None,
    key: Key,
    value: Any,
    wanted: _Index | None,
    dropped: _Index,
    specified: Specified,
) -> Any:
    """One top-level attribute's projected value, or ``_DROP``."""
    returned = attribute.returned if attribute is not None else Returned.DEFAULT
    if returned is Returned.NEVER:
        return _DROP
    requested_subs = specified.get(key, _NONE)
    if returned is Returned.ALWAYS:
        if attribute is None or not attribute.sub_attributes:
            return value
        # returned whatever the parameters say, but its sub-attributes by their own returned
        listed = wanted.get(key) if wanted is not None else None
        return _complex(attribute, value, listed, set(), requested_subs)
    subs: set[str] | None = None
    requested = key in specified
    if wanted is not None:
        if key not in wanted:
            return _DROP
        subs = wanted[key]
    elif returned is Returned.REQUEST and not requested:
        return _DROP
    if key in dropped and dropped[key] is None:
        return _DROP
    excluded_subs = dropped.get(key) or set()
    if attribute is None or not attribute.sub_attributes:
        return value
    return _complex(attribute, value, subs, excluded_subs, requested_subs)


def _complex(
    attribute: Attribute,
    value: Any,
    subs: set[str] | None,
    excluded_subs: set[str],
    requested: frozenset[str],
) -> Any:
    if isinstance(value, list):
        elements = [_sub_attributes(attribute, e, subs, excluded_subs, requested) for e in value]
        kept = [e for e in elements if e is not _DROP]
        return kept if kept else _DROP
    return _sub_attributes(attribute, value, subs, excluded_subs, requested)


def _sub_attributes(
    attribute: Attribute,
    value: Any,
    subs: set[str] | None,
    excluded_subs: set[str],
    requested: frozenset[str],
) -> Any:
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
            shown = returned is Returned.DEFAULT or (returned is Returned.REQUEST and low in requested)
            keep = shown and low not in excluded_subs
        if keep:
            out[name] = sub_value
    return out if out else _DROP


def select_elements(
    rt: ResourceType,
    representation: Mapping[str, Any],
    selected: Sequence[PatchPath] = (),
    removed: Sequence[PatchPath] = (),
) -> Mapping[str, Any]:
    """The values of multi-valued attributes that value filters in ``attributes`` (``selected``)
    and ``excludedAttributes`` (``removed``) pick, before :func:`project` applies the rest.

    Not in RFC 7644 (its attribute notation has no filters); Microsoft's SCIM validator sends
    ``attributes=emails[type eq "work"]`` and expects the work address. An attribute named in
    ``selected`` keeps the values matching any of its filters (and is left out when none does);
    one in ``removed`` loses the values a filter matches, or, with a sub-attribute
    (``emails[type eq "work"].display``), that sub-attribute of each. The representation is
    copied where it changes."""
    out: dict[str, Any] | None = None
    for paths, keep in ((selected, True), (removed, False)):
        by_key: dict[Key, list[PatchPath]] = {}
        for path in paths:
            key = (path.path.urn.lower() if path.path.urn else None, path.path.attr.lower())
            by_key.setdefault(key, []).append(path)
        for (urn, attr), group in by_key.items():
            source = out if out is not None else representation
            host_key, host = _host(source, urn)
            if host is None:
                continue
            name = next((k for k in host if k.lower() == attr), None)
            values = host.get(name) if name is not None else None
            if name is None or not isinstance(values, list):
                continue
            found = rt.attribute(group[0].path.urn, group[0].path.attr)
            attribute = found[1] if found is not None else None
            chosen = [v for v in (_pick(rt, attribute, v, group, keep) for v in values) if v is not _DROP]
            if out is None:
                out = dict(representation)
            if host_key is None:
                target = out
            else:
                target = dict(out[host_key])
                out[host_key] = target
            if chosen:
                target[name] = chosen
            else:
                del target[name]
    return representation if out is None else out


def _host(representation: Mapping[str, Any], urn: str | None) -> tuple[str | None, Mapping[str, Any] | None]:
    """Where an attribute of extension ``urn`` (None: the core schema) lives: its key and object."""
    if urn is None:
        return None, representation
    for key, value in representation.items():
        if key.lower() == urn:
            return key, value if isinstance(value, Mapping) else None
    return None, None


def _pick(
    rt: ResourceType, attribute: Attribute | None, value: Any, paths: list[PatchPath], keep: bool
) -> Any:
    """One value of a multi-valued attribute after the value filters ``paths`` of ``attributes``
    (``keep``) or ``excludedAttributes``: itself, without some sub-attributes, or ``_DROP``."""
    tested = is_element(value, attribute)
    matching = [p for p in paths if tested and p.filter is not None and matches_element(p.filter, value, rt)]
    if keep:
        return value if matching else _DROP
    if not matching:
        return value
    subs = set()
    for p in matching:
        if p.path.sub is None:
            return _DROP
        subs.add(p.path.sub.lower())
    rest = {k: v for k, v in value.items() if k.lower() not in subs}
    return rest if rest else _DROP


def specified_keys(rt: ResourceType, data: Mapping[str, Any]) -> Specified:
    """What ``data`` (a POST's or PUT's resource) specifies: each top-level attribute (core, and
    each extension's) it holds a value of, with the sub-attributes its value gives."""
    return {key: _sub_names(value) for key, value in _values(rt, data).items()}


def changed_keys(rt: ResourceType, before: Mapping[str, Any], after: Mapping[str, Any]) -> Specified:
    """What a PATCH specified by changing it: each top-level attribute whose value differs between
    ``before`` and ``after``, with the sub-attributes whose values differ (a replace of ``cx.a``
    specifies ``cx`` and ``a``, not ``cx``'s other sub-attributes)."""
    old, new = _values(rt, before), _values(rt, after)
    out: dict[Key, frozenset[str]] = {}
    for key in old.keys() | new.keys():
        was, now = old.get(key, _DROP), new.get(key, _DROP)
        if was != now:
            out[key] = frozenset(sub for sub, _ in _sub_pairs(was) ^ _sub_pairs(now))
    return out


def named_keys(named: Iterable[tuple[AttrPath, Any]], changed: Specified | None = None) -> Specified:
    """What a PATCH specified: ``changed`` (:func:`changed_keys`) and each attribute its
    operations name, as ``(path, value)`` (``emails[type eq "work"].value`` names ``emails`` and
    ``value``; a path to a complex attribute, the sub-attributes its value gives), changed or not
    (a replace by the value already there specifies it too)."""
    out = dict(changed or {})
    for path, value in named:
        key = (path.urn.lower() if path.urn else None, path.attr.lower())
        subs = frozenset({path.sub.lower()}) if path.sub else _sub_names(value)
        out[key] = out.get(key, _NONE) | subs
    return out


def _sub_names(value: Any) -> frozenset[str]:
    return frozenset(sub for sub, _ in _sub_pairs(value))


def _sub_pairs(value: Any) -> set[tuple[str, str]]:
    """(sub-attribute name lower-cased, its value's text) of a complex value, or of each element
    of a multi-valued one; none for a simple value."""
    elements = value if isinstance(value, list) else [value]
    return {(k.lower(), repr(v)) for e in elements if isinstance(e, Mapping) for k, v in e.items()}


def _values(rt: ResourceType, data: Mapping[str, Any]) -> dict[Key, Any]:
    out: dict[Key, Any] = {}
    for key, value in data.items():
        ext = rt.extension(key)
        if ext is None:
            out[(None, key.lower())] = value
        elif isinstance(value, Mapping):
            urn = ext.id.lower()
            out.update(((urn, name.lower()), inner) for name, inner in value.items())
    return out
