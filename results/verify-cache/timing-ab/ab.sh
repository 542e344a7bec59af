#!/bin/bash
# Whether the verification change moved any timing: 1024³ and 2048³ f32, packed and the in-process
# OpenBLAS, two builds alternated three rounds (one run each per round). Usage (repository root):
#   results/verify-cache/timing-ab/ab.sh OLD_PERFLEDGER NEW_PERFLEDGER
# PERFLEDGER_OPENBLAS may name the OpenBLAS to load (numpy's wheel library was used).
set -euo pipefail
out=results/verify-cache/timing-ab
for r in 1 2 3; do for b in old new; do
  if [ "$b" = old ]; then BIN=$1; else BIN=$2; fi
  "$BIN" run --suite scripts/suites/cpu-side-by-side.json --case 'square-1024,square-2048' \
    --dtype f32 --kernel 'packed,openblas' --backend cpu --probes off --threads 2 \
    --out "$out/ab2-$b-$r.json" --force > "$out/ab2-$b-$r.log" 2>&1
done; done
