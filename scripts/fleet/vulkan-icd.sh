# shellcheck shell=bash
# The headless NVIDIA Vulkan ICD, for the fleet scripts (the same approach as scripts/gpu-check.sh,
# learned on an H200 container with driver 580).
#
# Usage (sourced; it defines a function and changes nothing until called):
#   source scripts/fleet/vulkan-icd.sh
#   perfledger_vulkan_icd [BIN]      # BIN: perfledger binary (default $PERFLEDGER_BIN, then
#                                    # target/release/perfledger)
#
# The NVIDIA driver ships nvidia_icd.json naming libGLX_nvidia.so.0, whose vkCreateInstance fails
# in headless containers and VMs without a display ("Could not get 'vkCreateInstance' via
# 'vk_icdGetInstanceProcAddr'"); the same driver's libEGL_nvidia.so.0 works headless. So when an
# NVIDIA device node exists and `perfledger env` sees no hardware adapter with the system ICD,
# this writes ICD JSONs for libEGL_nvidia.so.0, then libGLX_nvidia.so.0, into
# $PERFLEDGER_ICD_DIR (default ~/.cache/perfledger/vulkan), exports VK_ICD_FILENAMES for the first
# that shows a hardware adapter, and logs each try to stderr. Without an NVIDIA device, or when the
# system ICD already works, it does nothing. It always returns 0: whether a hardware GPU is
# required is decided by the run (PERFLEDGER_REQUIRE_HW_GPU in scripts/fleet/task.sh).

_perfledger_icd_log() { echo "[vulkan-icd] $*" >&2; }

# Hardware (non-software) adapters that `BIN env` lists; 0 when it cannot tell.
_perfledger_hw_adapters() {
  local bin="$1" n
  n=$(timeout 30 "$bin" env 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(1 for g in d["environment"]["gpus"] if not g["software"]))' 2>/dev/null) || n=0
  echo "${n:-0}"
}

perfledger_vulkan_icd() {
  local bin="${1:-${PERFLEDGER_BIN:-target/release/perfledger}}"
  local dir="${PERFLEDGER_ICD_DIR:-$HOME/.cache/perfledger/vulkan}"
  local lib path n json
  export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
  if [ ! -e /dev/nvidiactl ] && [ ! -e /dev/nvidia0 ]; then
    return 0
  fi
  if [ ! -x "$bin" ]; then
    _perfledger_icd_log "no perfledger binary at $bin: cannot test the Vulkan ICD; left as is"
    return 0
  fi
  n=$(_perfledger_hw_adapters "$bin")
  if [ "$n" != 0 ]; then
    _perfledger_icd_log "system ICD: $n hardware adapter(s)"
    return 0
  fi
  _perfledger_icd_log "the NVIDIA GPU is not visible through Vulkan with the system ICD; trying ICD JSONs:"
  VK_LOADER_DEBUG=error timeout 30 "$bin" env 2>&1 >/dev/null | grep -i -E "error|icd" | head -5 >&2 || true
  mkdir -p "$dir" || return 0
  for lib in libEGL_nvidia.so.0 libGLX_nvidia.so.0; do
    path=$(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l {print $NF; exit}') || path=""
    if [ -z "$path" ]; then
      path=$(find /usr/lib* /lib* /usr/local/nvidia -name "$lib" 2>/dev/null | head -1) || path=""
    fi
    if [ -z "$path" ]; then
      _perfledger_icd_log "  $lib: not found"
      continue
    fi
    json="$dir/nvidia_icd_${lib%%.*}.json"
    printf '{"file_format_version": "1.0.1", "ICD": {"library_path": "%s", "api_version": "1.3.0"}}\n' "$path" > "$json"
    export VK_ICD_FILENAMES="$json"
    n=$(_perfledger_hw_adapters "$bin")
    _perfledger_icd_log "  ICD $path: $n hardware adapter(s)"
    if [ "$n" != 0 ]; then
      return 0
    fi
    unset VK_ICD_FILENAMES
  done
  _perfledger_icd_log "no ICD showed a hardware adapter; GPU rows will be unsupported"
  return 0
}
