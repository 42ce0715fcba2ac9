"""Recursive-descent parser for SCIM filters (RFC 7644 section 3.4.2.2) and paths (section 3.5.2).

Grammar (ABNF of RFC 7644 section 3.4.2.2 with errata 4690: no valuePath inside a valFilter)::

    FILTER    = orExp
    orExp     = andExp *("or" andExp)                      ; precedence: not > and > or
    andExp    = unary *("and" unary)
    unary     = "not" "(" FILTER ")" / "(" FILTER ")" / valuePath / attrExp
    valuePath = attrPath "[" valFilter "]"                  ; valFilter: FILTER without valuePath
    attrExp   = attrPath "pr" / attrPath compareOp compValue
    PATH      = attrPath / valuePath ["." subAttr]          ; section 3.5.2, PATCH only

Keywords, operators and ``true``/``false``/``null`` are case-insensitive; attribute names are
resolved case-insensitively against the resource type (RFC 7643 section 2.1) and the AST carries
their canonical spelling. Literals are type-checked against the attribute at parse time, so a bad
comparison is a 400 ``invalidFilter`` naming the offending position (0-based character offset).

A filter is never silently unanswerable: what no store can decide is refused here, so the
evaluator and the SQL compiler only ever see what they agree on.

* ``co``/``sw``/``ew`` are refused on ``dateTime`` (compared as instants) and ``binary`` attributes
  (booleans take only ``eq``/``ne``), wherever the attribute is (core, extension, sub-attribute).
* Values the server builds from its base URL when rendering (``meta.location``, ``$ref`` of group
  ``members`` and of a User's ``groups``) can only be tested with ``pr``: any comparison on them
  is refused. ``pr`` on a value the server always renders is rewritten to what decides it:
  ``meta pr``, ``meta.version pr`` and ``meta.location pr`` become ``meta.resourceType pr``
  (always true); ``members.$ref pr`` becomes ``members pr`` (inside ``members[...]``:
  ``value pr``), likewise for ``groups``. ``meta.version`` (the ETag, ``W/"<version>"``) compares
  like any caseExact string: the SQL store builds it from the stored version.
* Attributes ``returned: never`` (a User's ``password``), whose values are never stored, are
  refused in any spelling and with any operator, ``pr`` included.
* Integers outside signed 64-bit (what the stores hold) are refused against ``integer`` and
  ``decimal`` attributes, and so are numbers too large to hold at all.

A chain of the same logical operator is folded into a balanced tree (``a and b and c`` is
``And(And(a, b), c)``; longer chains split in the middle), so the AST depth stays logarithmic in
the number of terms and no visitor can hit the recursion limit on a long but flat filter.
"""

from __future__ import annotations

import re
from typing import NoReturn

from provisor.scim.compat.filters import quoted_boolean
from provisor.scim.errors import InvalidFilter, InvalidPath
from provisor.scim.filter.ast import (
    And,
    AttrPath,
    Compare,
    CompareOp,
    Filter,
    Literal,
    Not,
    Or,
    PatchPath,
    Present,
    ValuePath,
)
from provisor.scim.filter.lexer import (
    END,
    PUNCT,
    STRING,
    WORD,
    ScanError,
    Token,
    decode_string,
    is_number,
    parse_datetime,
    parse_number,
    tokenize,
)
from provisor.scim.schema.model import (
    INTEGER_RANGE,
    MAX_INTEGER,
    MIN_INTEGER,
    Attribute,
    AttributeType,
    ResourceType,
    Returned,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_TERMS",
    "SCHEMAS_ATTRIBUTE",
    "lookup_attribute",
    "parse_attr_path",
    "parse_filter",
    "parse_patch_path",
    "present",
]

#: Longest filter or path accepted, in characters.
MAX_LENGTH = 8192
#: Deepest nesting of parentheses, ``not (...)`` and ``[...]`` accepted.
MAX_DEPTH = 32
#: Most attribute expressions (comparisons and ``pr``) in one filter: each is a subquery or more
#: to build and to run, and 327 ``groups`` comparisons in 8 KB took seconds of the event loop
#: (every tenant's requests waited) and tens of MB of cached statement each.
MAX_TERMS = 100

_OPS: dict[str, CompareOp] = {op.value: op for op in CompareOp}
_ORDERING = frozenset({CompareOp.GT, CompareOp.GE, CompareOp.LT, CompareOp.LE})
_SUBSTRING = frozenset({CompareOp.CO, CompareOp.SW, CompareOp.EW})
_NUMERIC = frozenset({AttributeType.INTEGER, AttributeType.DECIMAL})
_KEYWORD_LITERALS: dict[str, Literal] = {"true": True, "false": False, "null": None}

#: What works on the attribute types that refuse ``co``/``sw``/``ew`` (named in the 400 detail).
_NO_SUBSTRING: dict[AttributeType, str] = {
    AttributeType.DATETIME: "dateTimes compare as instants; use eq, ne, gt, ge, lt, le or pr",
    AttributeType.BINARY: "binary values compare whole; use eq, ne or pr",
}

#: ``meta`` is always present, with these two sub-attributes, both rendered by the server.
_ALWAYS_META = frozenset({"version", "location"})
#: The ``$ref`` the server renders on every value of these multi-valued attributes
#: (resource type, attribute): group members and a User's groups, built from ``type`` and ``value``.
_RENDERED_REFS = frozenset({("Group", "members"), ("User", "groups")})
#: What ``pr`` on an always-present ``meta`` (or its rendered sub-attributes) becomes: ``meta``
#: always carries ``resourceType``, which the SQL store and the evaluator both decide.
_META_PRESENT = Present(AttrPath(None, "meta", "resourceType"))
#: Always false and always true, in nodes the evaluator and the SQL compiler both decide.
_NEVER: Filter = Not(_META_PRESENT)
_ALWAYS: Filter = _META_PRESENT

#: ``returned: never`` (RFC 7643 section 7): a User's ``password``, which Provisor checks and drops.
#: RFC 7643 lets a service provider allow such attributes in filters ("MAY"); with nothing stored
#: a filter on one could only ever select nothing, so it is refused instead.
_NEVER_RETURNED = Returned.NEVER

_CACHE_SIZE = 2048
_cache: dict[tuple[str, str, bool, bool, bool, bool], tuple[ResourceType, Filter]] = {}

#: ``schemas`` (RFC 7643 section 3): every resource has it, no schema lists it, and the RFC 7644
#: section 3.4.2.2 examples filter on it (``schemas eq "urn:...:enterprise:2.0:User"``).
SCHEMAS_ATTRIBUTE = Attribute(
    name="schemas",
    type=AttributeType.REFERENCE,
    multi_valued=True,
    required=True,
    description="The schema URIs the resource uses (RFC 7643 section 3).",
)


def lookup_attribute(rt: ResourceType, urn: str | None, name: str) -> tuple[str | None, Attribute] | None:
    """:meth:`ResourceType.attribute`, plus the ``schemas`` attribute every resource has."""
    found = rt.attribute(urn, name)
    if found is None and urn is None and name.lower() == "schemas":
        return None, SCHEMAS_ATTRIBUTE
    return found


#: (extension URN or None, top-level definition, sub-attribute definition or None)
_Resolved = tuple[str | None, Attribute, Attribute | None]


def parse_filter(
    text: str,
    rt: ResourceType,
    *,
    allow_unquoted: bool = False,
    dotted_urns: bool = False,
    unknown_absent: bool = False,
    string_booleans: bool = False,
) -> Filter:
    """Parse a ``filter`` (RFC 7644 section 3.4.2.2) into a canonical AST.

    ``allow_unquoted`` is the Entra quirk Q11 (``externalId eq jyoung``): a bare word that is not a
    number, ``true``, ``false`` or ``null`` is read as a string, and against a string attribute an
    unquoted number or boolean is read as its text. ``dotted_urns`` is Q15: ``urn:...:User.department``
    names ``urn:...:User:department``. ``string_booleans`` is Q2: a quoted ``"True"``/``"False"``
    (any case) compared with a boolean attribute is that boolean (``active eq "True"``).
    ``unknown_absent`` is for a search across resource types (RFC 7644 section 3.4.2.1): an
    attribute ``rt`` does not have is read as one without a value instead of failing. Raises
    :class:`InvalidFilter` with a position.
    """
    simple = _simple_eq(text, rt)
    if simple is not None:
        return simple
    key = (text, rt.name, allow_unquoted, dotted_urns, unknown_absent, string_booleans)
    hit = _cache.get(key)
    if hit is not None and hit[0] is rt:
        return hit[1]
    try:
        parser = _Parser(text, rt, allow_unquoted, "filter", dotted_urns)
        parser.absent = unknown_absent
        parser.string_booleans = string_booleans
        result = parser.filter()
    except ScanError as exc:
        raise InvalidFilter(exc.detail, position=exc.position) from None
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()  # crude but thread-safe: no iteration over a dict another thread may grow
    _cache[key] = (rt, result)
    return result


_SIMPLE_EQ = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s+[eE][qQ]\s+"([^"\\\x00-\x1f]*)"\s*')


def _simple_eq(text: str, rt: ResourceType) -> Compare | None:
    """The shape Entra sends for every object (``userName eq "x"``, section 1.3) without the full
    parser: a plain string attribute, ``eq``, and a quoted value with no escapes. Anything else
    (or any doubt) returns None and goes through :class:`_Parser`, which gives the same AST."""
    m = _SIMPLE_EQ.fullmatch(text) if len(text) <= MAX_LENGTH else None
    if m is None:
        return None
    found = lookup_attribute(rt, None, m.group(1))
    if found is None or found[0] is not None:
        return None
    attr = found[1]
    if (
        attr.multi_valued
        or attr.type not in (AttributeType.STRING, AttributeType.REFERENCE)
        or attr.returned is _NEVER_RETURNED
    ):
        return None
    return Compare(AttrPath(None, attr.name), CompareOp.EQ, m.group(2))


def parse_patch_path(text: str, rt: ResourceType) -> PatchPath:
    """Parse a PATCH ``path`` (RFC 7644 section 3.5.2): ``attrPath`` or ``valuePath [ "." subAttr ]``.

    Raises :class:`InvalidPath` with a position, also for an invalid filter inside the brackets.
    """
    try:
        return _Parser(text, rt, False, "path").patch_path()
    except ScanError as exc:
        raise InvalidPath(exc.detail, position=exc.position) from None


def parse_attr_path(text: str, rt: ResourceType, *, short_names: bool = False) -> AttrPath:
    """Parse ``[urn:]attr[.sub]`` as used by ``sortBy``, ``attributes`` and ``excludedAttributes``
    (RFC 7644 sections 3.4.2.3 and 3.4.2.5). Surrounding whitespace is ignored. ``short_names``:
    an unqualified name no core attribute has names the attribute of the one extension that
    declares it (Q11, as filters read it). Raises :class:`InvalidPath`.
    """
    try:
        return _Parser(text, rt, False, "attribute path", short_names=short_names).attr_path()
    except ScanError as exc:
        raise InvalidPath(exc.detail, position=exc.position) from None


def _rendered(rt: ResourceType, path: AttrPath) -> bool:
    """Whether ``path`` is built from the server's base URL when the resource is rendered, so no
    store can compare it: ``meta.location``, and ``$ref`` of group members and of a User's groups.
    (``meta.version`` is rendered too, but from the stored version: it compares exactly.)"""
    if path.urn is not None or path.sub is None:
        return False
    if path.attr == "meta":
        return path.sub == "location"
    return path.sub == "$ref" and (rt.name, path.attr) in _RENDERED_REFS


def present(rt: ResourceType, path: AttrPath, inside: bool = False) -> Present:
    """``path pr``, with rendered values replaced by what decides them (every resource has ``meta``,
    ``meta.version`` and ``meta.location``; every member or group value has a ``$ref``, and a
    ``value`` it is built from). ``inside``: ``path`` is tested within ``attr[...]``. The SQL
    compiler applies it too, to trees built without the parser."""
    if path.urn is None and path.attr == "meta" and (path.sub is None or path.sub in _ALWAYS_META):
        return _META_PRESENT
    if _rendered(rt, path):
        return Present(AttrPath(None, path.attr, "value" if inside else None))
    return Present(path)


def _describe(tok: Token) -> str:
    kind, text, _ = tok
    if kind == END:
        return "the end of the input"
    if kind == STRING:
        return f"the string {text}"
    return f"'{text}'"


def _shown(text: str) -> str:
    """``text`` as a message quotes it: whole, or its start and its length when it is long."""
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"


def _too_large(word: str) -> str:
    """The message for a number no comparison can hold (past a float's range, or thousands of digits)."""
    return (
        f"the number {_shown(word)} is too large to compare: integers are {INTEGER_RANGE}, "
        "decimals at most about 1.8e308"
    )


def _fold(cls: type[And] | type[Or], terms: list[Filter]) -> Filter:
    """Join ``terms`` with ``cls`` as a balanced, left-heavy tree (left-associative up to three terms)."""
    if len(terms) == 1:
        return terms[0]
    mid = (len(terms) + 1) // 2
    return cls(_fold(cls, terms[:mid]), _fold(cls, terms[mid:]))


class _Parser:
    """One parse: a token list, a cursor and the nesting depth."""

    __slots__ = (
        "absent",
        "depth",
        "dotted",
        "i",
        "mode",
        "rt",
        "short_names",
        "string_booleans",
        "terms",
        "text",
        "toks",
        "unquoted",
    )

    def __init__(
        self,
        text: str,
        rt: ResourceType,
        unquoted: bool,
        mode: str,
        dotted: bool = False,
        *,
        short_names: bool | None = None,
    ) -> None:
        if len(text) > MAX_LENGTH:
            raise ScanError(
                f"{mode} is too long ({len(text)} characters; the limit is {MAX_LENGTH})", MAX_LENGTH
            )
        nul = text.find("\x00")
        if nul >= 0:  # in a quoted literal JSON refuses it too; in a word it would be an unquoted value
            raise ScanError(f"{mode} contains the NUL character (U+0000), which no value holds", nul)
        self.text = text
        self.rt = rt
        self.unquoted = unquoted
        #: an unqualified name may be an extension's attribute (``ResourceType.unqualified``): Q11,
        #: which the filters' switch turns on with unquoted values
        self.short_names = unquoted if short_names is None else short_names
        self.dotted = dotted
        self.mode = mode
        self.toks = tokenize(text)
        self.i = 0
        self.depth = 0
        self.terms = 0
        self.absent = False
        self.string_booleans = False

    # -- helpers ---------------------------------------------------------------------------------

    def fail(self, detail: str, position: int) -> NoReturn:
        raise ScanError(detail, position)

    def enter(self, position: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"{self.mode} is too deeply nested (more than {MAX_DEPTH} levels)", position)

    def close(self, closer: str, opener_pos: int) -> None:
        kind, text, pos = self.toks[self.i]
        if kind == PUNCT and text == closer:
            self.i += 1
            self.depth -= 1
            return
        opener = "(" if closer == ")" else "["
        self.fail(
            f"expected '{closer}' to close the '{opener}' at position {opener_pos}, "
            f"found {_describe(self.toks[self.i])}",
            pos,
        )

    def keyword(self, word: str) -> bool:
        kind, text, _ = self.toks[self.i]
        return kind == WORD and len(text) == len(word) and text.lower() == word

    # -- filters (section 3.4.2.2) ---------------------------------------------------------------

    def filter(self) -> Filter:
        if self.toks[0][0] == END:
            self.fail("empty filter", 0)
        result = self.or_exp(None)
        tok = self.toks[self.i]
        if tok[0] != END:
            self.trailing(tok)
        return result

    def trailing(self, tok: Token) -> NoReturn:
        kind, text, pos = tok
        if kind == PUNCT and text in ")]":
            self.fail(f"unbalanced '{text}'", pos)
        self.fail(f"expected 'and', 'or' or the end of the {self.mode}, found {_describe(tok)}", pos)

    def or_exp(self, parent: _Resolved | None) -> Filter:
        terms = [self.and_exp(parent)]
        while self.keyword("or"):
            self.i += 1
            terms.append(self.and_exp(parent))
        return _fold(Or, terms)

    def and_exp(self, parent: _Resolved | None) -> Filter:
        terms = [self.unary(parent)]
        while self.keyword("and"):
            self.i += 1
            terms.append(self.unary(parent))
        return _fold(And, terms)

    def unary(self, parent: _Resolved | None) -> Filter:
        kind, text, pos = self.toks[self.i]
        if kind == PUNCT and text == "(":
            self.enter(pos)
            self.i += 1
            inner = self.or_exp(parent)
            self.close(")", pos)
            return inner
        if kind == WORD:
            if text.lower() == "not":
                nkind, ntext, npos = self.toks[self.i + 1]
                if nkind != PUNCT or ntext != "(":
                    self.fail("'not' must be followed by a parenthesised filter, e.g. not (title pr)", npos)
                self.enter(npos)
                self.i += 2
                inner = self.or_exp(parent)
                self.close(")", npos)
                return Not(inner)
            if text.lower() in ("and", "or"):
                self.fail(f"expected an attribute name, '(' or 'not', found '{text}'", pos)
            return self.attr_exp(parent)
        if kind == END:
            before = self.toks[self.i - 1][1] if self.i else ""
            self.fail(f"expected a filter expression after '{before}'", pos)
        self.fail(f"expected an attribute name, '(' or 'not', found {_describe(self.toks[self.i])}", pos)

    def attr_exp(self, parent: _Resolved | None) -> Filter:
        _, word, pos = self.toks[self.i]
        self.terms += 1
        if self.terms > MAX_TERMS:
            self.fail(
                f"{self.mode} has more than {MAX_TERMS} comparisons; split it into several requests", pos
            )
        kind, text, op_pos = self.toks[self.i + 1]
        is_value_path = kind == PUNCT and text == "["
        if parent is not None and is_value_path:
            self.fail(f"a value filter cannot be nested inside '{parent[1].name}[...]'", op_pos)
        if parent is None and self.absent and not self.known(word):
            return self.absent_exp(op_pos)
        resolved = self.resolve(word, pos) if parent is None else self.resolve_sub(parent, word, pos)
        urn, top, sub = resolved
        if top.returned is _NEVER_RETURNED or (sub is not None and sub.returned is _NEVER_RETURNED):
            shown = top.name if sub is None else f"{top.name}.{sub.name}"
            self.fail(
                f"'{shown}' cannot be filtered: its value is never stored or returned (returned "
                '"never", RFC 7643 section 7), so no filter on it could be answered',
                pos,
            )
        self.i += 1
        if is_value_path:
            if (
                self.mode == "filter"
                and sub is None
                and not top.multi_valued
                and top.type is AttributeType.COMPLEX
            ):
                return self.one_value_path(resolved)
            return self.value_path(resolved, pos)
        if kind != WORD:
            self.fail(f"expected an operator after '{word}', found {_describe(self.toks[self.i])}", op_pos)
        low = text.lower()
        path = AttrPath(urn, top.name, sub.name if sub is not None else None)
        self.i += 1
        if low == "pr":
            return present(self.rt, path, parent is not None)
        op = _OPS.get(low)
        if op is None:
            self.fail(f"unknown operator '{text}' (expected eq ne co sw ew gt ge lt le or pr)", op_pos)
        if _rendered(self.rt, path):
            self.fail(
                f"'{path}' is computed by the server when it renders the resource (it is not "
                f"stored), so it can only be tested with pr, not '{text}'",
                op_pos,
            )
        leaf = sub if sub is not None else top
        if leaf.type is AttributeType.COMPLEX:
            value_sub = leaf.sub("value")
            if value_sub is None:
                self.fail(
                    f"the complex attribute '{path}' cannot be compared; name one of its sub-attributes",
                    pos,
                )
            if op in _ORDERING:
                self.fail(f"'{text}' cannot compare the complex attribute '{path}'", op_pos)
            path = AttrPath(urn, top.name, value_sub.name)
            leaf = value_sub
        value = self.literal(op, text, op_pos, leaf, path)
        return Compare(path, op, value)

    def known(self, word: str) -> bool:
        try:
            self.resolve(word, 0)
        except ScanError:
            return False
        return True

    def absent_exp(self, op_pos: int) -> Filter:
        """An expression on an attribute the resource type does not have, in a search across
        resource types: RFC 7644 section 3.4.2.1 treats the attribute as having no value, so the
        expression is what it is for an absent value (``ne`` and ``eq null`` hold, nothing else)."""
        self.i += 1
        kind, text, _ = self.toks[self.i]
        if kind == PUNCT and text == "[":
            self.enter(op_pos)
            self.i += 1
            while self.toks[self.i][0] != END and self.toks[self.i][1] != "]":
                self.i += 1
            self.close("]", op_pos)
            nkind, ntext, npos = self.toks[self.i]
            if self.mode == "filter" and self.unquoted and nkind == WORD and ntext.startswith("."):
                self.absent_exp(npos)  # Q11: attr[...].sub op value, the condition of that value path
            return _NEVER
        if kind != WORD:
            self.fail(f"expected an operator, found {_describe(self.toks[self.i])}", op_pos)
        self.i += 1
        if text.lower() == "pr":
            return _NEVER
        op = _OPS.get(text.lower())
        if op is None:
            self.fail(f"unknown operator '{text}' (expected eq ne co sw ew gt ge lt le or pr)", op_pos)
        vkind, value, vpos = self.toks[self.i]
        if vkind not in (STRING, WORD):
            self.fail(f"expected a value after '{text}'", vpos)
        self.i += 1
        is_null = vkind == WORD and value.lower() == "null"
        if op is CompareOp.NE:
            return _NEVER if is_null else _ALWAYS
        return _ALWAYS if op is CompareOp.EQ and is_null else _NEVER

    def one_value_path(self, resolved: _Resolved) -> Filter:
        """``name[givenName eq "a" and familyName eq "b"]``: a value filter on a single-valued
        complex attribute (RFC 7644 section 3.4.2.2's grammar allows any complex attribute), whose
        one value must be there and match: ``name pr and (name.givenName eq "a" and ...)``."""
        urn, top, _ = resolved
        _, _, bracket = self.toks[self.i]
        self.enter(bracket)
        self.i += 1
        inner = self.or_exp((urn, top, None))
        self.close("]", bracket)
        kind, text, after = self.toks[self.i]
        if kind == WORD and text.startswith("."):
            self.fail(f"'{text}' after ']' is only allowed in a PATCH path", after)
        return And(present(self.rt, AttrPath(urn, top.name)), inner)

    def value_path(self, resolved: _Resolved, pos: int) -> ValuePath:
        urn, top, sub = resolved
        _, _, bracket = self.toks[self.i]
        if sub is not None or not top.multi_valued or (urn is None and top.name == "schemas"):
            shown = f"{top.name}.{sub.name}" if sub is not None else top.name
            needs = "a complex or multi-valued" if self.mode == "filter" else "a multi-valued"
            self.fail(f"'[...]' needs {needs} attribute; '{shown}' is not one", bracket)
        self.enter(bracket)
        self.i += 1
        inner = self.or_exp((urn, top, None))
        self.close("]", bracket)
        kind, text, after = self.toks[self.i]
        if self.mode == "filter" and kind == WORD and text.startswith(".") and self.unquoted:
            # Entra (Q11) filters on a matching attribute written as a PATCH path:
            # emails[type eq "work"].value eq "x"  ==  emails[type eq "work" and value eq "x"]
            self.toks[self.i] = (WORD, text[1:], after + 1)
            condition = self.attr_exp((urn, top, None))
            return ValuePath(AttrPath(urn, top.name), And(inner, condition))
        if self.mode == "filter" and kind == WORD and text.startswith("."):
            self.fail(
                f"'{text}' after ']' is only allowed in a PATCH path; in a filter put the condition "
                f'inside the brackets, e.g. {top.name}[type eq "work" and value eq "..."]',
                after,
            )
        return ValuePath(AttrPath(urn, top.name), inner)

    def literal(self, op: CompareOp, op_text: str, op_pos: int, leaf: Attribute, path: AttrPath) -> Literal:
        """Read ``compValue`` and check it against the attribute's type (RFC 7643 section 2.3)."""
        kind, text, pos = self.toks[self.i]
        raw: str | None = None  # the word, when the value was written unquoted
        value: Literal
        if kind == STRING:
            value = decode_string(text, pos)
        elif kind == WORD:
            low = text.lower()
            if low in _KEYWORD_LITERALS:
                value = _KEYWORD_LITERALS[low]
            else:
                number = parse_number(text)
                if number is not None:
                    value = number
                elif self.unquoted:
                    value = text
                elif is_number(text):
                    self.fail(_too_large(text), pos)
                else:
                    self.fail(
                        f"the value '{text}' must be quoted (\"{text}\"), or be a number, true, false "
                        "or null",
                        pos,
                    )
            raw = text if self.unquoted else None
        else:
            self.fail(f"expected a value after '{op_text}'", pos)
        self.i += 1
        return self.check(op, op_text, op_pos, value, raw, leaf, path, pos)

    def check(
        self,
        op: CompareOp,
        op_text: str,
        op_pos: int,
        value: Literal,
        raw: str | None,
        leaf: Attribute,
        path: AttrPath,
        pos: int,
    ) -> Literal:
        t = leaf.type
        if value is None:
            if op is not CompareOp.EQ and op is not CompareOp.NE:
                self.fail(f"null can only be compared with 'eq' or 'ne', not '{op_text}'", op_pos)
            return None
        if t is AttributeType.BOOLEAN:
            if op is not CompareOp.EQ and op is not CompareOp.NE:
                self.fail(f"'{op_text}' is not defined for the boolean '{path}'; use eq or ne", op_pos)
            if isinstance(value, bool):
                return value
            spelled = quoted_boolean(value) if isinstance(value, str) and raw is None else None
            if spelled is not None and self.string_booleans:
                return spelled  # Q2: "True" / "false", quoted
            hint = "" if spelled is None else ' (or a quoted "True"/"False", with string_booleans on)'
            self.fail(f"the boolean attribute '{path}' must be compared with true or false{hint}", pos)
        if op in _SUBSTRING:
            if t in _NO_SUBSTRING:
                self.fail(
                    f"'{op_text}' is not defined for the {t.value} attribute '{path}': {_NO_SUBSTRING[t]}",
                    op_pos,
                )
            if t in _NUMERIC:
                self.fail(f"'{op_text}' needs a string attribute; '{path}' is a {t.value}", op_pos)
            if isinstance(value, str):
                return value
            if raw is not None:
                return raw
            self.fail(f"'{op_text}' needs a quoted string value", pos)
        if t in _NUMERIC:
            if isinstance(value, bool) or not isinstance(value, int | float):
                if raw is not None and is_number(raw):
                    self.fail(_too_large(raw), pos)
                self.fail(f"the {t.value} attribute '{path}' must be compared with a number", pos)
            if type(value) is int and not MIN_INTEGER <= value <= MAX_INTEGER:
                hint = "" if t is AttributeType.INTEGER else "; write a decimal this large with an exponent"
                self.fail(
                    f"the integer {_shown(str(value))} is outside the integers '{path}' can hold: "
                    f"{INTEGER_RANGE}{hint}",
                    pos,
                )
            return value
        if t is AttributeType.BINARY and op in _ORDERING:
            self.fail(f"'{op_text}' is not defined for the binary attribute '{path}'", op_pos)
        if not isinstance(value, str):
            if raw is None:
                self.fail(f"the {t.value} attribute '{path}' must be compared with a quoted string", pos)
            value = raw
        if t is AttributeType.DATETIME and parse_datetime(value) is None:
            self.fail(
                f"'{value}' is not a dateTime (xsd:dateTime, e.g. 2011-05-13T04:42:34Z) for '{path}'", pos
            )
        return value

    # -- attribute names (RFC 7643 section 2.1, RFC 7644 section 3.10) -----------------------------

    def resolve(self, word: str, pos: int) -> _Resolved:
        """Resolve ``[urn:]attr[.sub]`` to canonical definitions, or fail naming the unknown part."""
        urn, rest = self.rt.split_urn(word, dotted=self.dotted)
        if urn is None and word[:4].lower() == "urn:":
            self.fail(f"unknown attribute '{word}': no schema of {self.rt.name} has that URN", pos)
        offset = pos + len(word) - len(rest)
        name, dot, sub_name = rest.partition(".")
        found = lookup_attribute(self.rt, urn, name)
        if found is None and urn is None and self.short_names:
            found = self.rt.unqualified(name)
        if found is None:
            self.fail(f"unknown attribute '{name if urn is None else urn + ':' + name}'", pos)
        ext, top = found
        if not dot:
            return ext, top, None
        return ext, top, self.sub_of(top, sub_name, offset + len(name) + 1)

    def resolve_sub(self, parent: _Resolved, word: str, pos: int) -> _Resolved:
        """Resolve a name inside ``attr[...]``: a sub-attribute of the bracketed attribute; for a
        simple multi-valued attribute, ``value``, which names each of its values (RFC 7644 section
        3.5.2.2: "a complex filter ... comparing a 'value'"), as the attribute itself."""
        ext, top, _ = parent
        if top.type is not AttributeType.COMPLEX:
            if word.lower() != "value":
                self.fail(
                    f"inside '{top.name}[...]' each of its values is named 'value' ('{top.name}' has "
                    f"no sub-attributes; found '{word}')",
                    pos,
                )
            return ext, top, None
        return ext, top, self.sub_of(top, word, pos)

    def sub_of(self, top: Attribute, name: str, pos: int) -> Attribute:
        if top.type is not AttributeType.COMPLEX:
            self.fail(f"attribute '{top.name}' has no sub-attributes (asked for '{name}')", pos)
        sub = top.sub(name)
        if sub is None:
            self.fail(f"unknown sub-attribute '{name}' of '{top.name}'", pos)
        return sub

    # -- paths (section 3.5.2) -------------------------------------------------------------------

    def first_word(self, example: str) -> tuple[str, int]:
        kind, text, pos = self.toks[0]
        if kind != WORD:
            self.fail(f"expected an attribute name (e.g. {example}), found {_describe(self.toks[0])}", pos)
        return text, pos

    def attr_path(self) -> AttrPath:
        word, pos = self.first_word("name.givenName")
        ext, top, sub = self.resolve(word, pos)
        if self.toks[1][0] != END:
            self.fail(f"unexpected {_describe(self.toks[1])} after the attribute path", self.toks[1][2])
        return AttrPath(ext, top.name, sub.name if sub is not None else None)

    def patch_path(self) -> PatchPath:
        word, pos = self.first_word('emails[type eq "work"].value')
        resolved = self.resolve(word, pos)
        ext, top, sub = resolved
        self.i = 1
        kind, text, tpos = self.toks[1]
        if kind == END:
            return PatchPath(AttrPath(ext, top.name, sub.name if sub is not None else None))
        if kind != PUNCT or text != "[":
            self.fail(f"expected '[' or the end of the path, found {_describe(self.toks[1])}", tpos)
        vp = self.value_path(resolved, pos)
        kind, text, tpos = self.toks[self.i]
        sub_name: str | None = None
        if kind == WORD and text.startswith(".") and len(text) > 1:
            sub_name = self.sub_of(top, text[1:], tpos + 1).name
            self.i += 1
            kind, text, tpos = self.toks[self.i]
        if kind != END:
            found = _describe(self.toks[self.i])
            self.fail(f"expected '.subAttribute' or the end of the path, found {found}", tpos)
        return PatchPath(AttrPath(ext, top.name, sub_name), vp.filter)
