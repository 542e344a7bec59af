#!/usr/bin/env bash
# GPU kernels on lavapipe (software Vulkan): `tiled` vs `naive` matmul speed at 512³ for f32/f16/bf16,
# and the agreement of pass timestamps with the wall clock. Writes results/gpu-lavapipe.md.
#
# Lavapipe figures are smoke-level and never normalized against GPU specs: llvmpipe runs the shaders
# on the CPU (see ../shared/notes/WGPU30.md §3 for why it is this slow).
#
# Usage: scripts/gpu-lavapipe.sh [SIZE...]   (default 512)
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
SIZES=("${@:-512}")
args=()
for s in "${SIZES[@]}"; do args+=(--size "$s"); done
cargo build --release -q -p perfledger-kernels --example gpu_bench
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
table=$(target/release/examples/gpu_bench --allow-software --reps 7 "${args[@]}")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
mesa=$(dpkg-query -W -f '${Version}' mesa-vulkan-drivers 2>/dev/null || echo unknown)
out=results/gpu-lavapipe.md
{
  echo "# GPU kernels on lavapipe: tiled vs naive, timestamps vs wall clock"
  echo
  echo "Produced by \`scripts/gpu-lavapipe.sh ${SIZES[*]}\` ($(date -u +%FT%TZ), commit $(git rev-parse --short HEAD))."
  echo "Host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) vCPUs; mesa-vulkan-drivers $mesa;"
  echo "load average before/after: $load_before / $load_after (other jobs share these cores: treat absolute numbers as ±30%)."
  echo
  echo "Each row: one verified run (poisoned output, full float64 check: error/bound < 1 passes), then 7 samples of one"
  echo "dispatch each, timed three ways: pass timestamp queries, the wall clock around the same submit + wait, and the wall"
  echo "clock around a plain \`run()\`. GFLOP/s = 2·n³ / median timestamp time. **Software adapter: these numbers say"
  echo "nothing about GPU performance and are never normalized against GPU specs.**"
  echo
  echo "$table"
  echo
  echo "Reading it: \`tiled\` (64×64×16 workgroup tiles, 8×8 vec4 register blocks per thread) against \`naive\` (one thread"
  echo "per output pair, operands straight from storage) is the speed-up of the tiled kernel on llvmpipe, where every memory"
  echo "access costs per lane and per component, so FMAs per loaded value decide speed. wall/timestamp near 1 means the"
  echo "timestamps measure what the wall clock sees; the runner records the same ratio in each GPU row's message."
  echo "\`coop\` is unsupported here: lavapipe reports no cooperative-matrix configuration."
} > "$out"
cat "$out"
