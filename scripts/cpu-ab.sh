#!/usr/bin/env bash
# Two perfledger binaries on one suite, alternated in one sitting (A B, B A, ...), so a change is
# measured against the build before it under the same host conditions; then the ratio of each
# row's median, after over before, per round.
# Usage: scripts/cpu-ab.sh BEFORE_BIN AFTER_BIN SUITE OUTDIR [ROUNDS (default 2)] [-- run options]
# Writes OUTDIR/before-N.json, OUTDIR/after-N.json (run files), OUTDIR/ab.md (the table). The
# table is the per-round view; for a verdict against the rows' noise floors (bootstrap CIs, Holm
# correction) run the project's comparison on the same files:
#   perfledger compare --paired --allow-config-diff --base OUTDIR/before-*.json --candidate OUTDIR/after-*.json
# Options after `--` go to every `perfledger run` (default: --threads 2 --probes off). Paths are
# taken from where the script is called; PYTHON (default .venv-ref/bin/python) finds numpy's OpenBLAS.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: scripts/cpu-ab.sh BEFORE_BIN AFTER_BIN SUITE OUTDIR [ROUNDS] [-- run options]" >&2; exit 2; }
BEFORE=$1 AFTER=$2 SUITE=$3 OUT=$4
shift 4
ROUNDS=2
if [ $# -gt 0 ] && [ "$1" != "--" ]; then ROUNDS=$1; shift; fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
OPTS=("$@")
[ ${#OPTS[@]} -gt 0 ] || OPTS=(--threads 2 --probes off)
for b in "$BEFORE" "$AFTER"; do [ -x "$b" ] || { echo "cpu-ab.sh: $b is not an executable" >&2; exit 2; }; done
[ -f "$SUITE" ] || { echo "cpu-ab.sh: no suite file $SUITE" >&2; exit 2; }
mkdir -p "$OUT"
# The in-process OpenBLAS (PERFLEDGER_OPENBLAS, else numpy's from PYTHON or .venv-ref, else the
# system library).
PY=${PYTHON:-$(dirname "$0")/../.venv-ref/bin/python}
. "$(dirname "$0")/numpy-openblas.sh"
echo "cpu-ab.sh: in-process OpenBLAS ${PERFLEDGER_OPENBLAS:-(system library)}" >&2
for i in $(seq 1 "$ROUNDS"); do
  # Order flipped each round (A B, B A, ...), so drift within a round does not always favour one.
  sides="before after"
  [ $((i % 2)) = 0 ] && sides="after before"
  for side in $sides; do
    bin=$BEFORE; [ $side = after ] && bin=$AFTER
    echo "cpu-ab.sh: round $i/$ROUNDS, $side ($bin)" >&2
    "$bin" run --suite "$SUITE" "${OPTS[@]}" --out "$OUT/$side-$i.json" --force > "$OUT/$side-$i.log" 2>&1 \
      || { echo "cpu-ab.sh: $side round $i failed (see $OUT/$side-$i.log)" >&2; exit 1; }
  done
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def rows(path):
    d = json.load(open(path))
    res = {}
    for r in d["results"]:
        g = (r.get("gflops") or {}).get("median")
        if r.get("status") != "ok" or not g:
            continue
        res[(r["id"], r["case"])] = g
    return res
runs = [(rows(f"{out}/before-{i}.json"), rows(f"{out}/after-{i}.json")) for i in range(1, rounds + 1)]
keys = [k for k in runs[0][0] if all(k in b and k in a for b, a in runs)]
lines = ["| kernel | case | " + " | ".join(f"before / after GFLOP/s (round {i})" for i in range(1, rounds + 1)) + " | after/before per round |",
         "|---|---|" + "---|" * rounds + "---|"]
for k in keys:
    cells = [f"{b[k]:.1f} / {a[k]:.1f}" for b, a in runs]
    ratios = ", ".join(f"{a[k] / b[k]:.2f}" for b, a in runs)
    lines.append(f"| `{k[0]}` | {k[1]} | " + " | ".join(cells) + f" | {ratios} |")
open(f"{out}/ab.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
