#!/usr/bin/env bash
# Run one suite as a user would and check its time against what perfledger predicted: the wall
# time against the range the plan printed, and the progress estimate printed at 25% of the rows
# against the time that was actually left. Keeps the terminal output (stdout and stderr, as a
# user without a hardware GPU sees it) and the run file.
#
# Writes results/suite-wall-<NAME>.md, results/suite-wall/<NAME>.{json,log,report.txt}.
# Usage: scripts/suite-wall.sh SUITE [--name NAME] [extra perfledger run flags...]
#   e.g. scripts/suite-wall.sh standard
#        scripts/suite-wall.sh standard --name standard-1thread --threads 1
set -euo pipefail
cd "$(dirname "$0")/.."
SUITE="${1:?usage: scripts/suite-wall.sh SUITE [--name NAME] [flags]}"
shift
NAME="$SUITE"
if [ "${1:-}" = "--name" ]; then
  NAME="${2:?--name needs a value}"
  shift 2
fi
mkdir -p results/suite-wall
cargo build --release -q
BIN=target/release/perfledger
budget=$(python3 -c "import json; d=json.load(open('harness/src/suites/$SUITE.json')); print(d.get('run_budget_s'))" 2>/dev/null || echo "?")
load_before=$(cat /proc/loadavg)
log="results/suite-wall/$NAME.log"
run="results/suite-wall/$NAME.json"
start=$(date +%s.%N)
code=0
# Without a terminal the progress display prints a line at each quarter of the rows.
"$BIN" run --suite "$SUITE" --out "$run" --force "$@" > "$log" 2>&1 || code=$?
end=$(date +%s.%N)
"$BIN" report "$run" > "results/suite-wall/$NAME.report.txt"
python3 - "$SUITE" "$NAME" "$start" "$end" "$code" "$budget" "$load_before" "$*" <<'PY'
import json, re, sys, collections, datetime, platform
suite, name, start, end, code, budget, load, flags = sys.argv[1:]
wall = float(end) - float(start)
log = open(f"results/suite-wall/{name}.log").read()
run = json.load(open(f"results/suite-wall/{name}.json"))

def secs(v, unit):
    return float(v) * {"s": 1, "min": 60, "h": 3600}[unit]

m = re.search(r"^ETA: ([\d.]+) (s|min|h) to ([\d.]+) (s|min|h)", log, re.M)
lo, hi = (secs(m.group(1), m.group(2)), secs(m.group(3), m.group(4))) if m else (None, None)
# "progress: 17/69 rows (25%) after 52.3 s, ETA 1.9 min (113.4 s)"
quarters = [(int(a), int(b), float(t), float(e)) for a, b, t, e in re.findall(
    r"^progress: (\d+)/(\d+) rows \(\d+%\) after ([\d.]+) s, ETA .*? \(([\d.]+) s\)", log, re.M)]
q25 = quarters[0] if quarters else None
status = dict(collections.Counter(r["status"] for r in run["results"]))
cpu_rows = [r for r in run["results"] if r.get("backend") == "cpu"]
cpu_bad = [r for r in cpu_rows if r["status"] not in ("ok", "unsupported")]
inside = lo is not None and lo <= wall <= hi
lines = []
add = lines.append
add(f"# Suite `{suite}`: wall time against the plan, and the progress estimate\n")
cmd = f"perfledger run --suite {suite} {flags}".strip()
add(f"Command: `scripts/suite-wall.sh {suite}{' --name ' + name if name != suite else ''} {flags}`"
    f" → `{cmd}` ({datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%MZ')}).")
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
fam = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("cpu family")), "?")
mod = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model\t")), "?")
add(f"Machine: {model} (family {fam}, model {mod}), {len([l for l in open('/proc/cpuinfo') if l.startswith('processor')])} vCPUs; "
    f"load average before: {load}.\n")
add(f"- wall time: **{wall:.1f} s**; the plan printed **{lo:.0f}–{hi:.0f} s** → "
    f"{'inside' if inside else 'OUTSIDE'} the range" if lo is not None else f"- wall time: {wall:.1f} s; no ETA range found")
add(f"- suite run budget: {budget} s; exit code {code}")
if q25:
    done, total, t, eta = q25
    actual = wall - t
    err = (eta - actual) / actual if actual > 0 else float("nan")
    add(f"- progress at {done}/{total} rows ({100 * done / total:.0f}%), {t:.1f} s in: estimate "
        f"**{eta:.1f} s** left, actually **{actual:.1f} s** left → {100 * err:+.0f}% "
        f"({'within' if abs(err) <= 0.25 else 'NOT within'} 25%)")
    for done, total, t, eta in quarters[1:]:
        actual = wall - t
        add(f"  - at {done}/{total}: estimate {eta:.1f} s, actually {actual:.1f} s "
            f"({100 * (eta - actual) / actual:+.0f}%)" if actual > 0 else f"  - at {done}/{total}: done")
add(f"- rows by status: {status}; CPU rows neither ok nor unsupported: {len(cpu_bad)}"
    + (" (" + ", ".join(f"{r['id']} {r['status']}" for r in cpu_bad) + ")" if cpu_bad else ""))
past = [r for r in cpu_rows if (r.get("message") or "").find("past the") >= 0]
if past:
    add(f"- rows whose 10 samples ran past the row budget (the floor at work): {len(past)}, e.g. "
        + "; ".join(f"`{r['id']}` {r['message'].split(';')[0]}" for r in past[:3]))
add(f"- run file: `results/suite-wall/{name}.json`; terminal output: `results/suite-wall/{name}.log`; "
    f"`perfledger report` of it: `results/suite-wall/{name}.report.txt`")
open(f"results/suite-wall-{name}.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
