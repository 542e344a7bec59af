#!/usr/bin/env bash
# perfledger's CPU kernels against the reference libraries, in one sitting, on every CPU matmul
# shape of the quick and standard suites, the odd and skinny shapes (127×8191×65, 200×300×129,
# Llama-3.1-8B projections at 16 and 64 tokens) and the prefill / GQA decode attention shapes
# (scripts/suites/cpu-side-by-side.json). Supersedes matmul-side-by-side.sh and cpu-baseline.sh
# for the CPU-peers issue's gates.
#
# The peers:
# - in the run itself: the in-process peer kernels (OpenBLAS sgemm/sbgemm loaded at run time,
#   ndarray, the gemm crate), rows of kind `peer`, verified like every row, timed in the same
#   process between perfledger's own kernels;
# - imported: numpy (OpenBLAS sgemm of numpy's wheel), PyTorch CPU matmul (f32, bf16, f16) and
#   scaled_dot_product_attention (bf16, f16; enable_gqa), timed before AND after the run, so
#   drift during the sitting shows as two rows per peer.
# perfledger runs twice by default, the second run after the peers' second round (peers, run,
# peers, run): the table takes the best of each side's rounds, so on a host whose speed drifts
# within minutes neither side gets more chances than the other (with one run, the imported peers
# had two rounds against perfledger's one).
#
# Writes OUTDIR (default results/cpu-side-by-side/<label>, label default `after`): run.json (all
# rows, peers imported), run-2.json (the second run), peers.jsonl, peers.log (the Python peers'
# log: each row's median and verification, and any row skipped by --peer-max-call),
# perfledger.log, machine.txt (lscpu: the CPU kind every figure belongs to; the cpuidle driver
# and its halt polling, which decides whether an idle vCPU of a VM halts at once), probes-peers-{before,after}-{start,end}.json (`perfledger env --probes` around each
# Python peers' round), report.md and report.json (scripts/cpu_side_by_side.py: per workload perfledger's
# best kernel against the best peer of its dtype, ratio with a 95% CI).
# Needs the reference venv: python3 -m venv .venv-ref && .venv-ref/bin/pip install -r scripts/reference/requirements.txt
# (or PYTHON=/path/to/python: any Python with numpy and torch, e.g. on a machine without network).
# Usage: scripts/cpu-side-by-side.sh [--threads N] [--label NAME] [--out DIR] [--budget S]
#          [--peer-min-time S] [--peer-max-call S] [--peer-rounds N] [--runs N] [--rounds N]
#          [--no-python-peers]
#   --budget S          perfledger's --case-budget (default 3)
#   --peer-min-time S   each Python peer's timing per shape (default 2)
#   --peer-max-call S   a Python peer's row whose first call takes longer than S seconds, or
#                       would at the fastest rate an earlier row of its dtype and kind (memory-
#                       or compute-bound) reached in that script, is skipped (default 10; 0:
#                       none): e.g. PyTorch's f16 matmul on a CPU
#                       without AVX512_FP16/AMX-FP16 (Zen 4) runs at ≈ 1 GFLOP/s, minutes per call
#                       on the large shapes. Skips are logged in OUT/peers.log and listed in the
#                       report (a skipped gate peer leaves its rows with no gate ratio).
#   --peer-rounds N     2 (default): Python peers before and after the run; 1: before only (a
#                       short sitting, e.g. a lent machine; drift during the run is then not seen);
#                       3 or more: further rounds, each before the perfledger run of its number
#   --runs N            2 (default): perfledger runs again after the peers' second round; 1: once;
#                       3 or more: round r (peers r, then perfledger r) for r = 1..N, each side the
#                       best of its rounds (on a host whose speed moves in phases of minutes, more
#                       rounds give each side more chances to meet a fast phase: --peer-rounds 3
#                       --runs 3 is a sitting of ≈ 40 min on 2 vCPUs)
#   --rounds N          perfledger's --rounds (default 1): each run measures every case's rows
#                       (its kernels and the in-process peers) in N turns, the order reversed
#                       every other turn, so they share the host's fast and slow spells
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=2
LABEL=after
OUT=
BUDGET=3
PEER_MIN_TIME=2
PEER_MAX_CALL=10
PEER_ROUNDS=2
RUNS=2
TURNS=1
PYPEERS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) THREADS=$2; shift 2 ;;
    --label) LABEL=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --budget) BUDGET=$2; shift 2 ;;
    --peer-min-time) PEER_MIN_TIME=$2; shift 2 ;;
    --peer-max-call) PEER_MAX_CALL=$2; shift 2 ;;
    --peer-rounds) PEER_ROUNDS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --rounds) TURNS=$2; shift 2 ;;
    --no-python-peers) PYPEERS=0; shift ;;
    *) echo "cpu-side-by-side.sh: unknown argument $1 (see the header)" >&2; exit 2 ;;
  esac
done
case "$PEER_ROUNDS" in ''|*[!0-9]*|0*) echo "cpu-side-by-side.sh: --peer-rounds takes a count from 1" >&2; exit 2 ;; esac
case "$RUNS" in ''|*[!0-9]*|0*) echo "cpu-side-by-side.sh: --runs takes a count from 1" >&2; exit 2 ;; esac
case "$TURNS" in ''|*[!0-9]*|0*) echo "cpu-side-by-side.sh: --rounds takes a count from 1" >&2; exit 2 ;; esac
OUT=${OUT:-results/cpu-side-by-side/$LABEL}
SUITE=scripts/suites/cpu-side-by-side.json
PY=${PYTHON:-.venv-ref/bin/python}
if [ "$PYPEERS" = 1 ] && ! "$PY" -c 'import numpy, torch' 2>/dev/null; then
  echo "cpu-side-by-side.sh: $PY cannot import numpy and torch (see the header), or pass --no-python-peers" >&2
  exit 2
fi
mkdir -p "$OUT"
# The in-process OpenBLAS (PERFLEDGER_OPENBLAS, else numpy's, else the system library).
. scripts/numpy-openblas.sh
BIN=${PERFLEDGER_BIN:-target/release/perfledger}
[ -n "${PERFLEDGER_BIN:-}" ] || cargo build --release -q
PEERS="$OUT/peers.jsonl"

# The suite's shapes, split by what each peer script takes (one call per layout and dtype),
# fewest FLOPs first: a peer whose rate would put a call over --peer-max-call then skips the
# larger shapes without running them (scripts/reference/common.py, call_budget_check).
shapes() { # $1 = matmul|attention, $2 = dtype(s), comma-separated, $3 = bt|nt (matmul)
  python3 - "$SUITE" "$@" <<'EOF'
import json, sys
suite, op, dtypes = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
layout = sys.argv[4] if len(sys.argv) > 4 else None
out = []
for c in json.load(open(suite))["cases"]:
    if c["op"] != op or not any(d in c["dtypes"] for d in dtypes):
        continue
    b = c.get("batch", 1)
    if op == "matmul":
        if c.get("trans_b", False) != (layout == "bt"):
            continue
        out.append((2 * b * c["m"] * c["n"] * c["k"], f'--shape {b}x{c["m"]}x{c["n"]}x{c["k"]}'))
    else:
        q = f'{c["q_len"]}:{c["kv_len"]}' if c["q_len"] != c["kv_len"] else str(c["q_len"])
        flops = 4 * b * c["q_heads"] * c["q_len"] * c["kv_len"] * c["head_dim"]
        out.append((flops, f'--shape {b},{c["q_heads"]},{c["kv_heads"]},{q},{c["head_dim"]}'
                    + (",causal" if c.get("causal") else "")))
seen = set()
for _, line in sorted(out, key=lambda x: x[0]):
    if line not in seen:
        seen.add(line)
        print(line)
EOF
}

peer() { # $1 = script, $2 = dtype, rest = arguments
  local script=$1 dtype=$2
  shift 2
  $PY "scripts/reference/$script" --threads "$THREADS" --out "$PEERS" --append --min-time "$PEER_MIN_TIME" \
    --max-call-time "$PEER_MAX_CALL" --dtype "$dtype" "$@" 2>&1 | tee -a "$OUT/peers.log"
}

# The machine probes (FMA per unit, tdpbf16ps, read bandwidth) on the sitting's threads, saved
# as OUT/probes-NAME.json: the imported peers' rounds get the host state that perfledger's runs
# record in their measured ceilings (the TMUL's rate moves by 2x and more within minutes here).
probe() {
  "$BIN" env --threads "$THREADS" --probes > "$OUT/probes-$1.json"
}

peers_round() {
  echo "== peers round $1 ($(date -u +%H:%M:%SZ)), load $(cat /proc/loadavg)" | tee -a "$OUT/peers.log"
  probe "peers-$1-start"
  # numpy: OpenBLAS sgemm on f32 data for every matmul shape (the f32 rows' and f16 rows' peer).
  local all_nt all_bt
  all_nt=$(shapes matmul f32,f16,bf16 nt)
  all_bt=$(shapes matmul f32,f16,bf16 bt)
  # shellcheck disable=SC2046
  [ -z "$all_nt" ] || peer numpy_matmul.py f32 $all_nt
  # shellcheck disable=SC2046
  [ -z "$all_bt" ] || peer numpy_matmul.py f32 $all_bt --trans-b
  for dt in f32 bf16 f16; do
    local nt bt
    nt=$(shapes matmul "$dt" nt)
    bt=$(shapes matmul "$dt" bt)
    # shellcheck disable=SC2086
    [ -z "$nt" ] || peer torch_matmul.py "$dt" $nt
    # shellcheck disable=SC2086
    [ -z "$bt" ] || peer torch_matmul.py "$dt" $bt --trans-b
  done
  for dt in bf16 f16; do
    local at
    at=$(shapes attention "$dt")
    # shellcheck disable=SC2086
    [ -z "$at" ] || peer torch_attention.py "$dt" $at
  done
  probe "peers-$1-end"
}

{ lscpu; echo; echo "== PERFLEDGER_OPENBLAS=${PERFLEDGER_OPENBLAS:-(system library)}";
  echo "== cpuidle driver $(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo '(none)'), haltpoll guest_halt_poll_ns $(cat /sys/module/haltpoll/parameters/guest_halt_poll_ns 2>/dev/null || echo '(none)')";
  echo "== started $(date -u +%FT%TZ), load $(cat /proc/loadavg)"; } > "$OUT/machine.txt"
rm -f "$PEERS" "$OUT/peers.log" "$OUT"/probes-*.json
rm -f "$OUT"/run-*.json "$OUT/perfledger.log"
# Round r: the Python peers' round r (named before, after, 3, 4, ...), then perfledger's run r
# (run.json, run-2.json, ...).
round_name() { case $1 in 1) echo before ;; 2) echo after ;; *) echo "$1" ;; esac; }
ALSO=()
ROUNDS=$(( PEER_ROUNDS > RUNS ? PEER_ROUNDS : RUNS ))
for r in $(seq 1 "$ROUNDS"); do
  [ "$PYPEERS" = 0 ] || [ "$r" -gt "$PEER_ROUNDS" ] || peers_round "$(round_name "$r")"
  [ "$r" -le "$RUNS" ] || continue
  if [ "$r" = 1 ]; then
    RUNFILE="$OUT/run.json"
  else
    RUNFILE="$OUT/run-$r.json"
    ALSO+=(--also "$RUNFILE")
    echo "== perfledger run $r ($(date -u +%H:%M:%SZ)), load $(cat /proc/loadavg)" | tee -a "$OUT/perfledger.log"
  fi
  "$BIN" run --suite "$SUITE" --threads "$THREADS" --case-budget "$BUDGET" --rounds "$TURNS" \
    --out "$RUNFILE" --force 2>&1 | tee -a "$OUT/perfledger.log"
done
echo "== finished $(date -u +%FT%TZ), load $(cat /proc/loadavg)" >> "$OUT/machine.txt"
[ ! -s "$PEERS" ] || "$BIN" import "$PEERS" --into "$OUT/run.json"
PROBES=()
for f in "$OUT"/probes-*.json; do [ -e "$f" ] && PROBES+=(--probes "$f"); done
SKIPS=()
[ ! -s "$OUT/peers.log" ] || SKIPS=(--peers-log "$OUT/peers.log")
python3 scripts/cpu_side_by_side.py "$OUT/run.json" "${ALSO[@]}" "${PROBES[@]}" "${SKIPS[@]}" --md "$OUT/report.md" --json "$OUT/report.json" \
  --title "CPU side by side ($LABEL): perfledger vs OpenBLAS, ndarray, gemm, numpy and PyTorch CPU, $THREADS threads"
echo "wrote $OUT/report.md"
