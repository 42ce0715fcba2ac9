"""Assignments: roles through groups, name lookups, the shared role sets of a large directory."""

from __future__ import annotations

from provisor.engine.assignments import Assignments, Verdict
from provisor.engine.jobs.model import Assignment, ScopeConfig
from provisor.engine.model import ObjectKind, SourceObject


def group(anchor: str, name: str, *members: str) -> SourceObject:
    return SourceObject(ObjectKind.GROUP, anchor, {"displayName": name, "members": list(members)})


def user(anchor: str, upn: str) -> SourceObject:
    return SourceObject(ObjectKind.USER, anchor, {"userPrincipalName": upn, "accountEnabled": True})


CONFIG = ScopeConfig(
    assignments=(
        Assignment(role="User", group="Engineering"),
        Assignment(role="Admin", group="ops"),
        Assignment(role="Viewer", group="OPS"),  # a second assignment naming the same group: the first wins
        Assignment(role="Auditor", user="Ada@Example.com"),
    )
)


def test_roles_come_from_every_assigned_group_and_direct_assignments() -> None:
    a = Assignments(CONFIG)
    a.note_group(group("g1", "engineering", "u1", "u2"))
    a.note_group(group("g2", "Ops", "u2"))
    a.note_group(group("g3", "Sales", "u3"))  # not assigned
    assert a.group_roles == {"g1": "User", "g2": "Admin"}
    assert a.member_roles == {"u1": {"User"}, "u2": {"User", "Admin"}}
    assert a.user(user("u2", "bob@example.com")).roles == ("Admin", "User")
    assert a.user(user("u9", "ADA@example.com")).roles == ("Auditor",)
    assert a.user(user("u3", "carl@example.com")).verdict is Verdict.NOT_ASSIGNED


def test_users_with_the_same_roles_share_one_set() -> None:
    a = Assignments(CONFIG)
    a.note_group(group("g1", "Engineering", *(f"u{i}" for i in range(1000))))
    a.note_group(group("g2", "ops", *(f"u{i}" for i in range(0, 1000, 2))))
    a.add_member_role("u1", "User")  # already there: nothing changes
    distinct = {id(roles) for roles in a.member_roles.values()}
    assert len(distinct) == 2  # {User} and {User, Admin}, not one set per user
    assert a.member_roles["u0"] == {"User", "Admin"} and a.member_roles["u1"] == {"User"}


def test_incremental_roles_combine_recorded_groups_with_the_groups_read_again() -> None:
    recorded = {"u1": {"g1", "g2"}, "u2": {"g2"}}
    a = Assignments(CONFIG, recorded_groups=lambda anchor: recorded.get(anchor, set()))
    a.group_roles.update({"g1": "User", "g2": "Admin"})
    # g2 was read again this cycle and now holds only u3: its share comes from member_roles alone
    a.reread.add("g2")
    a.add_member_role("u3", "Admin")
    assert a.group_share("u1") == {"User"}
    assert a.group_share("u2") == set()
    assert a.group_share("u3") == {"Admin"}
