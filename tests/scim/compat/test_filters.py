"""Filter normalisers (provisor.scim.compat.filters): Q2 string booleans in filters."""

from __future__ import annotations

import pytest

from provisor.scim.compat.filters import quoted_boolean


@pytest.mark.parametrize(
    ("text", "value"), [("True", True), ("true", True), ("FALSE", False), ("fAlSe", False)]
)
def test_true_and_false_in_any_case_are_the_booleans(text: str, value: bool) -> None:
    assert quoted_boolean(text) is value


@pytest.mark.parametrize("text", ["", "yes", "1", " True", "True ", "truee", "t"])
def test_anything_else_is_no_boolean(text: str) -> None:
    assert quoted_boolean(text) is None
