#!/usr/bin/env bash
# Behaviour unchanged across a refactor: run the same fixed-seed quick suite (CPU rows, no probes)
# with two builds and compare the run files field by field, leaving out what timing decides
# (samples, statistics, stop reasons, sample counts, the rotated set the last sample verified,
# times) and what identifies the run (id, date, build, load). Writes results/behaviour-diff.md.
# Usage: scripts/behaviour-diff.sh BEFORE_BINARY [AFTER_BINARY]   (AFTER: target/release/perfledger)
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE="${1:?usage: scripts/behaviour-diff.sh BEFORE_BINARY [AFTER_BINARY]}"
AFTER="${2:-target/release/perfledger}"
tmp=$(mktemp -d)
args=(run --suite quick --backend cpu --probes off --seed 7 --threads 2)
"$BEFORE" "${args[@]}" --out "$tmp/before.json" > "$tmp/before.log" 2>&1
"$AFTER" "${args[@]}" --out "$tmp/after.json" > "$tmp/after.log" 2>&1
python3 - "$tmp/before.json" "$tmp/after.json" "$BEFORE" "$AFTER" <<'PY'
import json, sys
before, after = (json.load(open(p)) for p in sys.argv[1:3])
TIMING = {"samples_s", "stats", "gflops", "outliers"}
TIMING_KEYS = {"warmup_iters", "iters_per_sample", "stop_reason", "sampling_s", "row_s"}
def row_view(r):
    r = {k: v for k, v in r.items() if k not in TIMING}
    if r.get("timing"):
        r["timing"] = {k: v for k, v in r["timing"].items() if k not in TIMING_KEYS}
    v = r.get("verification")
    if v:  # which rotated set the last sample verified depends on the sample count
        r["verification"] = {k: v[k] for k in ("method", "verdict") if k in v}
    if r.get("message"):  # "... past the budget" and cross-checks are timing
        r["message"] = "; ".join(p for p in r["message"].split("; ") if "past the" not in p) or None
    return r
def top_view(d):
    return {k: d[k] for k in ("schema", "complete", "suite", "measured_ceilings")} | {
        "config": {k: v for k, v in d["config"].items() if k != "argv"}}
diffs = []
def cmp(a, b, path):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a: diffs.append(f"{path}.{k}: added {json.dumps(b[k])}")
            elif k not in b: diffs.append(f"{path}.{k}: removed (was {json.dumps(a[k])})")
            else: cmp(a[k], b[k], f"{path}.{k}")
    elif a != b:
        diffs.append(f"{path}: {json.dumps(a)} → {json.dumps(b)}")
cmp(top_view(before), top_view(after), "run")
rb, ra = before["results"], after["results"]
if len(rb) != len(ra):
    diffs.append(f"results: {len(rb)} rows → {len(ra)} rows")
for i, (a, b) in enumerate(zip(rb, ra)):
    cmp(row_view(a), row_view(b), f"results[{i}] ({a.get('id')})")
lines = [
    "# Behaviour across the layout refactor: a fixed-seed quick run, field by field\n",
    f"Command: `scripts/behaviour-diff.sh {sys.argv[3]} {sys.argv[4]}` → both run "
    "`perfledger run --suite quick --backend cpu --probes off --seed 7 --threads 2`.",
    "Left out: samples, statistics, GFLOP/s, outliers, stop reasons, warm-up and sample counts, "
    "times, the verified set's error (timing decides which rotated set the last sample used), "
    "run id, date, build, environment.\n",
    f"- rows: {len(rb)} before, {len(ra)} after; statuses before "
    f"{sorted(set(r['status'] for r in rb))}, after {sorted(set(r['status'] for r in ra))}",
    f"- differences: **{len(diffs)}**, of which in `kernel.params`: "
    f"{sum('.kernel.params.' in d for d in diffs)} (parameters now recorded as numbers: the "
    "decode kernel's KV split chosen when prepared, `kv_splits`/`keys_per_split`/`tasks`, instead "
    "of the prose `splits`; tile shapes as `*_rows`/`*_cols` numbers instead of `AxB` strings); "
    f"anything else: {sum('.kernel.params.' not in d for d in diffs)}",
]
lines += [f"  - `{d}`" for d in diffs]
open("results/behaviour-diff.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
