"""Attribute mappings and templates as data (entra-behaviour.md 3.1 mapping model, 2.4 matching).

A template is what the Entra portal shows under "Attribute Mappings" for one application: per
object type, the list of attribute mappings, plus the target's attribute list ("Edit attribute
list", 2.15) so that targets the app accepts but no mapping feeds stay visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from provisor.engine.jobs.model import ApplyMapping, MappingConfig, MappingObject, MappingType

__all__ = [
    "ENTERPRISE_URN",
    "AttributeMapping",
    "Template",
    "apply_overrides",
    "constant",
    "direct",
    "expression",
    "is_reference_target",
]

#: The enterprise User extension (RFC 7643 section 4.3); its attributes are written ``URN:attr``.
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

#: Targets of type Reference (section 5: enterprise ``manager``, group ``members``): their values
#: are source anchors resolved to target ids after the object exists (1.3 step 5, 2.5 step 6).
_REFERENCE_TARGETS = frozenset({f"{ENTERPRISE_URN}:manager".casefold(), "manager", "members"})


def is_reference_target(target: str) -> bool:
    """True for target attributes of type Reference (section 5: manager, members)."""
    return target.casefold() in _REFERENCE_TARGETS


@dataclass(frozen=True, slots=True)
class AttributeMapping:
    """One attribute mapping (section 3.1).

    ``target`` is a SCIM path as Entra writes it: ``displayName``, ``name.givenName``,
    ``emails[type eq "work"].value`` or ``<extension URN>:<attribute>``. Exactly one of
    ``source`` (Direct), ``constant`` (Constant) or ``expression`` (Expression) is set; none for
    kind None (leave the target untouched; write ``default_value`` if the target is empty).
    ``default_value`` replaces a null value at creation only, never on update (3.1).
    ``matching_precedence`` marks a matching attribute; lower is tried first (2.4).
    """

    target: str
    kind: MappingType
    source: str | None = None
    constant: str | None = None
    expression: str | None = None
    default_value: str | None = None
    apply: ApplyMapping = ApplyMapping.ALWAYS
    matching_precedence: int | None = None

    def __post_init__(self) -> None:
        given = {
            MappingType.DIRECT: self.source,
            MappingType.CONSTANT: self.constant,
            MappingType.EXPRESSION: self.expression,
        }
        for kind, value in given.items():
            if (kind is self.kind) != (value is not None):
                raise ValueError(
                    f"mapping for {self.target!r} of kind {self.kind.value} "
                    f"{'needs' if kind is self.kind else 'cannot have'} a {kind.value.lower()} value"
                )
        if self.target.casefold() == "id":
            raise ValueError("the target primary key 'id' cannot be mapped (entra-behaviour.md 2.15)")

    @property
    def reference(self) -> bool:
        """The target is of type Reference (manager, members): values are source anchors."""
        return is_reference_target(self.target)

    @property
    def matching(self) -> bool:
        """ "Match objects using this attribute" (2.4)."""
        return self.matching_precedence is not None

    @classmethod
    def from_config(cls, config: MappingConfig) -> AttributeMapping:
        """A job file's mapping override (already validated by the job loader)."""
        return cls(
            target=config.target,
            kind=config.type,
            source=config.source,
            constant=config.constant,
            expression=config.expression,
            default_value=config.default_value,
            apply=config.apply,
            matching_precedence=config.matching_precedence,
        )


def direct(target: str, source: str, *, precedence: int | None = None) -> AttributeMapping:
    """A Direct mapping ``source -> target``."""
    return AttributeMapping(target, MappingType.DIRECT, source=source, matching_precedence=precedence)


def constant(target: str, value: str) -> AttributeMapping:
    """A Constant mapping."""
    return AttributeMapping(target, MappingType.CONSTANT, constant=value)


def expression(target: str, text: str) -> AttributeMapping:
    """An Expression mapping."""
    return AttributeMapping(target, MappingType.EXPRESSION, expression=text)


@dataclass(frozen=True, slots=True)
class Template:
    """An application's default mappings (section 3.1) and its target attribute lists.

    ``user_attributes``/``group_attributes`` are the target schema's attributes as the portal's
    attribute list shows them (section 5 for Clarizen One); every mapping targets one of them.
    """

    name: str
    user_mappings: tuple[AttributeMapping, ...]
    group_mappings: tuple[AttributeMapping, ...]
    user_attributes: tuple[str, ...] = ()
    group_attributes: tuple[str, ...] = ()

    def mappings(self, kind: MappingObject) -> tuple[AttributeMapping, ...]:
        """The mappings for users or groups."""
        return self.user_mappings if kind is MappingObject.USER else self.group_mappings

    @property
    def unmapped_user_attributes(self) -> tuple[str, ...]:
        """Target user attributes no mapping feeds (listed, left untouched)."""
        mapped = {m.target.casefold() for m in self.user_mappings}
        return tuple(a for a in self.user_attributes if a.casefold() not in mapped)


def _overlay(
    base: tuple[AttributeMapping, ...], overrides: Sequence[AttributeMapping]
) -> tuple[AttributeMapping, ...]:
    by_target = {m.target.casefold(): m for m in overrides}
    out = [by_target.pop(m.target.casefold(), m) for m in base]
    added = [m for m in overrides if m.target.casefold() in by_target]
    merged = out + added
    # An override that claims a matching precedence takes it from a template mapping (2.4:
    # precedences are unique); the template mapping stays, as a non-matching mapping.
    claimed = {m.matching_precedence for m in overrides if m.matching_precedence is not None}
    return tuple(
        m
        if m in overrides or m.matching_precedence not in claimed
        else AttributeMapping(
            m.target, m.kind, m.source, m.constant, m.expression, m.default_value, m.apply, None
        )
        for m in merged
    )


def apply_overrides(template: Template, overrides: Sequence[MappingConfig]) -> Template:
    """``template`` with a job's mapping overrides (section 3.1): an override replaces the
    template mapping with the same target (case-insensitive) of the same object type, or is
    added after the template's mappings. Order is otherwise kept."""
    users = [AttributeMapping.from_config(o) for o in overrides if o.object is MappingObject.USER]
    groups = [AttributeMapping.from_config(o) for o in overrides if o.object is MappingObject.GROUP]
    return Template(
        name=template.name,
        user_mappings=_overlay(template.user_mappings, users),
        group_mappings=_overlay(template.group_mappings, groups),
        user_attributes=_listed(template.user_attributes, users),
        group_attributes=_listed(template.group_attributes, groups),
    )


def _listed(attributes: tuple[str, ...], overrides: Sequence[AttributeMapping]) -> tuple[str, ...]:
    # An override may feed an attribute the template does not list (a custom extension
    # attribute, added with "Edit attribute list", 2.15): the list grows with it.
    known = {a.casefold() for a in attributes}
    extra = [m.target for m in overrides if m.target.casefold() not in known]
    return attributes + tuple(dict.fromkeys(extra))
