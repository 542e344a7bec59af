#!/usr/bin/env bash
# The AVX2 code paths side by side on this machine: perfledger `--isa avx2fma` (6×16 AVX2+FMA
# micro-kernel, no AVX-512, no vdpbf16ps) next to OpenBLAS forced to its Haswell (AVX2) sgemm
# kernel (OPENBLAS_CORETYPE=Haswell), and PyTorch CPU limited to AVX2 (ATEN_CPU_CAPABILITY=avx2,
# ONEDNN_MAX_CPU_ISA=AVX2), 2 threads, one sitting. This is what an AVX2-only instance (the kind the
# issues' reference figures came from) would compare, measured on a CPU that also has AVX-512:
# the clock, caches and memory are this machine's, not a Zen 3's.
#
# Needs the reference venv (see scripts/matmul-side-by-side.sh).
# Writes results/matmul-avx2-side-by-side/{run.json,*.jsonl,report.md}.
# Usage: scripts/matmul-avx2-side-by-side.sh [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${1:-2}"
OUT=results/matmul-avx2-side-by-side
PY=.venv-ref/bin/python
mkdir -p "$OUT"
cargo build --release -q
BIN=target/release/perfledger

echo "== load before: $(cat /proc/loadavg)"
rm -f "$OUT"/numpy.jsonl "$OUT"/torch.jsonl
peers_round() {
  OPENBLAS_CORETYPE=Haswell $PY scripts/reference/numpy_matmul.py --keep-openblas-env \
    --threads "$THREADS" --min-time 4 --shape 2048x2048x2048 --shape 4096x4096x4096 \
    --out "$OUT/numpy.jsonl" --append
  OPENBLAS_CORETYPE=Haswell $PY scripts/reference/numpy_matmul.py --keep-openblas-env \
    --threads "$THREADS" --min-time 3 --shape 1x14336x4096 --trans-b --out "$OUT/numpy.jsonl" --append
  # PyTorch's bf16 GEMV (capped to AVX2) before and after too: memory-bound rows move most with
  # this VM's bandwidth windows.
  ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 $PY scripts/reference/torch_matmul.py \
    --threads "$THREADS" --min-time 3 --dtype bf16 --shape 1x14336x4096 --trans-b \
    --out "$OUT/torch.jsonl" --append
}
peers_round
"$BIN" run --suite scripts/suites/matmul-peers.json --isa avx2fma --threads "$THREADS" \
  --out "$OUT/run.json" --force | tee "$OUT/perfledger.log"
peers_round
export ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
$PY scripts/reference/torch_matmul.py --threads "$THREADS" --min-time 4 --dtype f32 \
  --shape 2048x2048x2048 --out "$OUT/torch.jsonl" --append
$PY scripts/reference/torch_matmul.py --threads "$THREADS" --min-time 2 --min-samples 5 --dtype bf16 \
  --shape 512x512x512 --out "$OUT/torch.jsonl" --append
unset ATEN_CPU_CAPABILITY ONEDNN_MAX_CPU_ISA
echo "== load after: $(cat /proc/loadavg)"

"$BIN" import "$OUT/numpy.jsonl" --into "$OUT/run.json"
"$BIN" import "$OUT/torch.jsonl" --into "$OUT/run.json"
python3 scripts/side_by_side.py "$OUT/run.json" --md "$OUT/report.md" \
  --title "Matmul, AVX2 paths: perfledger --isa avx2fma vs OpenBLAS Haswell sgemm and PyTorch CPU (AVX2), $THREADS threads"
