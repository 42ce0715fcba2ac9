"""Who is in scope (entra-behaviour.md 2.2, 2.3): assignments, app roles and scoping filters.

Pure: the cycle feeds it what it reads. In ``assigned`` mode a user is in scope when assigned
directly (by userPrincipalName) or as a *direct* member of an assigned group (nested groups are
not expanded, 1.6); a user whose only role is ``Default Access`` is "not effectively entitled"
when the job says so. In ``all`` mode every user and group is. Then the scoping filters apply,
and a disabled source user (``accountEnabled`` false) is never in scope.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from provisor.engine.jobs.model import DEFAULT_ACCESS_ROLE, ScopeConfig, ScopeMode
from provisor.engine.model import ObjectKind, SourceObject
from provisor.engine.scoping import evaluate


class Verdict(enum.StrEnum):
    IN_SCOPE = "InScope"
    NOT_ASSIGNED = "NotAssigned"
    NOT_EFFECTIVELY_ENTITLED = "NotEffectivelyEntitled"
    SCOPING_FILTER = "ScopingFilter"
    DISABLED = "Disabled"


@dataclass(frozen=True, slots=True)
class ScopeDecision:
    verdict: Verdict
    roles: tuple[str, ...] = ()
    detail: str = ""

    @property
    def in_scope(self) -> bool:
        return self.verdict is Verdict.IN_SCOPE


@dataclass(slots=True)
class Assignments:
    """The job's assignments resolved against the source: assigned group anchors with their role,
    and each user's roles from those groups (per-object state only)."""

    config: ScopeConfig
    group_roles: dict[str, str] = field(default_factory=dict)  # assigned group anchor -> role
    #: user anchor -> roles via groups; the role sets are shared (``add_member_role``): most users
    #: of a directory have the same few, and a set per user is ~200 bytes of every 100,000 users
    member_roles: dict[str, frozenset[str]] = field(default_factory=dict)
    _role_sets: dict[frozenset[str], frozenset[str]] = field(default_factory=dict, repr=False)

    #: Incremental cycles: a user's groups as recorded in the engine state
    #: (``EngineState.source_groups_of``), for the roles of the groups this cycle did not re-read; the
    #: re-read groups' share is in ``member_roles``. None in an initial cycle, whose first pass
    #: fills ``member_roles`` from every assigned group.
    recorded_groups: Callable[[str], Iterable[str]] | None = None
    #: the groups whose members this cycle read from the source (``member_roles`` has their share)
    reread: set[str] = field(default_factory=set)
    #: lower-cased user name -> roles assigned to it directly; lower-cased group name -> role
    #: (the first assignment naming it); built once, so a lookup never scans the assignment list
    _user_index: dict[str, set[str]] = field(init=False, repr=False)
    _group_index: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._user_index, self._group_index = {}, {}
        for a in self.config.assignments:
            if a.user is not None:
                self._user_index.setdefault(a.user.lower(), set()).add(a.role)
            if a.group is not None:
                self._group_index.setdefault(a.group.lower(), a.role)

    def direct_roles(self, user_principal_name: str | None) -> set[str]:
        if not user_principal_name:
            return set()
        return set(self._user_index.get(user_principal_name.lower(), ()))

    def group_role(self, display_name: str | None) -> str | None:
        """The role of an assignment naming this group (by displayName, case-insensitive)."""
        if not display_name:
            return None
        return self._group_index.get(display_name.lower())

    def group_share(self, anchor: str) -> set[str]:
        """The roles a user has through assigned groups."""
        roles = set(self.member_roles.get(anchor, ()))
        if self.recorded_groups is not None:
            for group in self.recorded_groups(anchor):
                role = self.group_roles.get(group)
                if role is not None and group not in self.reread:
                    roles.add(role)
        return roles

    def note_group(self, group: SourceObject) -> None:
        """Pass 1: remember an assigned group and the roles it gives its direct user members."""
        role = self.group_role(_text(group.get("displayName")))
        if role is None:
            return
        self.group_roles[group.anchor] = role
        for anchor in user_members(group):
            self.add_member_role(anchor, role)

    def add_member_role(self, anchor: str, role: str) -> None:
        """``role`` comes to the user ``anchor`` through a group."""
        have = self.member_roles.get(anchor)
        if have is not None and role in have:
            return
        roles = frozenset((role,)) if have is None else have | {role}
        self.member_roles[anchor] = self._role_sets.setdefault(roles, roles)

    def user(self, obj: SourceObject) -> ScopeDecision:
        if self.config.mode is ScopeMode.ALL:
            roles: set[str] = set()
        else:
            roles = self.direct_roles(_text(obj.get("userPrincipalName"))) | self.group_share(obj.anchor)
            if not roles:
                return ScopeDecision(Verdict.NOT_ASSIGNED, detail="not assigned to the application")
            if self.config.skip_default_access and roles <= {DEFAULT_ACCESS_ROLE}:
                return ScopeDecision(
                    Verdict.NOT_EFFECTIVELY_ENTITLED,
                    tuple(sorted(roles)),
                    "only the Default Access role is assigned (not effectively entitled)",
                )
        result = evaluate(self.config.user_filters, obj.attributes)
        if not result.in_scope:
            return ScopeDecision(Verdict.SCOPING_FILTER, tuple(sorted(roles)), result.explain())
        if _disabled(obj):
            return ScopeDecision(Verdict.DISABLED, tuple(sorted(roles)), "disabled in the source")
        return ScopeDecision(Verdict.IN_SCOPE, tuple(sorted(r for r in roles if r != DEFAULT_ACCESS_ROLE)))

    def group(self, obj: SourceObject) -> ScopeDecision:
        if self.config.mode is ScopeMode.ASSIGNED and obj.anchor not in self.group_roles:
            return ScopeDecision(Verdict.NOT_ASSIGNED, detail="group not assigned to the application")
        result = evaluate(self.config.group_filters, obj.attributes)
        if not result.in_scope:
            return ScopeDecision(Verdict.SCOPING_FILTER, detail=result.explain())
        return ScopeDecision(Verdict.IN_SCOPE)


def user_members(group: SourceObject) -> list[str]:
    """The anchors of a group's direct user members (nested groups are not expanded, 1.6)."""
    members = group.get("members") or []
    out: list[str] = []
    for m in members:
        if isinstance(m, str):
            out.append(m)
        elif isinstance(m, Mapping) and str(m.get("kind", "user")).lower() == ObjectKind.USER.value:
            anchor = m.get("anchor")
            if isinstance(anchor, str):
                out.append(anchor)
    return out


def app_role_assignments(roles: Iterable[str]) -> list[dict[str, str]]:
    """The ``appRoleAssignments`` source attribute the role functions read (3.3)."""
    return [{"id": r, "value": r, "displayName": r} for r in roles]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _disabled(obj: SourceObject) -> bool:
    enabled = obj.get("accountEnabled")
    if isinstance(enabled, str):
        return enabled.strip().lower() == "false"
    return enabled is False
