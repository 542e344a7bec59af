#!/usr/bin/env bash
# perfledger under load: two `perfledger run --suite quick` beside a CPU hog (stress-ng, started
# and stopped here), then `compare` of the two (an A/A comparison: same build, same machine, same
# load). Shows that every row still verifies, that each row records the load and steal it saw,
# and that compare reports no regression and "no change" for at least 90% of the compared rows
# (rows marked noisy still get a verdict).
#
# Usage: scripts/load-check.sh [HOG_THREADS]   (default 2; needs stress-ng: apt-get install stress-ng)
# Writes results/load-check/ (run-a.json, run-b.json, compare.json, compare.md, logs) and
# results/load-check.md. Exit 0 when the three checks hold, 1 otherwise, 2 when it cannot run.
set -uo pipefail
cd "$(dirname "$0")/.."
HOG="${1:-2}"
OUT=results/load-check
command -v stress-ng >/dev/null || { echo "load-check: stress-ng not found (apt-get install -y stress-ng)" >&2; exit 2; }
cargo build --release -q -p perfledger || exit 2
BIN=target/release/perfledger
mkdir -p "$OUT"
stress-ng --cpu "$HOG" --timeout 900s --quiet &
HOGPID=$!
trap 'kill "$HOGPID" 2>/dev/null; wait "$HOGPID" 2>/dev/null' EXIT
sleep 3
for side in a b; do
  echo "== load before run $side: $(cat /proc/loadavg)" >> "$OUT/log.txt"
  "$BIN" run --suite quick --out "$OUT/run-$side.json" --force > "$OUT/run-$side.log" 2>&1
  echo "run $side exit code $?" >> "$OUT/log.txt"
done
kill "$HOGPID" 2>/dev/null; wait "$HOGPID" 2>/dev/null
trap - EXIT
"$BIN" compare "$OUT/run-a.json" "$OUT/run-b.json" --format json --out "$OUT/compare.json" --force
code=$?
"$BIN" compare "$OUT/run-a.json" "$OUT/run-b.json" --format md --out "$OUT/compare.md" --force
python3 - "$OUT" "$HOG" "$code" <<'PY'
import json, sys, statistics
out, hog, code = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = {s: json.load(open(f"{out}/run-{s}.json")) for s in "ab"}
cmp_ = json.load(open(f"{out}/compare.json"))
cpu = open("/proc/cpuinfo").read()
model = next(l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("model name"))
fam = next(l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("cpu family"))
mod = next(l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.lstrip().startswith("model\t"))
lines = ["# perfledger under load: `scripts/load-check.sh`", "",
         f"Machine: {model} (family {fam}, model {mod}), {len([l for l in cpu.splitlines() if l.startswith('processor')])} vCPUs; "
         f"hog: `stress-ng --cpu {hog}` for both runs. Files: `results/load-check/`.", ""]
ok = True
for s, r in runs.items():
    rows = [x for x in r["results"] if x["kind"] == "measured"]
    st = {}
    for x in rows:
        st[x["status"]] = st.get(x["status"], 0) + 1
    bad = [x.get("id") for x in rows if x["status"] not in ("ok", "unsupported")]
    unverified = [x.get("id") for x in rows if x["status"] == "ok" and (x.get("verification") or {}).get("verdict") != "pass"]
    noise = [x["noise"] for x in rows if x.get("noise")]
    rq = [n["run_queue_median"] for n in noise if n.get("run_queue_median") is not None]
    steal = [n["steal_pct"] for n in noise if n.get("steal_pct") is not None]
    lines.append(f"- run {s}: rows by status {st}; rows neither ok nor unsupported: {len(bad)} {bad[:5]}; "
                 f"ok rows not verified: {len(unverified)}; per-row noise recorded on {len(noise)} of {len(rows)} rows "
                 f"(run queue median of medians {statistics.median(rq) if rq else 'n/a'}, steal max {max(steal) if steal else 'n/a'}%)")
    ok &= not bad and not unverified
c = cmp_["counts"]
compared = c["slower"] + c["faster"] + c["no_change"]
share = c["no_change"] / compared if compared else 0.0
lines += ["", f"`perfledger compare run-a.json run-b.json` (exit {code}): {c}; "
          f"no change on {c['no_change']} of {compared} compared rows = {share:.0%}; regressions (slower): {c['slower']}; "
          f"newly incorrect: {c['newly_incorrect']}"]
checks = {"every row verified": ok, "no regression": c["slower"] == 0 and c["newly_incorrect"] == 0,
          "no change on >= 90%": share >= 0.9}
lines += ["", "Checks: " + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items())]
open("results/load-check.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
sys.exit(0 if all(checks.values()) else 1)
PY
