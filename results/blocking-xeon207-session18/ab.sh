#!/usr/bin/env bash
# The default blocking (kc 2048, mc 96) against kc 1024, mc 192: the suite with --rounds 4,
# alternated in four pairs, OpenBLAS in every run; OUT (default /tmp/blocking-ab) gets the run
# files, results/blocking-xeon207-session18/tab.py (reading the committed copies) the table.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p "${OUT:-/tmp/blocking-ab}"
PY=${PYTHON:-.venv-ref/bin/python}
. scripts/numpy-openblas.sh
for p in 1 2 3 4; do
  if [ $((p % 2)) = 1 ]; then order="default kc1024"; else order="kc1024 default"; fi
  for c in $order; do
    if [ $c = default ]; then B=(); else B=(--blocking kc=1024,mc=192); fi
    echo "== pair $p $c $(date -u +%T)"
    target/release/perfledger run --suite results/blocking-xeon207-session18/suite3.json --threads 2 --probes off --rounds 4 "${B[@]}" --out ${OUT:-/tmp/blocking-ab}/ab-p$p-$c.json --force >/dev/null 2>&1
  done
done
