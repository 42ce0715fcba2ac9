"""The user guide documents every compatibility switch the code has."""

from __future__ import annotations

from pathlib import Path

from provisor.scim.compat import QUIRKS

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "user-guide.md"


def test_every_compat_switch_is_in_the_user_guide() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    missing = [q.name for q in QUIRKS if f"| `{q.name}` | {q.cites} |" not in text]
    assert not missing, f"docs/user-guide.md lacks the switches {missing}"


README = GUIDE.parent.parent / "README.md"
KNOWN_FAILURES = Path(__file__).resolve().parent / "conformance" / "postman_known_failures.json"


def test_the_readme_lists_every_postman_assertion_left_failing_with_its_reason() -> None:
    import json

    text = README.read_text(encoding="utf-8")
    failures = json.loads(KNOWN_FAILURES.read_text(encoding="utf-8"))["failures"]
    rows = [line for line in text.splitlines() if line.startswith("| ") and " | " in line]
    want = [
        f"| {f['request']} | {f['assertion']} | {f['reason'].replace('|', chr(92) + '|')} |" for f in failures
    ]
    missing = [row for row in want if row not in rows]
    assert not missing, f"README.md lacks the rows {missing}"
    listed = [row for row in rows if row.split(" | ")[0].lstrip("| ") in {f["request"] for f in failures}]
    assert len(listed) == len(want), "README.md lists a Postman failure the known-failures file does not"
