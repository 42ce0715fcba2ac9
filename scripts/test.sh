#!/usr/bin/env bash
# The project's test command (README, and what .ci/run runs). Needs only python3; npm is optional.
#   bash scripts/test.sh [extra pytest args]
# 1. creates .venv if missing and installs the package with its test extras (editable);
# 2. installs newman 6 into .tools/newman with npm, if npm is there (else the Postman test skips);
# 3. runs ruff (lint and format check), mypy, lint-imports, then pytest (on 2 workers when there are 2+ CPUs).
# Every step runs; the script exits non-zero if any of them failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export PIP_DISABLE_PIP_VERSION_CHECK=1
export PYTHONDONTWRITEBYTECODE=1
VENV=.venv
PY="$VENV/bin/python"

step() { printf '\n==> %s\n' "$*"; }

if [ ! -x "$PY" ]; then
    step "creating $VENV"
    python3 -m venv "$VENV"
fi

step "installing provisor[test] (editable)"
"$PY" -m pip install -q -e '.[test]'

NEWMAN=.tools/newman/node_modules/.bin/newman
if [ -x "$NEWMAN" ]; then
    :
elif command -v npm >/dev/null 2>&1; then
    step "installing newman 6 into .tools/newman"
    mkdir -p .tools/newman
    if ! timeout 600 npm install --prefix .tools/newman --no-audit --no-fund --loglevel=error newman@6 </dev/null; then
        echo "warning: npm could not install newman; the Postman conformance test will be skipped" >&2
    fi
else
    echo "warning: npm is not installed; the Postman conformance test will be skipped" >&2
fi

failed=()

step "ruff check src tests bench"
"$VENV/bin/ruff" check src tests bench || failed+=(ruff)

step "ruff format --check src tests bench"
"$VENV/bin/ruff" format --check src tests bench || failed+=(ruff-format)

step "mypy"
"$VENV/bin/mypy" || failed+=(mypy)

step "lint-imports"
"$VENV/bin/lint-imports" || failed+=(lint-imports)

workers=()
if [ "$(nproc 2>/dev/null || echo 1)" -ge 2 ]; then
    workers=(-n 2)
fi
step "pytest ${workers[*]}"
rc=0
"$PY" -m pytest "${workers[@]}" "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
    echo "warning: pytest collected no tests" >&2
    rc=0
fi
[ "$rc" -eq 0 ] || failed+=(pytest)

if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED steps: ${failed[*]}" >&2
    exit 1
fi
