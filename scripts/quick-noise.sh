#!/usr/bin/env bash
# The quick suite's wall time on this machine and its run-to-run noise floor: two back-to-back
# quick runs, each row's ratio of medians with CI. Writes results/quick-noise/ and results/quick-noise.md.
# Usage: scripts/quick-noise.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=results/quick-noise
mkdir -p "$OUT"
rm -f "$OUT/log.txt"
cargo build --release -q
BIN=target/release/perfledger
{
  echo "# quick suite: wall time and run-to-run spread"
  echo
  echo "Command: \`scripts/quick-noise.sh\` (two back-to-back \`perfledger run --suite quick\`, default threads, probes on)."
  echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) vCPUs. Date: $(date -u +%FT%TZ)."
  echo
} > results/quick-noise.md
for i in 1 2; do
  load=$(cat /proc/loadavg)
  echo "== load before run $i: $load" >> "$OUT/log.txt"
  start=$(date +%s.%N)
  "$BIN" run --suite quick --out "$OUT/run$i.json" --force > "$OUT/run$i.log" 2>&1 || true
  end=$(date +%s.%N)
  wall=$(python3 -c "print(f'{$end - $start:.1f}')")
  echo "- run $i: wall time **${wall} s** (budget 60 s); load average before: $load" >> results/quick-noise.md
done
echo >> results/quick-noise.md
echo "Per-row run-to-run spread (run 2 / run 1):" >> results/quick-noise.md
echo >> results/quick-noise.md
python3 scripts/run_spread.py "$OUT/run1.json" "$OUT/run2.json" >> results/quick-noise.md
cat results/quick-noise.md
