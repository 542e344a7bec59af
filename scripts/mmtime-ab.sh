#!/usr/bin/env bash
# Two builds of the `mmtime` example on one matmul shape, alternated A B, B A, A B, ... (the order
# flips each round, so a host that slows down during a round does not always hit the same build),
# each a `mmtime` median; prints each round's GFLOP/s and the B/A ratio, then the median ratio.
# The kernel-level A/B of a change (no harness, no verification); the runner-level one is
# scripts/cpu-ab.sh.
# Usage: scripts/mmtime-ab.sh MMTIME_A MMTIME_B ROUNDS M N K [dtype] [path] [blocking|-] [bt]
# SETS (default 8) is MMTIME_SETS: input sets (each with its own output) cycled per call, so
# rotated rows read cold data as in the runner; 2 threads unless RAYON_NUM_THREADS is set.
set -euo pipefail
[ $# -ge 6 ] || { echo "usage: scripts/mmtime-ab.sh MMTIME_A MMTIME_B ROUNDS M N K [dtype] [path] [blocking|-] [bt]" >&2; exit 2; }
A=$1 B=$2 R=$3
shift 3
for b in "$A" "$B"; do [ -x "$b" ] || { echo "mmtime-ab.sh: $b is not an executable" >&2; exit 2; }; done
gflops() {
  MMTIME_SETS=${SETS:-8} RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2} "$1" "${@:2}" \
    | sed -nE 's/.*median=[0-9.]+s ([0-9.]+) GFLOP.*/\1/p'
}
ratios=()
for r in $(seq 1 "$R"); do
  if [ $((r % 2)) = 1 ]; then
    ga=$(gflops "$A" "$@"); gb=$(gflops "$B" "$@")
  else
    gb=$(gflops "$B" "$@"); ga=$(gflops "$A" "$@")
  fi
  [ -n "$ga" ] && [ -n "$gb" ] || { echo "mmtime-ab.sh: round $r printed no median" >&2; exit 1; }
  q=$(python3 -c "print(f'{$gb / $ga:.3f}')")
  ratios+=("$q")
  echo "round $r: A $ga GFLOP/s, B $gb GFLOP/s, B/A $q"
done
python3 -c "import statistics, sys; r = [float(x) for x in sys.argv[1:]]; print(f'median B/A {statistics.median(r):.3f} (min {min(r):.3f}, max {max(r):.3f}, {len(r)} rounds)')" "${ratios[@]}"
