#!/usr/bin/env bash
# The payload of a fleet run: what the SkyPilot task's `run:`, the Slurm job and the Kubernetes
# Job execute on each instance, and what the tests run on this machine. Run from the repository
# root:
#
#   bash scripts/fleet/task.sh
#
# Environment (all optional):
#   PERFLEDGER_BIN            the perfledger binary (default: `cargo build --release`, then
#                             target/release/perfledger)
#   PERFLEDGER_SUITE          suite name or file (default: standard)
#   PERFLEDGER_RUN_ARGS       extra `perfledger run` arguments (word-split)
#   PERFLEDGER_PEERS          scripts: time the suite's shapes with scripts/reference/ (numpy,
#                             PyTorch; a venv in .venv-ref, created if missing) and import them;
#                             none: no peers; any other value: a JSON-lines file of external
#                             rows to import (default: scripts)
#   PERFLEDGER_REQUIRE_HW_GPU 1: fail before the run if no hardware GPU adapter is visible
#   PERFLEDGER_OUT_DIR        where the run file goes (default: $HOME/perfledger-out)
#   PERFLEDGER_INSTANCE, PERFLEDGER_PROVIDER, PERFLEDGER_REGION, PERFLEDGER_PRICING_MODEL,
#   PERFLEDGER_PRICE          the instance's identity and price; perfledger reads them itself
#                             (and SkyPilot's SKYPILOT_* variables, as provenance)
#
# Writes one run file, $PERFLEDGER_OUT_DIR/<instance>-<pricing model>-<region>-<host>-<UTC time>.json,
# and prints its path on the last line of stdout. Exit status: perfledger's (0 all verified,
# 1 a verification failed or a case errored: the run file is kept), 2 on bad input.
set -euo pipefail

die() { echo "task.sh: $*" >&2; exit 2; }

[[ -f Cargo.toml && -d scripts/fleet ]] || die "run from the perfledger repository root"

bin=${PERFLEDGER_BIN:-}
if [[ -z "$bin" ]]; then
    echo "task.sh: building perfledger (cargo build --release)" >&2
    cargo build --release --locked >&2
    bin=target/release/perfledger
fi
[[ -x "$bin" ]] || die "PERFLEDGER_BIN=$bin is not an executable"

suite=${PERFLEDGER_SUITE:-standard}
peers=${PERFLEDGER_PEERS:-scripts}
out_dir=${PERFLEDGER_OUT_DIR:-$HOME/perfledger-out}
mkdir -p "$out_dir"

if [[ "${PERFLEDGER_REQUIRE_HW_GPU:-0}" == 1 ]]; then
    # `perfledger env` lists every adapter with `software: true|false`.
    if ! "$bin" env | python3 -c '
import json, sys
gpus = json.load(sys.stdin)["environment"]["gpus"]
hw = [g["name"] for g in gpus if not g["software"]]
print("task.sh: GPU adapters:", ", ".join(g["name"] for g in gpus) or "none", file=sys.stderr)
sys.exit(0 if hw else 1)'; then
        die "PERFLEDGER_REQUIRE_HW_GPU=1 but no hardware GPU adapter is visible (Vulkan loader and ICD: scripts/fleet/vulkan-icd.sh)"
    fi
fi

clean() { printf '%s' "$1" | tr -c 'A-Za-z0-9._-' '_'; }
host=$(hostname 2>/dev/null || echo host)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
name="$(clean "${PERFLEDGER_INSTANCE:-local}")-$(clean "${PERFLEDGER_PRICING_MODEL:-unpriced}")-$(clean "${PERFLEDGER_REGION:-noregion}")-$(clean "$host")-$stamp-$$"
run="$out_dir/$name.json"

# shellcheck disable=SC2086 # PERFLEDGER_RUN_ARGS is a word list on purpose
set +e
"$bin" run --suite "$suite" ${PERFLEDGER_RUN_ARGS:-} --out "$run" >&2
rc=$?
set -e
if [[ ! -f "$run" ]]; then
    echo "task.sh: perfledger run exited $rc and wrote no run file" >&2
    exit "$rc"
fi

case "$peers" in
none) ;;
scripts)
    py=.venv-ref/bin/python
    if [[ ! -x "$py" ]]; then
        echo "task.sh: creating .venv-ref for the reference scripts" >&2
        python3 -m venv .venv-ref
        .venv-ref/bin/pip install -q -r scripts/reference/requirements.txt >&2
    fi
    peer_rows="$out_dir/$name.peers.jsonl"
    : > "$peer_rows"
    # One reference call per shape of the run: numpy (f32) and PyTorch for matmul, SDPA for
    # attention, at the run's thread count.
    threads=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["environment"]["cpu"]["threads_used"])' "$run")
    python3 - "$run" <<'EOF' | while IFS=$'\t' read -r script shape extra dtypes; do
import json, sys
run = json.load(open(sys.argv[1]))
seen = set()
for r in run["results"]:
    if r.get("kind") != "measured" or r.get("backend") != "cpu":
        continue
    s, op, dt = r["shape"], r["op"], r["precision"]["input"]
    if op == "matmul":
        key = ("mm", s.get("batch", 1), s["m"], s["n"], s["k"], bool(s.get("trans_b")))
        shape = f'{key[1]}x{key[2]}x{key[3]}x{key[4]}'
        extra = "--trans-b" if key[5] else "-"
        scripts = ["numpy_matmul.py", "torch_matmul.py"] if dt == "f32" else ["torch_matmul.py"]
    else:
        key = ("at", s.get("batch", 1), s["q_heads"], s["kv_heads"], s["q_len"], s["kv_len"],
               s["head_dim"], bool(s.get("causal")))
        shape = f'{key[1]},{key[2]},{key[3]},{key[4]}:{key[5]},{key[6]}' + (",causal" if key[7] else "")
        extra = "-"
        scripts = ["torch_attention.py"]
    for sc in scripts:
        if (sc, key, dt) not in seen:
            seen.add((sc, key, dt))
            print(f"{sc}\t{shape}\t{extra}\t{dt}")
EOF
        args=(--shape "$shape" --dtype "$dtypes" --threads "$threads" --out "$peer_rows" --append)
        [[ "$extra" != "-" ]] && args+=("$extra")
        echo "task.sh: peer $script $shape $dtypes" >&2
        "$py" "scripts/reference/$script" "${args[@]}" >&2 || echo "task.sh: peer $script $shape failed (kept going)" >&2
    done
    if [[ -s "$peer_rows" ]]; then
        "$bin" import "$peer_rows" --into "$run" >&2
    fi
    ;;
*)
    [[ -f "$peers" ]] || die "PERFLEDGER_PEERS=$peers: not 'scripts', 'none' or a file"
    "$bin" import "$peers" --into "$run" >&2
    ;;
esac

echo "$run"
exit "$rc"
