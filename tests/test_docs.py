"""The user guide documents every compatibility switch the code has."""

from __future__ import annotations

from pathlib import Path

from provisor.scim.compat import QUIRKS

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "user-guide.md"


def test_every_compat_switch_is_in_the_user_guide() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    missing = [q.name for q in QUIRKS if f"| `{q.name}` | {q.cites} |" not in text]
    assert not missing, f"docs/user-guide.md lacks the switches {missing}"
