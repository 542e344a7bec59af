#!/usr/bin/env bash
# What results/ci-perf.md shows, by hand on a quiet machine (nothing else running):
#
#   scripts/ci-perf-check.sh [REPEATS] [ROUNDS] [REV]     (default 5, 5 and HEAD)
#
# - A/A: `scripts/ci-perf.sh HEAD HEAD ROUNDS`, REPEATS times: every flagged row is a false alarm.
# - Power: `scripts/ci-perf.sh HEAD HEAD ROUNDS` with scripts/ci-perf/slower-nc.patch applied to the
#   head (a mis-sized NC: a genuinely slower packed matmul), REPEATS times: the rows it touches
#   should be flagged every time, no other row ever.
# - Threads: a `--threads 1` candidate against the default, compared without and with
#   --allow-config-diff.
# Each comparison's compare.json is kept under results/ci-perf/; scripts/ci_perf_summary.py writes
# results/ci-perf.md from them.
set -euo pipefail
REPEATS=${1:-5}
ROUNDS=${2:-5}
REV=$(git rev-parse "${3:-HEAD}")
REPO=$(git rev-parse --show-toplevel)
cd "$REPO"
OUT=results/ci-perf
mkdir -p "$OUT"
WORK=${PERFLEDGER_CI_DIR:-$REPO/target/ci-perf}
export PERFLEDGER_CI_DIR=$WORK
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $REV"
  lscpu | grep -E '^(Model name|CPU family|Model|Thread|Core|Socket)' || true
} >"$OUT/machine.txt"

for i in $(seq 1 "$REPEATS"); do
  echo "== A/A $i of $REPEATS" >&2
  rc=0
  scripts/ci-perf.sh "$REV" "$REV" "$ROUNDS" >/dev/null || rc=$?
  dir=$(cat "$WORK/LAST")
  cp "$dir/compare.json" "$OUT/aa-$i.json"
  cp "$dir/ORDER.tsv" "$OUT/aa-$i-order.tsv"
  echo "A/A $i: exit $rc ($dir)" >&2
done

for i in $(seq 1 "$REPEATS"); do
  echo "== power $i of $REPEATS" >&2
  rc=0
  PERFLEDGER_CI_HEAD_PATCH=scripts/ci-perf/slower-nc.patch scripts/ci-perf.sh "$REV" "$REV" "$ROUNDS" >/dev/null || rc=$?
  dir=$(cat "$WORK/LAST")
  cp "$dir/compare.json" "$OUT/power-$i.json"
  echo "power $i: exit $rc ($dir)" >&2
done

if [ -z "${PERFLEDGER_CHECK_SKIP_THREADS:-}" ]; then
  echo "== --threads 1 candidate" >&2
  BIN=$(PERFLEDGER_CI_BUILD_ONLY=1 scripts/ci-perf.sh "$REV" "$REV" | awk '/^head / {print $2}')
  T=$(mktemp -d)
  for r in 1 2 3; do
    "$BIN" run --suite quick --backend cpu --probes off --out "$T/base-$r.json" >/dev/null 2>&1 || true
    "$BIN" run --suite quick --backend cpu --probes off --threads 1 --out "$T/cand-$r.json" >/dev/null 2>&1 || true
  done
  rc=0
  "$BIN" compare --base "$T"/base-*.json --candidate "$T"/cand-*.json --format json --out "$OUT/threads-refused.json" --force 2>"$OUT/threads-refused.stderr" || rc=$?
  echo "threads without --allow-config-diff: exit $rc" >&2
  rc=0
  "$BIN" compare --base "$T"/base-*.json --candidate "$T"/cand-*.json --allow-config-diff --format json --out "$OUT/threads-allowed.json" --force || rc=$?
  echo "threads with --allow-config-diff: exit $rc" >&2
fi

python3 scripts/ci_perf_summary.py "$OUT" >results/ci-perf.md
echo "results/ci-perf.md written" >&2
