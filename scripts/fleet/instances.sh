# shellcheck shell=bash
# The INSTANCES file format, shared by scripts/fleet/launch.sh and scripts/fleet/slurm/submit.sh.
#
# Usage (sourced):
#   source scripts/fleet/instances.sh
#   fleet_read_instances FILE FIRST_FIELD_NAME   # e.g. "cloud" or "partition"; exits 2 on bad input
#
# One machine a line, fields separated by blanks:
#   FIRST instance_type region pricing_model [price]
# FIRST is the cloud (launch.sh: aws, gcp, azure, lambda, runpod, kubernetes, ...) or the Slurm
# partition (submit.sh); pricing_model is one of on-demand, spot, reserved, capacity-block,
# marketplace; price is USD per hour (optional: without it the report looks the offer up).
# `#` starts a comment (whole line or the rest of a line); blank lines are skipped. The same
# machine (first field, instance type, region, pricing model) twice is an error.
#
# Fills the arrays FLEET_FIRST, FLEET_INSTANCE, FLEET_REGION, FLEET_MODEL, FLEET_PRICE (empty when
# not given) and FLEET_LINENO, one entry per machine, in file order.

FLEET_PRICING_MODELS="on-demand spot reserved capacity-block marketplace"

fleet_die() { echo "${0##*/}: error: $*" >&2; exit 2; }

fleet_read_instances() {
  local file="$1" first_name="$2"
  local lineno=0 raw line n
  local -a f
  FLEET_FIRST=(); FLEET_INSTANCE=(); FLEET_REGION=(); FLEET_MODEL=(); FLEET_PRICE=(); FLEET_LINENO=()
  [ -f "$file" ] || fleet_die "$file: no such file (the instances list)"
  [ -r "$file" ] || fleet_die "$file: not readable"
  while IFS= read -r raw || [ -n "$raw" ]; do
    lineno=$((lineno + 1))
    line="${raw%%#*}"
    line="${line//$'\r'/}"
    read -r -a f <<< "$line" || true
    n=${#f[@]}
    [ "$n" = 0 ] && continue
    local where="$file:$lineno"
    if [ "$n" -lt 4 ]; then
      local names=("$first_name" instance_type region pricing_model)
      fleet_die "$where: missing field '${names[$n]}' (expected: $first_name instance_type region pricing_model [price]; got $n field(s): '${line//[[:space:]]/ }')"
    fi
    if [ "$n" -gt 5 ]; then
      fleet_die "$where: $n fields, at most 5 (expected: $first_name instance_type region pricing_model [price])"
    fi
    local name
    for name in "${f[@]:0:3}"; do
      [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9._:/-]*$ ]] ||
        fleet_die "$where: '$name' is not a valid $first_name, instance type or region (letters, digits, . _ : / -)"
    done
    case " $FLEET_PRICING_MODELS " in
      *" ${f[3]} "*) ;;
      *) fleet_die "$where: unknown pricing model '${f[3]}' (expected one of: ${FLEET_PRICING_MODELS// /, })" ;;
    esac
    local price="${f[4]:-}"
    if [ -n "$price" ] && ! [[ "$price" =~ ^([0-9]+([.][0-9]*)?|[.][0-9]+)$ ]]; then
      fleet_die "$where: price '$price' is not a number of USD per hour (e.g. 0.09)"
    fi
    local j
    for ((j = 0; j < ${#FLEET_INSTANCE[@]}; j++)); do
      if [ "${FLEET_FIRST[$j]} ${FLEET_INSTANCE[$j]} ${FLEET_REGION[$j]} ${FLEET_MODEL[$j]}" = "${f[*]:0:4}" ]; then
        fleet_die "$where: the same machine as line ${FLEET_LINENO[$j]} ($first_name, instance type, region and pricing model)"
      fi
    done
    FLEET_FIRST+=("${f[0]}"); FLEET_INSTANCE+=("${f[1]}"); FLEET_REGION+=("${f[2]}")
    FLEET_MODEL+=("${f[3]}"); FLEET_PRICE+=("$price"); FLEET_LINENO+=("$lineno")
  done < "$file"
  [ "${#FLEET_INSTANCE[@]}" -gt 0 ] || fleet_die "$file: no machines listed (only comments or blank lines)"
}

# A name for the machine of entry I: lowercase letters, digits and '-' (a SkyPilot cluster,
# Slurm job or Kubernetes object name), from the first field, instance type, pricing model, region.
fleet_slug() {
  local i="$1" s
  s="${FLEET_FIRST[$i]}-${FLEET_INSTANCE[$i]}-${FLEET_MODEL[$i]}-${FLEET_REGION[$i]}"
  s=$(printf '%s' "$s" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9-' '-' | tr -s '-')
  s="${s#-}"
  echo "${s%-}"
}
