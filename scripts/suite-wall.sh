#!/usr/bin/env bash
# Run one suite and record its wall time against the suite's budget.
# Writes results/suite-wall-<SUITE>.md and keeps the run file under results/suite-wall/.
# Usage: scripts/suite-wall.sh SUITE [extra perfledger run flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
SUITE="${1:?usage: scripts/suite-wall.sh SUITE [flags]}"
shift
mkdir -p results/suite-wall
cargo build --release -q
BIN=target/release/perfledger
budget=$(python3 -c "import json,sys; d=json.load(open('harness/src/suites/$SUITE.json')); print(d.get('run_budget_s'))" 2>/dev/null || echo "?")
load_before=$(cat /proc/loadavg)
start=$(date +%s.%N)
code=0
"$BIN" run --suite "$SUITE" --out "results/suite-wall/$SUITE.json" --force "$@" > "results/suite-wall/$SUITE.log" 2>&1 || code=$?
end=$(date +%s.%N)
wall=$(python3 -c "print(f'{$end - $start:.1f}')")
rows=$(python3 -c "import json,collections; d=json.load(open('results/suite-wall/$SUITE.json')); print(dict(collections.Counter(r['status'] for r in d['results'])))")
cat > "results/suite-wall-$SUITE.md" <<MD
# Suite \`$SUITE\`: wall time

Command: \`scripts/suite-wall.sh $SUITE $*\` → \`perfledger run --suite $SUITE $*\` ($(date -u +%FT%TZ)).
Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) vCPUs; load average before: $load_before.

- wall time: **$wall s** (suite run budget: $budget s); exit code $code
- rows by status: $rows
- run file: \`results/suite-wall/$SUITE.json\`, log: \`results/suite-wall/$SUITE.log\`
MD
cat "results/suite-wall-$SUITE.md"
