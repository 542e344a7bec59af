#!/usr/bin/env bash
# perfledger's packed matmul next to OpenBLAS sgemm (numpy) and PyTorch CPU on the same machine,
# in one sitting. OpenBLAS (and PyTorch's GEMV) run before and after perfledger (A B A), so drift
# during the sitting shows as two peer rows; memory-bound rows move most with the bandwidth window.
#
# --avx2: the AVX2 code paths instead — perfledger `--isa avx2fma` (6×16 AVX2+FMA micro-kernel, no
# AVX-512, no vdpbf16ps), OpenBLAS forced to its Haswell sgemm kernel (OPENBLAS_CORETYPE=Haswell)
# and PyTorch limited to AVX2 (ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2): what an
# AVX2-only instance would compare, measured on a CPU that also has AVX-512 (this machine's clock,
# caches and memory).
#
# Writes results/matmul-side-by-side/ (--avx2: results/matmul-avx2-side-by-side/):
# run.json, numpy.jsonl, torch.jsonl, perfledger.log, report.md.
# Needs the reference venv: python3 -m venv .venv-ref && .venv-ref/bin/pip install -r scripts/reference/requirements.txt
# Usage: scripts/matmul-side-by-side.sh [THREADS] [--avx2]   (THREADS default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=2
AVX2=0
for arg in "$@"; do
  case "$arg" in
    --avx2) AVX2=1 ;;
    *) THREADS="$arg" ;;
  esac
done
PY=.venv-ref/bin/python
if [ "$AVX2" = 1 ]; then
  OUT=results/matmul-avx2-side-by-side
  ISA_ARGS=(--isa avx2fma)
  NUMPY_ENV=(env OPENBLAS_CORETYPE=Haswell)
  NUMPY_ARGS=(--keep-openblas-env)
  TORCH_ENV=(env ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2)
  TITLE="Matmul, AVX2 paths: perfledger --isa avx2fma vs OpenBLAS Haswell sgemm and PyTorch CPU (AVX2), $THREADS threads"
else
  OUT=results/matmul-side-by-side
  ISA_ARGS=()
  NUMPY_ENV=()
  NUMPY_ARGS=()
  TORCH_ENV=()
  TITLE="Matmul: perfledger packed vs OpenBLAS sgemm (numpy) and PyTorch CPU, $THREADS threads"
fi
mkdir -p "$OUT"
cargo build --release -q
BIN=target/release/perfledger

numpy_rows() {
  "${NUMPY_ENV[@]}" $PY scripts/reference/numpy_matmul.py "${NUMPY_ARGS[@]}" --threads "$THREADS" \
    --out "$OUT/numpy.jsonl" --append "$@"
}
torch_rows() {
  "${TORCH_ENV[@]}" $PY scripts/reference/torch_matmul.py --threads "$THREADS" \
    --out "$OUT/torch.jsonl" --append "$@"
}
peers_round() {
  numpy_rows --min-time 4 --shape 2048x2048x2048 --shape 4096x4096x4096
  numpy_rows --min-time 3 --shape 1x14336x4096 --trans-b
  numpy_rows --min-time 3 --shape 1x14336x4096
  torch_rows --min-time 3 --dtype bf16 --shape 1x14336x4096 --trans-b
}

echo "== load before: $(cat /proc/loadavg)"
rm -f "$OUT"/numpy.jsonl "$OUT"/torch.jsonl
peers_round
"$BIN" run --suite scripts/suites/matmul-peers.json "${ISA_ARGS[@]}" --threads "$THREADS" \
  --out "$OUT/run.json" --force | tee "$OUT/perfledger.log"
peers_round
# PyTorch f32 at both sizes. bf16 at both sizes, except capped to AVX2 (no fast bf16 path there,
# ≈ 1–3 GFLOP/s: 512³ only); f16 at 512³ (no f16 GEMM path on this CPU) — recorded, no gate.
torch_rows --min-time 4 --dtype f32 --shape 2048x2048x2048 --shape 4096x4096x4096
if [ "$AVX2" = 1 ]; then
  torch_rows --min-time 2 --min-samples 5 --dtype bf16 --shape 512x512x512
else
  torch_rows --min-time 4 --dtype bf16 --shape 2048x2048x2048 --shape 4096x4096x4096
fi
torch_rows --min-time 2 --min-samples 5 --dtype f16 --shape 512x512x512
echo "== load after: $(cat /proc/loadavg)"

"$BIN" import "$OUT/numpy.jsonl" --into "$OUT/run.json"
"$BIN" import "$OUT/torch.jsonl" --into "$OUT/run.json"
python3 scripts/side_by_side.py "$OUT/run.json" --md "$OUT/report.md" --title "$TITLE"
