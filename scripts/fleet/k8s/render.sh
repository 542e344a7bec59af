#!/usr/bin/env bash
# Render scripts/fleet/k8s/perfledger-job.yaml for one node pool, to stdout.
#
# Usage: scripts/fleet/k8s/render.sh INSTANCE_TYPE [gpu|neuron|cpu] | kubectl apply -f -
#
#   gpu     requests nvidia.com/gpu: 1 and tolerates the nvidia.com/gpu taint; sets
#           PERFLEDGER_REQUIRE_HW_GPU=1 unless given
#   neuron  requests aws.amazon.com/neuron: 1 and tolerates the aws.amazon.com/neuron taint
#   cpu     (default) no accelerator
#
# Environment (each optional): PERFLEDGER_IMAGE (default perfledger:latest: an image built with
# scripts/fleet/k8s/Dockerfile and pushed where the cluster pulls from), PERFLEDGER_PROVIDER,
# PERFLEDGER_REGION, PERFLEDGER_PRICING_MODEL (default on-demand), PERFLEDGER_PRICE,
# PERFLEDGER_SUITE (default standard), PERFLEDGER_RUN_ARGS, PERFLEDGER_PEERS (default none: the
# example image has no PyTorch), PERFLEDGER_REQUIRE_HW_GPU, JOB_NAME (default
# perfledger-<instance type>-<variant>).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "render.sh: error: $*" >&2; exit 2; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: render.sh INSTANCE_TYPE [gpu|neuron|cpu]"
INSTANCE_TYPE="$1"
VARIANT="${2:-cpu}"
[[ "$INSTANCE_TYPE" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "instance type '$INSTANCE_TYPE': letters, digits, . _ - only"
MODEL="${PERFLEDGER_PRICING_MODEL:-on-demand}"
case " on-demand spot reserved capacity-block marketplace " in
  *" $MODEL "*) ;;
  *) die "PERFLEDGER_PRICING_MODEL '$MODEL': expected one of on-demand, spot, reserved, capacity-block, marketplace" ;;
esac
PRICE="${PERFLEDGER_PRICE:-}"
[ -z "$PRICE" ] || [[ "$PRICE" =~ ^([0-9]+([.][0-9]*)?|[.][0-9]+)$ ]] || die "PERFLEDGER_PRICE '$PRICE' is not a number of USD per hour"

case "$VARIANT" in
  gpu)
    LIMITS=("nvidia.com/gpu: 1")
    TOLERATIONS=("- key: nvidia.com/gpu" "  operator: Exists" "  effect: NoSchedule")
    REQUIRE_HW_GPU="${PERFLEDGER_REQUIRE_HW_GPU:-1}" ;;
  neuron)
    LIMITS=("aws.amazon.com/neuron: 1")
    TOLERATIONS=("- key: aws.amazon.com/neuron" "  operator: Exists" "  effect: NoSchedule")
    REQUIRE_HW_GPU="${PERFLEDGER_REQUIRE_HW_GPU:-0}" ;;
  cpu)
    LIMITS=()
    TOLERATIONS=()
    REQUIRE_HW_GPU="${PERFLEDGER_REQUIRE_HW_GPU:-0}" ;;
  *) die "variant '$VARIANT': expected gpu, neuron or cpu" ;;
esac

JOB_NAME="${JOB_NAME:-perfledger-$INSTANCE_TYPE-$VARIANT}"
JOB_NAME=$(printf '%s' "$JOB_NAME" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9-' '-' | tr -s '-' | cut -c1-52)
JOB_NAME="${JOB_NAME%-}"

declare -A VALUES=(
  [JOB_NAME]="$JOB_NAME" [VARIANT]="$VARIANT" [INSTANCE_TYPE]="$INSTANCE_TYPE"
  [IMAGE]="${PERFLEDGER_IMAGE:-perfledger:latest}" [PROVIDER]="${PERFLEDGER_PROVIDER:-}"
  [REGION]="${PERFLEDGER_REGION:-}" [PRICING_MODEL]="$MODEL" [PRICE]="$PRICE"
  [SUITE]="${PERFLEDGER_SUITE:-standard}" [RUN_ARGS]="${PERFLEDGER_RUN_ARGS:-}"
  [PEERS]="${PERFLEDGER_PEERS:-none}" [REQUIRE_HW_GPU]="$REQUIRE_HW_GPU"
)
for k in "${!VALUES[@]}"; do
  # Values land inside double-quoted YAML scalars or as plain ones: no quotes, backslashes or newlines.
  case "${VALUES[$k]}" in *'"'*|*\\*|*$'\n'*) die "$k: quotes, backslashes and newlines are not allowed" ;; esac
done

while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    *"# @ACCELERATOR_LIMITS@"*|*"# @TOLERATIONS@"*)
      indent="${line%%#*}"
      if [[ "$line" == *ACCELERATOR_LIMITS* ]]; then
        if [ "${#LIMITS[@]}" = 0 ]; then echo "${indent}{}"; fi
        for l in "${LIMITS[@]}"; do echo "$indent$l"; done
      else
        for l in "${TOLERATIONS[@]}"; do echo "$indent$l"; done
      fi
      continue ;;
  esac
  # Placeholders are ${NAME} with NAME a key of VALUES; shell text such as ${!v:-} is left alone.
  for k in "${!VALUES[@]}"; do
    line="${line//"\${$k}"/${VALUES[$k]}}"
  done
  printf '%s\n' "$line"
done < "$HERE/perfledger-job.yaml"
