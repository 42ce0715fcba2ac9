"""scim-sanity's live probe (`scim-sanity probe --strict --json-output`) against a live server and fresh,
empty tenants.

scim-sanity runs discovery, User and Group CRUD lifecycles (POST, GET, PUT, PATCH, DELETE, each followed by
a GET that checks the change), search and error handling, and reports one result per check: pass, fail,
warn, skip or error (a check may add warn results next to its pass or fail).

Every result that is not a pass must be listed in scim_sanity_known_failures.json (tenants, check, status
and a part of its message, with a reason), and every listed result must still occur: a listed result that
no longer occurs fails the test too, so the list stays honest. The test also fails when fewer checks ran
than scim-sanity 0.7.4 runs against a server with Users and Groups.

Which runs: scim-sanity's `--strict` mode (plain RFC 7643/7644: every deviation it knows fails), against a
tenant as `provisor tenant create` makes it (the Entra and Okta compatibility switches on) and against a
`--strict` tenant (every switch off). Not run:

- scim-sanity's `--compat` mode: it only turns some strict failures into warnings (application/json
  instead of application/scim+json, a missing Location header, an error body without `status`, ...),
  so a strict run without failures of that kind passes it too;
- the `entra` profile: it is for probing Microsoft Entra's own SCIM API as the server (it adds the
  password and Microsoft's `urn:ietf:params:scim:schemas:extension:Microsoft:Entra:2.0:*` extensions
  that API requires to every POST and documents that server's deviations), not for a server Entra
  provisions into (Provisor answers its POSTs 400 invalidValue: a `schemas` URN that the resource
  type does not declare).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

scim_sanity = pytest.importorskip("scim_sanity", reason="scim-sanity is not installed")

KNOWN_FAILURES = Path(__file__).with_name("scim_sanity_known_failures.json")
PROBE_TIMEOUT_S = 300
REQUEST_TIMEOUT_S = 30
# scim-sanity 0.7.4 reports 31 checks for a server with Users and Groups: 3 discovery, 8 User lifecycle,
# 10 Group lifecycle, 3 Agent/AgenticApplication phases (skipped unless /ResourceTypes lists them),
# 4 search and 3 error handling; all but the 3 Agent ones run.
EXPECTED_CHECKS = 31
EXPECTED_RUN = 28

# tenant kind -> the fixture that makes a fresh, empty tenant of that kind
TENANTS = {"default": "live_server", "strict": "live_strict_server"}
STATUSES = {"fail", "error", "warn", "skip"}


@dataclass(frozen=True)
class Known:
    check: str
    status: str
    message: str
    reason: str


def load_known_failures() -> tuple[str, dict[str, list[Known]]]:
    """(the scim-sanity version the list was made with, tenant kind -> known non-passing results)."""
    data = json.loads(KNOWN_FAILURES.read_text(encoding="utf-8"))
    known: dict[str, list[Known]] = {kind: [] for kind in TENANTS}
    for entry in data["failures"]:
        assert entry.get("reason"), f"known failure without a reason: {entry}"
        assert entry.get("status") in STATUSES, f"status must be one of {sorted(STATUSES)}: {entry}"
        assert entry.get("tenants"), f"known failure for no tenant: {entry}"
        for kind in entry["tenants"]:
            assert kind in TENANTS, f"unknown tenant kind {kind!r} in {entry}"
            known[kind].append(
                Known(entry["check"], entry["status"], entry.get("message", ""), entry["reason"])
            )
    return data["scim_sanity_version"], known


_ID_AT_END = re.compile(r"^(\w+ /\w+/)[^/\s]+$")


def check_name(result: dict[str, Any]) -> str:
    """A result's stable name: a cleanup DELETE is named after the created id, which changes every run."""
    name = str(result.get("name", "?"))
    if result.get("phase") == "Cleanup":
        return "Cleanup: " + _ID_AT_END.sub(r"\1{id}", name)
    return name


def run_probe(base_url: str, token: str) -> dict[str, Any]:
    """`scim-sanity probe` (strict) as a subprocess; its JSON report."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scim_sanity",
            "probe",
            base_url,
            "--token",
            token,
            "--strict",
            "--i-accept-side-effects",
            "--json-output",
            "--timeout",
            str(REQUEST_TIMEOUT_S),
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=PROBE_TIMEOUT_S,
        check=False,
    )
    # Exit code 0: every check passed; 1: some failed. The JSON report is on stdout either way.
    start = proc.stdout.find("{")
    try:
        report = json.loads(proc.stdout[start:]) if start >= 0 else None
    except json.JSONDecodeError:
        report = None
    if (
        proc.returncode not in (0, 1)
        or not isinstance(report, dict)
        or not isinstance(report.get("results"), list)
    ):
        pytest.fail(
            f"scim-sanity exited {proc.returncode} without a JSON report:\n"
            f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
        )
    return report


def judge(
    results: list[dict[str, Any]], known: list[Known]
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """(check name -> its results, problems): the non-passing results not listed, and the listed results
    that did not occur."""
    checks: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        checks.setdefault(check_name(result), []).append(result)
    matched: set[Known] = set()
    problems: list[str] = []
    for name, rs in checks.items():
        for r in rs:
            status, message = str(r.get("status")), str(r.get("message", ""))
            if status == "pass":
                continue
            hits = [k for k in known if k.check == name and k.status == status and k.message in message]
            if hits:
                matched.update(hits)
            else:
                problems.append(f"{status.upper():5s} {r.get('phase', '-')} :: {name}: {message}")
    for k in known:
        if k in matched:
            continue
        if k.check in checks:
            now = "; ".join(f"{r.get('status')} {r.get('message', '')}".strip() for r in checks[k.check])
        else:
            now = "did not run"
        problems.append(
            f"NO LONGER OCCURS (update {KNOWN_FAILURES.name})  {k.status} :: {k.check} :: {k.message!r} "
            f"-- now: {now}"
        )
    return checks, problems


@pytest.mark.slow
@pytest.mark.parametrize("tenant", list(TENANTS))
def test_scim_sanity_probe(request: pytest.FixtureRequest, tenant: str) -> None:
    version, known = load_known_failures()
    assert scim_sanity.__version__ == version, (
        f"scim-sanity {scim_sanity.__version__} is installed but {KNOWN_FAILURES.name} was made with "
        f"{version}: run the probe, review the list and its version"
    )
    base_url, token = request.getfixturevalue(TENANTS[tenant])
    report = run_probe(base_url, token)
    checks, problems = judge(report["results"], known[tenant])
    ran = [name for name, rs in checks.items() if any(r.get("status") != "skip" for r in rs)]

    print(
        f"scim-sanity {report.get('scim_sanity_version')} ({report.get('mode')}, {tenant} tenant): "
        f"{len(checks)} checks, {len(ran)} ran; results {report.get('summary')}"
    )
    if len(checks) < EXPECTED_CHECKS or len(ran) < EXPECTED_RUN:
        problems.append(
            f"only {len(checks)} checks were reported and {len(ran)} ran; scim-sanity {version} reports "
            f"{EXPECTED_CHECKS} and runs {EXPECTED_RUN}: {sorted(checks)}"
        )
    assert not problems, f"scim-sanity against the {tenant} tenant at {base_url}:\n" + "\n".join(problems)


def test_the_readme_names_every_known_scim_sanity_failure() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start = readme.find("- **scim-sanity**")
    assert start >= 0, "README.md's Conformance section has no scim-sanity bullet"
    end = readme.find("\n- **", start + 1)
    section = readme[start : end if end >= 0 else len(readme)]
    _, known = load_known_failures()
    checks = {k.check for kinds in known.values() for k in kinds}
    missing = sorted(c for c in checks if f"`{c}`" not in section)
    assert not missing, f"README.md's scim-sanity bullet does not name the known failures {missing}"
