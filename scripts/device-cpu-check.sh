#!/usr/bin/env bash
# The CPU measurements for a lent device machine's host, in one call: (1) the session's A/B — two
# perfledger builds alternated on one suite (scripts/cpu-ab.sh) — and (2) the CPU side-by-side
# sitting (scripts/cpu-side-by-side.sh) at the same thread count, short budgets to fit a lease.
# Everything lands in OUTDIR (lscpu.txt, ab/, sbs/, sbs.log); the caller tars it back.
# Usage: scripts/device-cpu-check.sh BEFORE_BIN AFTER_BIN AB_SUITE OUTDIR [THREADS (default 2)]
# Needs a Python with numpy and torch as PYTHON (default python3). AB_TIMEOUT (default 210 s) and
# SBS_TIMEOUT (default 330 s) bound the two halves; at 2 threads on a 16-core Xeon 6/207 host the
# A/B took 180 s and the sitting did not finish in 330 (its 4096³ rows need seconds a sample), so
# give the sitting a call of its own there.
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 4 ] || { echo "usage: scripts/device-cpu-check.sh BEFORE_BIN AFTER_BIN AB_SUITE OUTDIR [THREADS]" >&2; exit 2; }
BEFORE=$1 AFTER=$2 SUITE=$3 OUT=$4 THREADS=${5:-2}
export PYTHON=${PYTHON:-python3} PYTHONUNBUFFERED=1
mkdir -p "$OUT"
lscpu > "$OUT/lscpu.txt"
echo "== A/B $(date -u +%T)"
timeout "${AB_TIMEOUT:-210}" scripts/cpu-ab.sh "$BEFORE" "$AFTER" "$SUITE" "$OUT/ab" 2 -- \
  --threads "$THREADS" --probes off --case-budget 0.5 2>&1 | grep -v '^cpu-ab.sh: round'
echo "== side by side $(date -u +%T)"
PERFLEDGER_BIN=$AFTER timeout "${SBS_TIMEOUT:-330}" scripts/cpu-side-by-side.sh --threads "$THREADS" \
  --out "$OUT/sbs" --budget 0.5 --peer-min-time 0.3 --peer-rounds 1 --runs 1 > "$OUT/sbs.log" 2>&1
echo "side by side rc=$? $(date -u +%T)"
tail -3 "$OUT/sbs.log"
