"""Named, switchable tolerances for what Microsoft Entra ID and Okta send (entra-behaviour.md 1.9).

Every deviation from a strict RFC 7643/7644 reading that Provisor accepts is a :class:`Quirk` in
:data:`QUIRKS`, implemented by a normaliser in this package and switchable per tenant. All are on by
default; :meth:`CompatSettings.strict` gives the strict RFC reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Quirk:
    """One tolerated deviation: its switch name, the quirk id it cites, and what it does."""

    name: str
    cites: str
    summary: str


QUIRKS: tuple[Quirk, ...] = (
    Quirk("capitalised_ops", "Q1", "PATCH op names match case-insensitively (Add/Replace/Remove)."),
    Quirk(
        "string_booleans",
        "Q2/Q16",
        'Boolean attributes accept the strings "True"/"False" in any case, in bodies, PATCH paths and '
        'filters (active eq "True", roles[primary eq "True"].value eq "User").',
    ),
    Quirk(
        "remove_members_with_value",
        "Q3",
        "remove with path 'members' and a value list removes only the listed members.",
    ),
    Quirk(
        "member_display_name",
        "MS-ref",
        "Group members may carry 'displayName' for 'display' (Microsoft's SCIM reference tests).",
    ),
    Quirk(
        "manager_bare_string",
        "Q5",
        "The enterprise manager sent as a bare id string is stored as {value}, and the old docs'"
        " one-element [{value,$ref}] array as its element ({value,$ref}); an empty string or array"
        " clears it.",
    ),
    Quirk(
        "pathless_dotted_keys",
        "Q6",
        "A path-less PATCH value object may use dotted keys (name.givenName) and full-URN keys; "
        "a POST/PUT body may give a sub-attribute by a dotted key.",
    ),
    Quirk(
        "undeclared_extension_schemas",
        "Q7",
        "Extension attributes are accepted even when their URN is missing from 'schemas', and in a "
        "POST/PUT body even without their URN (department, manager at the top level).",
    ),
    Quirk("roles_json_strings", "Q8", "roles values sent as JSON-encoded strings are decoded into objects."),
    Quirk(
        "extension_dot_names",
        "Q15",
        "A '.' for the ':' between a schema URN and an attribute name (urn:...:User.department, as "
        "Entra's customappsso jobs from before December 2018 write) reads as ':', in paths, filters "
        "and body keys.",
    ),
    Quirk(
        "adscim_group_schema",
        "Q9",
        "The ADSCIM Group schema URI Entra adds to 'schemas' is accepted and ignored.",
    ),
    Quirk(
        "unquoted_filter_values",
        "Q11",
        "Filters may use unquoted values (externalId eq jyoung), PATCH-style value paths "
        '(emails[type eq "work"].value eq "x") and unqualified extension names (manager eq "id"), '
        "which sortBy, attributes and excludedAttributes read too.",
    ),
    Quirk(
        "explicit_nulls",
        "Q12",
        "A null among a multi-valued attribute's values, and a PATCH add of null, are ignored."
        " (An attribute or sub-attribute sent as null is unassigned in every mode: RFC 7643"
        " section 2.5.)",
    ),
    Quirk(
        "unmatched_filter_creates",
        "1.4",
        "PATCH add/replace whose valuePath filter matches nothing creates the element.",
    ),
    Quirk(
        "unknown_attributes_ignored",
        "1.3",
        "Attributes no schema declares (e.g. Entra-only names), and URNs in 'schemas' that name no "
        "declared schema, are ignored instead of rejected.",
    ),
    Quirk(
        "unknown_members_skipped",
        "MS-ref",
        "Member values that are no id of the tenant's Users or Groups (a member deleted in the app, the "
        "fake id of Microsoft's reference tests) are left out of the change, not refused.",
    ),
    Quirk(
        "bearer_scheme_variants",
        "Okta",
        "The Secret Token is read from 'Authorization: Bearer Bearer <token>' (Okta's SCIM connection "
        "adds 'Bearer' to a value that has it) and from a bare pvs_ token with no scheme.",
    ),
    Quirk(
        "free_type_labels",
        "RFC 7643 s7",
        "The 'type' of emails, phoneNumbers, ims, photos and addresses may be any label (main, office), "
        "not only the suggested canonical values.",
    ),
    Quirk(
        "active_by_default",
        "Okta",
        "A User created without 'active' is active, and a PUT without it keeps the User's 'active'.",
    ),
    Quirk(
        "group_patch_no_content", "1.6", "PATCH on a Group answers 204 No Content, without the member list."
    ),
    Quirk(
        "pathless_read_only_ignored",
        "Okta",
        "readOnly attributes in a path-less PATCH value (the id Okta's group push and deactivation "
        "send; meta, groups, manager.displayName) are ignored, as a PUT ignores them, instead of "
        "refused with 400 mutability.",
    ),
)

QUIRK_NAMES: frozenset[str] = frozenset(q.name for q in QUIRKS)

#: Switches no longer kept, and why: a tenant's stored settings may still name them (they are
#: passed over), ``tenant set --compat`` says why it no longer takes them.
RETIRED: Mapping[str, str] = {
    "null_member_ref": 'a member\'s "$ref": null is unassigned in every mode, as any null sub-attribute'
    " is (RFC 7643 section 2.5)",
}


@dataclass(frozen=True, slots=True)
class CompatSettings:
    """Which quirks are on for a tenant."""

    enabled: frozenset[str] = QUIRK_NAMES

    def __contains__(self, name: object) -> bool:
        return name in self.enabled

    def on(self, name: str) -> bool:
        """True when the quirk called ``name`` is switched on."""
        if name not in QUIRK_NAMES:
            raise KeyError(f"unknown compatibility switch {name!r}")
        return name in self.enabled

    def without(self, name: str) -> CompatSettings:
        """These settings with the quirk called ``name`` switched off."""
        if name not in QUIRK_NAMES:
            raise KeyError(f"unknown compatibility switch {name!r}")
        return self if name not in self.enabled else CompatSettings(self.enabled - {name})

    @classmethod
    def default(cls) -> CompatSettings:
        """Every quirk on: what Entra and Okta need."""
        return cls(QUIRK_NAMES)

    @classmethod
    def strict(cls) -> CompatSettings:
        """No quirk on: the strict RFC 7643/7644 reading."""
        return cls(frozenset())

    @classmethod
    def from_mapping(
        cls, switches: Mapping[str, bool], *, base: CompatSettings | None = None
    ) -> CompatSettings:
        """``base`` (default: all on) with the named switches set; unknown names raise ValueError."""
        switches = {k: v for k, v in switches.items() if k not in RETIRED}
        unknown = sorted(set(switches) - QUIRK_NAMES)
        if unknown:
            known = ", ".join(sorted(QUIRK_NAMES))
            raise ValueError(f"unknown compatibility switch(es) {', '.join(unknown)}; known: {known}")
        enabled = set((base or cls.default()).enabled)
        for name, value in switches.items():
            (enabled.add if value else enabled.discard)(name)
        return cls(frozenset(enabled))
