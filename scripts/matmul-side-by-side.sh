#!/usr/bin/env bash
# perfledger's packed matmul next to OpenBLAS sgemm (numpy) and PyTorch CPU on the same machine,
# in one sitting, 2 threads. Writes results/matmul-side-by-side/{run.json,*.jsonl,report.md}.
#
# Needs the reference venv: python3 -m venv .venv-ref && .venv-ref/bin/pip install -r scripts/reference/requirements.txt
# Usage: scripts/matmul-side-by-side.sh [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${1:-2}"
OUT=results/matmul-side-by-side
PY=.venv-ref/bin/python
mkdir -p "$OUT"
cargo build --release -q
BIN=target/release/perfledger

echo "== load before: $(cat /proc/loadavg)"
rm -f "$OUT"/numpy.jsonl "$OUT"/torch.jsonl
# OpenBLAS (and PyTorch's GEMV) before and after perfledger (A B A), so drift during the sitting
# shows as two peer rows.
peers_round() {
  $PY scripts/reference/numpy_matmul.py --threads "$THREADS" --min-time 4 \
    --shape 2048x2048x2048 --shape 4096x4096x4096 --out "$OUT/numpy.jsonl" --append
  $PY scripts/reference/numpy_matmul.py --threads "$THREADS" --min-time 3 \
    --shape 1x14336x4096 --trans-b --out "$OUT/numpy.jsonl" --append
  $PY scripts/reference/numpy_matmul.py --threads "$THREADS" --min-time 3 \
    --shape 1x14336x4096 --out "$OUT/numpy.jsonl" --append
  # PyTorch's bf16 GEMV too: memory-bound rows move most with this VM's bandwidth windows.
  $PY scripts/reference/torch_matmul.py --threads "$THREADS" --min-time 3 --dtype bf16 \
    --shape 1x14336x4096 --trans-b --out "$OUT/torch.jsonl" --append
}
peers_round
"$BIN" run --suite scripts/suites/matmul-peers.json --threads "$THREADS" --out "$OUT/run.json" --force \
  | tee "$OUT/perfledger.log"
peers_round
# PyTorch: f32 and bf16 at both sizes (its GEMV ran with the OpenBLAS rounds); f16 only at 512³
# (no f16 GEMM path in PyTorch on this CPU: ~1 GFLOP/s) — recorded, no gate.
$PY scripts/reference/torch_matmul.py --threads "$THREADS" --min-time 4 --dtype f32 \
  --shape 2048x2048x2048 --shape 4096x4096x4096 --out "$OUT/torch.jsonl" --append
$PY scripts/reference/torch_matmul.py --threads "$THREADS" --min-time 4 --dtype bf16 \
  --shape 2048x2048x2048 --shape 4096x4096x4096 --out "$OUT/torch.jsonl" --append
$PY scripts/reference/torch_matmul.py --threads "$THREADS" --min-time 2 --min-samples 5 --dtype f16 \
  --shape 512x512x512 --out "$OUT/torch.jsonl" --append
echo "== load after: $(cat /proc/loadavg)"

"$BIN" import "$OUT/numpy.jsonl" --into "$OUT/run.json"
"$BIN" import "$OUT/torch.jsonl" --into "$OUT/run.json"
python3 scripts/side_by_side.py "$OUT/run.json" --md "$OUT/report.md" \
  --title "Matmul: perfledger packed vs OpenBLAS sgemm (numpy) and PyTorch CPU, $THREADS threads"
