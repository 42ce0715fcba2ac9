"""The built-in templates: ``clarizen-one`` and ``scim-default`` (entra-behaviour.md 5, 1.3, 2.4).

``scim-default`` is Entra's default mapping for a custom (non-gallery) SCIM app; ``clarizen-one``
is the Clarizen One gallery app: the same user mappings plus the app role, over the target
attribute list of the Clarizen tutorial (section 5).

Clarizen targets listed but left unmapped, because Entra's user has no natural source for them
(an admin maps them with a job override when their directory has one):

* ``emails[type eq "home"|"other"].value``, ``phoneNumbers[type eq "home"|"other"|"pager"].value``,
  ``addresses[type eq "other"].formatted``: Entra keeps one work mail and work/mobile/fax numbers;
* ``name.honorificPrefix``, ``name.honorificSuffix``, ``nickName``, ``locale``, ``timezone``:
  no Entra user attribute (``preferredLanguage`` already feeds the language);
* ``userType``: Entra's ``userType`` is Member/Guest, not SCIM's organisation relationship;
* ``roles[primary eq "True"].type``: the role's type is fixed (``WindowsAzureActiveDirectoryRole``,
  1.4) and written with the role value, not mapped;
* enterprise ``costCenter``, ``division``: not among the source attributes the behaviour brief
  documents for Entra's SCIM connector.
"""

from __future__ import annotations

from typing import Final

from provisor.engine.templates.model import (
    ENTERPRISE_URN,
    Template,
    direct,
    expression,
)

__all__ = ["ACTIVE_EXPRESSION", "CLARIZEN_ONE", "SCIM_DEFAULT", "TEMPLATES"]

#: The default ``active`` mapping (section 1.5): a soft-deleted user is sent ``active=False``.
ACTIVE_EXPRESSION: Final = 'Switch([IsSoftDeleted], , "False", "True", "True", "False")'
#: The default app-role mapping of a gallery app with roles (section 1.4, 3.3).
ROLE_EXPRESSION: Final = "SingleAppRoleAssignment([appRoleAssignments])"

_E = ENTERPRISE_URN

#: Entra's default user mappings for a SCIM app (sections 1.3, 1.5, 2.4), in portal order.
_USER_MAPPINGS: Final = (
    direct("userName", "userPrincipalName", precedence=1),
    expression("active", ACTIVE_EXPRESSION),
    direct("displayName", "displayName"),
    direct("title", "jobTitle"),
    direct('emails[type eq "work"].value', "mail"),
    direct("preferredLanguage", "preferredLanguage"),
    direct("name.givenName", "givenName"),
    direct("name.familyName", "surname"),
    expression("name.formatted", 'Join(" ", [givenName], [surname])'),
    direct('addresses[type eq "work"].formatted', "physicalDeliveryOfficeName"),
    direct('addresses[type eq "work"].streetAddress', "streetAddress"),
    direct('addresses[type eq "work"].locality', "city"),
    direct('addresses[type eq "work"].region', "state"),
    direct('addresses[type eq "work"].postalCode', "postalCode"),
    direct('addresses[type eq "work"].country', "country"),
    direct('phoneNumbers[type eq "work"].value', "telephoneNumber"),
    direct('phoneNumbers[type eq "mobile"].value', "mobile"),
    direct('phoneNumbers[type eq "fax"].value', "facsimileTelephoneNumber"),
    direct("externalId", "mailNickname"),
    direct(f"{_E}:employeeNumber", "employeeId"),
    direct(f"{_E}:department", "department"),
    direct(f"{_E}:manager", "manager"),
)

#: Groups: matched on displayName (2.4), externalId = the Entra objectId, members (1.6).
_GROUP_MAPPINGS: Final = (
    direct("displayName", "displayName", precedence=1),
    direct("externalId", "objectId"),
    direct("members", "members"),
)

#: The custom SCIM app's user attribute list: what its default mappings feed.
_SCIM_USER_ATTRIBUTES: Final = tuple(m.target for m in _USER_MAPPINGS)
_GROUP_ATTRIBUTES: Final = ("displayName", "externalId", "members")

#: Clarizen One's user target attributes, as the tutorial lists them (section 5; the doc's
#: ``roles[primary eq "True".value]`` typo written as the path it means).
CLARIZEN_USER_ATTRIBUTES: Final = (
    "userName",
    "displayName",
    "active",
    "title",
    'emails[type eq "work"].value',
    'emails[type eq "home"].value',
    'emails[type eq "other"].value',
    "preferredLanguage",
    "name.givenName",
    "name.familyName",
    "name.formatted",
    "name.honorificPrefix",
    "name.honorificSuffix",
    'addresses[type eq "other"].formatted',
    'addresses[type eq "work"].formatted',
    'addresses[type eq "work"].country',
    'addresses[type eq "work"].region',
    'addresses[type eq "work"].locality',
    'addresses[type eq "work"].postalCode',
    'addresses[type eq "work"].streetAddress',
    'phoneNumbers[type eq "work"].value',
    'phoneNumbers[type eq "mobile"].value',
    'phoneNumbers[type eq "fax"].value',
    'phoneNumbers[type eq "home"].value',
    'phoneNumbers[type eq "other"].value',
    'phoneNumbers[type eq "pager"].value',
    "externalId",
    "nickName",
    "locale",
    'roles[primary eq "True"].type',
    'roles[primary eq "True"].value',
    "timezone",
    "userType",
    f"{_E}:department",
    f"{_E}:employeeNumber",
    f"{_E}:manager",
    f"{_E}:costCenter",
    f"{_E}:division",
)

SCIM_DEFAULT: Final = Template(
    name="scim-default",
    user_mappings=_USER_MAPPINGS,
    group_mappings=_GROUP_MAPPINGS,
    user_attributes=_SCIM_USER_ATTRIBUTES,
    group_attributes=_GROUP_ATTRIBUTES,
)

CLARIZEN_ONE: Final = Template(
    name="clarizen-one",
    user_mappings=(*_USER_MAPPINGS, expression('roles[primary eq "True"].value', ROLE_EXPRESSION)),
    group_mappings=_GROUP_MAPPINGS,
    user_attributes=CLARIZEN_USER_ATTRIBUTES,
    group_attributes=_GROUP_ATTRIBUTES,
)

#: Every built-in template by name (the names a job's ``template`` may use).
TEMPLATES: Final[dict[str, Template]] = {t.name: t for t in (CLARIZEN_ONE, SCIM_DEFAULT)}
