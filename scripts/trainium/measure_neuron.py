#!/usr/bin/env python3
"""AWS Trainium (Trn2/Trn3) rows for perfledger, measured with the AWS Neuron SDK.

Writes perfledger "external rows" (JSON lines, kind "imported") for `perfledger import FILE
--into RUN.json`: matmul and attention shapes from a perfledger suite file or --shape, each row
timed per iteration on the NeuronCore and verified against a NumPy float64 reference.

UNTESTED ON HARDWARE. The device path (subcommands `compile`, `run`, `nki-benchmark`) was written
from the Neuron documentation below and has never run: the machine this was written on has no
NeuronDevice and the Neuron packages on PyPI are placeholders. `--dry-run` and `--self-test` need no
Neuron package and were run. See scripts/trainium/README.md.

Two Python environments (the nrtpy docs: "The standalone nrtpy wheel and the nki wheel cannot be
installed in the same Python environment"):

  1. compile   (NKI environment, e.g. the PyTorch Neuron venv of the Neuron DLAMI): draws the
               inputs, compiles each NKI kernel to a NEFF (NKI_ARTIFACTS_DIR, set before `import
               nki`, one subprocess per row) and writes WORKDIR/manifest.json.
  2. run       (nrtpy environment): loads each NEFF with nrtpy.NrtpyModel, poisons the output with
               NaN, runs once and verifies, times with NrtpyModel.benchmark(mode="device")
               (per-iteration NeuronCore execution times, BenchmarkResult.durations_ms), poisons
               again, runs once more and verifies, and writes the rows.
  nki-benchmark (fallback, NKI environment only): nki.benchmark(warmup, iters) -> neuron-bench
               latency percentiles. Those rows carry timing.method "percentiles only": samples_s
               then holds the 5th..95th percentiles (step 5), not individual iterations.

Kernels: the NKI sample kernels of github.com/aws-neuron/nki-samples (install that checkout into
the NKI environment): matmul `nki_samples.tutorials.matrix_multiplication.
matrix_multiplication_nki_kernels.nki_matmul_fully_optimized_` (A delivered transposed, [K, M]),
falling back to `nki_matmul_tiled_` for shapes the blocked kernel does not tile; attention
`nki_samples.reference.attention.flash_fwd` (q [b,h,d,s], k [b,kv_h,d,s], v [b,kv_h,s,d], SPMD
grid [b, kv_h]). Cases those kernels cannot run (trans_b, batch > 1, q_len != kv_len with causal,
f16 attention — flash_fwd's mixed_precision runs the TensorEngine in bf16 — and f32) are skipped
with a note on stderr, never written as rows.

Neuron documentation followed (retrieved 2026-11; see README.md):
  nrtpy overview           https://awsdocs-neuron.readthedocs-hosted.com/en/latest/neuron-runtime/nrtpy/index.html
  nrtpy model API          https://awsdocs-neuron.readthedocs-hosted.com/en/latest/neuron-runtime/nrtpy/model.html
  nrtpy tensor API         https://awsdocs-neuron.readthedocs-hosted.com/en/latest/neuron-runtime/nrtpy/tensor.html
  nrtpy configuration      https://awsdocs-neuron.readthedocs-hosted.com/en/latest/neuron-runtime/nrtpy/configuration.html
  nrtpy debug tutorial     https://awsdocs-neuron.readthedocs-hosted.com/en/latest/neuron-runtime/nrtpy/tutorial-debug-neff-nrtpy.html
  nrtpy benchmark tutorial https://awsdocs-neuron.readthedocs-hosted.com/en/latest/neuron-runtime/nrtpy/tutorial-validate-benchmark.html
  nki.benchmark            https://awsdocs-neuron.readthedocs-hosted.com/en/latest/nki/api/generated/nki.benchmark.html
  NKI and LNC              https://awsdocs-neuron.readthedocs-hosted.com/en/latest/nki/get-started/about/lnc.html
  LNC configuration        https://awsdocs-neuron.readthedocs-hosted.com/en/latest/general/arch/neuron-features/logical-neuroncore-config.html
  NCC_EVRF066 (LNC match)  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/compiler/error-codes/EVRF066.html
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import random
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "scripts", "reference"))
import common as C  # noqa: E402  (scripts/reference/common.py: loads without numpy)

SOURCE_PATH = "scripts/trainium/measure_neuron.py"
FIXTURE_PATH = "harness/tests/fixtures/trainium/neuron-fixture.jsonl"
FIXTURE_DATE = "2026-12-01T00:00:00Z"
FIXTURE_SEED = 20261201
FIXTURE_SAMPLES = 12
# Assumed throughputs of the synthetic fixture samples, TFLOP/s per logical NeuronCore at LNC=2
# (two physical NeuronCore-v4). Chosen below the published dense bf16 peak of two Trn3 cores
# (671 TFLOP/s per 8-core chip -> 167.75 TFLOP/s), so a report of the fixture shows a plausible
# percentage. Not a measurement.
FIXTURE_TFLOPS = {"matmul": 120.0, "attention": 60.0}

TOOL = "aws-neuron-sdk"
SDK_PACKAGES = ("neuronx-cc", "libneuronxla", "torch-neuronx", "nki", "nrtpy", "nki-samples",
                "torch", "numpy", "ml-dtypes")
CHIPS = {  # instance family -> device object name / spec id / default LNC
    "trn1": ("Trainium1", "aws-trainium1", 1),
    "trn2": ("Trainium2", "aws-trainium2", 2),
    "trn3": ("Trainium3", "aws-trainium3", 2),
}
ROW_FIELDS = C.CORE_FIELDS + ("timing", "config")
PERCENTILES = tuple(range(5, 100, 5))

MATMUL_MOD = "nki_samples.tutorials.matrix_multiplication.matrix_multiplication_nki_kernels"
ATTN_MOD = "nki_samples.reference.attention"


def utc_now() -> str:
    return C.utc_now()


# ----------------------------------------------------------------------------------------------
# Shapes: --shape (common.py's spelling) and suite files
# ----------------------------------------------------------------------------------------------
def attention_shape(b, hq, hkv, q_len, kv_len, d, causal, scale=None) -> dict:
    return {"batch": int(b), "q_heads": int(hq), "kv_heads": int(hkv), "q_len": int(q_len),
            "kv_len": int(kv_len), "head_dim": int(d), "causal": bool(causal),
            "scale": float(scale) if scale is not None else 1.0 / math.sqrt(d)}


def matmul_shape(b, m, n, k, trans_b=False) -> dict:
    return {"batch": int(b), "m": int(m), "n": int(n), "k": int(k), "trans_b": bool(trans_b)}


def parse_shape(text: str):
    """A matmul (contains 'x') or attention (contains ',') --shape."""
    if "," in text:
        return ("attention", C.parse_attention_shape(text))
    s = C.parse_matmul_shape(text)
    return ("matmul", matmul_shape(s["batch"], s["m"], s["n"], s["k"]))


def read_suite(path: str) -> list:
    """(op, shape, dtypes, name) per case of a perfledger.suite/1 file."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        C.die(f"--suite {path}: {e}")
    if doc.get("schema") != "perfledger.suite/1":
        C.die(f"--suite {path}: schema {doc.get('schema')!r} is not perfledger.suite/1")
    out = []
    for i, c in enumerate(doc.get("cases", [])):
        where = f"--suite {path}: case {i} ({c.get('name', '?')})"
        try:
            if c["op"] == "matmul":
                shape = matmul_shape(c.get("batch", 1), c["m"], c["n"], c["k"],
                                     c.get("trans_b", False))
            elif c["op"] == "attention":
                shape = attention_shape(c.get("batch", 1), c["q_heads"], c["kv_heads"],
                                        c["q_len"], c["kv_len"], c["head_dim"],
                                        c.get("causal", False), c.get("scale"))
            else:
                C.die(f"{where}: unknown op {c['op']!r}")
            dtypes = list(c["dtypes"])
        except KeyError as e:
            C.die(f"{where}: missing field {e}")
        if c.get("output") not in (None, *dtypes):
            C.log(f"note: {where}: output dtype {c['output']!r} ignored (output = input dtype)")
        out.append((c["op"], shape, dtypes, c.get("name") or short_name(c["op"], shape)))
    return out


def short_name(op: str, s: dict) -> str:
    if op == "matmul":
        return f"{'%d×' % s['batch'] if s['batch'] > 1 else ''}{s['m']}x{s['n']}x{s['k']}" \
               f"{' Bt' if s['trans_b'] else ''}"
    return (f"{'b%d ' % s['batch'] if s['batch'] > 1 else ''}h{s['q_heads']}/{s['kv_heads']} "
            f"q{s['q_len']} kv{s['kv_len']} d{s['head_dim']}{' causal' if s['causal'] else ''}")


def precision(dtype: str) -> dict:
    return {"input": dtype, "accum": "f32", "output": dtype}


def flops(op: str, s: dict) -> float:
    """perfledger's conventions (the row carries no FLOP field; used for logs and the fixture)."""
    if op == "matmul":
        return 2.0 * s["batch"] * s["m"] * s["n"] * s["k"]
    sq, skv = s["q_len"], s["kv_len"]
    pairs = sum(min(skv, skv - sq + i + 1) for i in range(sq)) if s["causal"] else sq * skv
    return 4.0 * s["head_dim"] * pairs * s["q_heads"] * s["batch"]


# ----------------------------------------------------------------------------------------------
# What the NKI sample kernels can run
# ----------------------------------------------------------------------------------------------
def kernel_plan(op: str, s: dict, dtype: str):
    """(kernel name, params) or (None, reason why the row is skipped)."""
    if dtype == "f32":
        return None, "f32 is not measured (bf16 and f16 only; f32 is a control on CPUs/GPUs)"
    if s["batch"] != 1:
        return None, "batch > 1 is not supported by the NKI sample kernels used here"
    if op == "matmul":
        if s["trans_b"]:
            return None, ("trans_b: the NKI sample matmul takes B as [K, N]; a transposed copy "
                          "would time a different problem")
        m, n, k = s["m"], s["n"], s["k"]
        if m % 2048 == 0 and n % 1024 == 0 and k % 1024 == 0:
            return "nki_matmul_fully_optimized_", {"TILES_IN_BLOCK_M": 16, "TILES_IN_BLOCK_N": 2,
                                                   "TILES_IN_BLOCK_K": 8}
        if m % 128 == 0 and n % 512 == 0 and k % 128 == 0:
            return "nki_matmul_tiled_", {}
        return None, "M % 128, N % 512 or K % 128 != 0: the NKI sample matmuls do not tile it"
    if dtype != "bf16":
        return None, ("f16 attention: flash_fwd (mixed_precision=True) runs the TensorEngine in "
                      "bf16, so an f16 row would claim a precision it does not have")
    if s["causal"] and s["q_len"] != s["kv_len"]:
        return None, "causal with q_len != kv_len: flash_fwd's causal mask is top-left aligned"
    if s["head_dim"] > 128 or s["q_len"] % 128:
        return None, "flash_fwd needs head_dim <= 128 and q_len % 128 == 0"
    tile = min(2048, s["kv_len"])
    if tile < 512 or s["kv_len"] % tile:
        return None, "flash_fwd needs kv_len a multiple of its seq_tile_size (>= 512)"
    return "flash_fwd", {"seq_tile_size": tile, "mixed_precision": True, "training": False}


# ----------------------------------------------------------------------------------------------
# Inputs and NumPy reference checks (numpy imported lazily)
# ----------------------------------------------------------------------------------------------
def round_to(np, x, dtype: str):
    """Round float32 values to the dtype (round to nearest even); returns float32 values."""
    x = np.asarray(x, dtype=np.float32)
    if dtype == "f32":
        return x.copy()
    if dtype == "f16":
        return x.astype(np.float16).astype(np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    r = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    out = r.view(np.float32)
    return np.where(np.isnan(x), x, out)


def to_bits(np, x32, dtype: str):
    """float32 values already representable in dtype -> storage array (bf16 as uint16 bits)."""
    if dtype == "bf16":
        return (np.ascontiguousarray(x32, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)
    if dtype == "f16":
        return x32.astype(np.float16)
    return x32.astype(np.float32)


def from_bits(np, raw, dtype: str, shape):
    """Device bytes (any dtype view, e.g. nrtpy's void) -> float64 array."""
    raw = np.ascontiguousarray(raw)
    if dtype == "bf16":
        u16 = raw.view(np.uint16).reshape(shape)
        return (u16.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    if dtype == "f16":
        return raw.view(np.float16).reshape(shape).astype(np.float64)
    return raw.view(np.float32).reshape(shape).astype(np.float64)


def uniform(np, rng, shape, dtype: str):
    """common.py's input rule: uniform [-1, 1) drawn in f32, rounded to the dtype, 0 -> 0.5."""
    x = rng.random(shape, dtype=np.float32) * np.float32(2) - np.float32(1)
    x = round_to(np, x, dtype)
    x[x == 0] = 0.5
    return x


def make_inputs(np, op: str, s: dict, dtype: str, seed: int) -> dict:
    """float32 arrays holding dtype-representable values, in the kernels' layouts."""
    rng = np.random.default_rng(seed)
    if op == "matmul":
        a = uniform(np, rng, (s["m"], s["k"]), dtype)
        b = uniform(np, rng, (s["k"], s["n"]), dtype)
        return {"lhsT": np.ascontiguousarray(a.T), "rhs": b}
    b_, hq, hkv, sq, skv, d = (s[x] for x in ("batch", "q_heads", "kv_heads", "q_len", "kv_len",
                                                "head_dim"))
    q = uniform(np, rng, (b_, hq, sq, d), dtype)
    k = uniform(np, rng, (b_, hkv, skv, d), dtype)
    v = uniform(np, rng, (b_, hkv, skv, d), dtype)
    # flash_fwd layouts: q [b,h,d,s], k [b,kv_h,d,s], v [b,kv_h,s,d]
    return {"q": np.ascontiguousarray(q.transpose(0, 1, 3, 2)),
            "k": np.ascontiguousarray(k.transpose(0, 1, 3, 2)), "v": v}


def output_shape(op: str, s: dict) -> tuple:
    if op == "matmul":
        return (s["m"], s["n"])
    return (s["batch"], s["q_heads"], s["q_len"], s["head_dim"])


def matmul_check(np, s: dict, dtype: str, inputs: dict, out64, rows) -> dict:
    """common.matmul_rows_check on sampled output rows; A is stored transposed (lhsT [K, M])."""
    lhsT, rhs = inputs["lhsT"], inputs["rhs"]
    return C.matmul_rows_check(
        [(0, i) for _, i in rows], n=s["n"], k=s["k"],
        a_rows_f64=lambda b, idx: lhsT[:, idx].T.astype(np.float64),
        b_block_f64=lambda b, j0, j1: rhs[:, j0:j1].astype(np.float64),
        c_rows_f64=lambda b, idx: out64[idx, :],
        out_dtype=dtype, acc_dtype="f32")


def pick_query_rows(np, seed: int, s: dict, count: int) -> list:
    total = s["batch"] * s["q_heads"] * s["q_len"]
    if total <= count:
        flat = list(range(total))
    else:
        flat = sorted(int(x) for x in np.random.default_rng(seed).choice(total, count,
                                                                         replace=False))
    hq, sq = s["q_heads"], s["q_len"]
    return [(f // (hq * sq), (f // sq) % hq, f % sq) for f in flat]


def attention_check(np, s: dict, dtype: str, inputs: dict, out64, rows) -> dict:
    """torch_attention.py's rule with a NumPy naive same-precision computation:
    error = max |O - Oref| / (P|V|), Oref = float64 softmax(q K^T scale, end-aligned mask) V;
    bound = 2 * naive_error + 4 * u_out, naive = S = q K^T rounded to the dtype (f32
    accumulation), times the rounded scale, rounded, softmax (f32) rounded, P V rounded."""
    group = s["q_heads"] // s["kv_heads"]
    scale, sq, skv = s["scale"], s["q_len"], s["kv_len"]
    q, k, v = inputs["q"], inputs["k"], inputs["v"]      # [b,h,d,s], [b,kv,d,s], [b,kv,s,d]
    sc = round_to(np, np.float32(scale), dtype)
    worst, worst_naive = 0.0, 0.0
    for b, h, i in rows:
        g = h // group
        visible = skv - sq + i + 1 if s["causal"] else skv
        q32 = q[b, h, :, i]
        k32 = k[b, g, :, :visible].T                      # [visible, d]
        v32 = v[b, g, :visible, :]
        q64, k64, v64 = q32.astype(np.float64), k32.astype(np.float64), v32.astype(np.float64)
        sc64 = (k64 @ q64) * scale
        p = np.exp(sc64 - sc64.max())
        p /= p.sum()
        ref = p @ v64
        den = p @ np.abs(v64)
        o = out64[b, h, i]
        if not np.all(np.isfinite(o)):
            worst = math.nan
        elif not math.isnan(worst):
            worst = max(worst, float((np.abs(o - ref) / den).max()))
        sn = round_to(np, k32 @ q32, dtype)
        sn = round_to(np, sn * sc, dtype)
        e = np.exp(sn - sn.max())
        pn = round_to(np, e / e.sum(dtype=np.float32), dtype)
        on = round_to(np, pn @ v32, dtype).astype(np.float64)
        worst_naive = max(worst_naive, float((np.abs(on - ref) / den).max()))
    bound = 2.0 * worst_naive + 4.0 * C.UNIT_ROUNDOFF[dtype]
    return {"error": worst, "bound": bound, "naive_error": worst_naive}


def check_output(np, op, s, dtype, inputs, out64, seed, verify_rows) -> dict:
    if op == "matmul":
        rows = C.pick_rows(seed, 1, s["m"], verify_rows)
        return dict(matmul_check(np, s, dtype, inputs, out64, rows), rows=len(rows),
                    full=len(rows) == s["m"])
    rows = pick_query_rows(np, seed, s, verify_rows)
    total = s["batch"] * s["q_heads"] * s["q_len"]
    return dict(attention_check(np, s, dtype, inputs, out64, rows), rows=len(rows),
                full=len(rows) == total)


def verification_of(checks: list) -> dict:
    """common.merge_checks, the format common.py writes ({method, samples, error, bound,
    verdict})."""
    c0 = checks[0]
    return C.merge_checks([{"error": c["error"], "bound": c["bound"]} for c in checks],
                          "full" if c0["full"] else "rows", c0["rows"])


# ----------------------------------------------------------------------------------------------
# Machine description
# ----------------------------------------------------------------------------------------------
def read_text(path: str):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip() or None
    except OSError:
        return None


def instance_info():
    """({provider, type, region, pricing_model, detected_by} or None). Never IMDS, never guessed:
    PERFLEDGER_INSTANCE, else DMI product_name when sys_vendor is 'Amazon EC2'."""
    itype, how = os.environ.get("PERFLEDGER_INSTANCE"), "env"
    if not itype:
        vendor = read_text("/sys/class/dmi/id/sys_vendor")
        prod = read_text("/sys/class/dmi/id/product_name")
        if vendor == "Amazon EC2" and prod:
            itype, how = prod, "dmi"
    if not itype:
        return None
    info = {"provider": "aws", "type": itype, "detected_by": how}
    for key, var in (("region", "PERFLEDGER_REGION"), ("pricing_model", "PERFLEDGER_PRICING_MODEL")):
        if os.environ.get(var):
            info[key] = os.environ[var]
    return info


def chip_of(args, inst):
    """(name, spec, default lnc) from --chip or the instance family; None when unknown."""
    fam = args.chip or (inst["type"].split(".")[0].rstrip("nu").lower() if inst else None)
    if fam and fam.startswith("trn") and fam[:4] in CHIPS:
        return CHIPS[fam[:4]]
    return None


def lnc_setting(default_lnc: int):
    """The LNC degree. When NEURON_LOGICAL_NC_CONFIG is unset it is SET here to the chip default
    (before nki/nrtpy are imported), so the standalone NKI kernel (which otherwise defaults to
    LNC=1, NCC_EVRF066) and the runtime (default 2 on Trn2/Trn3) agree."""
    raw = os.environ.get("NEURON_LOGICAL_NC_CONFIG")
    if raw is None:
        os.environ["NEURON_LOGICAL_NC_CONFIG"] = str(default_lnc)
        return default_lnc, (f"NEURON_LOGICAL_NC_CONFIG was unset; set to the chip default "
                             f"{default_lnc} by this script")
    try:
        v = int(raw)
    except ValueError:
        C.die(f"NEURON_LOGICAL_NC_CONFIG={raw!r} is not 1 or 2")
    if v not in (1, 2):
        C.die(f"NEURON_LOGICAL_NC_CONFIG={raw!r} is not 1 or 2")
    return v, f"NEURON_LOGICAL_NC_CONFIG={raw}"


def versions() -> dict:
    from importlib import metadata
    out = {}
    for p in SDK_PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


def version_string(v: dict) -> str:
    keys = [k for k in ("neuronx-cc", "nki", "libneuronxla", "torch-neuronx", "nrtpy",
                        "nki-samples") if k in v]
    return ", ".join(f"{k} {v[k]}" for k in keys) or "versions unknown"


# ----------------------------------------------------------------------------------------------
# Rows
# ----------------------------------------------------------------------------------------------
def device_obj(name, spec, logical_cores, lnc) -> dict:
    return {"name": name, "spec": spec, "logical_neuron_cores": logical_cores, "lnc": lnc,
            "backend": "neuron"}


def build_row(*, op, shape, dtype, device, instance, samples_s, verification, tool_version,
              date, source, timing, config, core_only=False) -> dict:
    row = {"kind": "imported", "op": op, "shape": shape, "precision": precision(dtype),
           "device": device, "instance": instance, "samples_s": [float(x) for x in samples_s],
           "verification": verification, "tool": TOOL, "tool_version": tool_version,
           "date": date, "source": source, "timing": timing, "config": config}
    return C.finish_row(row, core_only)


def validate_row(row: dict) -> list:
    """What harness/src/runfile/external.rs (ExternalRow::parse_line + validate) accepts."""
    errs = []
    extra = set(row) - set(ROW_FIELDS)
    if extra:
        errs.append(f"unknown top-level fields {sorted(extra)} (deny_unknown_fields)")
    for k in ("kind", "op", "shape", "precision", "device", "samples_s", "verification", "tool"):
        if k not in row:
            errs.append(f"missing {k}")
    if errs:
        return errs
    try:
        back = json.loads(C.dumps_row(row))
        if back != row:
            errs.append("does not round-trip through JSON")
    except (TypeError, ValueError) as e:
        errs.append(f"not JSON: {e}")
    if row["kind"] != "imported":
        errs.append(f"kind {row['kind']!r}")
    op, sh = row["op"], row["shape"]
    want = (("batch", "m", "n", "k", "trans_b") if op == "matmul" else
            ("batch", "q_heads", "kv_heads", "q_len", "kv_len", "head_dim", "causal", "scale"))
    if op not in ("matmul", "attention"):
        errs.append(f"op {op!r}")
    elif set(sh) != set(want):
        errs.append(f"shape keys {sorted(sh)} != {sorted(want)}")
    else:
        for key in want:
            v = sh[key]
            if key in ("trans_b", "causal"):
                ok = isinstance(v, bool)
            elif key == "scale":
                ok = isinstance(v, float) and math.isfinite(v) and v > 0
            else:
                ok = isinstance(v, int) and not isinstance(v, bool) and v >= 1
            if not ok:
                errs.append(f"shape.{key} = {v!r}")
        if op == "attention":
            if sh["q_heads"] % sh["kv_heads"]:
                errs.append("q_heads not a multiple of kv_heads")
            if sh["causal"] and sh["q_len"] > sh["kv_len"]:
                errs.append("causal with q_len > kv_len")
    pr = row["precision"]
    if not isinstance(pr, dict) or set(pr) != {"input", "accum", "output"} \
            or not all(v in C.DTYPES for v in pr.values()):
        errs.append(f"precision {pr}")
    dev = row["device"]
    if not isinstance(dev, dict) or not isinstance(dev.get("name"), str) or not dev["name"]:
        errs.append(f"device {dev}")
    else:
        if dev.get("spec") not in ("aws-trainium1", "aws-trainium2", "aws-trainium3"):
            errs.append(f"device.spec {dev.get('spec')!r}")
        for key in ("logical_neuron_cores", "lnc"):
            v = dev.get(key)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                errs.append(f"device.{key} = {v!r}")
        if dev.get("lnc") not in (1, 2):
            errs.append("device.lnc not 1 or 2")
        if dev.get("backend") != "neuron":
            errs.append("device.backend != neuron")
        if "software" in dev and not isinstance(dev["software"], bool):
            errs.append("device.software not bool")
    inst = row.get("instance")
    if inst is not None:
        if not isinstance(inst, dict) or set(inst) - {"provider", "type", "region",
                                                       "pricing_model", "detected_by"}:
            errs.append(f"instance {inst}")
    s = row["samples_s"]
    if not (isinstance(s, list) and s and all(isinstance(x, float) and math.isfinite(x) and x > 0
                                              for x in s)):
        errs.append("samples_s must be a non-empty list of positive finite floats")
    ver = row["verification"]
    if not isinstance(ver, dict) or set(ver) - {"method", "samples", "error", "bound", "verdict",
                                                 "detail"}:
        errs.append(f"verification {ver}")
    elif not ver.get("method"):
        errs.append("verification.method empty")
    elif ver["method"] == "none":
        if "verdict" in ver:
            errs.append("method none carries no verdict")
    else:
        if ver.get("verdict") not in ("pass", "fail"):
            errs.append(f"verification.verdict {ver.get('verdict')!r}")
        for k in ("error", "bound"):
            v = ver.get(k)
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                errs.append(f"verification.{k} = {v!r}")
    for k in ("tool", "tool_version", "date", "source"):
        if not isinstance(row.get(k), str) or not row[k].strip():
            errs.append(f"{k} empty (an imported row states date and source)")
    try:
        _dt.datetime.strptime(row["date"], "%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError, KeyError):
        errs.append(f"date {row.get('date')!r} not an RFC 3339 UTC date-time")
    for k in ("timing", "config"):
        if k in row and not isinstance(row[k], dict):
            errs.append(f"{k} must be an object")
    if "flops" in row or "gflops" in row:
        errs.append("external rows carry no FLOP field")
    return errs


# ----------------------------------------------------------------------------------------------
# --dry-run: the committed fixture
# ----------------------------------------------------------------------------------------------
FIXTURE_CASES = (
    ("matmul", matmul_shape(1, 2048, 2048, 2048), "bf16"),
    ("matmul", matmul_shape(1, 4096, 4096, 4096), "bf16"),
    ("attention", attention_shape(1, 32, 8, 2048, 2048, 128, True), "bf16"),
)


def fixture_rows(tflops: dict | None = None) -> list:
    tflops = tflops or FIXTURE_TFLOPS
    rows = []
    for idx, (op, shape, dtype) in enumerate(FIXTURE_CASES):
        rng = random.Random(f"{FIXTURE_SEED}|{idx}|{op}|{short_name(op, shape)}|{dtype}")
        t0 = flops(op, shape) / (tflops[op] * 1e12)
        # +-1% deterministic jitter around the assumed time, rounded to 1 ns
        samples = [round(t0 * (1.0 + rng.uniform(-0.01, 0.01)), 9) for _ in range(FIXTURE_SAMPLES)]
        rows.append(build_row(
            op=op, shape=shape, dtype=dtype, device=device_obj("Trainium3", "aws-trainium3", 1, 2),
            instance=None, samples_s=samples, verification={"method": "none"},
            tool_version="fixture", date=FIXTURE_DATE, source="fixture",
            timing={"method": "synthetic", "note": "fixture: samples derived from "
                    "config.fixture_assumed_tflops with +-1% deterministic jitter; not measured",
                    "samples": FIXTURE_SAMPLES},
            config={"fixture": True, "fixture_assumed_tflops": tflops[op],
                    "fixture_tflops_basis": "per logical NeuronCore at LNC=2 (2 physical "
                    "NeuronCore-v4); assumed, not measured", "seed": FIXTURE_SEED,
                    "generator": SOURCE_PATH + " --dry-run",
                    "verification_note": "unverified: no device output exists for a fixture"}))
    return rows


def write_rows(rows: list, path: str | None, append: bool, force: bool = False):
    if path and path != "-":
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        if force and os.path.exists(path):
            os.remove(path)
    w = C.RowWriter(path, append)
    for r in rows:
        w.write(r)
    w.close()


def dry_run(args) -> int:
    rows = fixture_rows(args.fixture_tflops)
    for r in rows:
        errs = validate_row(r)
        if errs:
            C.die(f"fixture row invalid: {errs}", 1)
    out = args.out or os.path.join(REPO, FIXTURE_PATH)
    write_rows(rows, out, append=False, force=True)  # deterministic: regenerated in place
    C.log(f"wrote {len(rows)} fixture rows to {out} (source \"fixture\", unverified)")
    return 0


# ----------------------------------------------------------------------------------------------
# Device path, phase 1: compile (NKI environment)
# ----------------------------------------------------------------------------------------------
def plan_rows(args) -> list:
    cases = []
    if args.suite:
        cases += read_suite(args.suite)
    for op, shape in args.shape:
        cases.append((op, shape, list(args.dtype), short_name(op, shape)))
    if not cases:
        C.die("give --suite FILE or --shape S")
    plan = []
    for op, shape, dtypes, name in cases:
        for dt in dtypes:
            if dt == "f32":
                C.log(f"skip {op} {name} f32: not measured (bf16 and f16 only)")
                continue
            if args.dtype and dt not in args.dtype:
                continue
            kernel, params = kernel_plan(op, shape, dt)
            if kernel is None:
                C.log(f"skip {op} {name} {dt}: {params}")
                continue
            rid = f"{op}-{short_name(op, shape)}-{dt}".replace(" ", "_").replace("/", "-") \
                .replace("×", "x")
            seed = C.derive_seed(args.seed, op, json.dumps(shape, sort_keys=True), dt)
            plan.append({"id": rid, "op": op, "shape": shape, "dtype": dt, "name": name,
                         "kernel": kernel, "params": params, "input_seed": seed})
    return plan


def compile_all(args) -> int:
    chip = chip_of(args, instance_info())
    lnc, lnc_how = lnc_setting(chip[2] if chip else 2)   # before `import nki` (subprocesses)
    import numpy as np
    wd = os.path.abspath(args.workdir)
    os.makedirs(wd, exist_ok=True)
    plan = plan_rows(args)
    done = []
    for r in plan:
        rd = os.path.join(wd, r["id"])
        os.makedirs(rd, exist_ok=True)
        inputs = make_inputs(np, r["op"], r["shape"], r["dtype"], r["input_seed"])
        np.savez(os.path.join(rd, "inputs.npz"),
                 **{k: to_bits(np, v, r["dtype"]) for k, v in inputs.items()})
        with open(os.path.join(rd, "row.json"), "w", encoding="utf-8") as f:
            json.dump(r, f)
        C.log(f"compile {r['id']} with {r['kernel']} ...")
        env = dict(os.environ, NKI_ARTIFACTS_DIR=os.path.join(rd, "neff"))
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "_compile-one", rd],
                           env=env)
        if p.returncode != 0:
            C.log(f"  compile of {r['id']} failed (exit {p.returncode}); row left out")
            continue
        with open(os.path.join(rd, "compiled.json"), encoding="utf-8") as f:
            r.update(json.load(f))
        done.append(r)
    manifest = {"rows": done, "compile_versions": versions(), "compile_host": socket.gethostname(),
                "lnc": lnc, "lnc_source": lnc_how, "seed": args.seed, "argv": sys.argv[1:]}
    with open(os.path.join(wd, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    C.log(f"{len(done)} of {len(plan)} rows compiled; manifest {wd}/manifest.json")
    return 0 if len(done) == len(plan) else 1


def load_kernel(name: str):
    import importlib
    mod = importlib.import_module(ATTN_MOD if name == "flash_fwd" else MATMUL_MOD)
    return mod, getattr(mod, name)


def nki_inputs(np, rd: str, dtype: str) -> dict:
    """The stored inputs as arrays NKI accepts (bf16 through ml_dtypes.bfloat16)."""
    raw = dict(np.load(os.path.join(rd, "inputs.npz")))
    if dtype == "bf16":
        import ml_dtypes
        return {k: v.view(ml_dtypes.bfloat16) for k, v in raw.items()}
    return raw


def call_kernel(mod, kern, r: dict, arrs: dict):
    """Invoke an NKI sample kernel the way its docstring shows (executes on the NeuronCore)."""
    if r["kernel"] == "flash_fwd":
        s = r["shape"]
        cfg = mod.FlashConfig(seq_tile_size=r["params"]["seq_tile_size"], training=False)
        return kern[s["batch"], s["kv_heads"]](arrs["q"], arrs["k"], arrs["v"], None,
                                              softmax_scale=s["scale"],
                                              use_causal_mask=s["causal"],
                                              mixed_precision=True, config=cfg)
    return kern(arrs["lhsT"], arrs["rhs"], **r["params"])


def compile_one(rd: str) -> int:
    """Runs in a subprocess with NKI_ARTIFACTS_DIR set before `import nki` (nrtpy tutorial)."""
    import numpy as np
    with open(os.path.join(rd, "row.json"), encoding="utf-8") as f:
        r = json.load(f)
    mod, kern = load_kernel(r["kernel"])
    out = call_kernel(mod, kern, r, nki_inputs(np, rd, r["dtype"]))
    neffs = [os.path.join(root, fn) for root, _, files in os.walk(os.path.join(rd, "neff"))
             for fn in files if fn.endswith(".neff")]
    if len(neffs) != 1:
        C.log(f"  expected one NEFF under {rd}/neff, found {neffs}")
        return 1
    np.save(os.path.join(rd, "nki_output.npy"), np.asarray(out).view(np.uint8))
    with open(os.path.join(rd, "compiled.json"), "w", encoding="utf-8") as f:
        json.dump({"neff": os.path.relpath(neffs[0], rd), "kernel_module": mod.__name__}, f)
    return 0


# ----------------------------------------------------------------------------------------------
# Device path, phase 2: run (nrtpy environment)
# ----------------------------------------------------------------------------------------------
def machine(args, lnc_default_from_manifest=None):
    inst = instance_info()
    chip = chip_of(args, inst)
    if chip is None:
        C.die("cannot tell the chip: set PERFLEDGER_INSTANCE=trn2.48xlarge (or trn3...) or pass "
              "--chip trn2|trn3 (never guessed)")
    lnc, how = lnc_setting(chip[2])
    if lnc_default_from_manifest is not None and lnc_default_from_manifest != lnc:
        C.die(f"LNC {lnc} now but the NEFFs were compiled with LNC {lnc_default_from_manifest} "
              "(NCC_EVRF066: the runtime and the NEFF must agree)")
    return inst, chip, lnc, how


def row_config(args, r, lnc_how, vers, extra) -> dict:
    cfg = {"seed": args.seed, "input_seed": r["input_seed"], "kernel": r["kernel"],
           "kernel_params": r["params"], "kernel_module": r.get("kernel_module"),
           "layout": ("A stored transposed [K, M] (lhsT), B [K, N]" if r["op"] == "matmul" else
                      "q [b,h,d,s], k [b,kv_h,d,s], v [b,kv_h,s,d], o [b,h,s,d]; GQA head h reads "
                      "kv head h // (Hq/Hkv)"),
           "lnc_source": lnc_how,
           "neuron_rt_visible_cores": os.environ.get("NEURON_RT_VISIBLE_CORES"),
           "versions": vers, "python": platform.python_version(), "argv": sys.argv[1:]}
    cfg.update(extra)
    return cfg


def run_all(args) -> int:
    wd = os.path.abspath(args.workdir)
    try:
        with open(os.path.join(wd, "manifest.json"), encoding="utf-8") as f:
            man = json.load(f)
    except (OSError, ValueError) as e:
        C.die(f"--workdir {wd}: no readable manifest.json (run `compile` first): {e}")
    inst, (chip_name, spec, _), lnc, lnc_how = machine(args, man.get("lnc"))  # before nrtpy
    import numpy as np
    import nrtpy
    from nrtpy import NrtpyModel, NrtpyTensor
    if args.core is not None:
        nrtpy.configure(visible_cores=[args.core])
    vers = dict(man.get("compile_versions", {}), **{f"run:{k}": v for k, v in versions().items()})
    tool_version = f"{version_string(man.get('compile_versions', {}))}; run: " \
                   f"{version_string(versions())}; nrtpy benchmark(mode=device)"
    host = socket.gethostname()
    source = (f"{host} ({inst['type'] if inst else 'instance unknown'}): measured with nrtpy "
              f"NrtpyModel.benchmark(mode='device') per-iteration NeuronCore times of NKI sample "
              f"kernels, 1 logical NeuronCore at LNC={lnc} ({SOURCE_PATH})")
    rows, failed = [], 0
    for r in man["rows"]:
        rd = os.path.join(wd, r["id"])
        op, s, dt = r["op"], r["shape"], r["dtype"]
        raw = dict(np.load(os.path.join(rd, "inputs.npz")))
        inputs = {k: from_bits(np, v, dt, v.shape).astype(np.float32) for k, v in raw.items()}
        model = NrtpyModel.load_from_neff(os.path.join(rd, r["neff"]), core_id=0)
        ins = {name: NrtpyTensor.from_numpy(raw[name], name=name)
               for name in model.input_tensors_info}
        (oname, oinfo), = model.output_tensors_info.items()
        oshape = output_shape(op, s)
        nan_bits = to_bits(np, np.full(oshape, np.nan, dtype=np.float32), dt)
        outs = {oname: NrtpyTensor.from_numpy(nan_bits, name=oname)}
        vseed = C.derive_seed(args.seed, "verify", r["id"])
        checks = []

        def run_and_check():
            outs[oname].write_from_numpy(nan_bits)              # poison
            model(inputs=ins, outputs=outs)
            out64 = from_bits(np, outs[oname].numpy(), dt, oshape)
            checks.append(check_output(np, op, s, dt, inputs, out64, vseed, args.verify_rows))

        run_and_check()
        stats = model.benchmark(inputs=ins, outputs=outs, warmup_iter=args.warmup,
                                benchmark_iter=args.iters, mode="device")
        samples = [d * 1e-3 for d in stats.durations_ms]
        run_and_check()
        ver = verification_of(checks)
        failed += ver["verdict"] == "fail"
        timing = {"method": "device", "clock": "nrtpy NrtpyModel.benchmark(mode='device'): "
                  "NeuronCore execution time by device-side tracing, per iteration",
                  "warmup_iters": stats.warmup_iterations, "iters_per_sample": 1,
                  "samples": len(samples), "stop_reason": "iters",
                  "nrtpy_mean_ms": stats.mean_ms, "nrtpy_std_dev_ms": stats.std_dev_ms}
        extra = {"verification_rule": ("error = max |C-Cref| / (|A||B|); bound = 2 (u_out + K "
                                       "u_acc)") if op == "matmul" else
                 "error = max |O-Oref| / (P|V|); bound = 2*naive_error + 4*u_out",
                 "checks": [{"error": C.json_number(c["error"]), "bound": c["bound"]}
                            for c in checks]}
        if op == "attention":
            extra["naive_error"] = C.json_number(max(c["naive_error"] for c in checks))
        row = build_row(op=op, shape=s, dtype=dt, device=device_obj(chip_name, spec, 1, lnc),
                        instance=inst, samples_s=samples, verification=ver,
                        tool_version=tool_version, date=utc_now(), source=source, timing=timing,
                        config=row_config(args, r, lnc_how, vers, extra),
                        core_only=args.core_fields_only)
        rows.append(row)
        med = sorted(samples)[len(samples) // 2]
        C.log(f"{r['id']}: median {med * 1e3:.3f} ms = {flops(op, s) / med / 1e12:.1f} TFLOP/s; "
              f"verification {ver['verdict']} (error {ver['error']}, bound {ver['bound']:.3g})")
    write_rows(rows, args.out, args.append)
    return 1 if failed else 0


# ----------------------------------------------------------------------------------------------
# Fallback: nki.benchmark percentiles (NKI environment)
# ----------------------------------------------------------------------------------------------
def nki_benchmark_all(args) -> int:
    inst, (chip_name, spec, _), lnc, lnc_how = machine(args)  # sets the LNC before `import nki`
    import numpy as np
    import nki
    vers = versions()
    plan = plan_rows(args)
    wd = os.path.abspath(args.workdir)
    host = socket.gethostname()
    source = (f"{host} ({inst['type'] if inst else 'instance unknown'}): measured with "
              f"nki.benchmark (neuron-bench latency percentiles) of NKI sample kernels, 1 logical "
              f"NeuronCore at LNC={lnc} ({SOURCE_PATH})")
    rows, failed = [], 0
    for r in plan:
        rd = os.path.join(wd, r["id"])
        os.makedirs(rd, exist_ok=True)
        op, s, dt = r["op"], r["shape"], r["dtype"]
        inputs = make_inputs(np, op, s, dt, r["input_seed"])
        np.savez(os.path.join(rd, "inputs.npz"), **{k: to_bits(np, v, dt) for k, v in inputs.items()})
        arrs = nki_inputs(np, rd, dt)
        mod, kern = load_kernel(r["kernel"])
        vseed = C.derive_seed(args.seed, "verify", r["id"])
        oshape = output_shape(op, s)
        # verified: two plain executions of the same kernel (nki.jit output returned as NumPy)
        checks = []
        for _ in range(2):
            out = np.asarray(call_kernel(mod, kern, r, arrs))
            checks.append(check_output(np, op, s, dt, inputs, from_bits(np, out, dt, oshape),
                                       vseed, args.verify_rows))
        bench = nki.benchmark(warmup=args.warmup, iters=args.iters,
                              save_neff_name=os.path.join(rd, "bench.neff"))(
            getattr(kern, "func", kern))
        call_kernel(mod, bench, r, arrs)
        lat = bench.benchmark_result.nc_latency
        samples = [float(lat.get_latency_percentile(p)) * 1e-6 for p in PERCENTILES]  # us -> s
        ver = verification_of(checks)
        failed += ver["verdict"] == "fail"
        timing = {"method": "percentiles only", "clock": "nki.benchmark -> neuron-bench "
                  "latency (nc_latency.get_latency_percentile, microseconds)",
                  "percentiles": list(PERCENTILES),
                  "note": "samples_s holds these percentiles of the per-iteration latency, not "
                          "individual iterations; neuron-bench latency includes more than the "
                          "kernel (nki.benchmark docs)",
                  "warmup_iters": args.warmup, "iters": args.iters, "iters_per_sample": 1}
        extra = {"verification_source": "two separate executions of the same nki.jit kernel "
                                        "(not the benchmarked iterations)"}
        rows.append(build_row(op=op, shape=s, dtype=dt, device=device_obj(chip_name, spec, 1, lnc),
                              instance=inst, samples_s=samples, verification=ver,
                              tool_version=f"{version_string(vers)}; nki.benchmark percentiles",
                              date=utc_now(), source=source, timing=timing,
                              config=row_config(args, r, lnc_how, vers, extra),
                              core_only=args.core_fields_only))
        C.log(f"{r['id']}: p50 {samples[len(samples) // 2] * 1e3:.3f} ms; verification "
              f"{ver['verdict']}")
    write_rows(rows, args.out, args.append)
    return 1 if failed else 0


# ----------------------------------------------------------------------------------------------
# --self-test (no Neuron package; needs numpy)
# ----------------------------------------------------------------------------------------------
def self_test(args) -> int:
    try:
        import numpy as np
    except ImportError:
        C.die("--self-test needs numpy (python3 -m venv /tmp/v && /tmp/v/bin/pip install numpy)")
    problems = []

    def expect(cond, what):
        if not cond:
            problems.append(what)

    # 1. fixture rows: fields, determinism, the exact shapes the Rust test relies on
    rows = fixture_rows()
    for r in rows:
        for e in validate_row(r):
            problems.append(f"fixture {r['op']}: {e}")
        expect(r["source"] == "fixture" and r["tool_version"] == "fixture", "fixture provenance")
        expect(r["date"] == FIXTURE_DATE, "fixture date")
        expect(r["verification"] == {"method": "none"}, "fixture verification")
        expect(r["device"] == device_obj("Trainium3", "aws-trainium3", 1, 2), "fixture device")
        expect(len(r["samples_s"]) == FIXTURE_SAMPLES, "fixture sample count")
        expect(r["config"]["fixture"] is True, "config.fixture")
    expect([C.dumps_row(r) for r in rows] == [C.dumps_row(r) for r in fixture_rows()],
           "fixture not deterministic")
    expect([r["shape"] for r in rows] == [c[1] for c in FIXTURE_CASES], "fixture shapes")
    fx = os.path.join(REPO, FIXTURE_PATH)
    if os.path.exists(fx):
        with open(fx, encoding="utf-8") as f:
            expect(f.read() == "".join(C.dumps_row(r) + "\n" for r in rows),
                   f"{FIXTURE_PATH} differs from --dry-run output (rerun --dry-run)")
    # the validator rejects what external.rs rejects
    bad = dict(rows[0], flops=1)
    expect(validate_row(bad), "validator accepted an unknown field")
    expect(validate_row(dict(rows[0], verification={"method": "none", "verdict": "pass"})),
           "validator accepted method none with a verdict")
    expect(validate_row(dict(rows[0], source="")), "validator accepted an empty source")

    # 2. matmul checker on a tiny shape (bf16 and f16); B square so "B transposed" is a problem
    #    of the same shape
    mm_good = {}
    for dt in ("bf16", "f16"):
        s = matmul_shape(1, 24, 48, 48)
        inp = make_inputs(np, "matmul", s, dt, 7)
        a = inp["lhsT"].T.astype(np.float64)
        b = inp["rhs"].astype(np.float64)
        good = round_to(np, (a @ b).astype(np.float32), dt).astype(np.float64)
        rt = from_bits(np, to_bits(np, good.astype(np.float32), dt), dt, good.shape)
        expect(np.array_equal(rt, good), f"{dt} storage round trip")

        def verdict_of(out):
            return verification_of([check_output(np, "matmul", s, dt, inp, out, 3, 8)])

        v = verdict_of(good)
        mm_good[dt] = (s, v)
        expect(v["verdict"] == "pass", f"matmul {dt}: correct output rejected ({v})")
        expect(v["method"] == "rows" and v["samples"] == 8, f"matmul {dt}: method/samples {v}")
        wrong = {
            "K off by one": round_to(np, (a[:, :-1] @ b[:-1]).astype(np.float32), dt),
            "B transposed": round_to(np, (a @ b.T).astype(np.float32), dt),
            "negated": -good,
            "unwritten (NaN)": np.full_like(good, np.nan),
            "stale (rows permuted)": good[::-1].copy(),
            "perturbed 5%": good * 1.05,
        }
        for name, out in wrong.items():
            v = verdict_of(np.asarray(out, dtype=np.float64))
            expect(v["verdict"] == "fail", f"matmul {dt}: {name} accepted ({v})")
            if name.startswith("unwritten"):
                expect(v["error"] is None, "NaN error not null")

    # 3. attention checker on a tiny GQA causal shape (bf16)
    dt = "bf16"
    s = attention_shape(1, 4, 2, 64, 64, 16, True)
    inp = make_inputs(np, "attention", s, dt, 11)
    q = inp["q"].transpose(0, 1, 3, 2).astype(np.float64)     # [b,h,s,d]
    k = inp["k"].transpose(0, 1, 3, 2).astype(np.float64)
    v = inp["v"].astype(np.float64)

    def attn(scale, causal=True, tiled=False):
        o = np.zeros((1, s["q_heads"], s["q_len"], s["head_dim"]))
        grp = s["q_heads"] // s["kv_heads"]
        for h in range(s["q_heads"]):
            g = h % s["kv_heads"] if tiled else h // grp
            sc = q[0, h] @ k[0, g].T * scale
            if causal:
                i = np.arange(s["q_len"])[:, None]
                j = np.arange(s["kv_len"])[None, :]
                sc = np.where(j <= s["kv_len"] - s["q_len"] + i, sc, -np.inf)
            p = np.exp(sc - sc.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            o[0, h] = p @ v[0, g]
        return round_to(np, o.astype(np.float32), dt).astype(np.float64)

    def averdict(out):
        c = check_output(np, "attention", s, dt, inp, out, 5, 16)
        return verification_of([c]), c

    good = attn(s["scale"])
    ver, c = averdict(good)
    expect(ver["verdict"] == "pass", f"attention: correct output rejected ({ver}, {c})")
    wrong = {"wrong scale (x3)": attn(s["scale"] * 3), "causal mask ignored": attn(s["scale"], False),
             "GQA heads tiled": attn(s["scale"], tiled=True),
             "unwritten (NaN)": np.full_like(good, np.nan), "negated": -good,
             "perturbed +0.05": good + 0.05}
    for name, out in wrong.items():
        ver, c = averdict(out)
        expect(ver["verdict"] == "fail", f"attention: {name} accepted ({ver})")

    # 4. a measured-style row built from a checker verdict validates (fake durations, no device)
    s, v = mm_good["bf16"]
    row = build_row(op="matmul", shape=s, dtype="bf16",
                    device=device_obj("Trainium2", "aws-trainium2", 1, 2),
                    instance={"provider": "aws", "type": "trn2.48xlarge", "detected_by": "env"},
                    samples_s=[1e-3] * 10, verification=v, tool_version="self-test",
                    date=utc_now(), source="self-test", timing={}, config={})
    for e in validate_row(row):
        problems.append(f"measured-style row: {e}")
    expect(row["verification"]["verdict"] == "pass", "measured-style row verdict")
    # 5. planning: skips are stated, the fixture shapes are runnable
    for op, sh, dt in FIXTURE_CASES:
        expect(kernel_plan(op, sh, dt)[0] is not None, f"fixture case not runnable: {op} {sh}")
    expect(kernel_plan("matmul", matmul_shape(1, 2048, 2048, 2048), "f32")[0] is None, "f32 skip")
    expect(kernel_plan("attention", attention_shape(1, 8, 8, 1024, 1024, 64, False), "f16")[0]
           is None, "f16 attention skip")
    expect(chip_of(argparse.Namespace(chip=None), {"type": "trn3.48xlarge"})[1] == "aws-trainium3",
           "trn3 chip")
    expect(chip_of(argparse.Namespace(chip=None), {"type": "trn2u.48xlarge"})[1] == "aws-trainium2",
           "trn2u chip")
    expect(chip_of(argparse.Namespace(chip=None), None) is None, "unknown chip guessed")

    for p in problems:
        C.log(f"FAIL: {p}")
    C.log(f"self-test: {'FAILED (%d problems)' % len(problems) if problems else 'ok'}")
    return 1 if problems else 0


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------
def tflops_pair(text: str) -> dict:
    try:
        a, b = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected MATMUL,ATTENTION TFLOP/s, e.g. 120,60")
    if not (a > 0 and b > 0):
        raise argparse.ArgumentTypeError("TFLOP/s must be > 0")
    return {"matmul": a, "attention": b}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Trainium rows (kind imported) for perfledger, "
                                "measured with the AWS Neuron SDK (UNTESTED ON HARDWARE)")
    p.add_argument("command", nargs="?", choices=("compile", "run", "nki-benchmark",
                                                  "_compile-one"),
                   help="device phases (see the module docstring); omit with --dry-run/--self-test")
    p.add_argument("target", nargs="?", help=argparse.SUPPRESS)
    p.add_argument("--dry-run", action="store_true",
                   help=f"write the deterministic fixture (default --out {FIXTURE_PATH}); "
                        "imports no Neuron package")
    p.add_argument("--self-test", action="store_true", help="check rows and the verifier (numpy)")
    p.add_argument("--suite", help="perfledger.suite/1 file (e.g. harness/src/suites/standard.json)")
    p.add_argument("--shape", action="append", type=parse_shape, default=[],
                   help="MxNxK or B,Hq,Hkv,S,D[,causal] (scripts/reference spelling), repeatable")
    p.add_argument("--dtype", type=lambda t: C.parse_dtypes(t), default=["bf16", "f16"],
                   help="dtypes to keep (default bf16,f16; f32 is skipped with a note)")
    p.add_argument("--workdir", default="neuron-work", help="inputs, NEFFs and manifest")
    p.add_argument("--chip", choices=("trn1", "trn2", "trn3"),
                   help="the chip, when PERFLEDGER_INSTANCE / DMI do not say")
    p.add_argument("--core", type=int, default=None,
                   help="NeuronCore to run on (nrtpy.configure(visible_cores=[N])); default: the "
                        "runtime's default (NEURON_RT_VISIBLE_CORES or core 0)")
    p.add_argument("--warmup", type=C.positive_int, default=10, help="warm-up iterations (10)")
    p.add_argument("--iters", type=C.positive_int, default=100, help="timed iterations (100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verify-rows", type=C.positive_int, default=8)
    p.add_argument("--out", default=None, help="JSON lines output (default stdout)")
    p.add_argument("--append", action="store_true")
    p.add_argument("--core-fields-only", action="store_true")
    p.add_argument("--fixture-tflops", type=tflops_pair, default=None,
                   help="--dry-run: assumed MATMUL,ATTENTION TFLOP/s (default 120,60)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "_compile-one":
            return compile_one(args.target)
        if args.dry_run:
            return dry_run(args)
        if args.self_test:
            return self_test(args)
        if args.command == "compile":
            return compile_all(args)
        if args.command == "run":
            return run_all(args)
        if args.command == "nki-benchmark":
            return nki_benchmark_all(args)
        build_parser().print_usage(sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
