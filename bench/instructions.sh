#!/usr/bin/env bash
# Instructions one request of an in-process workload takes, counted by callgrind: a figure that
# does not move with this box's load, as req/s does. (instructions for 1,016 requests - those for
# 16) / 1,000, so start-up and the first requests' warm-up cancel out.
#
# usage: bench/instructions.sh SQLITE_FILE [WORKLOAD]   (default workload: get_filter)
#   SQLITE_FILE: a store bench/inprocess.py built (use a copy; run once first if it needs migrating)
#   PYTHONPATH=<a worktree>/src selects another version of the code, for a side-by-side count.
set -euo pipefail
cd "$(dirname "$0")/.."
db=$1
workload=${2:-get_filter}
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python -c "
import asyncio, random, sys
sys.path.insert(0, 'bench')
random.seed(7)
import inprocess
asyncio.run(inprocess.measure('sqlite:///$db', '$workload', 1, $1, False))
" 2>&1 | grep -oE 'Collected : [0-9]+' | grep -oE '[0-9]+'
}
few=$(count 16)
many=$(count 1016)
echo "$workload: $(( (many - few) / 1000 )) instructions a request"
