#!/usr/bin/env bash
# CPU attention side by side with PyTorch SDPA on the same machine, same threads, same shapes.
#
#   scripts/attention-side-by-side.sh [--threads N] [--out-prefix results/attention-side-by-side]
#
# 1. perfledger run of scripts/suites/attention-side-by-side.json (flash on four prefill shapes,
#    decode at q_len 1 / GQA 32/8 / kv 8192), bf16 and f16, with the machine probes (measured FMA
#    peak per ISA and read bandwidth land in measured_ceilings of the same run file). The runner
#    verifies every row and rotates input sets for memory-bound rows (decode: 4 sets of 32 MiB of
#    K+V, 4× L3), so decode samples stream K/V from DRAM.
# 2. scripts/reference/torch_attention.py (torch.nn.functional.scaled_dot_product_attention,
#    enable_gqa for GQA, torch.set_num_threads(N)) on the same shapes and dtypes, verified, emitted
#    as external peer rows and imported into the same run file (perfledger recomputes their FLOPs
#    from the shape).
# 3. A summary (Markdown + JSON) with, per shape and dtype: GFLOP/s of both (median, bootstrap 95%
#    CI), the ratio perfledger/torch of medians with a bootstrap 95% CI (2000 resamples of both
#    sample sets, seeded), the fraction of the measured FMA peak, and for decode the K+V read
#    rate against measured_ceilings.cpu_read_gbs. Gates (issue): flash bf16 ≥ 0.95× torch bf16,
#    flash f16 ≥ 1.2× torch f16, decode bf16 ≥ 60% of the read bandwidth and ≥ 5× torch.
#    A gate passes on the ratio's median; the CI is printed beside it.
#
# FLOPs: useful 4·D·(unmasked pairs)·heads for both sides (causal counts S(S+1)/2 pairs).
# Needs: cargo, .venv-ref with torch ≥ 2.5 (scripts/reference/README.md). Timing claims: run on a
# quiet machine (the summary records the load average before and after).
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=2
PREFIX=results/attention-side-by-side
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) THREADS="$2"; shift 2 ;;
        --out-prefix) PREFIX="$2"; shift 2 ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done
PY=${PY:-.venv-ref/bin/python}
SUITE=scripts/suites/attention-side-by-side.json
RUN="$PREFIX-run.json"
PEER=$(mktemp /tmp/torch-attn.XXXXXX.jsonl)
rm -f "$PEER"
trap 'rm -f "$PEER"' EXIT

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
cargo build --release -p perfledger --no-default-features  # CPU-only: no GPU setup or probes
./target/release/perfledger run --suite "$SUITE" --threads "$THREADS" --out "$RUN" --force

# The torch shapes are the suite's cases, spelled for torch_attention.py.
mapfile -t SHAPES < <("$PY" - "$SUITE" <<'EOF'
import json, sys
for c in json.load(open(sys.argv[1]))["cases"]:
    s = f"{c.get('batch', 1)},{c['q_heads']},{c['kv_heads']},{c['q_len']},{c['kv_len']},{c['head_dim']}"
    print(s + (",causal" if c.get("causal") else ""))
EOF
)
ARGS=()
for s in "${SHAPES[@]}"; do ARGS+=(--shape "$s"); done
"$PY" scripts/reference/torch_attention.py "${ARGS[@]}" --dtype bf16,f16 --threads "$THREADS" \
    --min-time 3 --out "$PEER"
./target/release/perfledger import "$PEER" --into "$RUN"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

"$PY" - "$RUN" "$PREFIX" "$THREADS" "$LOAD_BEFORE" "$LOAD_AFTER" <<'EOF'
import json, sys
import numpy as np

run_path, prefix, threads, load_before, load_after = sys.argv[1:6]
run = json.load(open(run_path))
ceil = run.get("measured_ceilings") or {}
fma = ceil.get("cpu_fma_gflops") or {}
read_gbs = ceil.get("cpu_read_gbs")
rng = np.random.default_rng(20240607)
B = 2000

def key(r):
    s = r["shape"]
    return (s["batch"], s["q_heads"], s["kv_heads"], s["q_len"], s["kv_len"], s["head_dim"],
            bool(s["causal"]), r["precision"]["input"])

def flops(s):
    q, kv = s["q_len"], s["kv_len"]
    pairs = q * (kv - q) + q * (q + 1) // 2 if s["causal"] else q * kv
    return 4 * s["head_dim"] * pairs * s["batch"] * s["q_heads"]

def min_bytes(s, size=2):
    qe = s["batch"] * s["q_heads"] * s["q_len"] * s["head_dim"]
    kve = s["batch"] * s["kv_heads"] * s["kv_len"] * s["head_dim"]
    return (2 * qe + 2 * kve) * size

def med_ci(x):
    x = np.asarray(x, float)
    boots = np.median(rng.choice(x, (B, len(x))), axis=1)
    return float(np.median(x)), [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]

def ratio_ci(ours, peer):
    """peer median time / our median time (>1: perfledger faster), bootstrap CI."""
    a, b = np.asarray(ours, float), np.asarray(peer, float)
    ma = np.median(rng.choice(a, (B, len(a))), axis=1)
    mb = np.median(rng.choice(b, (B, len(b))), axis=1)
    r = mb / ma
    return float(np.median(b) / np.median(a)), [float(np.percentile(r, 2.5)), float(np.percentile(r, 97.5))]

ours = {key(r): r for r in run["results"] if r["kind"] == "measured"}
peers = {key(r): r for r in run["results"] if r["kind"] == "peer"}
rows, gates = [], []
for k, r in ours.items():
    s = r["shape"]
    fl = flops(s)
    item = {"kernel": r["id"], "shape": s, "dtype": k[-1], "status": r["status"],
            "verification": r.get("verification")}
    if r["status"] != "ok" or not r.get("samples_s"):
        item["note"] = "not ok: no speed"
        rows.append(item)
        gates.append({"gate": f"{r['id']} {s}", "pass": False, "why": r["status"]})
        continue
    t, tci = med_ci(r["samples_s"])
    item["gflops"] = fl / t / 1e9
    item["gflops_ci95"] = [fl / tci[1] / 1e9, fl / tci[0] / 1e9]
    isa = r["kernel"]["variant"]
    if isa in fma:
        item["fma_peak_gflops"] = fma[isa]
        item["fraction_of_fma_peak"] = item["gflops"] / fma[isa]
    decode = s["q_len"] == 1
    if decode:
        item["read_gbs"] = min_bytes(s) / t / 1e9
        item["read_gbs_ci95"] = [min_bytes(s) / tci[1] / 1e9, min_bytes(s) / tci[0] / 1e9]
        if read_gbs:
            item["fraction_of_read_bw"] = item["read_gbs"] / read_gbs
    p = peers.get(k)
    if p and p.get("samples_s"):
        pt, ptci = med_ci(p["samples_s"])
        item["torch_gflops"] = fl / pt / 1e9
        item["torch_gflops_ci95"] = [fl / ptci[1] / 1e9, fl / ptci[0] / 1e9]
        item["torch_verdict"] = (p.get("verification") or {}).get("verdict")
        item["torch_tool"] = p.get("tool_version")
        item["ratio"], item["ratio_ci95"] = ratio_ci(r["samples_s"], p["samples_s"])
    rows.append(item)
    dt = k[-1]
    if not decode:
        need = 0.95 if dt == "bf16" else 1.2
        if "ratio" in item:
            gates.append({"gate": f"flash {dt} vs torch",
                          "shape": s, "metric": "ratio to torch SDPA", "need": need,
                          "value": item["ratio"], "ci95": item["ratio_ci95"],
                          "pass": item["ratio"] >= need})
    elif dt == "bf16":
        if "fraction_of_read_bw" in item:
            gates.append({"gate": "decode bf16 read bandwidth", "shape": s,
                          "metric": "K+V read / measured_ceilings.cpu_read_gbs", "need": 0.60,
                          "value": item["fraction_of_read_bw"],
                          "ci95": [x / read_gbs for x in item["read_gbs_ci95"]],
                          "pass": item["fraction_of_read_bw"] >= 0.60})
        if "ratio" in item:
            gates.append({"gate": "decode bf16 vs torch", "shape": s, "metric": "ratio to torch SDPA",
                          "need": 5.0, "value": item["ratio"], "ci95": item["ratio_ci95"],
                          "pass": item["ratio"] >= 5.0})

env = run.get("environment", {})
cpu = env.get("cpu", {})
summary = {"run_file": run_path, "threads": int(threads), "cpu": cpu.get("model"),
           "isa_selected": cpu.get("isa_selected"), "load_avg_before": load_before,
           "load_avg_after": load_after, "measured_ceilings": ceil,
           "flop_convention": "useful 4*D*unmasked_pairs*heads (causal: S(S+1)/2 pairs), both sides",
           "ratio": "torch median time / perfledger median time; 95% percentile bootstrap, 2000 resamples",
           "rows": rows, "gates": gates,
           "all_gates_pass": all(g["pass"] for g in gates) and len(gates) > 0}
json.dump(summary, open(prefix + ".json", "w"), indent=1)

def shp(s):
    return (f"{s['batch']},{s['q_heads']}/{s['kv_heads']},{s['q_len']}"
            + (f":{s['kv_len']}" if s['kv_len'] != s['q_len'] else "")
            + f",{s['head_dim']}" + (",causal" if s["causal"] else ""))

def ci(x):
    return f"[{x[0]:.3g}, {x[1]:.3g}]"

md = [f"# CPU attention vs PyTorch SDPA ({threads} threads)", "",
      f"Generated by `scripts/attention-side-by-side.sh --threads {threads}`; run file `{run_path}` "
      "(perfledger rows and the imported torch peer rows, raw samples included).", "",
      f"- CPU: {cpu.get('model')}, ISA path {cpu.get('isa_selected')}; load average before "
      f"{load_before}, after {load_after}.",
      f"- Measured ceilings (same run): FMA {', '.join(f'{k} {v:.0f}' for k, v in fma.items())} "
      f"GFLOP/s; read {read_gbs:.1f} GB/s." if read_gbs else "- Measured ceilings: n/a",
      "- FLOPs: useful `4·D·(unmasked pairs)·heads` for both sides (causal: S(S+1)/2 pairs); "
      "GFLOP/s = FLOPs / median time, CI = bootstrap 95% of the median.",
      "- Ratio = torch median time / perfledger median time (> 1: perfledger faster), "
      "bootstrap 95% CI over both sample sets.", "",
      "| kernel | shape (B,Hq/Hkv,S,D) | dtype | perfledger GFLOP/s [95% CI] | torch SDPA GFLOP/s [95% CI] "
      "| ratio [95% CI] | % FMA peak | K+V read GB/s (% of read BW) |",
      "|---|---|---|---|---|---|---|---|"]
for it in rows:
    s = it["shape"]
    if "gflops" not in it:
        md.append(f"| {it['kernel']} | {shp(s)} | {it['dtype']} | {it.get('note')} | | | | |")
        continue
    rd = (f"{it['read_gbs']:.1f} ({100 * it['fraction_of_read_bw']:.0f}%)"
          if "fraction_of_read_bw" in it else "")
    md.append(
        f"| {it['kernel'].split('.')[2]} | {shp(s)} | {it['dtype']} | {it['gflops']:.1f} {ci(it['gflops_ci95'])} "
        f"| {it.get('torch_gflops', float('nan')):.1f} {ci(it['torch_gflops_ci95']) if 'torch_gflops_ci95' in it else ''} "
        f"| {it.get('ratio', float('nan')):.2f} {ci(it['ratio_ci95']) if 'ratio_ci95' in it else ''} "
        f"| {100 * it.get('fraction_of_fma_peak', float('nan')):.0f}% | {rd} |")
md += ["", "## Gates", "", "| gate | shape | need | value [95% CI] | pass |", "|---|---|---|---|---|"]
for g in gates:
    if "value" not in g:
        md.append(f"| {g['gate']} | | | {g.get('why')} | no |")
        continue
    pct = "read" in g["gate"]
    fmt = (lambda v: f"{100 * v:.0f}%") if pct else (lambda v: f"{v:.2f}×")
    md.append(f"| {g['gate']} | {shp(g['shape'])} | ≥ {fmt(g['need'])} | {fmt(g['value'])} "
              f"[{fmt(g['ci95'][0])}, {fmt(g['ci95'][1])}] | {'yes' if g['pass'] else '**no**'} |")
md += ["", f"All gates pass: **{'yes' if summary['all_gates_pass'] else 'no'}**.", ""]
tools = sorted({it.get("torch_tool") for it in rows if it.get("torch_tool")})
if tools:
    md += ["Peer: " + "; ".join(tools), ""]
open(prefix + ".md", "w").write("\n".join(md))
print("\n".join(md))
sys.exit(0 if summary["all_gates_pass"] else 1)
EOF
