"""POST/PUT bodies parsed into the stored attribute dict (RFC 7643 sections 2, 3 and 7; RFC 7644
sections 3.3 and 3.5.1), and the resource-level checks: required, immutable, allowed roles.

Stored shape: canonical attribute names; extension attributes nested under their schema URN as the
schema spells it; no ``id``, ``meta`` or ``schemas``; ``externalId`` kept; for a Group, ``members``
kept as ``[{"value", "type"?, "display"?}]`` for the server to move into the membership relation.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from provisor.scim.compat import CompatSettings, bodies
from provisor.scim.compat.patch_ops import owning_extension
from provisor.scim.errors import InvalidSyntax, InvalidValue, Mutability
from provisor.scim.resources.plans import CORE_KEY, MISSING, SCHEMAS_KEY, Plan, TopLevel, plan_for, remember
from provisor.scim.resources.values import compile_check, top_level_fast_type
from provisor.scim.schema.model import Attribute, ResourceType, Schema


def parse_resource(
    rt: ResourceType,
    body: Mapping[str, Any],
    compat: CompatSettings,
    *,
    allowed_roles: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Validate a POST/PUT body (RFC 7643 sections 2, 7; RFC 7644 3.3, 3.5.1) into the stored attribute dict.

    - ``schemas`` must list the core schema; other URNs must be declared extensions (or the ADSCIM
      Group URI, Q9), or are ignored with ``unknown_attributes_ignored`` (1.3), as the attributes
      of an undeclared extension are. Extension attributes whose URN is not listed need Q7.
    - Keys are resolved case-insensitively; an extension URN key holds an object of that
      extension's attributes (and the core schema's URN one of core attributes, as a path-less
      PATCH value reads it); ``urn:...:User:userName`` and ``urn:...:enterprise:2.0:User:department``
      style fully-qualified keys are accepted too (RFC 7644 section 3.10). An attribute named
      twice, in any of these forms or cases, is 400 (``schemas`` too).
    - readOnly attributes (``id``, ``meta``, ``groups``) are ignored (RFC 7643 section 7); the
      writeOnly ``password`` is checked and dropped: Provisor never stores it.
    - Unknown attributes: 400 invalidValue, or dropped with ``unknown_attributes_ignored`` (1.3).
      A declared attribute named by a path (``name.givenName``, Q6; ``urn:...:User.department``,
      Q15) is taken as that attribute when its switch is on, and is 400 when it is off: never
      dropped as unknown (:func:`_path_key`).
    - Required attributes (``userName``, ``displayName``) and allowed roles are checked last.
    """
    if type(body) is not dict and not isinstance(body, Mapping):  # a JSON object skips the ABC check
        raise InvalidSyntax(f"the {rt.name} body must be a JSON object")
    plan = plan_for(rt)
    try:
        declared = _check_schemas(rt, plan, body, compat)
    except InvalidValue:
        # the first spelling of ``schemas`` was read; a second one is refused whichever comes first
        if sum(1 for k in body if isinstance(k, str) and k.lower() == "schemas") > 1:
            raise InvalidValue("schemas is given twice") from None
        raise
    out: dict[str, Any] = {}
    by_path: dict[str, tuple[TopLevel, dict[str, Any]]] = {}  # sub-attributes given by path keys
    keys = plan.keys
    schemas_seen = False
    core: list[tuple[Any, Any]] = []  # the attributes of an object keyed by the core schema's URN
    for key, value in chain(body.items(), core):
        if not isinstance(key, str):
            raise InvalidSyntax(f"the {rt.name} body has a non-string key")
        resolved = keys.get(key, MISSING)
        if resolved is MISSING:
            resolved = remember(keys, key, _resolve_key(rt, key))
        if type(resolved) is TopLevel:  # the usual case, first; the kinds below exclude each other
            kind = type(value)
            if resolved.plain and kind is resolved.fast and (kind is not str or "\x00" not in value):
                # what _store does for such a value
                if resolved.name in out:
                    raise InvalidValue(f"{resolved.where} is given twice")
                out[resolved.name] = value
            else:
                _store(out, declared, resolved, value, compat)
            continue
        if resolved is CORE_KEY:  # read after the body's own keys, as if they were among them
            if value is None:
                continue
            if type(value) is not dict and not isinstance(value, Mapping):
                raise InvalidValue(f"{key} must be an object holding the core schema's attributes")
            core.extend(
                (k, v) for k, v in value.items() if not (isinstance(k, str) and k.lower() == "schemas")
            )
            continue
        if resolved is SCHEMAS_KEY:
            if schemas_seen:  # two spellings (RFC 7643 2.1: names are case-insensitive): which one?
                raise InvalidValue("schemas is given twice")
            schemas_seen = True
            continue
        if isinstance(resolved, Schema):
            ext = resolved
            if value is None:
                continue
            if type(value) is not dict and not isinstance(value, Mapping):
                raise InvalidValue(f"{ext.id} must be an object holding that extension's attributes")
            inner_keys = plan.extension_keys.get(ext.id)
            if inner_keys is None:
                inner_keys = plan.extension_keys[ext.id] = {}
            for inner_key, inner_value in value.items():
                if not isinstance(inner_key, str):
                    raise InvalidSyntax(f"{ext.id} has a non-string key")
                found = inner_keys.get(inner_key, MISSING)
                if found is MISSING:
                    found = remember(inner_keys, inner_key, _resolve_inner(rt, ext, inner_key))
                if found is None:
                    _unknown(f"{ext.id}:{inner_key}", compat)
                    continue
                _store(out, declared, found, inner_value, compat)
            continue
        if resolved is None:
            path_key = _path_key(rt, key, compat)
            if path_key is None:
                _unknown(key, compat)
            elif path_key.sub is None:
                _store(out, declared, path_key.top, value, compat)
            else:
                parts = by_path.setdefault(path_key.top.where, (path_key.top, {}))[1]
                if path_key.sub.name in parts:
                    raise InvalidValue(f"{path_key.top.where}.{path_key.sub.name} is given twice")
                parts[path_key.sub.name] = value
            continue
        _store(out, declared, resolved, value, compat)
    for top, parts in by_path.values():
        _store(out, declared, top, parts, compat)
    _check_required(plan, out)
    check_roles(out, allowed_roles)
    return out


def _resolve_key(rt: ResourceType, key: str) -> Any:
    """What a body key names; the general path of :func:`parse_resource`, memoised per exact key:
    ``schemas`` (any case), an extension URN (any case) holding an object, or a top-level attribute,
    plain or fully qualified (RFC 7644 section 3.10); None when no schema declares it."""
    low = key.lower()
    if low == "schemas":
        return SCHEMAS_KEY
    if low == rt.schema.id.lower():
        return CORE_KEY
    ext = rt.extension(key)
    if ext is not None:
        return ext
    urn, name = rt.split_urn(key)
    resolved = rt.attribute(urn, name)
    if resolved is None:
        return None
    ext_id, attribute = resolved
    return _top_level(rt, ext_id, attribute)


@dataclass(frozen=True, slots=True)
class _PathKey:
    """A body key that names a declared attribute by a path rather than by its name: a
    sub-attribute (``name.givenName``, ``urn:...:User:name.givenName``), or an attribute whose
    schema URN ends in a ``.`` (``urn:...:enterprise:2.0:User.department``)."""

    top: TopLevel
    sub: Attribute | None


def _path_key(rt: ResourceType, key: str, compat: CompatSettings) -> _PathKey | None:
    """``key`` as a :class:`_PathKey` when the switches that allow the form are on; None when it
    names no declared attribute (an unknown attribute). A declared attribute named in a form whose
    switch is off is 400: ignoring it as unknown would lose the value without a word.

    - Q15 (``extension_dot_names``): a ``.`` for the ``:`` after the schema URN, as in paths.
    - Q7 (``undeclared_extension_schemas``): the attribute of the one extension that declares it,
      named without its URN (``department``, ``manager``: Entra's older create sample sends them
      at the top level).
    - Q6 (``pathless_dotted_keys``): a sub-attribute of a single-valued complex attribute as a
      dotted key, as in a path-less PATCH value; the sub-attributes so given are gathered into one
      object (the attribute given also as an object is "given twice").
    """
    urn, rest = rt.split_urn(key, dotted=True)
    if urn is None and key[:4].lower() == "urn:":
        return None
    dotted_urn = urn is not None and key[len(urn)] == "."
    head, dot, sub_name = rest.partition(".")
    found = rt.attribute(urn, head)
    unqualified = False
    if found is None and urn is None and (owner := owning_extension(rt, head)) is not None:
        found, unqualified = rt.attribute(owner, head), True
    if found is None:
        return None
    ext_id, attribute = found
    sub = attribute.sub(sub_name) if dot else None
    if dot and sub is None:
        return None
    if not dot and not dotted_urn and not unqualified:
        return None  # resolved by _resolve_key; not reached
    top = _top_level(rt, ext_id, attribute)
    if top.read_only:
        return _PathKey(top, sub)  # ignored on input, in any form
    if unqualified and not bodies.undeclared_extension_allowed(compat):
        raise InvalidValue(f"{key!r} is an attribute of {ext_id}; send it as {ext_id}:{attribute.name}")
    if dotted_urn and not compat.on("extension_dot_names"):
        raise InvalidValue(
            f"{key!r}: the schema URN is followed by '.', read as ':' only with extension_dot_names on"
        )
    if sub is not None:
        if not compat.on("pathless_dotted_keys"):
            raise InvalidValue(
                f"{key!r} names a sub-attribute; send it inside the {attribute.name} object "
                "(dotted keys are read only with pathless_dotted_keys on)"
            )
        if attribute.multi_valued:
            raise InvalidValue(f"{key!r}: {attribute.name} is multi-valued; send it as a list of objects")
    return _PathKey(top, sub)


def _resolve_inner(rt: ResourceType, ext: Schema, key: str) -> TopLevel | None:
    """An attribute key inside an extension object (any case), memoised per exact key."""
    found = ext.attribute(key)
    if found is None:
        return None
    return _top_level(rt, ext.id, found)


def _top_level(rt: ResourceType, ext_id: str | None, attribute: Attribute) -> TopLevel:
    where = attribute.name if ext_id is None else f"{ext_id}:{attribute.name}"
    return TopLevel(
        ext_id,
        attribute,
        where,
        compile_check(rt, ext_id, attribute, where),
        top_level_fast_type(ext_id, attribute),
    )


def _check_schemas(rt: ResourceType, plan: Plan, body: Mapping[str, Any], compat: CompatSettings) -> set[str]:
    """``schemas`` (RFC 7643 section 3): a list of strings holding the core URN; returns the
    lower-cased extension URNs it declares."""
    # The first key naming ``schemas`` in any case; the exact spelling is tested before lowering.
    schemas = None
    for k, v in body.items():
        if k == "schemas" or (isinstance(k, str) and k.lower() == "schemas"):
            schemas = v
            break
    if type(schemas) is not list and not isinstance(schemas, (list, tuple)):  # a list, usually
        raise InvalidValue(f"schemas must be a list of schema URNs including {rt.schema.id}")
    for urn in schemas:
        if type(urn) is not str and not isinstance(urn, str):
            raise InvalidValue(f"schemas must be a list of schema URNs including {rt.schema.id}")
    declared: set[str] = set()
    has_core = False
    for urn in schemas:
        low = urn.lower()
        if low == plan.core_lower:
            has_core = True
        elif low in plan.extensions:  # rt.extension(urn) is not None
            declared.add(low)
        elif not bodies.is_ignored_schema_uri(urn, compat) and not bodies.unknown_attributes_ignored(compat):
            allowed = ", ".join(rt.schema_ids)
            raise InvalidValue(
                f"schemas lists {urn!r}, which is not a schema of {rt.name}; allowed: {allowed}"
            )
    if not has_core:
        raise InvalidValue(f"schemas must include {rt.schema.id}")
    return declared


def _require_declared(ext_id: str, declared: set[str], compat: CompatSettings) -> None:
    """RFC 7643 section 3: extension attributes need their URN in ``schemas`` unless Q7 is on."""
    if ext_id.lower() not in declared and not bodies.undeclared_extension_allowed(compat):
        raise InvalidValue(f"attributes of {ext_id} are present but schemas does not list {ext_id}")


def _unknown(name: str, compat: CompatSettings) -> None:
    """An attribute no schema declares: ignored with ``unknown_attributes_ignored`` (1.3), else 400."""
    if not bodies.unknown_attributes_ignored(compat):
        raise InvalidValue(f"unknown attribute '{name}'")


def _store(
    out: dict[str, Any],
    declared: set[str],
    resolved: TopLevel,
    value: Any,
    compat: CompatSettings,
) -> None:
    """Validate one attribute into ``out``; ``declared`` holds the lower-cased URNs in ``schemas``."""
    if resolved.read_only:
        return  # id, meta, groups, ...: ignored on input (RFC 7643 section 7, RFC 7644 section 3.3)
    ext_id = resolved.ext_id
    target = out
    if ext_id is not None:
        held = out.get(ext_id)  # only this function puts an extension's dict into ``out``
        if held is None:
            held = out[ext_id] = {}
        target = held
    name = resolved.name
    if name in target:
        raise InvalidValue(f"{resolved.where} is given twice")  # where: name, or f"{ext_id}:{name}"
    # A value of the fast type is what validate_attribute_value returns for it (top_level_fast_type);
    # anything else goes through validate_attribute_value as compiled for the attribute.
    # (a str holding U+0000 is refused by the check; see top_level_fast_type)
    kind = type(value)
    if kind is resolved.fast and (kind is not str or "\x00" not in value):
        normalised = value
    else:
        normalised = resolved.check(value, compat)
    if normalised is not None:
        if ext_id is not None and resolved.ext_lower not in declared:
            _require_declared(ext_id, declared, compat)
        target[name] = normalised
    if ext_id is not None and not target:
        del out[ext_id]


def check_required(rt: ResourceType, data: Mapping[str, Any]) -> None:
    """Every ``required`` attribute has a value (RFC 7643 section 7, "required"; section 2.5).

    Missing, ``null``, an empty list and an empty or blank string all count as missing: a
    ``userName`` or Group ``displayName`` of ``""`` is useless for matching (entra-behaviour.md 1.3).
    Required extensions (``schemaExtensions[].required``) must be present, with their required
    attributes; an optional extension may be left out, and only when it is present must its
    required attributes be (RFC 7643 section 3.3).
    """
    _check_required(plan_for(rt), data)


def _check_required(plan: Plan, data: Mapping[str, Any]) -> None:
    """:func:`check_required` with the plan of the resource type (its required attributes, in
    schema order, computed once per resource type)."""
    for attribute in plan.required_core:
        if _missing(data.get(attribute.name)):
            raise RequiredMissing(f"{attribute.name} is required", (attribute.name,))
    for ext, ext_required, required in plan.required_extensions:
        if not ext_required and not required:
            continue
        values = data.get(ext.id)
        if not values:
            if ext_required:
                raise RequiredMissing(f"the extension {ext.id} is required", (ext.id,))
            continue  # an optional extension left out: its required attributes with it
        for attribute in required:
            if _missing(values.get(attribute.name) if isinstance(values, Mapping) else None):
                raise RequiredMissing(f"{ext.id}:{attribute.name} is required", (ext.id, attribute.name))


class RequiredMissing(InvalidValue):
    """400 invalidValue: a required attribute (``keys``: its place in a document) has no value."""

    def __init__(self, detail: str, keys: tuple[str, ...]) -> None:
        super().__init__(detail)
        self.keys = keys

    def value_in(self, data: Mapping[str, Any]) -> Any:
        """What ``data`` holds at :attr:`keys` (None when nothing)."""
        value: Any = data
        for key in self.keys:
            value = value.get(key) if isinstance(value, Mapping) else None
        return value

    def removed(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
        """Whether ``before`` had a value here and ``after`` has it unassigned (nothing, null, an
        empty list or object: RFC 7643 section 2.5), rather than a value that is blank."""
        return not _missing(self.value_in(before)) and self.value_in(after) in (None, [], {})


def _missing(value: Any) -> bool:
    if type(value) is str:  # the usual case (a str is never equal to [] or {}), without building them
        return not value.strip()
    return value is None or value == [] or value == {} or (isinstance(value, str) and not value.strip())


def keep_immutable(rt: ResourceType, old: Mapping[str, Any], new: MutableMapping[str, Any]) -> None:
    """``immutable`` attributes keep their value once set (RFC 7643 section 7; RFC 7644 3.5.1).

    An unassigned immutable attribute may be set; a set one must come back equal (case-insensitively
    unless ``caseExact``), and removing it is a change too: 400 ``mutability``. One given back in
    another case is the same value, and ``new`` gets the stored spelling back: the stored value
    does not change ("SHALL NOT be updated"). Single-valued complex attributes are checked per
    sub-attribute. Immutable sub-attributes of multi-valued attributes (``members.value``) are not
    checked here: replacing an element is a removal plus an addition, which is allowed.
    """
    # Only immutable attributes and immutable sub-attributes of single-valued complex attributes can
    # fail; the plan lists those, per schema in schema order (the walk over every attribute it mirrors
    # compared the others without effect).
    for ext_id, checks in plan_for(rt).immutable:
        old_values = old if ext_id is None else old.get(ext_id) or {}
        new_values = new if ext_id is None else new.get(ext_id) or {}
        for attribute, where, itself, subs in checks:
            before, after = old_values.get(attribute.name), new_values.get(attribute.name)
            if itself and before is not None:
                if not _same(attribute, before, after):
                    raise Mutability(f"{where} is immutable and cannot be changed once set")
                if after != before:
                    new_values[attribute.name] = before
            if subs:
                before_map = before if isinstance(before, Mapping) else {}
                after_map = after if isinstance(after, MutableMapping) else {}
                for sub in subs:
                    sub_before = before_map.get(sub.name)
                    if sub_before is None:
                        continue
                    sub_after = after_map.get(sub.name)
                    if not _same(sub, sub_before, sub_after):
                        raise Mutability(f"{where}.{sub.name} is immutable and cannot be changed once set")
                    if sub_after != sub_before:
                        after_map[sub.name] = sub_before


def _same(attribute: Attribute, a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str) and not attribute.case_exact:
        return a.lower() == b.lower()
    return bool(a == b)


def check_roles(
    data: Mapping[str, Any], allowed_roles: Sequence[str] | None, held: Mapping[str, Any] | None = None
) -> None:
    """Every ``roles[].value`` is one of ``allowed_roles``, compared case-insensitively.

    For tenants that accept only some app roles, e.g. Clarizen One where only ``User`` is valid
    (entra-behaviour.md section 5). ``None`` allows any role. ``held``: the resource a PATCH
    changed; the roles it held already are not the request's, so a role allowed when it was
    given (or before the tenant's list was narrowed) does not stop a PATCH that leaves it as
    it is (Entra disabling the user, say).
    """
    if allowed_roles is None:
        return
    allowed = {r.lower() for r in allowed_roles}
    roles = data.get("roles")
    if not isinstance(roles, list | tuple):
        return
    kept: set[str] = set()
    if held is not None and isinstance(held.get("roles"), list | tuple):
        kept = {_role_value(r).lower() for r in held["roles"] if isinstance(_role_value(r), str)}
    for role in roles:
        value = _role_value(role)
        if isinstance(value, str) and value.lower() in kept:
            continue
        if not isinstance(value, str) or value.lower() not in allowed:
            named = "a role with no value" if value is None else f"role {value!r}"
            raise InvalidValue(f"{named} is not allowed; allowed roles: {', '.join(allowed_roles)}")


def _role_value(role: Any) -> Any:
    return role.get("value") if isinstance(role, Mapping) else role
