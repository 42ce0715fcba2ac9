"""Group ``members`` PATCH operations as membership deltas (RFC 7644 section 3.5.2; RFC 7643 4.2).

Members are a relation the store changes in O(k) (``provisor.store.base.MemberDelta``),
never a list in the resource dict, so a PATCH adding one member to a group of 100k costs one row.
:func:`split_member_operations` turns the usual shapes into a delta without reading the group:

| operation                                              | delta                    |
|--------------------------------------------------------|--------------------------|
| ``add members [values]``                               | ``add``                  |
| ``replace members [values]`` (Okta ``[]`` empties)     | ``replace``              |
| ``remove members``                                     | ``replace=()``           |
| ``remove members [values]`` (Entra, Q3)                | ``remove``               |
| ``remove members[value eq "a" or value eq "b"]``       | ``remove``               |

Anything else (``members[display co "x"]``, ``members[type eq "User"]``, sub-attribute paths)
needs the current list: :func:`apply_member_operations` is the general fallback. There a member's
``value``, ``type`` and ``$ref`` (``immutable`` in the Group schema) cannot be changed: a swap is a
remove plus an add (RFC 7644 section 3.5.2, ``mutability``); ``display`` (readWrite) can. Each
operation there sees the members as the group would show them after the ones before it: a member
an earlier operation added has the ``type`` and the name it will be shown with
(:data:`MemberLookup`), so ``add members [...]`` then ``remove members[type eq "User"]`` removes
it as it removes a member stored before.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from provisor.scim.compat import CompatSettings
from provisor.scim.errors import InvalidSyntax, Mutability
from provisor.scim.filter.ast import Compare, CompareOp, Filter, Or
from provisor.scim.filter.evaluate import matches_element
from provisor.scim.patch.apply import (
    MAX_PATCH_WORK,
    MEMBER_PASSES,
    PatchWork,
    apply_operation,
    is_member_path,
)
from provisor.scim.patch.request import (
    PatchOperation,
    expand_operation,
    normalise_operation_value,
    operation_context,
)
from provisor.scim.resources import Member as StoredMember
from provisor.scim.resources import validate_attribute_value
from provisor.scim.schema.model import Attribute, ResourceType
from provisor.scim.schema.model import Mutability as Mut


@dataclass(frozen=True, slots=True)
class Member:
    """One group member (RFC 7643 section 4.2), field for field ``provisor.store.base.Member``."""

    value: str
    type: str | None = None
    display: str | None = None


#: What member values name, read where the resources are (the store, in the write's transaction):
#: for each value that is the id of a User or Group, the member it is shown as when no display was
#: sent for it (its ``type``, "User" or "Group", and its own name as ``display``, None without
#: one); a value that names no resource is left out.
MemberLookup = Callable[[Collection[str]], Mapping[str, Member]]


@dataclass(frozen=True, slots=True)
class MemberDelta:
    """Changes to a group's members, field for field ``provisor.store.base.MemberDelta``: ``replace``
    (when not None) sets the whole list; ``add`` and ``remove`` (member ids) are disjoint.

    ``shown`` names the members of ``replace`` whose display is not one the client sent but the
    one the group showed: :func:`apply_member_operations` computes the list from the members as
    shown, and one that no operation wrote keeps the display stored for it, sent or none (a group
    shows a member's own name unless a display was sent for it). Every other display of
    ``replace`` is stored as sent (a PUT, a replace of the list: ``shown`` empty).

    The protocol core must not import the store (architecture.md), so the server converts this
    structurally identical value into the store's type at the seam.
    """

    add: tuple[Member, ...] = ()
    remove: tuple[str, ...] = ()
    replace: tuple[Member, ...] | None = None
    shown: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not self.add and not self.remove and self.replace is None


def split_member_operations(
    rt: ResourceType, ops: Sequence[PatchOperation], compat: CompatSettings
) -> tuple[tuple[PatchOperation, ...], MemberDelta, bool]:
    """Separate a Group's ``members`` operations into a :class:`MemberDelta`.

    Returns ``(other operations, delta, needs_full_member_list)``. The delta is net and
    order-independent: its ``add`` and ``remove`` are disjoint and, when ``replace`` is set, empty.
    When ``needs_full_member_list`` is true the delta is empty and the caller loads the current
    members and calls :func:`apply_member_operations` with the same ``ops``. For any resource type
    other than Group every operation is "other".
    """
    if rt.name.lower() != "group":
        return tuple(ops), MemberDelta(), False
    attribute = _members_attribute(rt)
    other: list[PatchOperation] = []
    builder = _DeltaBuilder()
    full = False
    for index, op in enumerate(ops):
        with operation_context(op.place(index)):
            for one in expand_operation(op, rt, compat):
                assert one.path is not None
                if not is_member_path(rt, one.path):
                    other.append(one)
                elif not full:
                    full = not _fold(rt, attribute, one, builder, compat)
    return tuple(other), (MemberDelta() if full else builder.delta()), full


def apply_member_operations(
    current: Sequence[StoredMember],
    ops: Sequence[PatchOperation],
    rt: ResourceType,
    compat: CompatSettings,
    *,
    lookup: MemberLookup | None = None,
) -> MemberDelta:
    """Apply the ``members`` operations of ``ops`` to ``current`` and return the change as a delta.

    The general fallback for shapes a delta cannot express (RFC 7644 section 3.5.2 semantics, as
    for any multi-valued attribute). Operations on other attributes are skipped. When an existing
    member's ``type`` or ``display`` changed, or an operation wrote an existing member's element
    (whose display is then one sent, even if it is the name shown), the delta is a full
    ``replace`` naming the members no operation wrote (``shown``); otherwise it is the added and
    removed members.

    Operations apply one after another to the members as shown (``current`` is what the group
    shows: each member's type, and its display sent or else its own name). So after each, a member
    that is in the group already is listed once (an add leaves it as it is) and, given ``lookup``,
    each member an operation wrote without them gets the ``type`` it will be stored and shown with
    (the type of the resource its value names, whatever was sent) and, without a display, its own
    name, which the delta leaves out (none sent, so the group keeps showing the member's name).
    Without ``lookup`` (a caller with no store) members keep what was sent. A value that names no
    resource gets neither, and the store refuses it if it is still added at the end.
    """
    data: dict[str, Any] = {"members": [_as_dict(m) for m in current]} if current else {}
    work = PatchWork(max(MAX_PATCH_WORK, MEMBER_PASSES * (len(current) + 1)))
    written: set[str] = set()
    shown = _AsShown(current, lookup)
    for index, op in enumerate(ops):
        with operation_context(op.place(index)):
            for one in expand_operation(op, rt, compat):
                assert one.path is not None
                if is_member_path(rt, one.path):
                    _refuse_reference_write(one)
                    wrote = _writes(rt, one, data.get("members") or [])
                    written |= wrote
                    work.spend(apply_operation(rt, data, one, compat))
                    shown.settle(data, wrote)
    after = [_as_member(e) for e in data.get("members", [])]
    before = {m.value: Member(m.value, m.type, m.display) for m in current}
    now: dict[str, Member] = {}
    for m in after:  # an add of a member in the group already leaves it as it is, as a delta's does
        now.setdefault(m.value, m)
    kept = [v for v in before if v in now]
    named = shown.named
    sent = {v: replace(m, display=None) if v in named else m for v, m in now.items()}
    if any(now[v] != before[v] or v in written or v in named for v in kept):
        unwritten = frozenset(v for v in kept if v not in written and v not in named)
        return MemberDelta(replace=tuple(sent.values()), shown=unwritten)
    return MemberDelta(
        add=tuple(m for v, m in sent.items() if v not in before),
        remove=tuple(v for v in before if v not in now),
    )


class _AsShown:
    """Keeps the member list of :func:`apply_member_operations` as the group would show it after
    each operation (RFC 7644 section 3.5.2: operations apply in order, each to the resource the
    ones before it left), so a later valuePath filter on ``type`` or ``display`` finds a member
    an earlier operation added as it finds one stored before.

    ``named`` holds the members whose display is their own name filled in here (none was sent):
    the delta leaves it out, so the group goes on showing the member's name if it changes.
    """

    __slots__ = ("_found", "_lookup", "_types", "named")

    def __init__(self, current: Sequence[StoredMember], lookup: MemberLookup | None) -> None:
        self._lookup = lookup
        #: the type each member of the group has (what it is stored with, by what it names)
        self._types = {m.value: m.type for m in current if m.type is not None}
        self._found: dict[str, Member | None] = {}
        self.named: dict[str, str] = {}

    def settle(self, data: dict[str, Any], wrote: set[str]) -> None:
        """After an operation that wrote the elements of ``wrote``: one element a value (the
        first: an add of a member in the group already leaves it as it is), each with the type
        of what its value names and, lacking a display, that resource's own name."""
        elements = data.get("members")
        if not elements:
            return
        for written in wrote:  # a display an operation wrote is one sent, even the name shown
            self.named.pop(written, None)
        seen: set[str] = set()
        out: list[Any] = []
        unsettled: list[str] = []
        for element in elements:
            value = element.get("value") if isinstance(element, Mapping) else None
            if not isinstance(value, str):
                out.append(element)
                continue
            if value in seen:
                continue
            seen.add(value)
            if self._lookup is not None:
                element = self._typed(element, value)
                if (
                    _sub(element, "type") is None
                    or _sub(element, "display") is None
                    or (value in wrote and value not in self._types)
                ):
                    unsettled.append(value)
            out.append(element)
        if unsettled:
            self._resolve(unsettled)
            wanted = set(unsettled)
            out = [
                self._settled(e) if isinstance(e, Mapping) and e.get("value") in wanted else e for e in out
            ]
        data["members"] = out

    def _typed(self, element: Mapping[str, Any], value: str) -> Mapping[str, Any]:
        """A member of the group keeps its type (set once, RFC 7643 section 2.2), whatever an
        element written for it says: it is stored and shown with the type of what it names."""
        known = self._types.get(value)
        if known is None or _sub(element, "type") == known:
            return element
        return _set_sub(element, "type", known)

    def _resolve(self, values: list[str]) -> None:
        missing = [v for v in values if v not in self._found]
        if not missing:
            return
        assert self._lookup is not None
        found = self._lookup(missing)
        for value in missing:
            self._found[value] = found.get(value)

    def _settled(self, element: Mapping[str, Any]) -> Mapping[str, Any]:
        value = element["value"]
        found = self._found.get(value)
        if found is None:  # names no resource: the store refuses it if it is still added
            return element
        out = _set_sub(element, "type", found.type) if found.type is not None else dict(element)
        if _sub(out, "display") is None and found.display is not None:
            out = _set_sub(out, "display", found.display)
            self.named[value] = found.display
        return out


def _sub(element: Mapping[str, Any], name: str) -> Any:
    """Sub-attribute ``name`` of ``element``, in any case (None when absent)."""
    for key, item in element.items():
        if isinstance(key, str) and key.lower() == name:
            return item
    return None


def _set_sub(element: Mapping[str, Any], name: str, value: Any) -> dict[str, Any]:
    """``element`` with sub-attribute ``name`` set under that name, replacing any spelling of it."""
    out = {k: v for k, v in element.items() if not (isinstance(k, str) and k.lower() == name)}
    out[name] = value
    return out


def _writes(rt: ResourceType, op: PatchOperation, members: Sequence[Any]) -> set[str]:
    """The members whose elements ``op`` writes, applied to ``members``: the ones its filter
    matches (or, matching none, names with ``value eq``: the element it creates), every member
    for a sub-attribute path, the elements of a replace of the list, and those of an add that are
    not in the group yet (one that is stays as it is)."""
    elements = [e for e in members if isinstance(e, Mapping) and isinstance(e.get("value"), str)]
    assert op.path is not None
    if op.op == "remove":
        return set()
    sub = op.path.path.sub
    written = None if sub is None else _members_attribute(rt).sub(sub)
    if op.op == "replace" and written is not None and written.mutability is Mut.IMMUTABLE:
        return set()  # refused, or the values the members hold already: none is written
    if op.path.filter is not None:
        f = op.path.filter
        matched = {e["value"] for e in elements if matches_element(f, e, rt)}
        return matched or set(_eq_values(f) or ())
    if op.path.path.sub is not None:
        return {e["value"] for e in elements}
    sent = op.value if isinstance(op.value, list) else [op.value]
    values = {e["value"] for e in sent if isinstance(e, Mapping) and isinstance(e.get("value"), str)}
    return values if op.op == "replace" else values - {e["value"] for e in elements}


def _refuse_reference_write(op: PatchOperation) -> None:
    """Refuse a write of ``members.$ref`` into existing members (RFC 7644 section 3.5.2, ``mutability``).

    ``$ref`` is derived from ``value`` and never stored, so such a write could only be ignored:
    ``add members[...].$ref`` or a non-null ``$ref`` in the value of an add or replace with a
    valuePath filter. The whole-list forms (``add members [...]``) keep ignoring it, as on a POST.
    """
    assert op.path is not None
    if op.op == "remove" or (op.path.filter is None and op.path.path.sub is None):
        return
    sub = op.path.path.sub
    if (sub is not None and sub.lower() == "$ref") or (sub is None and _gives_reference(op.value)):
        raise Mutability(
            "members.$ref is immutable: it follows from members.value and cannot be written; "
            "remove the member and add another instead (RFC 7644 section 3.5.2)"
        )


def _gives_reference(value: Any) -> bool:
    elements = value if isinstance(value, list) else [value]
    return any(isinstance(e, Mapping) and _has_reference(e) for e in elements)


def _has_reference(element: Mapping[Any, Any]) -> bool:
    return any(isinstance(k, str) and k.lower() == "$ref" and v is not None for k, v in element.items())


@dataclass(slots=True)
class _DeltaBuilder:
    """Folds member operations, in order, into one net delta."""

    replace: dict[str, Member] | None = None
    add: dict[str, Member] = field(default_factory=dict)
    remove: dict[str, None] = field(default_factory=dict)

    def add_members(self, members: Sequence[Member]) -> None:
        for m in members:
            if self.replace is not None:
                self.replace.setdefault(m.value, m)
            else:
                self.remove.pop(m.value, None)
                self.add.setdefault(m.value, m)

    def remove_values(self, values: Sequence[str]) -> None:
        for v in values:
            if self.replace is not None:
                self.replace.pop(v, None)
            else:
                self.add.pop(v, None)
                self.remove[v] = None

    def replace_all(self, members: Sequence[Member]) -> None:
        self.replace = {}
        self.add.clear()
        self.remove.clear()
        self.add_members(members)

    def delta(self) -> MemberDelta:
        return MemberDelta(
            add=tuple(self.add.values()),
            remove=tuple(self.remove),
            replace=None if self.replace is None else tuple(self.replace.values()),
        )


def _fold(
    rt: ResourceType, attribute: Attribute, op: PatchOperation, builder: _DeltaBuilder, compat: CompatSettings
) -> bool:
    """Fold one ``members`` operation into ``builder``; False when it needs the full member list."""
    assert op.path is not None
    if op.path.path.sub is not None:
        return False
    value = normalise_operation_value(rt, op.path, op.value, compat)
    f = op.path.filter
    if op.op == "remove":
        if f is not None:
            values = _eq_values(f)
            if values is None:
                return False
            builder.remove_values(values)
        elif value is None:
            builder.replace_all(())
        elif not compat.on("remove_members_with_value"):
            raise InvalidSyntax("remove takes no value (RFC 7644 section 3.5.2.2; Q3 is off)")
        else:
            builder.remove_values([m.value for m in _members(rt, attribute, value, compat)])
        return True
    if f is not None:
        return False
    members = _members(rt, attribute, value, compat)
    if op.op == "add":
        if builder.replace is None and any(m.value in builder.remove for m in members):
            # a member removed by an earlier operation comes back as this element, its display
            # included: the delta cannot say so (its add leaves a member in the group as it is)
            return False
        builder.add_members(members)
    else:
        builder.replace_all(members)
    return True


def _members(rt: ResourceType, attribute: Attribute, value: Any, compat: CompatSettings) -> list[Member]:
    """Member values checked like a POST's (RFC 7643 section 4.2: ``value`` required, ``type``
    User or Group), de-duplicated by ``value``."""
    checked = validate_attribute_value(rt, None, attribute, value, compat, where="members")
    out: dict[str, Member] = {}
    for element in checked or ():
        member = _as_member(element)
        out.setdefault(member.value, member)
    return list(out.values())


def _eq_values(f: Filter) -> list[str] | None:
    """The ids of ``value eq "a" [or value eq "b" ...]``, or None for any other filter."""
    if isinstance(f, Compare):
        ok = f.op is CompareOp.EQ and f.path.sub == "value" and isinstance(f.value, str)
        return [f.value] if ok and isinstance(f.value, str) else None
    if isinstance(f, Or):
        left, right = _eq_values(f.left), _eq_values(f.right)
        return None if left is None or right is None else left + right
    return None


def _members_attribute(rt: ResourceType) -> Attribute:
    found = rt.attribute(None, "members")
    if found is None:
        raise ValueError(f"resource type {rt.name} has no members attribute")
    return found[1]


def _as_dict(member: StoredMember) -> dict[str, Any]:
    out: dict[str, Any] = {"value": member.value}
    if member.type is not None:
        out["type"] = member.type
    if member.display is not None:
        out["display"] = member.display
    return out


def _as_member(element: Mapping[str, Any]) -> Member:
    return Member(value=element["value"], type=element.get("type"), display=element.get("display"))
