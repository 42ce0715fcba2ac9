"""Per-resource-type lookup tables, computed once and cached, for the per-request hot paths.

Everything here is derived from a :class:`~provisor.scim.schema.ResourceType` alone (no compat
switch), so a plan is valid for as long as its resource type lives. Resource types are frozen but
hashing one walks its whole schema tree, so plans are cached by identity: ``id(rt)``, with the
plan holding ``rt`` itself so the id cannot be reused while the entry exists.

The plans only precompute what the general code in :mod:`provisor.scim.resources.parse` and
:mod:`provisor.scim.resources.representation` would compute per call; each use cites the general
path it mirrors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from provisor.scim.compat import CompatSettings
from provisor.scim.filter.ast import AttrPath, PatchPath
from provisor.scim.schema.model import (
    COMMON_ATTRIBUTES,
    Attribute,
    AttributeType,
    Mutability,
    ResourceType,
    Returned,
    Schema,
)

#: The plans of at most this many resource types are kept (real servers have two); past it the
#: cache starts afresh, so ad-hoc resource types (tests) cannot grow it without bound.
_MAX_PLANS = 64
#: Resolved keys remembered per plan; keys past it are resolved every time (bounded memory even when
#: clients send ever-new unknown attribute names).
MAX_MEMO_KEYS = 2048

#: ``resolve_key`` result for the ``schemas`` key.
SCHEMAS_KEY: Any = object()
#: A body key naming the core schema (any case): an object of core attributes, as an extension's
#: URN holds that extension's (``parse_resource``; a path-less PATCH value reads it so too).
CORE_KEY: Any = object()


#: (extension URN or None, top-level attribute, sub-attribute or None) of a PATCH path
PatchTarget = tuple[str | None, Attribute, Attribute | None]


@dataclass(slots=True)
class TopLevel:
    """A resolved top-level attribute: its extension URN (None for core/common), definition and the
    name ``parse._store`` uses in messages (``name`` or ``urn:name``)."""

    ext_id: str | None
    attribute: Attribute
    where: str
    #: ``validate_attribute_value`` of this attribute, specialised once (``values.compile_check``)
    check: Callable[[Any, CompatSettings], Any]
    #: values of this type pass ``validate_attribute_value`` unchanged (``top_level_fast_type``)
    fast: type | None = None
    #: ``attribute.name``, whether the attribute is readOnly, and ``ext_id.lower()``
    name: str = field(init=False)
    read_only: bool = field(init=False)
    ext_lower: str | None = field(init=False)
    #: a writable core or common attribute: stored at the top level, no ``schemas`` check
    plain: bool = field(init=False)

    def __post_init__(self) -> None:
        self.name = self.attribute.name
        self.read_only = self.attribute.mutability is Mutability.READ_ONLY
        self.ext_lower = None if self.ext_id is None else self.ext_id.lower()
        self.plain = self.ext_id is None and not self.read_only


@dataclass(slots=True)
class Plan:
    """The tables of one resource type."""

    rt: ResourceType
    core_lower: str
    #: lower-cased extension URN -> extension schema (``rt.extension`` without the scan)
    extensions: dict[str, Schema]
    #: attributes with ``required`` (``check_required``): core, then per extension
    required_core: tuple[Attribute, ...]
    required_extensions: tuple[tuple[Schema, bool, tuple[Attribute, ...]], ...]
    #: ``keep_immutable``: per schema (None = core), the attributes that can raise there:
    #: (attribute, where, immutable itself, its immutable sub-attributes when single-valued complex)
    immutable: tuple[tuple[str | None, tuple[tuple[Attribute, str, bool, tuple[Attribute, ...]], ...]], ...]
    #: ``to_representation``: core attribute names rendered (returned != never; Group members apart)
    rendered_core: tuple[str, ...]
    #: ``to_representation``: (extension URN, attribute names rendered) per extension
    rendered_extensions: tuple[tuple[str, tuple[str, ...]], ...]
    #: ``render_json``: (extension URN, ``"<URN>":{``) per extension: the URN as a key in JSON text
    extension_keys_json: tuple[tuple[str, str], ...]
    is_group: bool
    #: ``projection``: the top-level attributes returned whatever ``attributes`` says (``id``)
    always_returned: tuple[str, ...]
    #: whether an attribute or sub-attribute is returned only on request (RFC 7643 section 7; an
    #: extension's): then no representation is shown without :func:`projection.project`
    request_returned: bool
    #: exact body key -> SCHEMAS_KEY, CORE_KEY, an extension Schema, a TopLevel, or None (unknown)
    keys: dict[str, Any] = field(default_factory=dict)
    #: extension URN -> exact inner key -> TopLevel or None (unknown)
    extension_keys: dict[str, dict[str, TopLevel | None]] = field(default_factory=dict)
    #: for :mod:`provisor.scim.patch.request`: exact PATCH path text -> its parsed ``PatchPath``
    patch_paths: dict[str, PatchPath] = field(default_factory=dict)
    #: for :mod:`provisor.scim.patch.request`: ``AttrPath`` -> (urn, attribute, sub-attribute)
    patch_targets: dict[AttrPath, tuple[str | None, Attribute, Attribute | None]] = field(
        default_factory=dict
    )


_PLANS: dict[int, Plan] = {}


def plan_for(rt: ResourceType) -> Plan:
    """The (cached) plan of ``rt``."""
    plan = _PLANS.get(id(rt))
    if plan is not None and plan.rt is rt:
        return plan
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    plan = _build(rt)
    _PLANS[id(rt)] = plan
    return plan


def _build(rt: ResourceType) -> Plan:
    schemas: list[tuple[str | None, tuple[Attribute, ...]]] = [
        (None, rt.schema.attributes),
        *((ext.id, ext.attributes) for ext, _ in rt.extensions),
    ]
    immutable = []
    for ext_id, attributes in schemas:
        checks = []
        for attribute in attributes:
            where = attribute.name if ext_id is None else f"{ext_id}:{attribute.name}"
            subs: tuple[Attribute, ...] = ()
            if attribute.type is AttributeType.COMPLEX and not attribute.multi_valued:
                subs = tuple(s for s in attribute.sub_attributes if s.mutability is Mutability.IMMUTABLE)
            itself = attribute.mutability is Mutability.IMMUTABLE
            if itself or subs:
                checks.append((attribute, where, itself, subs))
        if checks:
            immutable.append((ext_id, tuple(checks)))
    is_group = rt.name.lower() == "group"
    return Plan(
        rt=rt,
        core_lower=rt.schema.id.lower(),
        extensions={ext.id.lower(): ext for ext, _ in reversed(rt.extensions)},
        required_core=tuple(a for a in rt.schema.attributes if a.required),
        required_extensions=tuple(
            (ext, required, tuple(a for a in ext.attributes if a.required)) for ext, required in rt.extensions
        ),
        immutable=tuple(immutable),
        rendered_core=tuple(
            a.name
            for a in rt.schema.attributes
            if a.returned is not Returned.NEVER and not (a.name == "members" and is_group)
        ),
        rendered_extensions=tuple(
            (ext.id, tuple(a.name for a in ext.attributes if a.returned is not Returned.NEVER))
            for ext, _ in rt.extensions
        ),
        extension_keys_json=tuple((ext.id, f'"{ext.id}":{{') for ext, _ in rt.extensions),
        is_group=is_group,
        always_returned=tuple(
            a.name
            for a in (*COMMON_ATTRIBUTES, *(a for _, attributes in schemas for a in attributes))
            if a.returned is Returned.ALWAYS
        ),
        request_returned=any(
            a.returned is Returned.REQUEST or any(s.returned is Returned.REQUEST for s in a.sub_attributes)
            for _, attributes in schemas
            for a in attributes
        ),
    )


#: ``dict.get`` default telling "not remembered yet" apart from a remembered None.
MISSING: Any = object()

K = TypeVar("K")
V = TypeVar("V")


def remember(table: dict[K, V], key: K, value: V) -> V:
    """Store ``value`` under ``key`` unless ``table`` holds :data:`MAX_MEMO_KEYS` entries; return it."""
    if len(table) < MAX_MEMO_KEYS:
        table[key] = value
    return value
