"""Attribute-mapping templates: the default mappings a job starts from (entra-behaviour.md 3.1, 5).

    >>> t = template_for("clarizen-one")
    >>> [m.target for m in t.user_mappings if m.matching]
    ['userName']

A job names a template (``template: clarizen-one``) and overrides single mappings
(:func:`apply_overrides`); the result feeds :func:`provisor.engine.mapping.attributes.map_object`.
"""

from __future__ import annotations

from provisor.engine.templates.builtin import (
    ACTIVE_EXPRESSION,
    CLARIZEN_ONE,
    CLARIZEN_USER_ATTRIBUTES,
    ROLE_EXPRESSION,
    SCIM_DEFAULT,
    TEMPLATES,
)
from provisor.engine.templates.model import (
    ENTERPRISE_URN,
    AttributeMapping,
    Template,
    apply_overrides,
    constant,
    direct,
    expression,
    is_reference_target,
)

__all__ = [
    "ACTIVE_EXPRESSION",
    "CLARIZEN_ONE",
    "CLARIZEN_USER_ATTRIBUTES",
    "ENTERPRISE_URN",
    "ROLE_EXPRESSION",
    "SCIM_DEFAULT",
    "TEMPLATES",
    "AttributeMapping",
    "Template",
    "UnknownTemplate",
    "apply_overrides",
    "constant",
    "direct",
    "expression",
    "is_reference_target",
    "template_for",
]


class UnknownTemplate(KeyError):
    """No built-in template has that name."""


def template_for(name: str) -> Template:
    """The built-in template called ``name`` (``clarizen-one`` or ``scim-default``)."""
    try:
        return TEMPLATES[name]
    except KeyError:
        known = ", ".join(sorted(TEMPLATES))
        raise UnknownTemplate(f"unknown mapping template {name!r}; known: {known}") from None
