#!/usr/bin/env bash
# Cache-blocking scan of the packed matmul: the old L1-sized rule (kc·nr·4 ≤ L1d) against
# L2-resident B micro-panels with longer kc, on 2 threads, two interleaved rounds per blocking.
# Uses the `mmtime` example (median of ≥ 5 samples over ≥ 3 s). Writes results/matmul-blocking.md.
# Usage: scripts/matmul-blocking.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p perfledger-kernels --example mmtime
BIN=target/release/examples/mmtime
OUT=results/matmul-blocking.md
export RAYON_NUM_THREADS=2
BLOCKINGS=(mc=168,kc=384,nc=5440 mc=96,kc=512,nc=4096 mc=96,kc=768,nc=2048 mc=96,kc=1024,nc=2048
  mc=144,kc=1024,nc=2048 mc=48,kc=2048,nc=2048)
TMP=$(mktemp)
trap 'rm -f "$TMP"' EXIT
LOAD_BEFORE=$(cat /proc/loadavg)
echo "load before: $LOAD_BEFORE" >&2
for round in 1 2; do
  for size in 2048 4096; do
    for dtype in f32 f16; do
      for blk in "${BLOCKINGS[@]}"; do
        g=$("$BIN" "$size" "$size" "$size" "$dtype" avx512f "$blk" | grep -o '[0-9.]* GFLOP/s' | cut -d' ' -f1)
        echo "$size $dtype $blk $round $g" | tee -a "$TMP" >&2
      done
    done
  done
done
{
  echo "# Packed matmul cache blocking (avx512f, 12×32 tile, 2 threads)"
  echo
  echo "Command: \`scripts/matmul-blocking.sh\` ($(date -u +%FT%TZ), commit $(git rev-parse --short HEAD))."
  echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); load before: $LOAD_BEFORE."
  echo "Each cell: GFLOP/s median of \`mmtime\` (≥ 5 samples, ≥ 3 s), round 1 / round 2 (rounds interleaved"
  echo "over all blockings, so drift of the machine shows as a difference between rounds)."
  echo "\`mc=168,kc=384,nc=5440\` is the earlier L1-sized rule (B micro-panel kc·32·4 B ≤ 48 KiB L1d);"
  echo "\`mc=96,kc=1024,nc=2048\` is \`Blocking::l2_resident\` (B micro-panel ≤ L2/8, A block ≤ 3/8 L2)."
  echo
  echo "| blocking | 2048³ f32 | 2048³ f16 | 4096³ f32 | 4096³ f16 |"
  echo "|---|---|---|---|---|"
  for blk in "${BLOCKINGS[@]}"; do
    row="| \`$blk\`"
    for cell in "2048 f32" "2048 f16" "4096 f32" "4096 f16"; do
      v=$(awk -v c="$cell" -v b="$blk" '($1" "$2)==c && $3==b {printf "%s%s", sep, $5; sep=" / "}' "$TMP")
      row="$row | $v"
    done
    echo "$row |"
  done
  echo
  echo "Load after: $(cat /proc/loadavg)."
} > "$OUT"
echo "wrote $OUT" >&2
