"""Microsoft's SCIM reference Postman collection ("SCIM Tests"), run with newman against a live server.

Every failed assertion must be listed in postman_known_failures.json (with a reason), and every listed
assertion must still fail: a listed assertion that now passes, or no longer runs, fails the test too,
so the list stays honest.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SUITE_DIR = REPO_ROOT.parent / "shared" / "conformance" / "microsoft-postman"
NEWMAN = REPO_ROOT / ".tools" / "newman" / "node_modules" / ".bin" / "newman"
KNOWN_FAILURES = Path(__file__).with_name("postman_known_failures.json")
NEWMAN_TIMEOUT_S = 300

Key = tuple[str, str]  # ("Folder / Request", assertion name)


def _item_paths(items: list[dict[str, Any]], prefix: str = "") -> dict[str, str]:
    """Map each request's id to its "Folder / Request" path, as newman's CLI reporter names it."""
    paths: dict[str, str] = {}
    for item in items:
        path = f"{prefix}{item.get('name', '?')}"
        if "item" in item:
            paths.update(_item_paths(item["item"], f"{path} / "))
        elif "id" in item:
            paths[item["id"]] = path
    return paths


def _body_text(message: dict[str, Any] | None, limit: int = 600) -> str:
    if not message:
        return ""
    body = message.get("body") or {}
    if isinstance(body, dict):
        text = body.get("raw") or ""
    else:
        text = str(body)
    stream = message.get("stream")
    if isinstance(stream, dict) and isinstance(stream.get("data"), list):
        text = bytes(stream["data"]).decode("utf-8", errors="replace")
    text = " ".join(str(text).split())
    return text[:limit] + ("..." if len(text) > limit else "")


def _describe(execution: dict[str, Any]) -> str:
    request = execution.get("request") or {}
    response = execution.get("response") or {}
    url = request.get("url") or {}
    if isinstance(url, dict):
        query = "&".join(f"{q.get('key')}={q.get('value')}" for q in url.get("query") or [])
        url = "/" + "/".join(url.get("path") or []) + (f"?{query}" if query else "")
    lines = [f"    {request.get('method', '?')} {url} -> {response.get('code', 'no response')}"]
    if sent := _body_text(request):
        lines.append(f"    request:  {sent}")
    if got := _body_text(response):
        lines.append(f"    response: {got}")
    return "\n".join(lines)


def parse_report(report: dict[str, Any]) -> tuple[dict[Key, list[str]], set[Key], dict[Key, str]]:
    """From a newman JSON report: (failures: key -> messages, keys that ran, key -> request/response)."""
    run = report["run"]
    paths = _item_paths(report.get("collection", {}).get("item", []))
    failed: dict[Key, list[str]] = {}
    seen: set[Key] = set()
    details: dict[Key, str] = {}
    by_id: dict[str, dict[str, Any]] = {}
    for execution in run.get("executions", []):
        item = execution.get("item") or {}
        name = paths.get(item.get("id", ""), item.get("name", "?"))
        by_id.setdefault(item.get("id", ""), execution)
        for assertion in execution.get("assertions") or []:
            if assertion.get("skipped"):
                continue
            key = (name, assertion.get("assertion", "?"))
            seen.add(key)
            if error := assertion.get("error"):
                failed.setdefault(key, []).append(str(error.get("message", error)))
                details.setdefault(key, _describe(execution))
        if request_error := execution.get("requestError"):
            key = (name, "<request>")
            seen.add(key)
            failed.setdefault(key, []).append(str(request_error.get("message", request_error)))
    # Script errors (a test script that threw before its assertions) appear only in run.failures.
    for failure in run.get("failures", []):
        at = str(failure.get("at", ""))
        if at.startswith("assertion:") or at == "request":
            continue
        source = failure.get("source") or {}
        name = paths.get(source.get("id", ""), source.get("name", "?"))
        error = failure.get("error") or {}
        key = (name, f"<{at or 'error'}>")
        seen.add(key)
        failed.setdefault(key, []).append(f"{error.get('name', 'Error')}: {error.get('message', error)}")
        if execution := by_id.get(source.get("id", "")):
            details.setdefault(key, _describe(execution))
    return failed, seen, details


def load_known_failures() -> dict[Key, str]:
    data = json.loads(KNOWN_FAILURES.read_text())
    known: dict[Key, str] = {}
    for entry in data["failures"]:
        assert entry.get("reason"), f"known failure without a reason: {entry}"
        known[(entry["request"], entry["assertion"])] = entry["reason"]
    return known


def _environment(base_url: str, token: str) -> dict[str, Any]:
    parts = urlsplit(base_url)
    values = {
        "Protocol": parts.scheme,
        "Server": parts.hostname or "127.0.0.1",
        "Port": f":{parts.port}" if parts.port else "",
        "Api": parts.path.strip("/"),
        "token": token,
    }
    env = json.loads((SUITE_DIR / "environment.example.json").read_text())
    for variable in env["values"]:
        if variable["key"] in values:
            variable["value"] = values.pop(variable["key"])
    env["values"].extend({"key": k, "value": v, "enabled": True} for k, v in values.items())
    return env


def test_postman_collection(live_server: tuple[str, str], tmp_path: Path) -> None:
    collection = SUITE_DIR / "collection.json"
    if not collection.is_file():
        pytest.skip(f"the Postman collection is missing: {collection}")
    if not NEWMAN.exists():
        pytest.skip(
            f"newman is not installed at {NEWMAN.relative_to(REPO_ROOT)} (scripts/test.sh installs it)"
        )
    if shutil.which("node") is None:
        pytest.skip("node is not installed, so newman cannot run")

    base_url, token = live_server
    env_file = tmp_path / "env.json"
    env_file.write_text(json.dumps(_environment(base_url, token)))
    # The collection's "Get Token" request overwrites the `token` environment variable with whatever its
    # (sample-only) /Token endpoint answers. Iteration data outranks the environment, so the real token
    # is also given as data and every later request still authenticates.
    data_file = tmp_path / "data.json"
    data_file.write_text(json.dumps([{"token": token}]))
    report_file = tmp_path / "newman-report.json"
    proc = subprocess.run(
        [
            str(NEWMAN),
            "run",
            str(collection),
            "-e",
            str(env_file),
            "-d",
            str(data_file),
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            str(report_file),
            "--timeout-request",
            "15000",
            "--suppress-exit-code",
            "--color",
            "off",
            "--disable-unicode",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=NEWMAN_TIMEOUT_S,
        check=False,
    )
    if not report_file.is_file():
        pytest.fail(
            f"newman wrote no report (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )

    failed, seen, details = parse_report(json.loads(report_file.read_text()))
    known = load_known_failures()
    unexpected = {key: msgs for key, msgs in failed.items() if key not in known}
    now_passing = sorted(key for key in known if key in seen and key not in failed)
    not_run = sorted(key for key in known if key not in seen)

    print(f"newman: {len(seen)} assertions, {len(failed)} failing ({len(failed) - len(unexpected)} known)")
    problems: list[str] = []
    for (request, assertion), msgs in sorted(unexpected.items()):
        problems.append(
            f"FAILED  {request} :: {assertion}: {'; '.join(msgs)}\n{details.get((request, assertion), '')}"
        )
    for request, assertion in now_passing:
        problems.append(f"PASSES NOW (remove it from {KNOWN_FAILURES.name})  {request} :: {assertion}")
    for request, assertion in not_run:
        problems.append(f"DID NOT RUN (stale entry in {KNOWN_FAILURES.name})  {request} :: {assertion}")
    assert not problems, "\n".join(problems)
