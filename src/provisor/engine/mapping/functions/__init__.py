"""The function registry of the expression language: the 43 functions of entra-behaviour.md
section 3.3 plus AssertiveAppRoleAssignmentsComplex (section 3.1, MAP). Names are case-sensitive
(section 3.2)."""

from __future__ import annotations

from provisor.engine.mapping.functions import dates, generated, logic, multivalued, replace, roles, strings
from provisor.engine.mapping.functions.spec import FunctionSpec

__all__ = ["CONSTANTS", "FUNCTIONS", "FunctionSpec"]

#: Every function by its (case-sensitive) name.
FUNCTIONS: dict[str, FunctionSpec] = {
    spec.name: spec
    for module in (dates, generated, logic, multivalued, replace, roles, strings)
    for spec in module.SPECS
}

#: Bare VBA constants an expression may use (InStr's compareType); they evaluate to their name.
CONSTANTS: frozenset[str] = frozenset({"vbTextCompare", "vbBinaryCompare"})
