#!/usr/bin/env bash
# The baseline sitting of the CPU-peers issue: perfledger's CPU kernels on the shapes where they
# were measured behind their peers (scripts/suites/cpu-baseline.json: matmul 127×8191×65 bf16,
# 2048³ f32 and bf16, GQA decode h32/8 kv 8192 d128 bf16, attention 1×32/32×2048×128 bf16), with
# the peers timed before AND after perfledger in the same sitting (A B A): OpenBLAS sgemm through
# numpy, PyTorch CPU matmul (f32, bf16) and scaled_dot_product_attention (bf16, enable_gqa).
# Run before any change to those kernels; the after-change sitting reruns this script.
#
# Writes results/cpu-baseline/ (or OUTDIR): run.json (perfledger rows + both peer rounds
# imported), peers.jsonl, perfledger.log, report.md (ratios with 95% CIs, scripts/side_by_side.py),
# machine.txt (lscpu, the CPU kind every figure belongs to).
# Needs the reference venv: python3 -m venv .venv-ref && .venv-ref/bin/pip install -r scripts/reference/requirements.txt
# Usage: scripts/cpu-baseline.sh [THREADS] [OUTDIR]   (THREADS default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-2}
OUT=${2:-results/cpu-baseline}
PY=.venv-ref/bin/python
[ -x "$PY" ] || { echo "cpu-baseline.sh: no $PY (see the header)" >&2; exit 2; }
mkdir -p "$OUT"
cargo build --release -q
BIN=target/release/perfledger
PEERS="$OUT/peers.jsonl"

peers_round() {
  $PY scripts/reference/numpy_matmul.py --threads "$THREADS" --out "$PEERS" --append \
    --min-time 3 --shape 2048x2048x2048
  $PY scripts/reference/torch_matmul.py --threads "$THREADS" --out "$PEERS" --append \
    --min-time 3 --dtype bf16 --shape 127x8191x65 --shape 2048x2048x2048
  $PY scripts/reference/torch_matmul.py --threads "$THREADS" --out "$PEERS" --append \
    --min-time 3 --dtype f32 --shape 2048x2048x2048
  $PY scripts/reference/torch_attention.py --threads "$THREADS" --out "$PEERS" --append \
    --min-time 3 --dtype bf16 --shape 1,32,8,1:8192,128 --shape 1,32,32,2048,128
}

lscpu > "$OUT/machine.txt"
echo "== load before: $(cat /proc/loadavg)" | tee -a "$OUT/machine.txt"
rm -f "$PEERS"
peers_round
"$BIN" run --suite scripts/suites/cpu-baseline.json --threads "$THREADS" --out "$OUT/run.json" \
  --force | tee "$OUT/perfledger.log"
peers_round
echo "== load after: $(cat /proc/loadavg)" | tee -a "$OUT/machine.txt"
"$BIN" import "$PEERS" --into "$OUT/run.json"
python3 scripts/side_by_side.py "$OUT/run.json" --md "$OUT/report.md" \
  --title "CPU baseline: perfledger vs OpenBLAS (numpy) and PyTorch CPU, $THREADS threads, peers before and after"
echo "wrote $OUT/report.md"
