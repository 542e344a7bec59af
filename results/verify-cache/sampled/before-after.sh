#!/bin/bash
# The cases verified by the sampled check (Freivalds + 16 rows) in the side-by-side suite with
# --rounds 4, one build after the other. Usage (from the repository root):
#   results/verify-cache/sampled/before-after.sh OLD_PERFLEDGER NEW_PERFLEDGER
# PERFLEDGER_OPENBLAS may name the OpenBLAS to load (numpy's wheel library was used).
set -euo pipefail
out=results/verify-cache/sampled
for b in old new; do
  if [ "$b" = old ]; then BIN=$1; else BIN=$2; fi
  s=$(date +%s.%N)
  "$BIN" run --suite scripts/suites/cpu-side-by-side.json --case 'square-4096,proj-512x14336x4096-bt' \
    --backend cpu --probes off --threads 2 --rounds 4 --out "$out/$b.json" --force > "$out/$b.log" 2>&1
  e=$(date +%s.%N)
  echo "$b $(echo "$e - $s" | bc)" >> "$out/wall.txt"
done
