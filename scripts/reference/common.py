"""Shared helpers for perfledger's reference (peer) benchmark scripts.

This module must stay importable WITHOUT numpy/torch: the scripts parse their arguments, call
`prepare_environment()` (which removes the OpenBLAS override variables and sets the thread-count
variables), and only then import numpy/torch. Anything that needs numpy imports it lazily.

Output format: "external rows" (JSON lines) as described in ../shared/DESIGN.md, section
"Result file" -> "External rows (JSON lines)". Core fields: kind, op, shape, precision, device,
instance, samples_s, verification, tool, tool_version, date, source. Extra provenance fields
(`timing`, `config`) are added unless --core-fields-only is given.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import sys
import time
import zlib

# Variables that pin OpenBLAS to an older kernel set / cache model. They are set in some shells as
# a workaround for old OpenBLAS builds and slow a current one down, so the benchmark process drops
# them (recorded in the row) unless --keep-openblas-env is given.
OPENBLAS_OVERRIDE_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# Unit roundoff per storage type (round to nearest): 2^-(p) with p = significand bits incl. hidden.
UNIT_ROUNDOFF = {"f32": 2.0 ** -24, "f16": 2.0 ** -11, "bf16": 2.0 ** -8, "f64": 2.0 ** -53}
DTYPES = ("f32", "f16", "bf16")

CORE_FIELDS = ("kind", "op", "shape", "precision", "device", "instance", "samples_s",
               "verification", "tool", "tool_version", "date", "source")

_ENV_STATE: dict = {"removed": {}, "kept": {}, "threads": None}


# ----------------------------------------------------------------------------------------------
# Environment: must run before numpy / torch are imported.
# ----------------------------------------------------------------------------------------------
def prepare_environment(threads: int, keep_openblas_env: bool = False) -> dict:
    """Drop OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (unless kept) and pin thread counts.

    os.environ.pop() calls unsetenv(), so the C getenv() that OpenBLAS runs when its shared library
    is loaded (at `import numpy`) no longer sees them. Raises if numpy/torch are already loaded,
    because then it would be too late.
    """
    for mod in ("numpy", "torch"):
        if mod in sys.modules:
            raise RuntimeError(f"prepare_environment() must run before importing {mod}")
    removed, kept = {}, {}
    for var in OPENBLAS_OVERRIDE_VARS:
        if var in os.environ:
            if keep_openblas_env:
                kept[var] = os.environ[var]
            else:
                removed[var] = os.environ.pop(var)
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    _ENV_STATE.update(removed=removed, kept=kept, threads=threads)
    return dict(_ENV_STATE)


def env_state() -> dict:
    return dict(_ENV_STATE)


def limit_threads(threads: int):
    """Apply the thread limit through threadpoolctl too (covers BLAS and OpenMP pools already
    loaded). Returns the limiter object; keep a reference to it for the life of the process."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=threads)


def threadpools() -> list:
    """Trimmed threadpoolctl.threadpool_info(): which BLAS/OpenMP actually runs, with how many
    threads and (for OpenBLAS) which kernel set ("architecture" = coretype)."""
    from threadpoolctl import threadpool_info
    out = []
    for d in threadpool_info():
        out.append({k: d.get(k) for k in ("user_api", "internal_api", "version", "architecture",
                                          "num_threads", "threading_layer", "prefix")
                    if d.get(k) is not None})
    return out


def openblas_summary(pools: list) -> str:
    ob = [p for p in pools if p.get("internal_api") == "openblas"]
    if not ob:
        return "OpenBLAS not loaded"
    parts = []
    for p in ob:
        parts.append(f"OpenBLAS {p.get('version', '?')}, coretype {p.get('architecture', '?')}, "
                     f"{p.get('num_threads', '?')} threads")
    return "; ".join(parts)


def env_note() -> str:
    st = env_state()
    if st["kept"]:
        return " [kept " + ", ".join(f"{k}={v}" for k, v in st["kept"].items()) + "]"
    return ""


# ----------------------------------------------------------------------------------------------
# Machine description
# ----------------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_device(threads: int) -> dict:
    return {"name": f"{cpu_model()} ({threads} thread{'s' if threads != 1 else ''})",
            "threads": threads, "software": False}


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def source_path(file: str) -> str:
    """Path of the script relative to the repository root (scripts/reference/<name>.py)."""
    return "scripts/reference/" + os.path.basename(file)


def derive_seed(base_seed: int, *parts) -> int:
    """Stable per-row seed: the base seed mixed with a CRC of the row's identity, so a row's inputs
    do not depend on which other shapes were run in the same invocation."""
    key = "|".join(str(p) for p in parts).encode()
    return (int(base_seed) * 1_000_003 + zlib.crc32(key)) % (2 ** 63 - 1)


# ----------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------
class TooSlow(Exception):
    """A row's first (verified) call took, or would take, longer than `--max-call-time`: the row
    is not timed and not written (a library without a fast path for a dtype on this CPU would
    otherwise hold a sitting for many minutes per shape)."""

    def __init__(self, seconds: float, limit: float, predicted: bool):
        how = ("would take about {:.0f} s at the fastest rate earlier rows of its dtype and kind "
               "(memory- or compute-bound) reached, not run" if predicted
               else "took {:.1f} s").format(seconds)
        super().__init__(f"one call {how}, over --max-call-time {limit:g} s; not timed, "
                         f"no row written")
        self.seconds = seconds
        self.limit = limit
        self.predicted = predicted


def budget_key(dtype: str, flops: float, min_bytes: float) -> str:
    """The class of rows whose rates predict each other for `call_budget_check`: the dtype, and
    whether the row is memory-bound (a decode or GEMV row's FLOP rate says nothing about a
    compute-bound shape's)."""
    bound = "memory" if flops / max(min_bytes, 1) < MEMORY_BOUND_INTENSITY else "compute"
    return f"{dtype}/{bound}"


def call_budget_check(args, key: str, flops: float):
    """Before a row's inputs are made: raise TooSlow where `flops` at the fastest rate (FLOP/s)
    that an earlier row of `key` (`budget_key`: its dtype and whether it is memory-bound)
    reached in its first call, in this process, would exceed `args.max_call_time` (0: no
    limit). Give shapes smallest first (the sitting does) and a hopeless dtype costs one
    over-limit call, not one per shape."""
    limit = getattr(args, "max_call_time", 0.0) or 0.0
    rate = getattr(args, "first_call_rates", {}).get(key)
    if limit and rate and flops / rate > limit:
        raise TooSlow(flops / rate, limit, predicted=True)


def note_rate(args, key: str, flops: float, seconds: float):
    """Record a rate (FLOP/s) that a row of `key` reached, for `call_budget_check` (the fastest
    is kept)."""
    if not hasattr(args, "first_call_rates"):
        args.first_call_rates = {}
    rates = args.first_call_rates
    rates[key] = max(rates.get(key, 0.0), flops / max(seconds, 1e-9))


def matmul_budget(args, shape: dict, dtype: str):
    """A matmul row's FLOPs and `budget_key`, checked by `call_budget_check` before its inputs
    are made (raises TooSlow). Returns (flops, key)."""
    b, m, n, k = shape["batch"], shape["m"], shape["n"], shape["k"]
    flops = 2.0 * b * m * n * k
    esize = 4 if dtype == "f32" else 2
    key = budget_key(dtype, flops, esize * b * (m * k + k * n + m * n))
    call_budget_check(args, key, flops)
    return flops, key


def time_row(fn, args, key: str, flops: float):
    """`time_callable` with the row options in `args`, the median's rate recorded for
    `call_budget_check` (`note_rate`). Returns (samples_s per call, timing dict)."""
    samples, timing = time_callable(fn, min_time=args.min_time, min_samples=args.min_samples,
                                    max_samples=args.max_samples, warmup_min_iters=args.warmup)
    note_rate(args, key, flops, sorted(samples)[len(samples) // 2])
    return samples, timing


def first_call(fn, args, key: str, flops: float):
    """Make the row's first call (the one its verification reads) and record its rate for
    `call_budget_check` (the rows' timed medians are recorded too, `note_rate`: a first call
    pays for start-up and would understate the rate); raise TooSlow when it took longer than `args.max_call_time` seconds
    (0: no limit). Returns the call's seconds."""
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    note_rate(args, key, flops, dt)
    limit = getattr(args, "max_call_time", 0.0) or 0.0
    if limit and dt > limit:
        raise TooSlow(dt, limit, predicted=False)
    return dt


def time_callable(fn, *, min_time: float, min_samples: int, max_samples: int,
                  warmup_min_iters: int = 3, warmup_time: float = 0.5,
                  batch_below_s: float = 1e-3, batch_target_s: float = 0.01):
    """Warm up, then take samples with time.perf_counter.

    Warm-up: at least `warmup_min_iters` calls and until `warmup_time` seconds have passed (capped
    at 1000 calls). A call faster than `batch_below_s` (1 ms) is batched: each sample times
    `iters` back-to-back calls, with iters chosen so one sample takes about `batch_target_s`, and
    the reported per-call time is sample_time / iters. Samples are taken until there are at least
    `min_samples` AND at least `min_time` seconds of samples, or `max_samples` is reached.

    Returns (samples_s per call, timing dict).
    """
    pc = time.perf_counter
    warm = 0
    t_start = pc()
    last = None
    while True:
        t0 = pc()
        fn()
        last = pc() - t0
        warm += 1
        if (warm >= warmup_min_iters and pc() - t_start >= warmup_time) or warm >= 1000:
            break
        # a very slow call: do not spend more than ~3 calls warming up
        if warm >= warmup_min_iters and last > warmup_time:
            break
    # estimate per-call time from the last warm-up calls
    per_call = max(last, 1e-9)
    if per_call < batch_below_s:
        t0 = pc()
        n = 0
        while pc() - t0 < 0.02 or n < 3:
            fn()
            n += 1
        per_call = (pc() - t0) / n
        warm += n
    iters = 1 if per_call >= batch_below_s else max(1, int(math.ceil(batch_target_s / per_call)))

    samples = []
    total = 0.0
    while True:
        t0 = pc()
        for _ in range(iters):
            fn()
        dt = pc() - t0
        samples.append(dt / iters)
        total += dt
        if len(samples) >= max_samples:
            stop = "max_samples"
            break
        if len(samples) >= min_samples and total >= min_time:
            stop = "min_time" if total >= min_time and len(samples) > min_samples else "min_samples"
            break
    timing = {"method": "wall", "clock": "time.perf_counter", "warmup_iters": warm,
              "iters_per_sample": iters, "samples": len(samples), "sampled_s": round(total, 6),
              "stop_reason": stop}
    return samples, timing


def l3_bytes() -> int | None:
    """The last-level cache of CPU 0 in bytes (sysfs), or None."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    best = None
    try:
        for d in sorted(os.listdir(base)):
            if not d.startswith("index"):
                continue
            with open(os.path.join(base, d, "level")) as f:
                level = int(f.read())
            with open(os.path.join(base, d, "size")) as f:
                text = f.read().strip()
            mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
            size = int(text.rstrip("KMG")) * mult
            if best is None or level >= best[0]:
                best = (level, size)
    except (OSError, ValueError):
        return None
    return best[1] if best else None


# perfledger's rule (harness/src/runner.rs): rows below this arithmetic intensity (FLOP/byte)
# rotate input sets spanning ROTATE_FOOTPRINT_L3 × L3, at most MAX_ROTATE_SETS.
MEMORY_BOUND_INTENSITY = 32.0
ROTATE_FOOTPRINT_L3 = 16
MAX_ROTATE_SETS = 2048


def rotation_sets(flops: float, min_bytes: int, mode: str) -> int:
    """How many input sets a row cycles through: 1 unless `mode` is "auto" and the row is
    memory-bound, then enough sets of `min_bytes` to span 16 × L3 (perfledger's rule), so that
    each call reads its inputs from memory and not from a cache the previous call warmed."""
    if mode != "auto" or flops / max(min_bytes, 1) >= MEMORY_BOUND_INTENSITY:
        return 1
    l3 = l3_bytes()
    if not l3:
        return 1
    return max(1, min(MAX_ROTATE_SETS, -(-ROTATE_FOOTPRINT_L3 * l3 // max(min_bytes, 1))))


def add_rotate_arg(p: argparse.ArgumentParser):
    p.add_argument("--rotate", choices=("auto", "off"), default="auto",
                   help="auto (default): memory-bound shapes cycle through copies of their inputs "
                        "spanning 16 x L3, as perfledger's runner does, so caches do not serve "
                        "them; off: one input set (a warm cache for inputs that fit)")


# ----------------------------------------------------------------------------------------------
# Verification helpers
# ----------------------------------------------------------------------------------------------
def matmul_bound(out_dtype: str, k: int, acc_dtype: str = "f32", c: float = 2.0) -> float:
    """bound = c * (u_out + K * u_acc), c = 2."""
    return c * (UNIT_ROUNDOFF[out_dtype] + k * UNIT_ROUNDOFF[acc_dtype])


def verdict(error, bound) -> str:
    if error is None or not math.isfinite(error) or not (error <= bound):
        return "fail"
    return "pass"


def json_number(x):
    """JSON has no NaN/Inf: a non-finite error is written as null (and its verdict is fail)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def merge_checks(checks: list, method: str, samples: int) -> dict:
    """Combine several verification passes (before timing, after timing) into one verification
    object: the worst error, the (common) bound, fail if any pass failed."""
    errs = [c["error"] for c in checks]
    bound = max(c["bound"] for c in checks)
    worst = None
    nonfinite = any(e is None or not math.isfinite(e) for e in errs)
    if not nonfinite:
        worst = max(errs)
    v = "fail" if nonfinite or any(verdict(c["error"], c["bound"]) == "fail" for c in checks) \
        else "pass"
    # error is null when a checked element was NaN/Inf (JSON has no NaN); the verdict is then fail
    return {"method": method, "samples": samples, "error": json_number(worst),
            "bound": json_number(bound), "verdict": v}


# ----------------------------------------------------------------------------------------------
# Rows and output
# ----------------------------------------------------------------------------------------------
def finish_row(row: dict, core_only: bool) -> dict:
    if core_only:
        return {k: row[k] for k in CORE_FIELDS}
    return row


def dumps_row(row: dict) -> str:
    return json.dumps(row, allow_nan=False, separators=(", ", ": "))


class RowWriter:
    """Writes one JSON object per line to stdout or a file, flushing after each row.

    An existing --out file is refused (exit 2) unless --append is given."""

    def __init__(self, path: str | None, append: bool):
        self.path = path
        if path is None or path == "-":
            self.f = sys.stdout
            self.close_it = False
        else:
            if os.path.exists(path) and not append:
                die(f"--out {path}: file exists (use --append to add rows)")
            self.f = open(path, "a" if append else "x", encoding="utf-8")
            self.close_it = True

    def write(self, row: dict):
        self.f.write(dumps_row(row) + "\n")
        self.f.flush()

    def close(self):
        if self.close_it:
            self.f.close()


def die(msg: str, code: int = 2):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(code)


def log(msg: str):
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# CLI pieces shared by all scripts
# ----------------------------------------------------------------------------------------------
def parse_dtypes(text: str, allowed=DTYPES) -> list:
    out = []
    for d in text.split(","):
        d = d.strip().lower()
        if not d:
            continue
        if d not in allowed:
            raise argparse.ArgumentTypeError(
                f"unknown dtype {d!r} (allowed: {', '.join(allowed)})")
        if d not in out:
            out.append(d)
    if not out:
        raise argparse.ArgumentTypeError("empty dtype list")
    return out


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}")
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text!r}")
    return v


def nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}")
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0: {text!r}")
    return v


def parse_matmul_shape(text: str) -> dict:
    """MxNxK (batch 1) or BxMxNxK. 'x' or '×' separates."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad matmul shape {text!r}: expected MxNxK or BxMxNxK with positive integers")
    if len(nums) == 3:
        b, (m, n, k) = 1, nums
    elif len(nums) == 4:
        b, m, n, k = nums
    else:
        raise argparse.ArgumentTypeError(
            f"bad matmul shape {text!r}: expected MxNxK or BxMxNxK")
    if min(b, m, n, k) < 1:
        raise argparse.ArgumentTypeError(f"bad matmul shape {text!r}: sizes must be >= 1")
    return {"batch": b, "m": m, "n": n, "k": k}


ATTENTION_SHAPE_HELP = "B,Hq,Hkv,S,D  or  B,Hq,Hkv,Sq:Skv,D  or  B,Hq,Hkv,Sq,Skv,D; optional ,causal ,scale=X"


def parse_attention_shape(text: str) -> dict:
    fields = [f.strip() for f in text.split(",") if f.strip()]
    causal = False
    scale = None
    nums = []
    for f in fields:
        fl = f.lower()
        if fl in ("causal", "causal=1", "causal=true"):
            causal = True
        elif fl in ("causal=0", "causal=false", "noncausal"):
            causal = False
        elif fl.startswith("scale="):
            try:
                scale = float(fl[6:])
            except ValueError:
                raise argparse.ArgumentTypeError(f"bad scale in {text!r}")
            if not (math.isfinite(scale) and scale > 0):
                raise argparse.ArgumentTypeError(f"scale must be a positive number in {text!r}")
        else:
            nums.append(f)
    try:
        if len(nums) == 5 and ":" in nums[3]:
            sq, skv = nums[3].split(":", 1)
            b, hq, hkv, d = int(nums[0]), int(nums[1]), int(nums[2]), int(nums[4])
            q_len, kv_len = int(sq), int(skv)
        elif len(nums) == 5:
            b, hq, hkv, s, d = (int(x) for x in nums)
            q_len = kv_len = s
        elif len(nums) == 6:
            b, hq, hkv, q_len, kv_len, d = (int(x) for x in nums)
        else:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad attention shape {text!r}: expected {ATTENTION_SHAPE_HELP}")
    if min(b, hq, hkv, q_len, kv_len, d) < 1:
        raise argparse.ArgumentTypeError(f"bad attention shape {text!r}: sizes must be >= 1")
    if hq % hkv:
        raise argparse.ArgumentTypeError(
            f"bad attention shape {text!r}: q_heads {hq} is not a multiple of kv_heads {hkv}")
    if causal and q_len > kv_len:
        raise argparse.ArgumentTypeError(
            f"bad attention shape {text!r}: causal with q_len > kv_len leaves queries with no key")
    return {"batch": b, "q_heads": hq, "kv_heads": hkv, "q_len": q_len, "kv_len": kv_len,
            "head_dim": d, "causal": causal,
            "scale": float(scale) if scale is not None else 1.0 / math.sqrt(d)}


def add_common_args(p: argparse.ArgumentParser, default_dtypes: str, allowed_dtypes=DTYPES):
    p.add_argument("--dtype", type=lambda s: parse_dtypes(s, allowed_dtypes),
                   default=parse_dtypes(default_dtypes, allowed_dtypes),
                   help=f"comma-separated dtypes from {{{','.join(allowed_dtypes)}}} "
                        f"(default {default_dtypes})")
    p.add_argument("--threads", type=positive_int, default=2,
                   help="threads for the library (default 2); sets OMP_NUM_THREADS, "
                        "OPENBLAS_NUM_THREADS, MKL_NUM_THREADS and threadpoolctl limits")
    p.add_argument("--min-time", type=nonneg_float, default=2.0,
                   help="minimum seconds of timed samples per row (default 2.0)")
    p.add_argument("--min-samples", type=positive_int, default=10,
                   help="minimum number of samples per row (default 10)")
    p.add_argument("--max-samples", type=positive_int, default=10000,
                   help="stop after this many samples even if --min-time is not reached")
    p.add_argument("--max-call-time", type=nonneg_float, default=0.0,
                   help="skip a row (log it, write nothing) whose first call takes longer than "
                        "this many seconds, or would at the fastest rate an earlier row of its "
                        "dtype and kind (memory- or compute-bound) reached in this process "
                        "(default 0: no limit)")
    p.add_argument("--warmup", type=positive_int, default=3,
                   help="minimum warm-up calls (default 3; warm-up also runs for >= 0.5 s)")
    p.add_argument("--seed", type=int, default=0, help="base seed for inputs and sampled rows")
    p.add_argument("--verify-rows", type=positive_int, default=8,
                   help="rows (matmul) / query rows (attention) checked against the float64 "
                        "reference (default 8)")
    p.add_argument("--out", default=None, help="write JSON lines to FILE (default stdout)")
    p.add_argument("--append", action="store_true", help="append to an existing --out file")
    p.add_argument("--kind", choices=("peer", "imported"), default="peer",
                   help="row kind (default peer: timed on this machine)")
    p.add_argument("--core-fields-only", action="store_true",
                   help="emit only the core external-row fields (drop timing/config)")
    p.add_argument("--keep-openblas-env", action="store_true",
                   help="do NOT remove OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (for comparison)")
    p.add_argument("--self-test", action="store_true",
                   help="run tiny shapes, check the JSON fields and that the checker rejects "
                        "deliberately wrong outputs; no timing claims")
    add_rotate_arg(p)


def config_block(args, input_seed: int, pools: list) -> dict:
    st = env_state()
    return {"seed": args.seed, "input_seed": input_seed, "threads": args.threads,
            "removed_env": st["removed"], "kept_env": st["kept"], "threadpools": pools,
            "python": platform.python_version(), "argv": sys.argv[1:]}


# ----------------------------------------------------------------------------------------------
# Self-test field checks
# ----------------------------------------------------------------------------------------------
def check_row(row: dict, op: str) -> list:
    """Return a list of problems with an emitted row (empty = fine)."""
    errs = []
    for k in CORE_FIELDS:
        if k not in row:
            errs.append(f"missing field {k}")
    if errs:
        return errs
    try:
        line = dumps_row(row)
        back = json.loads(line)
        if back != row:
            errs.append("row does not round-trip through JSON")
    except (TypeError, ValueError) as e:
        errs.append(f"not JSON-serializable: {e}")
    if "flops" in row or "gflops" in row:
        errs.append("external rows carry no FLOP field")
    if row["kind"] not in ("peer", "imported"):
        errs.append(f"kind {row['kind']!r}")
    if row["op"] != op:
        errs.append(f"op {row['op']!r} != {op!r}")
    sh = row["shape"]
    want = (("batch", "m", "n", "k", "trans_b") if op == "matmul" else
            ("batch", "q_heads", "kv_heads", "q_len", "kv_len", "head_dim", "causal", "scale"))
    if set(sh) != set(want):
        errs.append(f"shape keys {sorted(sh)} != {sorted(want)}")
    for key in want:
        v = sh.get(key)
        if key in ("trans_b", "causal"):
            if not isinstance(v, bool):
                errs.append(f"shape.{key} not bool")
        elif key == "scale":
            if not isinstance(v, float) or not v > 0:
                errs.append("shape.scale not a positive float")
        elif not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            errs.append(f"shape.{key} not a positive int")
    pr = row["precision"]
    if set(pr) != {"input", "accum", "output"} or not all(v in DTYPES for v in pr.values()):
        errs.append(f"precision {pr}")
    dev = row["device"]
    if not isinstance(dev.get("name"), str) or not isinstance(dev.get("threads"), int) \
            or dev.get("software") is not False:
        errs.append(f"device {dev}")
    if row["instance"] is not None:
        errs.append("instance should be null")
    s = row["samples_s"]
    if not (isinstance(s, list) and s and all(isinstance(x, float) and x > 0 for x in s)):
        errs.append("samples_s must be a non-empty list of positive floats")
    ver = row["verification"]
    for k in ("method", "samples", "error", "bound", "verdict"):
        if k not in ver:
            errs.append(f"verification.{k} missing")
    if ver.get("verdict") not in ("pass", "fail"):
        errs.append(f"verification.verdict {ver.get('verdict')!r}")
    for k in ("tool", "tool_version", "source"):
        if not isinstance(row[k], str) or not row[k]:
            errs.append(f"{k} empty")
    if not row["source"].startswith("scripts/reference/"):
        errs.append("source not scripts/reference/...")
    try:
        _dt.datetime.strptime(row["date"], "%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        errs.append(f"date {row['date']!r} not RFC 3339 UTC")
    return errs


# ----------------------------------------------------------------------------------------------
# Matmul row check (shared by numpy_matmul.py and torch_matmul.py)
# ----------------------------------------------------------------------------------------------
def pick_rows(seed: int, batch: int, m: int, count: int) -> list:
    """Sample `count` distinct (batch, row) pairs, sorted; all rows when batch*m <= count."""
    import numpy as np
    total = batch * m
    if total <= count:
        flat = list(range(total))
    else:
        rng = np.random.default_rng(seed)
        flat = sorted(int(x) for x in rng.choice(total, size=count, replace=False))
    return [(f // m, f % m) for f in flat]


def matmul_rows_check(rows, *, n: int, k: int, a_rows_f64, b_block_f64, c_rows_f64,
                      out_dtype: str, acc_dtype: str = "f32", block: int = 2048) -> dict:
    """Componentwise-scaled error of sampled output rows against a float64 reference.

    rows: list of (batch, row). Callbacks return float64 numpy arrays:
      a_rows_f64(b, idx)  -> [len(idx), K]     (the rounded, stored A values)
      b_block_f64(b, j0, j1) -> [K, j1-j0]     (logical B = stored B or its transpose)
      c_rows_f64(b, idx)  -> [len(idx), N]     (the library's output)
    error = max |C - Cref| / (|A|.|B|) over all checked elements; bound = 2 (u_out + K u_acc).
    A NaN/Inf anywhere in a checked row makes the error non-finite (verdict fail).
    """
    import numpy as np
    by_batch: dict = {}
    for b, i in rows:
        by_batch.setdefault(b, []).append(i)
    worst = 0.0
    for b, idx in by_batch.items():
        ar = a_rows_f64(b, idx)
        aa = np.abs(ar)
        cr = c_rows_f64(b, idx)
        if not np.all(np.isfinite(cr)):
            worst = math.nan
            continue
        for j0 in range(0, n, block):
            j1 = min(n, j0 + block)
            bb = b_block_f64(b, j0, j1)
            ref = ar @ bb
            scale = aa @ np.abs(bb)
            err = np.abs(cr[:, j0:j1] - ref) / scale
            e = float(err.max())
            if not math.isfinite(e):
                worst = math.nan
            elif not math.isnan(worst):
                worst = max(worst, e)
    return {"error": worst, "bound": matmul_bound(out_dtype, k, acc_dtype)}
