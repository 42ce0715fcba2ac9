"""The contract every store passes: pytest test classes to subclass with a ``store`` fixture.

    class TestSqlStore(ResourceStoreContract, TenantStoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            s = SqlStore(f"sqlite:///{tmp_path}/t.db")
            yield s
            s.close()

The ``store`` fixture must give a fresh, empty store that is both a ResourceStore and a
TenantStore (tenants are created through it). Behaviour follows store/base.py and RFC 7644
section 3 (create, read, search, update, delete).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest

from provisor.scim.filter.parser import parse_attr_path, parse_filter
from provisor.scim.schema.model import ResourceType, default_registry
from provisor.store.base import (
    Change,
    GroupRef,
    IdPage,
    Member,
    MemberDelta,
    Precondition,
    Query,
    ResourceNotFound,
    ResourceStore,
    StoredResource,
    TenantExists,
    TenantNotFound,
    TenantStore,
    TokenNotFound,
    UniquenessViolation,
    UnknownMember,
    VersionMismatch,
)


class FullStore(ResourceStore, TenantStore, Protocol):
    """A store that keeps both resources and tenants (what the server is given)."""


def user_query(text: str, **kwargs: Any) -> Query:
    """A Query over Users with a parsed filter."""
    return Query(filter=parse_filter(text, _rt("User")), **kwargs)


def group_query(text: str, **kwargs: Any) -> Query:
    return Query(filter=parse_filter(text, _rt("Group")), **kwargs)


def _rt(name: str) -> ResourceType:
    rt = default_registry().resource_type(name)
    assert rt is not None
    return rt


def user(user_name: str, **extra: Any) -> dict[str, Any]:
    """A small User document."""
    return {"userName": user_name, "active": True, **extra}


def set_data(**changes: Any) -> Any:
    """An updater that sets top-level attributes."""
    return lambda cur: Change({**cur.data, **changes})


def members_delta(**kwargs: Any) -> Any:
    """An updater that only changes members."""
    return lambda cur: Change(cur.data, MemberDelta(**kwargs))


class ResourceStoreContract:
    """Behaviour of ``ResourceStore`` (store/base.py) that every implementation must show."""

    @pytest.fixture
    def store(self) -> FullStore:
        raise NotImplementedError("subclasses provide a fresh store")

    @pytest.fixture
    def tenant(self, store: FullStore) -> str:
        return store.create_tenant("contoso").id

    @pytest.fixture
    def other(self, store: FullStore) -> str:
        return store.create_tenant("fabrikam").id

    # -- create / get ----------------------------------------------------------------------------

    def test_create_then_get_round_trips(self, store: FullStore, tenant: str) -> None:
        doc = user("alice@contoso.com", name={"givenName": "Alice"}, emails=[{"value": "a@c.com"}])
        made = store.create(tenant, "User", doc)
        assert made.version == 1 and made.resource_type == "User" and made.data == doc
        assert made.created == made.last_modified and made.created.tzinfo is not None
        assert made.created.utcoffset() == timedelta(0)
        got = store.get(tenant, "User", made.id)
        assert (got.id, got.data, got.version, got.created) == (made.id, doc, 1, made.created)
        assert got.members is None

    def test_ids_are_unique(self, store: FullStore, tenant: str) -> None:
        ids = {store.create(tenant, "User", user(f"u{i}")).id for i in range(20)}
        assert len(ids) == 20

    def test_get_unknown_wrong_type_or_tenant_is_not_found(
        self, store: FullStore, tenant: str, other: str
    ) -> None:
        made = store.create(tenant, "User", user("bob"))
        for args in ((tenant, "User", "nope"), (tenant, "Group", made.id), (other, "User", made.id)):
            with pytest.raises(ResourceNotFound):
                store.get(*args)

    def test_user_name_is_unique_per_tenant_case_insensitively(
        self, store: FullStore, tenant: str, other: str
    ) -> None:
        store.create(tenant, "User", user("Carol@Contoso.com"))
        with pytest.raises(UniquenessViolation) as caught:
            store.create(tenant, "User", user("carol@contoso.COM"))
        assert caught.value.attribute == "userName"
        assert store.create(other, "User", user("carol@contoso.com")).version == 1
        assert store.search(tenant, "User", Query()).total == 1

    # -- update ----------------------------------------------------------------------------------

    def test_update_writes_and_bumps_version(self, store: FullStore, tenant: str) -> None:
        made = store.create(tenant, "User", user("dave"))
        new = store.update(tenant, "User", made.id, set_data(displayName="Dave"))
        assert new.version == 2 and new.data["displayName"] == "Dave"
        assert new.last_modified >= made.last_modified and new.created == made.created
        assert store.get(tenant, "User", made.id).data == new.data

    def test_update_if_match(self, store: FullStore, tenant: str) -> None:
        made = store.create(tenant, "User", user("erin"))
        with pytest.raises(VersionMismatch):
            store.update(
                tenant, "User", made.id, set_data(title="x"), precondition=Precondition(frozenset({7}))
            )
        assert store.get(tenant, "User", made.id).version == 1
        assert (
            store.update(
                tenant, "User", made.id, set_data(title="x"), precondition=Precondition(frozenset({1}))
            ).version
            == 2
        )

    def test_update_if_none_match(self, store: FullStore, tenant: str) -> None:
        made = store.create(tenant, "User", user("erin2"))
        for refused in (Precondition(none_match=frozenset({1, 9})), Precondition(none_match_any=True)):
            with pytest.raises(VersionMismatch):
                store.update(tenant, "User", made.id, set_data(title="x"), precondition=refused)
            with pytest.raises(VersionMismatch):
                store.delete(tenant, "User", made.id, precondition=refused)
        assert store.get(tenant, "User", made.id).version == 1
        either = Precondition(frozenset({3, 1}), none_match=frozenset({2}))
        assert store.update(tenant, "User", made.id, set_data(title="x"), precondition=either).version == 2
        with pytest.raises(VersionMismatch):  # If-Match naming no version of ours never holds
            store.update(tenant, "User", made.id, set_data(title="y"), precondition=Precondition(frozenset()))
        assert store.get(tenant, "User", made.id).data["title"] == "x"

    def test_updater_exception_rolls_back_and_propagates(self, store: FullStore, tenant: str) -> None:
        made = store.create(tenant, "User", user("frank"))
        boom = RuntimeError("patch failed")

        def updater(cur: StoredResource) -> Change:
            cur.data["title"] = "half-done"
            raise boom

        with pytest.raises(RuntimeError) as caught:
            store.update(tenant, "User", made.id, updater)
        assert caught.value is boom
        got = store.get(tenant, "User", made.id)
        assert got.version == 1 and "title" not in got.data

    def test_update_to_taken_user_name_fails_cleanly(self, store: FullStore, tenant: str) -> None:
        store.create(tenant, "User", user("gina"))
        hank = store.create(tenant, "User", user("hank"))
        with pytest.raises(UniquenessViolation):
            store.update(tenant, "User", hank.id, set_data(userName="GINA"))
        assert store.get(tenant, "User", hank.id).data["userName"] == "hank"
        assert store.search(tenant, "User", user_query('userName eq "hank"')).total == 1

    def test_update_unknown_is_not_found(self, store: FullStore, tenant: str, other: str) -> None:
        made = store.create(tenant, "User", user("ivan"))
        with pytest.raises(ResourceNotFound):
            store.update(other, "User", made.id, set_data(title="x"))

    # -- delete ----------------------------------------------------------------------------------

    def test_delete(self, store: FullStore, tenant: str, other: str) -> None:
        made = store.create(tenant, "User", user("judy"))
        with pytest.raises(ResourceNotFound):
            store.delete(other, "User", made.id)
        with pytest.raises(VersionMismatch):
            store.delete(tenant, "User", made.id, precondition=Precondition(frozenset({5})))
        store.delete(tenant, "User", made.id, precondition=Precondition(frozenset({1})))
        with pytest.raises(ResourceNotFound):
            store.get(tenant, "User", made.id)
        with pytest.raises(ResourceNotFound):
            store.delete(tenant, "User", made.id)
        assert store.create(tenant, "User", user("judy")).version == 1  # the userName is free again

    # -- groups ----------------------------------------------------------------------------------

    def test_group_members(self, store: FullStore, tenant: str) -> None:
        a = store.create(tenant, "User", user("a", displayName="Ann"))
        b = store.create(tenant, "User", user("b"))
        sub = store.create(tenant, "Group", {"displayName": "Sub"})
        g = store.create(tenant, "Group", {"displayName": "Sales"}, [Member(a.id), Member(sub.id)])
        assert {(m.value, m.type, m.display) for m in g.members or ()} == {
            (a.id, "User", "Ann"),
            (sub.id, "Group", "Sub"),
        }
        assert store.get(tenant, "Group", g.id, with_members=False).members is None
        after = store.update(tenant, "Group", g.id, members_delta(add=(Member(b.id),), remove=(a.id,)))
        assert after.version == 2 and after.members is None
        got = store.get(tenant, "Group", g.id)
        assert {m.value for m in got.members or ()} == {b.id, sub.id}
        b_display = {m.value: m.display for m in got.members or ()}[b.id]
        assert b_display == "b"  # no displayName: the userName
        replaced = store.update(
            tenant, "Group", g.id, members_delta(replace=(Member(a.id),)), with_members=True
        )
        assert [m.value for m in replaced.members or ()] == [a.id]

    def test_a_created_groups_members_are_in_the_order_a_read_gives(
        self, store: FullStore, tenant: str
    ) -> None:
        """The create's answer is the representation of version 1: its members come as a GET of
        that version shows them (by when each member was created), whatever order they were sent
        in (found by tests/server/test_stateful_model.py: Okta's create sent them newest first)."""
        a = store.create(tenant, "User", user("first"))
        b = store.create(tenant, "User", user("second"))
        sub = store.create(tenant, "Group", {"displayName": "Sub"})
        sent = (Member(sub.id), Member(b.id), Member(a.id), Member(b.id))
        g = store.create(tenant, "Group", {"displayName": "Sales"}, sent)
        got = store.get(tenant, "Group", g.id).members
        assert [m.value for m in got or ()] == [a.id, b.id, sub.id]
        assert g.members == got

    def test_unknown_members_are_refused_and_nothing_is_stored(
        self, store: FullStore, tenant: str, other: str
    ) -> None:
        a = store.create(tenant, "User", user("a"))
        foreign = store.create(other, "User", user("f"))
        with pytest.raises(UnknownMember) as caught:
            store.create(
                tenant, "Group", {"displayName": "G"}, [Member(a.id), Member("x"), Member(foreign.id)]
            )
        assert set(caught.value.values) == {"x", foreign.id}
        assert store.search(tenant, "Group", Query()).total == 0
        g = store.create(tenant, "Group", {"displayName": "G"})
        with pytest.raises(UnknownMember):
            store.update(tenant, "Group", g.id, members_delta(add=(Member(a.id), Member("nope"))))
        got = store.get(tenant, "Group", g.id)
        assert got.members == () and got.version == 1

    def test_a_delta_from_a_lookup_sees_what_member_values_name_in_the_write(
        self, store: FullStore, tenant: str, other: str
    ) -> None:
        """``Change.members`` as a function (``DeltaFromLookup``): called in the write's own
        transaction with a lookup giving each id of a User or Group of the tenant its type and own
        name, leaving out values that name nothing (another tenant's ids too); what it returns is
        stored as a delta is. Inside a batch it sees the batch's earlier writes."""
        a = store.create(tenant, "User", user("a", displayName="Ann"))
        sub = store.create(tenant, "Group", {"displayName": "Sub"})
        foreign = store.create(other, "User", user("f"))
        g = store.create(tenant, "Group", {"displayName": "G"})
        asked: list[dict[str, Member]] = []
        with store.batch():
            b = store.create(tenant, "User", user("b"))

            def delta(lookup: Any) -> MemberDelta:
                asked.append(dict(lookup([a.id, sub.id, "nope", foreign.id, b.id])))
                return MemberDelta(add=tuple(asked[-1].values()))

            done = store.update(tenant, "Group", g.id, lambda cur: Change(cur.data, delta), with_members=True)
        assert asked == [
            {
                a.id: Member(a.id, "User", "Ann"),
                sub.id: Member(sub.id, "Group", "Sub"),
                b.id: Member(b.id, "User", "b"),
            }
        ]
        assert done.version == 2 and [m.value for m in done.members or ()] == [a.id, sub.id, b.id]

    def test_deleting_a_member_removes_it_from_groups(self, store: FullStore, tenant: str) -> None:
        a = store.create(tenant, "User", user("a"))
        b = store.create(tenant, "User", user("b"))
        g = store.create(tenant, "Group", {"displayName": "G"}, [Member(a.id), Member(b.id)])
        store.delete(tenant, "User", a.id)
        got = store.get(tenant, "Group", g.id)
        assert [m.value for m in got.members or ()] == [b.id]
        assert got.version == 2 and got.last_modified >= g.last_modified

    # -- search ----------------------------------------------------------------------------------

    def test_a_snapshot_reads_one_state_whatever_is_written_meanwhile(
        self, store: FullStore, tenant: str
    ) -> None:
        """``snapshot``: every search in the block sees the state of the first, so an answer made
        of several (a total and a page) counts what it shows; after it, the writes are there."""
        a = store.create(tenant, "User", user("a", externalId="e"))
        b = store.create(tenant, "User", user("b", externalId="e"))
        with store.snapshot() as reads:
            counted = reads.search(tenant, "User", Query(count=0)).total
            store.delete(tenant, "User", a.id)
            store.create(tenant, "User", user("c", externalId="e"))
            page = reads.search(tenant, "User", user_query('externalId eq "e"'))
            ids = reads.search_ids(tenant, "User", Query(start_index=2, count=1))
            named = reads.search(tenant, "User", user_query('userName eq "a"')).resources
        assert counted == 2 and page.total == 2 and [r.id for r in page.resources] == [a.id, b.id]
        assert ids == IdPage(2, [b.id]) and [r.id for r in named] == [a.id]
        after = store.search(tenant, "User", user_query('externalId eq "e"'))
        assert after.total == 2 and a.id not in {r.id for r in after.resources}

    def test_search_filters_and_pages(self, store: FullStore, tenant: str, other: str) -> None:
        for i in range(7):
            store.create(tenant, "User", user(f"user{i}@contoso.com", title="eng" if i % 2 else "ops"))
        store.create(other, "User", user("user1@contoso.com"))
        page = store.search(tenant, "User", user_query('userName eq "USER1@contoso.com"'))
        assert page.total == 1 and page.resources[0].data["userName"] == "user1@contoso.com"
        eng = store.search(tenant, "User", user_query('title eq "eng"', count=2))
        assert eng.total == 3 and len(eng.resources) == 2
        rest = store.search(tenant, "User", user_query('title eq "eng"', count=2, start_index=3))
        assert rest.total == 3 and len(rest.resources) == 1
        assert store.search(tenant, "User", Query(count=0)).total == 7
        assert store.search(tenant, "User", Query(count=0)).resources == []
        assert len(store.search(tenant, "User", Query(start_index=0, count=100)).resources) == 7
        beyond = store.search(tenant, "User", Query(start_index=50))
        assert beyond.total == 7 and beyond.resources == []

    def test_search_ids_is_search_without_documents(self, store: FullStore, tenant: str, other: str) -> None:
        for i in range(9):
            store.create(tenant, "User", user(f"u{i}@contoso.com", title="eng" if i % 3 else "ops"))
        store.create(other, "User", user("u1@contoso.com", title="eng"))
        store.create(tenant, "Group", {"displayName": "G"})
        path = parse_attr_path("userName", _rt("User"))
        queries = [
            Query(),
            Query(count=0),
            Query(start_index=4, count=3),
            Query(start_index=50),
            user_query('title eq "eng"', count=2, start_index=2),
            user_query('userName eq "U4@contoso.com"'),
            user_query('userName sw "u"', sort_by=path, descending=True, count=4),
        ]
        for query in queries:
            full = store.search(tenant, "User", query)
            ids = store.search_ids(tenant, "User", query)
            assert (ids.total, ids.ids) == (full.total, [r.id for r in full.resources]), query
        groups = store.search_ids(tenant, "Group", Query())
        assert groups.total == 1 and groups.ids == [
            r.id for r in store.search(tenant, "Group", Query()).resources
        ]

    def test_search_sorts(self, store: FullStore, tenant: str) -> None:
        for name in ("bravo", "Alpha", "charlie"):
            store.create(tenant, "User", user(name))
        path = parse_attr_path("userName", _rt("User"))
        asc = store.search(tenant, "User", Query(sort_by=path))
        assert [r.data["userName"] for r in asc.resources] == ["Alpha", "bravo", "charlie"]
        desc = store.search(tenant, "User", Query(sort_by=path, descending=True))
        assert [r.data["userName"] for r in desc.resources] == ["charlie", "bravo", "Alpha"]

    def test_search_groups_with_and_without_members(self, store: FullStore, tenant: str) -> None:
        a = store.create(tenant, "User", user("a"))
        store.create(tenant, "Group", {"displayName": "Sales"}, [Member(a.id)])
        hit = store.search(tenant, "Group", group_query('displayName eq "sales"'))
        assert hit.total == 1 and [m.value for m in hit.resources[0].members or ()] == [a.id]
        bare = store.search(tenant, "Group", group_query('displayName eq "sales"', with_members=False))
        assert bare.resources[0].members is None
        assert store.search(tenant, "Group", group_query(f'members[value eq "{a.id}"]')).total == 1

    # -- a User's groups (RFC 7643 section 4.1.2) ------------------------------------------------

    def test_user_groups_are_its_direct_and_indirect_memberships(self, store: FullStore, tenant: str) -> None:
        a = store.create(tenant, "User", user("a"))
        b = store.create(tenant, "User", user("b"))
        assert a.groups == ()  # a new User is in no group
        sales = store.create(tenant, "Group", {"displayName": "Sales"})
        eng = store.create(tenant, "Group", {"displayName": "Eng"}, [Member(a.id)])
        outer = store.create(tenant, "Group", {"displayName": "Outer"}, [Member(eng.id)])
        store.update(tenant, "Group", sales.id, members_delta(add=(Member(a.id), Member(b.id))))
        # ordered by when the groups were created, whatever the order a was added in; a is in
        # Outer through Eng (RFC 7643 section 4.1.2: "indirect")
        expected = (
            GroupRef(sales.id, "Sales"),
            GroupRef(eng.id, "Eng"),
            GroupRef(outer.id, "Outer", "indirect"),
        )
        assert store.get(tenant, "User", a.id).groups == expected
        assert [g.type for g in expected] == ["direct", "direct", "indirect"]
        assert store.get(tenant, "User", b.id).groups == (GroupRef(sales.id, "Sales"),)
        assert store.get(tenant, "User", a.id, with_groups=False).groups is None
        assert store.get(tenant, "Group", eng.id).groups is None  # Groups have no groups attribute
        assert store.get(tenant, "Group", outer.id).members is not None
        # the same in searches: indexed lookups, compiled filters, plain lists, sorted pages
        for q in (
            user_query('userName eq "a"'),
            user_query('userName co "a"'),
            Query(),
            Query(sort_by=parse_attr_path("userName", _rt("User"))),
        ):
            got = {r.id: r.groups for r in store.search(tenant, "User", q).resources}
            assert got[a.id] == expected, q
            bare = store.search(tenant, "User", Query(filter=q.filter, sort_by=q.sort_by, with_groups=False))
            assert all(r.groups is None for r in bare.resources)
        # update: loaded on request only, never changed by it
        version = store.get(tenant, "User", a.id).version
        same = store.update(tenant, "User", a.id, set_data(title="x"), with_groups=True)
        assert same.groups == expected and same.version == version + 1
        assert store.update(tenant, "User", a.id, set_data(title="y")).groups is None

    def test_a_change_of_a_users_groups_gives_it_a_new_version(self, store: FullStore, tenant: str) -> None:
        """``groups`` is part of a User's representation, so its version and lastModified move
        whenever they change (RFC 7232 section 2.1): it joins or leaves a group, a group it is
        in, directly or not, is renamed or deleted or nested in another. A write that leaves its
        groups as they were keeps its version, and other Users keep theirs."""
        a = store.create(tenant, "User", user("a"))
        other = store.create(tenant, "User", user("other"))
        seen = [store.get(tenant, "User", a.id)]

        def moved(by: int) -> None:
            now = store.get(tenant, "User", a.id)
            assert now.version == seen[-1].version + by, (now.version, seen[-1].version)
            assert (now.last_modified > seen[-1].last_modified) == (by > 0)
            seen.append(now)

        g = store.create(tenant, "Group", {"displayName": "Sales"})
        moved(0)
        h = store.create(tenant, "Group", {"displayName": "Ops"}, [Member(a.id)])
        moved(1)
        store.update(tenant, "Group", g.id, members_delta(add=(Member(a.id),)))
        moved(1)
        store.update(tenant, "Group", g.id, members_delta(add=(Member(a.id),)))  # in it already
        moved(0)
        assert seen[-1].groups == (GroupRef(g.id, "Sales"), GroupRef(h.id, "Ops"))
        store.update(tenant, "Group", g.id, set_data(displayName="Sales EMEA"))
        moved(1)
        store.update(tenant, "Group", g.id, set_data(description="same name"))
        moved(0)
        store.update(tenant, "Group", h.id, members_delta(remove=(a.id,)))
        moved(1)
        store.update(tenant, "Group", h.id, members_delta(remove=(a.id,)))  # not in it
        moved(0)
        top = store.create(tenant, "Group", {"displayName": "Top"}, [Member(g.id)])
        moved(1)  # now in Top too, indirectly
        assert seen[-1].groups == (GroupRef(g.id, "Sales EMEA"), GroupRef(top.id, "Top", "indirect"))
        store.update(tenant, "Group", top.id, set_data(displayName="Top EU"))
        moved(1)
        store.update(tenant, "Group", top.id, members_delta(remove=(g.id,)))
        moved(1)
        store.update(tenant, "Group", top.id, members_delta(replace=(Member(g.id),)))
        moved(1)
        store.delete(tenant, "Group", top.id)
        moved(1)
        store.delete(tenant, "Group", g.id)
        moved(1)
        assert store.get(tenant, "User", a.id).groups == ()
        assert store.get(tenant, "User", other.id).version == 1

    def test_a_members_rename_gives_the_groups_showing_it_a_new_version(
        self, store: FullStore, tenant: str
    ) -> None:
        """A group shows each member's displayName (else userName) unless the client sent a
        display for it: a rename that changes what it shows moves the group's version and
        lastModified; groups showing a sent display, and other groups, keep theirs."""
        a = store.create(tenant, "User", user("a"))
        b = store.create(tenant, "User", user("b"))
        named = store.create(tenant, "Group", {"displayName": "Named"}, [Member(a.id)])
        sent = store.create(tenant, "Group", {"displayName": "Sent"}, [Member(a.id, display="Ann")])
        unrelated = store.create(tenant, "Group", {"displayName": "Other"}, [Member(b.id)])
        outer = store.create(tenant, "Group", {"displayName": "Outer"}, [Member(named.id)])

        def version(g: StoredResource) -> int:
            return store.get(tenant, "Group", g.id).version

        store.update(tenant, "User", a.id, set_data(userName="a2"))  # shown: no displayName
        assert (version(named), version(sent), version(unrelated)) == (2, 1, 1)
        store.update(tenant, "User", a.id, set_data(displayName="Ann"))
        assert (version(named), version(sent), version(unrelated)) == (3, 1, 1)
        store.update(tenant, "User", a.id, set_data(userName="a3"))  # not shown: displayName is
        store.update(tenant, "User", a.id, set_data(title="x"))
        assert (version(named), version(sent), version(unrelated)) == (3, 1, 1)
        members = store.get(tenant, "Group", named.id).members or ()
        assert [m.display for m in members] == ["Ann"]
        store.update(tenant, "Group", named.id, set_data(displayName="Named 2"))
        assert (version(named), version(outer)) == (4, 2)
        assert [m.display for m in store.get(tenant, "Group", outer.id).members or ()] == ["Named 2"]

    def test_a_replace_that_shows_the_same_members_keeps_the_displays_sent(
        self, store: FullStore, tenant: str
    ) -> None:
        """A replace with the members a group has, each shown as it was, keeps the version; the
        displays it sent are stored all the same, as any replace's are: one sent equal to the
        member's name stays after the member's rename, one no longer sent follows the name
        (found by tests/server/test_stateful_model.py: a PUT of the Group as read froze no
        display, a PUT that also renamed it froze them all)."""
        a = store.create(tenant, "User", user("a"))
        b = store.create(tenant, "User", user("b"))
        g = store.create(tenant, "Group", {"displayName": "G"}, [Member(a.id), Member(b.id, display="Bee")])
        same = members_delta(replace=(Member(a.id, display="a"), Member(b.id)))  # what is shown...
        store.update(tenant, "User", b.id, set_data(displayName="Bee"))
        assert store.update(tenant, "Group", g.id, same).version == 1  # ...is what was shown
        store.update(tenant, "User", a.id, set_data(displayName="Ann"))
        store.update(tenant, "User", b.id, set_data(displayName="Bob"))
        got = store.get(tenant, "Group", g.id)
        assert [m.display for m in got.members or ()] == ["a", "Bob"]
        assert got.version == 2  # b's rename showed; a's did not

    def test_a_replace_computed_from_the_members_shown_keeps_the_displays_stored(
        self, store: FullStore, tenant: str
    ) -> None:
        """A replace computed from the members as shown (``shown``: a PATCH of one member's
        display, through the full list) stores the display that changed; the others show what
        they showed and keep what is stored for them: a display sent, or none, so that they
        follow their member's name still (before, every name shown became a display sent)."""
        a = store.create(tenant, "User", user("a"))
        b = store.create(tenant, "User", user("b"))
        c = store.create(tenant, "User", user("c"))
        g = store.create(
            tenant, "Group", {"displayName": "G"}, [Member(a.id), Member(b.id), Member(c.id, display="Cee")]
        )
        shown = (Member(a.id, "User", "Ann"), Member(b.id, "User", "b"), Member(c.id, "User", "Cee"))
        assert (
            store.update(
                tenant, "Group", g.id, members_delta(replace=shown, shown=frozenset({b.id, c.id}))
            ).version
            == 2
        )
        for member, name in ((a, "A2"), (b, "Bob"), (c, "Carl")):
            store.update(tenant, "User", member.id, set_data(displayName=name))
        got = store.get(tenant, "Group", g.id)
        assert [m.display for m in got.members or ()] == ["Ann", "Bob", "Cee"]
        assert got.version == 3  # b's rename showed, and only b's
        # the same list sent by a client (a PUT) makes each display shown a display sent
        same = tuple(Member(m.value, m.type, m.display) for m in got.members or ())
        assert store.update(tenant, "Group", g.id, members_delta(replace=same)).version == 3
        store.update(tenant, "User", b.id, set_data(displayName="Robert"))
        assert [m.display for m in store.get(tenant, "Group", g.id).members or ()] == ["Ann", "Bob", "Cee"]

    def test_filter_users_by_groups(self, store: FullStore, tenant: str, other: str) -> None:
        a = store.create(tenant, "User", user("a"))
        b = store.create(tenant, "User", user("b"))
        store.create(tenant, "User", user("c"))
        g = store.create(tenant, "Group", {"displayName": "Sales"}, [Member(a.id), Member(b.id)])
        store.create(tenant, "Group", {"displayName": "Ops"}, [Member(b.id)])
        foreign = store.create(other, "User", user("a"))
        store.create(other, "Group", {"displayName": "Sales"}, [Member(foreign.id)])

        def ids(text: str) -> set[str]:
            return {r.id for r in store.search(tenant, "User", user_query(text)).resources}

        assert ids(f'groups.value eq "{g.id}"') == {a.id, b.id}
        assert ids(f'groups[value eq "{g.id}"]') == {a.id, b.id}
        assert ids(f'groups.value eq "{g.id.upper()}"') == set()  # value is caseExact
        assert ids('groups[display eq "ops"]') == {b.id}  # display is not
        assert ids('groups.display sw "SAL"') == {a.id, b.id}
        assert ids('groups[display eq "Sales" and type eq "direct"]') == {a.id, b.id}
        assert ids('groups pr and not (groups.display eq "Ops")') == {a.id}
        assert ids("not (groups pr)") == {
            r.id for r in store.search(tenant, "User", user_query('userName eq "c"')).resources
        }
        assert ids('groups.type eq "indirect"') == set()


class TenantStoreContract:
    """Behaviour of ``TenantStore`` (store/base.py)."""

    @pytest.fixture
    def store(self) -> FullStore:
        raise NotImplementedError("subclasses provide a fresh store")

    def test_tenants(self, store: FullStore) -> None:
        t = store.create_tenant("contoso", {"compat": {"entra": True}})
        assert store.get_tenant("contoso") == t == store.get_tenant(t.id)
        with pytest.raises(TenantExists):
            store.create_tenant("contoso")
        store.create_tenant("adatum")
        assert [x.name for x in store.list_tenants()] == ["adatum", "contoso"]
        merged = store.update_settings("contoso", {"page_size": 50})
        assert dict(merged.settings) == {"compat": {"entra": True}, "page_size": 50}
        assert dict(store.get_tenant(t.id).settings) == dict(merged.settings)
        merged = store.update_settings("contoso", {"compat": {"okta": False}})
        assert dict(merged.settings["compat"]) == {"entra": True, "okta": False}
        replaced = store.update_settings("contoso", {"compat": {"x": True}}, replacing=("compat",))
        assert dict(replaced.settings) == {"compat": {"x": True}, "page_size": 50}
        store.delete_tenant("contoso")
        with pytest.raises(TenantNotFound):
            store.get_tenant("contoso")
        with pytest.raises(TenantNotFound):
            store.delete_tenant("contoso")

    def test_tokens(self, store: FullStore) -> None:
        t = store.create_tenant("contoso")
        expires = datetime(2030, 1, 1, tzinfo=UTC)
        info = store.add_token(t.id, b"\x01" * 32, "pv_abc", "entra", expires)
        assert (info.tenant_id, info.prefix, info.label, info.expires, info.revoked) == (
            t.id,
            "pv_abc",
            "entra",
            expires,
            None,
        )
        found = store.token_by_hash(b"\x01" * 32)
        assert found is not None and found[0].id == info.id and found[1].id == t.id
        assert store.token_by_hash(b"\x02" * 32) is None
        assert [x.id for x in store.list_tokens(t.id)] == [info.id]
        revoked = store.revoke_token(info.id)
        assert revoked.revoked is not None
        again = store.token_by_hash(b"\x01" * 32)
        assert again is not None and again[0].revoked == revoked.revoked
        with pytest.raises(TokenNotFound):
            store.revoke_token("nope")

    def test_deleting_a_tenant_deletes_its_tokens_and_resources(self, store: FullStore) -> None:
        t = store.create_tenant("contoso")
        keep = store.create_tenant("adatum")
        store.add_token(t.id, b"\x03" * 32, "p", "l", None)
        a = store.create(t.id, "User", user("a"))
        store.create(t.id, "Group", {"displayName": "G"}, [Member(a.id)])
        kept = store.create(keep.id, "User", user("a"))
        store.delete_tenant(t.id)
        assert store.token_by_hash(b"\x03" * 32) is None
        with pytest.raises(ResourceNotFound):
            store.get(t.id, "User", a.id)
        assert store.get(keep.id, "User", kept.id).data["userName"] == "a"
        again = store.create_tenant("contoso")
        assert store.search(again.id, "User", Query()).total == 0
