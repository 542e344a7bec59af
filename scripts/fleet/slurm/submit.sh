#!/usr/bin/env bash
# Submit one perfledger job (scripts/fleet/slurm/perfledger.sbatch) per line of INSTANCES.
#
# Usage: scripts/fleet/slurm/submit.sh INSTANCES.txt [--dry-run] [--suite S] [--provider P]
#                                      [--gpu] [-- EXTRA_SBATCH_ARGS...]
#
#   --dry-run     print each sbatch command, prefixed with "+ ", and submit nothing
#   --suite S     PERFLEDGER_SUITE of every job (default: standard)
#   --provider P  PERFLEDGER_PROVIDER of every job (aws, gcp, ... for a cloud-hosted Slurm; omit
#                 on premises)
#   --gpu         add --gres=gpu:1 and PERFLEDGER_REQUIRE_HW_GPU=1 (GPU partitions)
#   -- ARGS       passed to every sbatch (e.g. --account=..., --time=02:00:00)
#
# INSTANCES.txt, one job a line (`#` comments and blank lines allowed):
#   partition instance_type region pricing_model [price]
#   cpu-c7a   c7a.large     us-east-1 on-demand
#   gpu-l4    g6.xlarge     us-east-1 reserved 0.51
# pricing_model: on-demand | spot | reserved | capacity-block | marketplace; price: USD/hour.
# Submit from the repository root on a filesystem the nodes share, with the binary built
# (cargo build --release): run files land in results/runs/slurm/, then
#   target/release/perfledger report results/runs/slurm/*.json --format html --out report.html
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
# shellcheck source=../instances.sh
source "$ROOT/scripts/fleet/instances.sh"
die() { echo "submit.sh: error: $*" >&2; exit 2; }

INSTANCES="" DRY_RUN=0 SUITE=standard PROVIDER="" GPU=0 EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1; shift ;;
    --suite) [ $# -ge 2 ] || die "--suite needs a value"; SUITE="$2"; shift 2 ;;
    --provider) [ $# -ge 2 ] || die "--provider needs a value"; PROVIDER="$2"; shift 2 ;;
    --gpu) GPU=1; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) [ -z "$INSTANCES" ] || die "one INSTANCES file, got '$INSTANCES' and '$1'"; INSTANCES="$1"; shift ;;
  esac
done
[ -n "$INSTANCES" ] || die "usage: submit.sh INSTANCES.txt [--dry-run] [--suite S] [--provider P] [--gpu] [-- SBATCH_ARGS...]"
[[ "$SUITE" =~ ^[A-Za-z0-9._/-]+$ ]] || die "--suite '$SUITE': letters, digits, . _ / - only"
[ -z "$PROVIDER" ] || [[ "$PROVIDER" =~ ^[A-Za-z0-9._-]+$ ]] || die "--provider '$PROVIDER': letters, digits, . _ - only"

fleet_read_instances "$INSTANCES" partition
cd "$ROOT"   # the job's checkout is the submit directory
[ "$DRY_RUN" = 1 ] || command -v sbatch >/dev/null || die "sbatch not found (run on a Slurm login node, or use --dry-run)"

FAILED=0
for ((i = 0; i < ${#FLEET_INSTANCE[@]}; i++)); do
  export_list="ALL,PERFLEDGER_INSTANCE=${FLEET_INSTANCE[$i]},PERFLEDGER_REGION=${FLEET_REGION[$i]},PERFLEDGER_PRICING_MODEL=${FLEET_MODEL[$i]},PERFLEDGER_SUITE=$SUITE"
  [ -n "${FLEET_PRICE[$i]}" ] && export_list+=",PERFLEDGER_PRICE=${FLEET_PRICE[$i]}"
  [ -n "$PROVIDER" ] && export_list+=",PERFLEDGER_PROVIDER=$PROVIDER"
  args=(sbatch "--partition=${FLEET_FIRST[$i]}" "--job-name=perfledger-$(fleet_slug "$i")")
  [ "$GPU" = 1 ] && { args+=(--gres=gpu:1); export_list+=",PERFLEDGER_REQUIRE_HW_GPU=1"; }
  args+=("--export=$export_list" "${EXTRA[@]}" scripts/fleet/slurm/perfledger.sbatch)
  echo "+ ${args[*]}"
  if [ "$DRY_RUN" = 0 ]; then
    "${args[@]}" || { echo "submit.sh: sbatch failed for $INSTANCES:${FLEET_LINENO[$i]}" >&2; FAILED=1; }
  fi
done
exit "$FAILED"
