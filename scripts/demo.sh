#!/usr/bin/env bash
# The README's main command: installs Provisor into .venv (creating it if missing) and runs `provisor demo`.
#   bash scripts/demo.sh [provisor demo options]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export PIP_DISABLE_PIP_VERSION_CHECK=1
VENV=.venv

if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating $VENV"
    python3 -m venv "$VENV"
fi

echo "==> installing provisor"
"$VENV/bin/python" -m pip install -q .

exec "$VENV/bin/provisor" demo "$@"
