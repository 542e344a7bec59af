#!/usr/bin/env bash
# One prepared GPU check for a machine with a real GPU and no network. Writes at most 8 files to
# OUTDIR in under 5 minutes (plus up to 150 s for GPU_TESTS_BIN):
#   env.json        `perfledger env`: adapters, features, limits, cooperative-matrix configurations
#   tune.json       `perfledger tune` (≤ 90 s on a hardware GPU, ≤ 20 s on lavapipe): the fastest
#                   verified configuration of each GPU matmul kernel per shape class; the suite
#                   below runs with it (each row's configuration and the cache's hash in run.json)
#   tune.txt        what tune tried, chose, skipped (its stderr)
#   run.json        `perfledger run` of the GPU suite below (verified rows, GPU ceilings), with the
#                   peer rows imported when PyTorch with CUDA is present
#   peer.jsonl      PyTorch/cuBLAS + SDPA peer rows (scripts/reference/torch_cuda.py), if any
#   summary.txt     the run's summary table
#   gpu-check.log   everything else: Vulkan setup, adapter listing, stderr of each step
#   report.html     once `perfledger report` exists
#
# Usage: scripts/gpu-check.sh OUTDIR
#
# Environment:
#   PERFLEDGER_BIN   prebuilt perfledger binary (default: target/release/perfledger, then ./perfledger).
#                    Build it where there is network: `cargo build --release -p perfledger`.
#   VULKAN_DEBS      directory of .deb files (libvulkan1, optionally mesa-vulkan-drivers) unpacked
#                    into a temp dir when the system has no Vulkan loader (default: scripts/vulkan-debs,
#                    fetched beforehand with `apt-get download libvulkan1`).
#   PYTHON           Python with PyTorch (default: .venv-ref/bin/python, then python3).
#   GPU_CHECK_QUICK=1   small shapes (a dry run on lavapipe; adds --allow-software-gpu).
#   GPU_TESTS_BIN    optional: the kernels' GPU test binary (built where there is network with
#                    `cargo test -p perfledger-kernels --profile ci --features test-kernels --test gpu
#                    --no-run`, the path it prints), run first with PERFLEDGER_REQUIRE_GPU=1, its
#                    output appended to gpu-check.log: every GPU kernel and mutant on the covering
#                    shapes at this adapter's subgroup size (lavapipe's is 8, NVIDIA's 32).
#
# The NVIDIA Vulkan ICD: the driver ships nvidia_icd.json naming libGLX_nvidia.so.0. When the GPU
# is not visible with it (headless containers), the script writes ICD JSONs for libEGL_nvidia.so.0,
# then libGLX_nvidia.so.0, points VK_ICD_FILENAMES at the first that works, and logs each try.
set -uo pipefail
OUT="${1:?usage: scripts/gpu-check.sh OUTDIR}"
cd "$(dirname "$0")/.."
ROOT=$(pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/gpu-check.log"
: > "$LOG"
START=$(date +%s)
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
log() { echo "[gpu-check +$(( $(date +%s) - START ))s] $*" | tee -a "$LOG" >&2; }

BIN="${PERFLEDGER_BIN:-}"
for c in "$BIN" target/release/perfledger ./perfledger; do
  if [ -n "$c" ] && [ -x "$c" ]; then BIN="$c"; break; fi
done
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
  log "no perfledger binary (set PERFLEDGER_BIN or build with: cargo build --release -p perfledger)"
  exit 2
fi
log "binary: $BIN ($("$BIN" --version 2>&1))"
log "host: $(uname -srm); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(nproc) CPUs"
log "device nodes: $(ls /dev/nvidia* /dev/dri 2>/dev/null | tr '\n' ' ')"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv >> "$LOG" 2>&1

# --- Vulkan loader and ICD --------------------------------------------------------------------
has_loader() { ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' || [ -n "$(find /usr/lib* /lib* -name 'libvulkan.so.1*' 2>/dev/null | head -1)" ]; }
if has_loader; then
  log "Vulkan loader: system"
else
  DEBS="${VULKAN_DEBS:-$ROOT/scripts/vulkan-debs}"
  if ls "$DEBS"/*.deb >/dev/null 2>&1; then
    for d in "$DEBS"/*.deb; do dpkg-deb -x "$d" "$TMP/vk" 2>>"$LOG" || log "could not unpack $d"; done
    LIBDIR=$(dirname "$(find "$TMP/vk" -name 'libvulkan.so.1*' | head -1)")
    export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    log "Vulkan loader: unpacked from $DEBS into $LIBDIR"
    # ICDs from unpacked packages (e.g. mesa-vulkan-drivers) are found through VK_ADD_DRIVER_FILES.
    icds=$(find "$TMP/vk" -path '*icd.d/*.json' | tr '\n' ':')
    [ -n "$icds" ] && export VK_ADD_DRIVER_FILES="${icds%:}"
  else
    log "WARNING: no Vulkan loader on this system and no .deb files in $DEBS: GPU rows will be unsupported"
  fi
fi
# NVIDIA's ICD: the driver's nvidia_icd.json names libGLX_nvidia.so.0, whose vkCreateInstance
# fails in headless containers ("Could not get 'vkCreateInstance' via 'vk_icdGetInstanceProcAddr'",
# seen on an H200 container with driver 580); the same driver's libEGL_nvidia.so.0 works headless.
# So when the GPU is not visible, try ICD JSONs for EGL, then GLX, and keep the first that works.
hw_adapters() {
  timeout 30 "$BIN" env 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(1 for g in d["environment"]["gpus"] if not g["software"]))' 2>/dev/null || echo 0
}
if [ -e /dev/nvidiactl ] && [ "$(hw_adapters)" = 0 ]; then
  log "the NVIDIA GPU is not visible through Vulkan with the system ICD; trying ICD JSONs (VK_LOADER_DEBUG=error for why):"
  VK_LOADER_DEBUG=error timeout 30 "$BIN" env 2>&1 >/dev/null | grep -i -E "error|icd" | head -5 >> "$LOG"
  for lib in libEGL_nvidia.so.0 libGLX_nvidia.so.0; do
    path=$(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l {print $NF; exit}')
    [ -z "$path" ] && path=$(find /usr/lib* /lib* /usr/local/nvidia -name "$lib" 2>/dev/null | head -1)
    [ -z "$path" ] && { log "  $lib: not found"; continue; }
    cat > "$TMP/nvidia_icd_${lib%%.*}.json" <<JSON
{"file_format_version": "1.0.1", "ICD": {"library_path": "$path", "api_version": "1.3.0"}}
JSON
    export VK_ICD_FILENAMES="$TMP/nvidia_icd_${lib%%.*}.json"
    n=$(hw_adapters)
    log "  ICD $path: $n hardware adapter(s)"
    [ "$n" != 0 ] && break
    unset VK_ICD_FILENAMES
  done
fi

# --- Adapters ---------------------------------------------------------------------------------
timeout 30 "$BIN" env > "$OUT/env.json" 2>>"$LOG"
python3 - "$OUT/env.json" <<'PY' 2>>"$LOG" | tee -a "$LOG" >&2
import json, sys
d = json.load(open(sys.argv[1]))
gpus = d["environment"].get("gpus", [])
print(f"adapters: {len(gpus)}")
for g in gpus:
    lim = g.get("limits", {})
    print(f"  [{g['index']}] {g['name']} ({g.get('device_type')}, {g.get('backend')}, "
          f"{g.get('driver')} {g.get('driver_info')}){' SOFTWARE' if g.get('software') else ''}")
    feats = set(g.get("features", []))
    print("      f16 %s, timestamps %s, subgroups %s (size %s-%s), coop feature %s" % (
        "SHADER_F16" in feats, "TIMESTAMP_QUERY" in feats, "SUBGROUP" in feats,
        lim.get("subgroup_min_size"), lim.get("subgroup_max_size"),
        "EXPERIMENTAL_COOPERATIVE_MATRIX" in feats))
    coop = lim.get("cooperative_matrix", [])
    print(f"      cooperative-matrix configurations: {len(coop)}")
    for c in coop:
        print(f"        {c['m']}x{c['n']}x{c['k']} {c['ab']} -> {c['cr']}{' saturating' if c['saturating'] else ''}")
    print(f"      max_storage_buffer_binding_size {lim.get('max_storage_buffer_binding_size')}, "
          f"max_buffer_size {lim.get('max_buffer_size')}")
PY

# --- The kernels' GPU tests on this adapter (optional) -----------------------------------------
if [ -n "${GPU_TESTS_BIN:-}" ]; then
  if [ -x "$GPU_TESTS_BIN" ]; then
    log "GPU tests: $GPU_TESTS_BIN (timeout 150 s)"
    PERFLEDGER_REQUIRE_GPU=1 timeout 150 "$GPU_TESTS_BIN" --test-threads 1 --nocapture >> "$LOG" 2>&1
    log "GPU tests exit code $?"
  else
    log "GPU_TESTS_BIN=$GPU_TESTS_BIN is not an executable file; GPU tests skipped"
  fi
fi

# --- Tune ---------------------------------------------------------------------------------------
# Before the suite, on the same adapter: every legal configuration of tiled and coop, timed and
# verified on a few shapes within the cap; the cache goes to OUTDIR and the suite uses it.
TUNE_EXTRA=()
[ "${GPU_CHECK_QUICK:-0}" = 1 ] && TUNE_EXTRA=(--allow-software-gpu)
log "tuning (perfledger tune, capped)"
timeout 150 "$BIN" tune --backend gpu "${TUNE_EXTRA[@]}" --tune-cache "$OUT/tune.json" > /dev/null 2> "$OUT/tune.txt"
log "perfledger tune exit code $?"
tail -n 40 "$OUT/tune.txt" | grep -v '^\s*$' | tail -n 25 >&2
TUNE_ARGS=()
[ -s "$OUT/tune.json" ] && TUNE_ARGS=(--tune-cache "$OUT/tune.json")

# --- The GPU suite ----------------------------------------------------------------------------
if [ "${GPU_CHECK_QUICK:-0}" = 1 ]; then
  MM1=256; MM2=384; SEQ=256; HD=64; KV1=1024; KV2=2048; EXTRA=(--allow-software-gpu); BUDGET=2
else
  MM1=4096; MM2=8192; SEQ=4096; HD=128; KV1=8192; KV2=32768; EXTRA=(); BUDGET=8
fi
cat > "$TMP/suite.json" <<JSON
{"schema": "perfledger.suite/1", "name": "gpu-check", "case_budget_s": $BUDGET, "run_budget_s": 140,
 "cases": [
  {"op": "matmul", "m": $MM1, "n": $MM1, "k": $MM1, "dtypes": ["f16", "bf16", "f32"], "backends": ["gpu"]},
  {"op": "matmul", "m": $MM2, "n": $MM2, "k": $MM2, "dtypes": ["f16", "bf16"], "backends": ["gpu"]},
  {"op": "attention", "q_heads": 32, "kv_heads": 8, "q_len": $SEQ, "kv_len": $SEQ, "head_dim": $HD,
   "causal": true, "dtypes": ["f16", "bf16"], "backends": ["gpu"]},
  {"op": "attention", "q_heads": 32, "kv_heads": 8, "q_len": $SEQ, "kv_len": $SEQ, "head_dim": $HD,
   "causal": false, "dtypes": ["f16"], "backends": ["gpu"]},
  {"op": "attention", "q_heads": 32, "kv_heads": 8, "q_len": 1, "kv_len": $KV1, "head_dim": $HD,
   "causal": true, "dtypes": ["f16", "bf16"], "backends": ["gpu"], "kernels": ["attention.gpu.decode"]},
  {"op": "attention", "q_heads": 32, "kv_heads": 8, "q_len": 1, "kv_len": $KV2, "head_dim": $HD,
   "causal": true, "dtypes": ["bf16"], "backends": ["gpu"], "kernels": ["attention.gpu.decode"]}
 ]}
JSON
log "running the GPU suite (matmul ${MM1}³ and ${MM2}³, attention seq $SEQ head_dim $HD GQA 32/8 causal and not, decode kv $KV1 and $KV2)"
timeout 180 "$BIN" run --suite "$TMP/suite.json" --backend gpu "${EXTRA[@]}" "${TUNE_ARGS[@]}" --out "$OUT/run.json" --force \
  > "$OUT/summary.txt" 2>>"$LOG"
code=$?
log "perfledger run exit code $code"

# --- The peer: PyTorch / cuBLAS on the same shapes -------------------------------------------
PY="${PYTHON:-}"
for c in "$PY" "$ROOT/.venv-ref/bin/python" python3; do
  if [ -n "$c" ] && command -v "$c" >/dev/null && "$c" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    PY="$c"; break
  fi
  PY=""
done
if [ -n "$PY" ]; then
  log "peer: PyTorch with CUDA via $PY"
  timeout 60 "$PY" scripts/reference/torch_cuda.py --matmul "${MM1}x${MM1}x${MM1}" --matmul "${MM2}x${MM2}x${MM2}" \
    --attention "1,32,8,$SEQ,$HD,causal" --attention "1,32,8,$SEQ,$HD" \
    --attention "1,32,8,1:$KV1,$HD,causal" --attention "1,32,8,1:$KV2,$HD,causal" \
    --dtype f16,bf16 --min-time 0.5 --out "$OUT/peer.jsonl" 2>>"$LOG"
  log "peer exit code $?"
  if [ -s "$OUT/peer.jsonl" ] && [ -s "$OUT/run.json" ]; then
    "$BIN" import "$OUT/peer.jsonl" --into "$OUT/run.json" >>"$LOG" 2>&1 && log "peer rows imported into run.json"
  fi
else
  log "peer: no PyTorch with CUDA here; skipped"
fi

# --- Report (once `perfledger report` exists) -------------------------------------------------
if [ -s "$OUT/run.json" ] && "$BIN" report --help >/dev/null 2>&1; then
  if "$BIN" report --help 2>&1 | grep -q -- '--html'; then
    timeout 20 "$BIN" report "$OUT/run.json" --html "$OUT/report.html" >>"$LOG" 2>&1
  else
    timeout 20 "$BIN" report "$OUT/run.json" --format html --out "$OUT/report.html" >>"$LOG" 2>&1
  fi
  log "report exit code $?"
fi

cat "$OUT/summary.txt" >&2
log "done in $(( $(date +%s) - START )) s; files: $(ls "$OUT" | tr '\n' ' ')"
exit $code
