"""bearer_scheme_variants: the token of an Authorization header, and whether a variant carried it."""

from __future__ import annotations

import pytest

from provisor.scim.compat.credentials import bearer_token

TOKEN = "pvs_abcDEF123-_x"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"Bearer {TOKEN}", (TOKEN, False)),
        (f"bearer   {TOKEN} ", (TOKEN, False)),
        ("Bearer other-token", ("other-token", False)),
        (f"Bearer Bearer {TOKEN}", (TOKEN, True)),
        (f"bearer BEARER {TOKEN}", (TOKEN, True)),
        (TOKEN, (TOKEN, True)),
        (f" {TOKEN} ", (TOKEN, True)),
    ],
)
def test_the_token_and_its_form(header: str, expected: tuple[str, bool]) -> None:
    assert bearer_token(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "other-token",
        f"Token {TOKEN}",
        f"Bearer {TOKEN} extra",
        f"Bearer Bearer Bearer {TOKEN}",
        f"Bearer Basic {TOKEN}",
    ],
)
def test_anything_else_names_no_token(header: str) -> None:
    assert bearer_token(header) is None
