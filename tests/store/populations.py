"""Test helpers: Users as a client sends them, made to tie when sorted (few distinct values, the
same text in other cases, values missing, multi-valued attributes with and without a primary,
elements without the sub-attribute sorted on). Not a test module (no ``test_`` prefix)."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import strategies as st

from provisor.scim.schema.model import ENTERPRISE_USER

#: Few values, the same in other cases, non-ASCII (folding that changes the length: İ), "".
WORDS = ["a", "A", "ab", "aB", "b", "B", "", "z", "é", "É", "İ", "i̇", "ß", "ǅ", "a b", "0", "10", "9", "~"]

text = st.sampled_from(WORDS)
primary = st.booleans()


def element(**subs: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=subs)


def elements(**subs: st.SearchStrategy[Any]) -> st.SearchStrategy[list[dict[str, Any]]]:
    """A multi-valued complex attribute: at most one element primary (RFC 7643 section 2.4)."""

    def one_primary(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen = False
        for item in items:
            if item.get("primary") is True:
                item["primary"] = not seen
                seen = True
        return items

    return st.lists(element(**subs), max_size=3).map(one_primary)


#: A User body without ``schemas``; ``userName`` is one of WORDS (make it unique).
user_bodies = st.fixed_dictionaries(
    {"userName": text},
    optional={
        "displayName": text,
        "nickName": text,
        "title": text,
        "externalId": text,
        "active": st.booleans(),
        "profileUrl": st.sampled_from(["https://x/A", "https://x/a", "https://x/B", ""]),
        "name": element(familyName=text, givenName=text, formatted=text),
        "emails": elements(
            value=text.map(lambda w: f"{w}@x.com") | text,
            type=st.sampled_from(["work", "home", "Work", "other"]),
            primary=primary,
            display=text,
        ),
        "phoneNumbers": elements(value=text, type=st.sampled_from(["work", "mobile"]), primary=primary),
        "photos": elements(
            value=st.sampled_from(["https://x/A.png", "https://x/a.png", "urn:b"]), primary=primary
        ),
        "addresses": elements(
            locality=text, country=text, type=st.sampled_from(["work", "home"]), primary=primary
        ),
        "roles": elements(value=text, display=text, primary=primary),
        "x509Certificates": elements(
            value=st.sampled_from(["QUJD", "qujd", "YWJj", "AAAA"]), primary=primary
        ),
        ENTERPRISE_USER: st.fixed_dictionaries(
            {},
            optional={
                "employeeNumber": text,
                "department": text,
                "costCenter": text,
                "manager": element(value=text),
            },
        ),
    },
)


def fixed_bodies(n: int) -> list[dict[str, Any]]:
    """``n`` Users with a value of most attributes each (seeded): every path has values to order."""
    rng = random.Random(3423)

    def word() -> str:
        return rng.choice(WORDS)

    def many(**subs: Any) -> list[dict[str, Any]]:
        items = [
            {k: make() for k, make in subs.items() if rng.random() < 0.7} for _ in range(rng.randint(0, 3))
        ]
        if items and rng.random() < 0.5:
            rng.choice(items)["primary"] = True
        return items

    bodies = []
    for _ in range(n):
        body: dict[str, Any] = {
            "userName": word(),
            "displayName": word(),
            "nickName": word(),
            "externalId": word(),
            "active": rng.random() < 0.5,
            "profileUrl": rng.choice(["https://x/A", "https://x/a", "urn:b"]),
            "name": {"familyName": word(), "givenName": word()},
            "emails": many(
                value=lambda: word() + "@x.com", type=lambda: rng.choice(["work", "home"]), display=word
            ),
            "phoneNumbers": many(value=word, type=lambda: "work", display=word),
            "ims": many(value=word, type=lambda: "xmpp", display=word),
            "photos": many(value=lambda: rng.choice(["https://x/A.png", "https://x/a.png"]), display=word),
            "addresses": many(locality=word, region=word, postalCode=word, country=word, formatted=word),
            "entitlements": many(value=word, type=word, display=word),
            "roles": many(value=word, type=word, display=word),
            "x509Certificates": many(
                value=lambda: rng.choice(["QUJD", "qujd", "YWJj"]), type=word, display=word
            ),
            ENTERPRISE_USER: {
                k: word() for k in ("employeeNumber", "costCenter", "organization", "division", "department")
            }
            | {"manager": {"value": word()}},
        }
        bodies.append({k: v for k, v in body.items() if rng.random() < 0.85 or k == "userName"})
    return bodies
