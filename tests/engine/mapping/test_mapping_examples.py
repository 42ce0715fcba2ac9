"""Every worked example of entra-behaviour.md section 3, from tests/data/expressions/examples.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.engine.mapping.mapping_helpers import out

from provisor.engine.mapping import FUNCTIONS

DATA = Path(__file__).resolve().parents[2] / "data" / "expressions" / "examples.json"
EXAMPLES: list[dict[str, Any]] = json.loads(DATA.read_text(encoding="utf-8"))["examples"]


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{i}-{e['cite']}" for i, e in enumerate(EXAMPLES)])
def test_documented_example(example: dict[str, Any]) -> None:
    assert out(example["expression"], example.get("source", {})) == example["expected"]


def test_every_documented_function_is_registered() -> None:
    # section 3.3: 43 documented functions + AssertiveAppRoleAssignmentsComplex (MAP)
    documented = """Append AppRoleAssignmentsComplex BitAnd CBool CDate Coalesce ConvertToBase64
        ConvertToUTF8Hex Count CStr DateAdd DateDiff DateFromNum FormatDateTime Guid
        IgnoreFlowIfNullOrEmpty IIF InStr IsNull IsNullOrEmpty IsPresent IsString Item Join Left Mid
        NormalizeDiacritics Not Now NumFromDate PCase RandomString Redact RemoveDuplicates Replace
        SelectUniqueValue SingleAppRoleAssignment Split StripSpaces Switch ToLower ToUpper Word""".split()
    assert len(documented) == 43
    assert set(FUNCTIONS) == {*documented, "AssertiveAppRoleAssignmentsComplex"}
    assert "AppDomain" not in FUNCTIONS  # section 3.3: no such function


def test_examples_cover_every_function() -> None:
    import re

    used = {name for e in EXAMPLES for name in re.findall(r"([A-Za-z0-9]+)\(", e["expression"])}
    untested = (
        set(FUNCTIONS)
        - used
        - {
            "Guid",
            "RandomString",
            "Redact",
            "SelectUniqueValue",
            "CStr",
            "IsString",
            "IgnoreFlowIfNullOrEmpty",
        }
    )
    assert not untested  # the rest have no doc example; their own tests live in test_mapping_functions_*
