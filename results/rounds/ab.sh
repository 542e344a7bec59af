#!/usr/bin/env bash
# The same suite run with --rounds 1 and --rounds 4, alternated (1 4, 4 1, ...), PAIRS pairs; each
# run's ratio of perfledger's packed row to each in-process peer (the peer's median time over
# perfledger's) is tabulated by results/rounds/tab.py. Usage: results/rounds/ab.sh OUTDIR PAIRS
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=$1 PAIRS=$2
mkdir -p "$OUT"
PY=${PYTHON:-.venv-ref/bin/python}
. scripts/numpy-openblas.sh
BIN=${PERFLEDGER_BIN:-target/release/perfledger}
lscpu > "$OUT/machine.txt"
for p in $(seq 1 "$PAIRS"); do
  if [ $((p % 2)) = 1 ]; then order="1 4"; else order="4 1"; fi
  for r in $order; do
    echo "== pair $p rounds $r $(date -u +%H:%M:%SZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
    "$BIN" run --suite results/rounds/suite.json --threads 2 --probes off --rounds "$r" \
      --out "$OUT/p$p-r$r.json" --force > /dev/null 2>> "$OUT/stderr.log"
  done
done
python3 results/rounds/tab.py "$OUT"/p*-r*.json | tee "$OUT/table.txt"
