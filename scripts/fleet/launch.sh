#!/usr/bin/env bash
# Run perfledger on many cloud instance types with SkyPilot: one cluster per line of INSTANCES,
# each launched, its run file copied back and the cluster torn down, then one report over all.
#
# Usage:
#   scripts/fleet/launch.sh INSTANCES.txt [--dry-run] [--suite S] [--out DIR] [--prices FILE]
#                           [--peers scripts|none|FILE] [--parallel N] [--idle-minutes N]
#
#   --dry-run        print every command (sky, rsync, the report), one a line prefixed with "+ ",
#                    and run none of them (sky need not be installed)
#   --suite S        the suite on every machine (default: standard)
#   --out DIR        where run files, logs and reports go (default: results/runs/fleet-<UTC time>
#                    in the checkout)
#   --prices FILE    a price file (perfledger.prices/1) for the report, e.g. negotiated rates
#   --peers P        PERFLEDGER_PEERS on every machine (default: the task's, scripts)
#   --parallel N     launch N clusters at once (default 1); each one's output goes to its log
#   --idle-minutes N autostop-and-down after N idle minutes, the safety net for a cluster this
#                    script could not tear down (default 10)
#
# INSTANCES.txt, one machine a line (`#` comments and blank lines allowed):
#   cloud instance_type region pricing_model [price]
#   aws   c7a.large     us-east-1 spot
#   aws   m7i.large     us-east-1 marketplace 0.09
# pricing_model: on-demand | spot | reserved | capacity-block | marketplace; only `spot` asks
# SkyPilot for a spot instance. price: USD/hour, recorded in the run file (without it the report
# looks the offer up in its price database). The whole file is checked before anything launches.
#
# Per machine: `sky launch` of scripts/fleet/perfledger-task.yaml (the job's exit status is
# sky's), `rsync` of ~/perfledger-out/ from the cluster into OUT/<cluster>/ (also when the job
# failed: a partial run file is kept), `sky down`. A trap tears the cluster down when the script
# fails or is interrupted; `-i N --down` and the task's autostop are the second safety. A failed
# machine is reported and the others go on; the exit status is 1 if any failed, 2 on bad input.
#
# Environment: PERFLEDGER_BIN (the local binary for the report; default target/release/perfledger),
# SKY (the sky command, default sky), PERFLEDGER_RUN_ARGS (passed on to every machine when set).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=instances.sh
source "$ROOT/scripts/fleet/instances.sh"
TASK_YAML=scripts/fleet/perfledger-task.yaml

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2; exit 2; }
die() { echo "launch.sh: error: $*" >&2; exit 2; }

INSTANCES="" DRY_RUN=0 SUITE=standard OUT="" PRICES="" PEERS="" PARALLEL=1 IDLE=10
need() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1; shift ;;
    --suite) need "$@"; SUITE="$2"; shift 2 ;;
    --out) need "$@"; OUT="$2"; shift 2 ;;
    --prices) need "$@"; PRICES="$2"; shift 2 ;;
    --peers) need "$@"; PEERS="$2"; shift 2 ;;
    --parallel) need "$@"; PARALLEL="$2"; shift 2 ;;
    --idle-minutes) need "$@"; IDLE="$2"; shift 2 ;;
    -h|--help) usage ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) [ -z "$INSTANCES" ] || die "one INSTANCES file, got '$INSTANCES' and '$1'"; INSTANCES="$1"; shift ;;
  esac
done
[ -n "$INSTANCES" ] || usage
[[ "$PARALLEL" =~ ^[1-9][0-9]*$ ]] || die "--parallel '$PARALLEL' is not a positive integer"
[[ "$IDLE" =~ ^[1-9][0-9]*$ ]] || die "--idle-minutes '$IDLE' is not a positive integer"
[[ "$SUITE" =~ ^[A-Za-z0-9._/-]+$ ]] || die "--suite '$SUITE': letters, digits, . _ / - only"
if [ -n "$PRICES" ]; then
  [ -f "$PRICES" ] || die "--prices $PRICES: no such file"
  PRICES=$(cd "$(dirname "$PRICES")" && pwd)/$(basename "$PRICES")
fi

fleet_read_instances "$INSTANCES" cloud
N=${#FLEET_INSTANCE[@]}
CLUSTERS=()
for ((i = 0; i < N; i++)); do
  c="perfledger-$(fleet_slug "$i")"
  for ((j = 0; j < i; j++)); do
    [ "${CLUSTERS[$j]}" != "$c" ] ||
      die "$INSTANCES:${FLEET_LINENO[$i]}: the same machine as line ${FLEET_LINENO[$j]} (cluster $c)"
  done
  CLUSTERS+=("$c")
done

# Paths given relative to where the script was started; the default ones relative to the checkout.
[ -n "$OUT" ] || OUT="$ROOT/results/runs/fleet-$(date -u +%Y%m%dT%H%M%SZ)"
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
OUT="${OUT%/}"
SKY="${SKY:-sky}"
BIN="${PERFLEDGER_BIN:-$ROOT/target/release/perfledger}"
case "$BIN" in /*|"") ;; */*) BIN="$PWD/$BIN" ;; esac
cd "$ROOT"   # `workdir: .` in the task is the directory sky launch runs in

# Print a command as one shell-quoted line, prefixed with "+ ".
show() {
  local out="+" w
  for w in "$@"; do
    if [[ "$w" =~ ^[A-Za-z0-9_./:=,@%+~*-]+$ ]]; then out+=" $w"; else out+=" '${w//\'/\'\\\'\'}'"; fi
  done
  printf '%s\n' "$out"
}
# Show a command, and run it unless this is a dry run.
run() { show "$@"; [ "$DRY_RUN" = 1 ] || "$@"; }

if [ "$DRY_RUN" = 0 ]; then
  command -v "$SKY" >/dev/null || die "'$SKY' not found: pip install skypilot, then \`sky check\` (or use --dry-run)"
  command -v rsync >/dev/null || die "rsync not found (it copies the run files back)"
  [ -x "$BIN" ] || die "no perfledger binary at $BIN for the report: cargo build --release (or set PERFLEDGER_BIN)"
  mkdir -p "$OUT"
fi

# Tear cluster $1 down (the EXIT trap of each machine's subshell).
teardown() {
  show "$SKY" down -y "$1"
  "$SKY" down -y "$1" ||
    echo "launch.sh: WARNING: sky down $1 failed: check \`sky status\` (autostop downs it after $IDLE idle minutes)" >&2
}

# One machine: launch, collect, tear down. Runs in a subshell; its status is written to
# OUT/<cluster>/status (ok, or what failed) and is its exit status.
one() {
  local i="$1" c="${CLUSTERS[$1]}" dir="$OUT/${CLUSTERS[$1]}" rc=0 status=ok
  local -a launch=("$SKY" launch -y -c "$c" --infra "${FLEET_FIRST[$i]}/${FLEET_REGION[$i]}"
    --instance-type "${FLEET_INSTANCE[$i]}")
  [ "${FLEET_MODEL[$i]}" = spot ] && launch+=(--use-spot)
  launch+=(-i "$IDLE" --down
    --env "PERFLEDGER_INSTANCE=${FLEET_INSTANCE[$i]}"
    --env "PERFLEDGER_PROVIDER=${FLEET_FIRST[$i]}"
    --env "PERFLEDGER_REGION=${FLEET_REGION[$i]}"
    --env "PERFLEDGER_PRICING_MODEL=${FLEET_MODEL[$i]}")
  [ -n "${FLEET_PRICE[$i]}" ] && launch+=(--env "PERFLEDGER_PRICE=${FLEET_PRICE[$i]}")
  launch+=(--env "PERFLEDGER_SUITE=$SUITE")
  [ -n "$PEERS" ] && launch+=(--env "PERFLEDGER_PEERS=$PEERS")
  [ -n "${PERFLEDGER_RUN_ARGS:-}" ] && launch+=(--env "PERFLEDGER_RUN_ARGS=$PERFLEDGER_RUN_ARGS")
  launch+=("$TASK_YAML")

  if [ "$DRY_RUN" = 1 ]; then
    show "${launch[@]}"
    show rsync -a "$c:perfledger-out/" "$dir/"
    show "$SKY" down -y "$c"
    return 0
  fi
  mkdir -p "$dir"
  # Whatever happens from here on, the cluster goes down (a no-op if it never came up).
  trap "teardown $(printf '%q' "$c")" EXIT
  trap 'exit 130' INT TERM
  echo "=== $c (${INSTANCES}:${FLEET_LINENO[$i]}) ==="
  run "${launch[@]}" || { rc=$?; status="sky launch exit $rc"; }
  # Collect whatever the node wrote, a partial run file included.
  run rsync -a "$c:perfledger-out/" "$dir/" || { rc=$?; [ "$status" != ok ] || status="rsync exit $rc"; }
  if [ "$status" = ok ] && ! compgen -G "$dir/*.json" >/dev/null; then
    status="no run file in $dir"
  fi
  echo "$status" > "$dir/status"
  [ "$status" = ok ]
}

FAILED=0
INTERRUPTED=0
trap 'INTERRUPTED=1' INT TERM
if [ "$DRY_RUN" = 1 ] || [ "$PARALLEL" = 1 ]; then
  for ((i = 0; i < N; i++)); do
    rc=0
    ( one "$i" ) || rc=$?
    [ "$rc" = 0 ] || FAILED=1
    if [ "$rc" = 130 ] || [ "$INTERRUPTED" = 1 ]; then
      echo "launch.sh: interrupted: no further machine is launched" >&2
      break
    fi
  done
else
  running=0
  for ((i = 0; i < N; i++)); do
    [ "$INTERRUPTED" = 0 ] || break
    if [ "$running" -ge "$PARALLEL" ]; then
      wait -n || FAILED=1
      running=$((running - 1))
    fi
    mkdir -p "$OUT/${CLUSTERS[$i]}"
    echo "launching ${CLUSTERS[$i]} (log: $OUT/${CLUSTERS[$i]}/launch.log)"
    ( one "$i" ) > "$OUT/${CLUSTERS[$i]}/launch.log" 2>&1 &
    running=$((running + 1))
  done
  while [ "$running" -gt 0 ]; do
    wait -n || FAILED=1
    running=$((running - 1))
  done
fi

# The report over every run file collected.
report_files=()
if [ "$DRY_RUN" = 1 ]; then
  for c in "${CLUSTERS[@]}"; do report_files+=("$OUT/$c/*.json"); done
else
  echo
  echo "machine status:"
  for ((i = 0; i < N; i++)); do
    c="${CLUSTERS[$i]}"
    printf '  %-50s %s\n' "$c" "$(cat "$OUT/$c/status" 2>/dev/null || echo 'interrupted')"
    for f in "$OUT/$c"/*.json; do [ -e "$f" ] && report_files+=("$f"); done
  done
fi
if [ "${#report_files[@]}" = 0 ]; then
  echo "launch.sh: no run file was collected: no report" >&2
  exit 1
fi
prices=()
[ -n "$PRICES" ] && prices=(--prices "$PRICES")
run "$BIN" report "${report_files[@]}" "${prices[@]}" --format md --out "$OUT/report.md" --force || FAILED=1
run "$BIN" report "${report_files[@]}" "${prices[@]}" --format html --out "$OUT/report.html" --force || FAILED=1
[ "$DRY_RUN" = 1 ] || echo "reports: $OUT/report.md $OUT/report.html"
exit "$FAILED"
