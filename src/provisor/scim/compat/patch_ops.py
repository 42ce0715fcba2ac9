"""PATCH normalisers: what Entra ID and Okta send in a PatchOp that a strict RFC 7644 section 3.5.2
reading rejects, each gated by its switch in :class:`~provisor.scim.compat.CompatSettings`.

| switch                      | quirk | here                                                   |
|-----------------------------|-------|--------------------------------------------------------|
| ``capitalised_ops``         | Q1    | :func:`normalise_op_name`                              |
| ``string_booleans``         | Q2    | :func:`unquote_boolean_literals`, :func:`normalise_value` |
| ``remove_members_with_value``| Q3   | :func:`remove_value_allowed`                           |
| ``manager_bare_string``     | Q5    | :func:`bare_extension_path`, :func:`normalise_value`,  |
|                             |       | :func:`names_whole_manager`                            |
| ``pathless_dotted_keys``    | Q6    | :func:`expand_pathless_value`                          |
| ``extension_dot_names``     | Q15   | :func:`colon_after_urn`                                |
| ``roles_json_strings``      | Q8    | :func:`normalise_value` (via ``bodies``)               |
| ``unmatched_filter_creates``| 1.4   | :func:`element_from_filter`                            |
| ``unknown_attributes_ignored``| 1.3 | :func:`expand_pathless_value`, :func:`path_head_known` |
| ``undeclared_extension_schemas``| Q7 | :func:`unqualified_extension_path`, :func:`expand_pathless_value` |
| ``pathless_read_only_ignored``| Okta | :func:`expand_pathless_value`                         |

All functions are pure: they return new values and never mutate their arguments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from provisor.scim.compat import CompatSettings, bodies
from provisor.scim.errors import InvalidPath, InvalidSyntax, InvalidValue
from provisor.scim.errors import Mutability as MutabilityError
from provisor.scim.filter.ast import And, Compare, CompareOp, Filter
from provisor.scim.schema.model import ENTERPRISE_USER, Attribute, AttributeType, Mutability, ResourceType

#: The op names of RFC 7644 section 3.5.2, in their only RFC spelling.
OP_NAMES = frozenset({"add", "replace", "remove"})

_HEAD_END = re.compile(r"[.\[]")


def normalise_op_name(raw: Any, compat: CompatSettings) -> str:
    """The RFC op name for ``raw`` (RFC 7644 section 3.5.2: "add", "replace" or "remove").

    Q1 (``capitalised_ops``): Entra's default dialect sends ``Add``/``Replace``/``Remove``; with the
    switch on any case matches, with it off only the lowercase RFC names do. Anything else is
    ``invalidSyntax``: the body does not conform to the PatchOp message schema.
    """
    if not isinstance(raw, str):
        raise InvalidSyntax(f'PATCH "op" must be a string, got {type(raw).__name__}')
    name = raw.lower() if compat.on("capitalised_ops") else raw
    if name not in OP_NAMES:
        hint = " (op names are lowercase; capitalised_ops is off)" if raw.lower() in OP_NAMES else ""
        raise InvalidSyntax(f'unknown PATCH op {raw!r}: expected "add", "replace" or "remove"{hint}')
    return name


def remove_value_allowed(compat: CompatSettings) -> bool:
    """Q3 (``remove_members_with_value``): may a ``remove`` carry a ``value`` selecting what to remove?

    Entra removes members with ``{"op":"Remove","path":"members","value":[{"value":id}]}``. RFC 7644
    section 3.5.2.2 gives remove no value (and a path-only remove drops *all* members), so the strict
    reading rejects such an operation instead of emptying the group.
    """
    return compat.on("remove_members_with_value")


def owning_extension(rt: ResourceType, name: str) -> str | None:
    """The URN of the one extension declaring attribute ``name`` when the core schema does not;
    of several, the enterprise extension, whose attributes Entra sends unqualified (``department``,
    ``manager``: a custom extension declaring ``department`` too made Entra's value vanish)."""
    if rt.attribute(None, name) is not None:
        return None
    found = rt.unqualified(name)
    return found[0] if found is not None else None


def path_head(rt: ResourceType, text: str) -> tuple[str | None, str]:
    """Split a path text into (schema URN or None, top-level attribute name) without parsing it."""
    urn, rest = rt.split_urn(text)
    return urn, _HEAD_END.split(rest, maxsplit=1)[0]


def colon_after_urn(rt: ResourceType, text: str, compat: CompatSettings) -> str | None:
    """Q15 (``extension_dot_names``): ``urn:...:enterprise:2.0:User.department`` means
    ``urn:...:enterprise:2.0:User:department``. Entra's ``customappsso`` jobs, the provisioning
    service as it was before December 2018 and still running for apps set up then, put a ``.``
    where RFC 7644 section 3.10 puts a ``:`` between a schema URN and an attribute name."""
    if not compat.on("extension_dot_names"):
        return None
    urn, rest = rt.split_urn(text, dotted=True)
    if urn is None or text[len(urn)] != ".":
        return None
    return f"{urn}:{rest}"


def path_head_known(rt: ResourceType, text: str) -> bool:
    """Whether the top-level attribute a path text starts with is declared (RFC 7644 section 3.10).

    A ``urn:`` prefix naming no schema of ``rt`` counts as unknown (e.g. an Entra custom extension
    this server does not declare, entra-behaviour.md 1.3); one that names a schema of ``rt`` but
    is followed by a ``.`` (Q15 with its switch off) counts as known: the path is malformed, and
    ignoring it would lose the change without a word.
    """
    urn, head = path_head(rt, text)
    if urn is None and text[:4].lower() == "urn:":
        return rt.split_urn(text, dotted=True)[0] is not None
    if _UNKNOWN_PATH.fullmatch(text[len(urn) + 1 :] if urn else text) is None:
        return True  # not a path at all (``nickName]``, ``title extra``): refused, never ignored
    return rt.attribute(urn, head) is not None


#: A path as RFC 7644 section 3.10 writes one, for an attribute this server may not know:
#: ``attr``, ``attr.sub``, ``attr[filter]`` or ``attr[filter].sub`` (ATTRNAME: ALPHA, then
#: letters, digits, ``-``, ``_``; ``$ref``). Only such a path is ignored as naming an unknown
#: attribute; any other text is a malformed path, refused with the parser's error.
_NAME = r"(?:[A-Za-z][A-Za-z0-9_-]*|\$ref)"
_UNKNOWN_PATH = re.compile(rf'{_NAME}(?:\[(?:[^\]"]|"(?:[^"\\]|\\.)*")*\])?(?:\.{_NAME})?')


def bare_extension_path(rt: ResourceType, text: str, compat: CompatSettings) -> str | None:
    """Q5 (``manager_bare_string``): ``manager[...]`` / ``manager.value`` mean the enterprise manager.

    Entra's documented manager operations use the bare path ``manager`` (and, observed 2023,
    ``manager[value eq "id"]``), though the core User schema has no such attribute. With the switch on
    the path is qualified with the one extension that declares ``manager``; None otherwise.
    """
    if not compat.on("manager_bare_string") or text[:4].lower() == "urn:":
        return None
    _, head = path_head(rt, text)
    if head.lower() != "manager":
        return None
    urn = owning_extension(rt, head)
    return f"{urn}:{text}" if urn is not None else None


def unqualified_extension_path(rt: ResourceType, text: str, compat: CompatSettings) -> str | None:
    """Q7 (``undeclared_extension_schemas``): a path whose attribute no core attribute has but one
    extension declares (``department``, ``employeeNumber[...]``) names that extension's, qualified
    here with its URN, as a POST body's top-level ``department`` is (``parse_resource``); None
    when the switch is off or the name is the core schema's or no extension's. (``manager``
    has Q5 too: :func:`bare_extension_path`.)"""
    if not bodies.undeclared_extension_allowed(compat) or text[:4].lower() == "urn:":
        return None
    _, head = path_head(rt, text)
    urn = owning_extension(rt, head)
    return f"{urn}:{text}" if urn is not None else None


def expand_pathless_value(value: Any, rt: ResourceType, compat: CompatSettings) -> list[tuple[str, Any]]:
    """Turn a path-less add/replace value object into ``(path text, value)`` pairs (RFC 7644 3.5.2.1/3)
    (:func:`_expand_pathless`); an attribute named twice, under its schema's URN and by a
    qualified key (``{"urn:...:enterprise:2.0:User": {"department": "a"},
    "urn:...:enterprise:2.0:User:department": "b"}``) is 400, as in a POST: neither is chosen."""
    pairs = _expand_pathless(value, rt, compat)
    if len(pairs) > 1:
        named: set[tuple[str | None, str]] = set()
        for text, _ in pairs:
            urn, rest = rt.split_urn(text, dotted=compat.on("extension_dot_names"))
            key = (None if urn is None or urn == rt.schema.id else urn, rest.lower())
            if key in named:
                raise InvalidValue(f"{text} is given twice in a path-less value")
            named.add(key)
    return pairs


def _expand_pathless(value: Any, rt: ResourceType, compat: CompatSettings) -> list[tuple[str, Any]]:
    """Turn a path-less add/replace value object into ``(path text, value)`` pairs (RFC 7644 3.5.2.1/3).

    Without a path "the target location is the resource itself": every key is an attribute. An
    extension URN key holds an object of that extension's attributes. ``schemas`` is skipped, and
    readOnly attributes (``id``, ``meta``) are too, as a PUT would ignore them (RFC 7644 section
    3.5.1), with ``pathless_read_only_ignored``; without it they are 400 ``mutability``.

    Q6 (``pathless_dotted_keys``): Entra's ``aadOptscim062020`` dialect folds several changes into one
    value whose keys are paths: ``name.givenName``, ``urn:...:User:employeeNumber`` and even
    ``emails[type eq "work"].value``. With the switch on every such key is taken as a path; off, a
    key that is not an attribute name or a schema URN is ``invalidPath``.
    Unknown plain attribute names are skipped when ``unknown_attributes_ignored`` (1.3) is on.
    """
    if not isinstance(value, Mapping):
        raise InvalidValue("an add or replace without a path needs an object value (RFC 7644 section 3.5.2)")
    dotted = compat.on("pathless_dotted_keys")
    out: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidPath(f"invalid attribute name {key!r} in a path-less value")
        if key.lower() in seen:  # names are case-insensitive (RFC 7643 section 2.1): which one?
            raise InvalidValue(f"{key} is given twice in a path-less value, in two cases")
        seen.add(key.lower())
        if key.lower() == "schemas":
            continue
        schema = rt.schema_for(key) if key[:4].lower() == "urn:" else None
        if schema is not None:
            out.extend(_expand_schema_object(rt, schema.id, item, compat))
            continue
        if _HEAD_END.search(key) or key[:4].lower() == "urn:":
            if not dotted:
                raise InvalidPath(
                    f"{key!r} is not an attribute name (path keys need pathless_dotted_keys, Q6)"
                )
            if _read_only_head(rt, key):
                _read_only(key, compat)
                continue
            out.append((key, item))
            continue
        found = rt.attribute(None, key)
        if found is None:
            qualified = unqualified_extension_path(rt, key, compat)
            if qualified is not None:  # Q7: an extension's attribute named without its URN
                if _read_only_head(rt, qualified):
                    _read_only(qualified, compat)
                else:
                    out.append((qualified, item))
                continue
            if compat.on("unknown_attributes_ignored"):
                continue
            raise InvalidPath(f"unknown attribute {key!r} in a path-less value")
        if found[1].mutability is Mutability.READ_ONLY:
            _read_only(key, compat)
            continue
        out.append((key, item))
    return out


def _read_only(key: str, compat: CompatSettings) -> None:
    """A readOnly attribute in a path-less value: ignored with ``pathless_read_only_ignored``, as a
    PUT ignores it (RFC 7644 section 3.5.1); else 400 mutability, as its path would be (3.5.2)."""
    if not compat.on("pathless_read_only_ignored"):
        raise MutabilityError(f"{key} is readOnly and cannot be changed (RFC 7643 section 7)")


def _expand_schema_object(
    rt: ResourceType, urn: str, item: Any, compat: CompatSettings
) -> list[tuple[str, Any]]:
    if urn == rt.schema.id:
        return _expand_pathless(item, rt, compat)
    if not isinstance(item, Mapping):
        raise InvalidValue(f"the value of {urn!r} must be an object of its attributes")
    out: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for sub_key, sub_item in item.items():
        if not isinstance(sub_key, str) or not sub_key:
            raise InvalidPath(f"invalid attribute name {sub_key!r} under {urn!r}")
        if sub_key.lower() in seen:
            raise InvalidValue(f"{urn}:{sub_key} is given twice in a path-less value, in two cases")
        seen.add(sub_key.lower())
        text = f"{urn}:{sub_key}"
        if not path_head_known(rt, text):
            if compat.on("unknown_attributes_ignored"):
                continue
            raise InvalidPath(f"unknown attribute {sub_key!r} of {urn!r}")
        if not _read_only_head(rt, text):
            out.append((text, sub_item))
        else:
            _read_only(text, compat)
    return out


def _read_only_head(rt: ResourceType, text: str) -> bool:
    """Whether a path key names a readOnly attribute or sub-attribute (``manager.displayName``)."""
    urn, head = path_head(rt, text)
    found = rt.attribute(urn, head)
    if found is None:
        return False
    if found[1].mutability is Mutability.READ_ONLY:
        return True
    _, rest = rt.split_urn(text)
    tail = rest.rsplit("]", 1)[1] if "]" in rest else rest[len(head) :]
    sub = found[1].sub(tail[1:]) if tail.startswith(".") else None
    return sub is not None and sub.mutability is Mutability.READ_ONLY


_BOOLEAN_LITERAL = re.compile(r'(\beq\s+|\bne\s+)"(true|false)"', re.IGNORECASE)


def unquote_boolean_literals(text: str, compat: CompatSettings) -> str | None:
    """Q2 (``string_booleans``) in paths: ``roles[primary eq "True"].value`` compares with ``true``.

    Entra's ``SingleAppRoleAssignment`` targets ``roles[primary eq "True"].value`` (entra-behaviour.md
    3.3 and section 5); RFC 7644 section 3.4.2.2 compares a boolean with the literal ``true``. Returns
    the rewritten path, or None when the switch is off or nothing was rewritten.
    """
    if not compat.on("string_booleans"):
        return None
    rewritten = _BOOLEAN_LITERAL.sub(lambda m: m.group(1) + m.group(2).lower(), text)
    return rewritten if rewritten != text else None


def normalise_value(
    rt: ResourceType,
    urn: str | None,
    attribute: Attribute,
    value: Any,
    compat: CompatSettings,
    *,
    whole: bool,
) -> Any:
    """A PATCH value in the shape the merge rules of RFC 7644 section 3.5.2 work on.

    ``value`` is written to ``attribute`` (of extension ``urn``): its whole value when ``whole``,
    else one element (multi-valued) or one sub-attribute's value is handled by the caller. Applies
    the body normalisers of :mod:`provisor.scim.compat.bodies`, each gated by its own switch: Q5
    manager (bare string, ``[{$ref, value}]``), Q8 JSON-encoded roles, Q4 ``"$ref": null`` members and
    Q2 string booleans (``active``, ``primary``). The merge needs them before validation so that
    duplicates and ``primary`` are judged on the decoded values.
    """
    if urn is not None and urn.lower() == ENTERPRISE_USER.lower() and attribute.name == "manager" and whole:
        return bodies.normalise_manager(value, compat)
    if attribute.multi_valued and whole:
        items = value if isinstance(value, list) else [value]
        return [normalise_value(rt, urn, attribute, v, compat, whole=False) for v in items]
    if attribute.name == "roles" and urn is None:
        value = bodies.decode_role(value, compat)
    elif attribute.name == "members" and urn is None and rt.name.lower() == "group":
        value = bodies.member_display_name(value, compat)
    if attribute.type is AttributeType.BOOLEAN:
        return bodies.coerce_string_boolean(value, compat)
    if attribute.type is AttributeType.COMPLEX and isinstance(value, Mapping):
        out = dict(value)
        for key, item in value.items():
            sub = attribute.sub(key) if isinstance(key, str) else None
            if sub is not None and sub.type is AttributeType.BOOLEAN:
                out[key] = bodies.coerce_string_boolean(item, compat)
        return out
    return value


def names_whole_manager(urn: str | None, attribute: Attribute, raw: Any, compat: CompatSettings) -> bool:
    """Q5 (``manager_bare_string``): does ``raw``, written to ``attribute``, name the whole manager?

    Entra's shorthands, a bare id and the old docs' ``[{"$ref": ..., "value": id}]``, say who the
    manager is, as the switch promises ("stored as {value}"): they replace the manager whole. Merged
    like the RFC's object form (RFC 7644 section 3.5.2.3: sub-attributes not given are kept), a
    new bare id would keep the ``$ref`` of the manager before, so that ``value`` and ``$ref`` name
    two different Users. The object form still merges.
    """
    return (
        compat.on("manager_bare_string")
        and urn is not None
        and urn.lower() == ENTERPRISE_USER.lower()
        and attribute.name == "manager"
        and isinstance(raw, str | list | tuple)
    )


def element_from_filter(f: Filter) -> dict[str, Any] | None:
    """1.4 (``unmatched_filter_creates``): the element a valuePath filter describes, or None.

    Entra maps ``emails[type eq "work"].value`` and ``addresses[type eq "work"].locality`` as
    attribute targets and PATCHes them whether or not such an element exists. A filter made only of
    ``eq`` comparisons on sub-attributes joined by ``and`` describes an element
    (``{"type": "work"}``); anything else (``or``, ``co``, ``pr``, ``not``, conflicting values) does
    not. The caller checks the switch; RFC 7644 section 3.5.2.3 answers ``noTarget`` instead.
    """
    if isinstance(f, Compare):
        if f.op is not CompareOp.EQ or f.path.sub is None:
            return None
        return {f.path.sub: f.value}
    if isinstance(f, And):
        left, right = element_from_filter(f.left), element_from_filter(f.right)
        if left is None or right is None:
            return None
        for key in left.keys() & right.keys():
            if left[key] != right[key]:
                return None
        return {**left, **right}
    return None
