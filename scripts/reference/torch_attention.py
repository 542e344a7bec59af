#!/usr/bin/env python3
"""Time torch.nn.functional.scaled_dot_product_attention on the CPU (f32, bf16, f16) on
perfledger's attention shapes and emit perfledger external rows (JSON lines, op "attention").

Shape spelling (--shape, repeatable), comma-separated:

    B,Hq,Hkv,S,D[,causal][,scale=X]          q_len = kv_len = S            (prefill)
    B,Hq,Hkv,Sq:Skv,D[,causal][,scale=X]     q_len = Sq, kv_len = Skv      (e.g. decode)
    B,Hq,Hkv,Sq,Skv,D[,causal][,scale=X]     the same, six integers

    e.g.  --shape 1,32,8,2048,128,causal   --shape 1,32,8,1:8192,128

Layout [batch, heads, seq, head_dim]; K and V have Hkv heads; query head h reads kv head
h // (Hq/Hkv) (torch's enable_gqa=True, used when Hq != Hkv). scale defaults to 1/sqrt(D).
Causal masking is aligned to the END: query i sees keys j <= kv_len - q_len + i. torch's
is_causal=True aligns to the top-left, so it is used only when q_len == kv_len; otherwise an
explicit boolean mask is built (none when it is all-true, e.g. q_len = 1).

See scripts/reference/README.md for the timing and verification rules.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402  (stdlib-only; numpy/torch are imported after the env is fixed)

# The attention shape spelling is shared with the other scripts (common.py).
SHAPE_HELP = C.ATTENTION_SHAPE_HELP
parse_attention_shape = C.parse_attention_shape


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="torch scaled_dot_product_attention (CPU) reference rows for perfledger",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--shape", action="append", type=parse_attention_shape, default=[],
                   metavar="SHAPE", help=SHAPE_HELP + " (repeatable)")
    p.add_argument("--causal", action="store_true", help="make every --shape causal")
    C.add_common_args(p, default_dtypes="f32,bf16,f16")
    return p


def torch_dtype(torch, name: str):
    return {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[name]


def end_aligned_mask(torch, q_len: int, kv_len: int):
    """Boolean [q_len, kv_len], True = attend: key j visible to query i iff j <= kv_len-q_len+i."""
    i = torch.arange(q_len).unsqueeze(1)
    j = torch.arange(kv_len).unsqueeze(0)
    return j <= (kv_len - q_len) + i


def make_inputs(torch, shape: dict, dtype: str, seed: int):
    g = torch.Generator().manual_seed(seed)
    td = torch_dtype(torch, dtype)

    def uni(sz):
        x = torch.rand(sz, generator=g, dtype=torch.float32)
        x.mul_(2).sub_(1)
        x = x.to(td)
        x[x == 0] = 0.5
        return x.contiguous()

    b, hq, hkv = shape["batch"], shape["q_heads"], shape["kv_heads"]
    q = uni((b, hq, shape["q_len"], shape["head_dim"]))
    k = uni((b, hkv, shape["kv_len"], shape["head_dim"]))
    v = uni((b, hkv, shape["kv_len"], shape["head_dim"]))
    return q, k, v


def sdpa_args(torch, shape: dict):
    """Keyword arguments for F.scaled_dot_product_attention implementing the END-aligned causal
    rule. Returns (kwargs, mask_kind)."""
    kw = {"scale": shape["scale"]}
    if shape["q_heads"] != shape["kv_heads"]:
        kw["enable_gqa"] = True
    if not shape["causal"]:
        return kw, "none"
    if shape["q_len"] == shape["kv_len"]:
        kw["is_causal"] = True
        return kw, "is_causal"
    if shape["q_len"] == 1:
        return kw, "none (causal, q_len=1 sees every key)"
    kw["attn_mask"] = end_aligned_mask(torch, shape["q_len"], shape["kv_len"])
    return kw, "explicit bool mask (end-aligned)"


def pick_query_rows(np, seed: int, shape: dict, count: int) -> list:
    total = shape["batch"] * shape["q_heads"] * shape["q_len"]
    if total <= count:
        flat = list(range(total))
    else:
        flat = sorted(int(x) for x in np.random.default_rng(seed).choice(total, count,
                                                                         replace=False))
    hq, sq = shape["q_heads"], shape["q_len"]
    return [(f // (hq * sq), (f // sq) % hq, f % sq) for f in flat]


def attention_check(torch, np, shape: dict, dtype: str, q, k, v, out, rows) -> dict:
    """Error of sampled query rows against a float64 softmax(q K^T scale) V reference.

    Per checked row and output component d:
        err_d = |O_d - Oref_d| / (P |V|)_d,   (P |V|)_d = sum_j p_j |V_jd|  (f64, p = ref softmax)
    i.e. the attention analogue of matmul's |A||B| scaling (O is a p-weighted average of V rows).
    error = max over checked rows and components.
    Bound = 2 * naive_error + 4 * u_out, where naive_error is the same metric for a naive
    same-precision computation of the same rows in torch (S = q K^T in the dtype, times scale in the
    dtype, masked, softmax in the dtype, P V in the dtype).
    """
    group = shape["q_heads"] // shape["kv_heads"]
    scale = shape["scale"]
    sq, skv = shape["q_len"], shape["kv_len"]
    td = torch_dtype(torch, dtype)
    worst = 0.0
    worst_naive = 0.0
    for b, h, i in rows:
        g = h // group
        visible = skv - sq + i + 1 if shape["causal"] else skv
        kk = k[b, g, :visible]
        vv = v[b, g, :visible]
        q64 = q[b, h, i].to(torch.float64).numpy()
        k64 = kk.to(torch.float64).numpy()
        v64 = vv.to(torch.float64).numpy()
        s = (k64 @ q64) * scale
        p = np.exp(s - s.max())
        p /= p.sum()
        ref = p @ v64
        den = p @ np.abs(v64)
        o = out[b, h, i].to(torch.float64).numpy()
        if not np.all(np.isfinite(o)):
            worst = math.nan
        elif not math.isnan(worst):
            worst = max(worst, float((np.abs(o - ref) / den).max()))
        # naive same-precision computation of this row
        with torch.inference_mode():
            sn = torch.matmul(q[b, h, i:i + 1], kk.transpose(0, 1))      # [1, visible], dtype
            sn = sn * torch.tensor(scale, dtype=td)
            pn = torch.softmax(sn, dim=-1)
            on = torch.matmul(pn, vv)[0].to(torch.float64).numpy()
        worst_naive = max(worst_naive, float((np.abs(on - ref) / den).max()))
    bound = 2.0 * worst_naive + 4.0 * C.UNIT_ROUNDOFF[dtype]
    return {"error": worst, "bound": bound, "naive_error": worst_naive}


def sdpa_backend(torch, q, k, v, kw) -> str | None:
    """Which fused SDPA backend torch picks for these inputs (private API; None if unavailable)."""
    try:
        from torch.nn.attention import SDPBackend
        kw2 = {x: kw[x] for x in ("attn_mask", "is_causal", "scale", "enable_gqa") if x in kw}
        r = torch._fused_sdp_choice(q, k, v, **kw2)
        for name, member in SDPBackend.__members__.items():
            if int(member.value) == int(r):
                return name.lower()
        return str(r)
    except Exception:  # noqa: BLE001
        return None


def run_case(torch, np, args, shape: dict, dtype: str, sdpa=None):
    seed = C.derive_seed(args.seed, "torch", "attention", shape, dtype)
    pairs = shape["q_len"] * shape["kv_len"]
    if shape.get("causal"):
        off = shape["kv_len"] - shape["q_len"]
        pairs = sum(min(shape["kv_len"], off + i + 1) for i in range(shape["q_len"]))
    flops = 4.0 * shape["head_dim"] * pairs * shape["q_heads"] * shape["batch"]
    # Q and the output, K and V: the bytes a call must touch.
    q_elems = shape["batch"] * shape["q_heads"] * shape["q_len"] * shape["head_dim"]
    kv_elems = shape["batch"] * shape["kv_heads"] * shape["kv_len"] * shape["head_dim"]
    min_bytes = (4 if dtype == "f32" else 2) * (2 * q_elems + 2 * kv_elems)
    key = C.budget_key(dtype, flops, min_bytes)
    C.call_budget_check(args, key, flops)
    q, k, v = make_inputs(torch, shape, dtype, seed)
    kw, mask_kind = sdpa_args(torch, shape)
    F = torch.nn.functional
    fn = sdpa or F.scaled_dot_product_attention
    holder = [None]

    # Memory-bound shapes (decode) cycle through copies of Q, K and V (C.rotation_sets); the
    # first set is the one verified.
    nsets = C.rotation_sets(flops, min_bytes, args.rotate)
    sets = [(q, k, v)] + [(q.clone(), k.clone(), v.clone()) for _ in range(nsets - 1)]
    turn = [0]

    def call():
        x, y, z = sets[turn[0] % nsets]
        turn[0] += 1
        holder[0] = fn(x, y, z, **kw)

    rows = pick_query_rows(np, seed + 1, shape, args.verify_rows)
    with torch.inference_mode():
        C.first_call(call, args, key, flops)
        checks = [attention_check(torch, np, shape, dtype, q, k, v, holder[0], rows)]
        samples, timing = C.time_row(call, args, key, flops)
        # the output of one more call on the verified set
        turn[0] = 0
        call()
        checks.append(attention_check(torch, np, shape, dtype, q, k, v, holder[0], rows))
    total = shape["batch"] * shape["q_heads"] * shape["q_len"]
    ver = C.merge_checks(checks, "full" if len(rows) == total else "rows", len(rows))
    backend = sdpa_backend(torch, q, k, v, kw)
    pools = C.threadpools()
    cfg = C.config_block(args, seed, pools)
    cfg.update({
        "sdpa_backend": backend, "mask": mask_kind, "enable_gqa": bool(kw.get("enable_gqa")),
        "input_sets": nsets,
        "layout": "[batch, heads, seq, head_dim]",
        "verification_rule": "error = max |O-Oref| / (P|V|); bound = 2*naive_error + 4*u_out",
        "naive_error": C.json_number(max(c["naive_error"] for c in checks)),
        "accum_note": "accum f32 is assumed for torch CPU SDPA on half types",
    })
    try:
        cap = torch.backends.cpu.get_cpu_capability()
    except Exception:  # noqa: BLE001
        cap = "?"
    row = {
        "kind": args.kind, "op": "attention", "shape": dict(shape),
        "precision": {"input": dtype, "accum": "f32", "output": dtype},
        "device": C.cpu_device(args.threads), "instance": None,
        "samples_s": [float(s) for s in samples],
        "verification": ver,
        "tool": "torch",
        "tool_version": (f"{torch.__version__} (CPU, ATen {cap}, scaled_dot_product_attention"
                         f"{' backend ' + backend if backend else ''}, "
                         f"{torch.get_num_threads()} threads){C.env_note()}"),
        "date": C.utc_now(), "source": C.source_path(__file__),
        "timing": timing, "config": cfg,
    }
    return C.finish_row(row, args.core_fields_only), (q, k, v, rows, kw)


def self_test(torch, np, args) -> int:
    """Tiny shapes: the fields must be right and torch's SDPA must pass; then the checker must
    reject deliberately wrong attention (top-left causal alignment, wrong GQA head mapping, wrong
    scale, the first key dropped, causal mask ignored, unwritten output)."""
    args.min_time, args.min_samples, args.max_samples = 0.0, 3, 3
    F = torch.nn.functional
    problems = []
    shapes = [parse_attention_shape("1,4,2,5:9,16,causal"),
              parse_attention_shape("2,4,4,7,16,causal"),
              parse_attention_shape("1,4,2,1:33,16"),
              parse_attention_shape("1,6,2,6,3,8")]
    for shape in shapes:
        for dt in ("f32", "bf16", "f16"):
            row, (q, k, v, rows, kw) = run_case(torch, np, args, shape, dt)
            problems += [f"{shape} {dt}: {e}" for e in C.check_row(row, "attention")]
            if row["verification"]["verdict"] != "pass":
                problems.append(f"{shape} {dt}: correct SDPA failed {row['verification']}")
            print(C.dumps_row(row))
            group = shape["q_heads"] // shape["kv_heads"]

            def sd(qq, kk, vv, **over):
                a = {"scale": shape["scale"]}
                a.update(over)
                return F.scaled_dot_product_attention(qq, kk, vv, **a)

            mask = kw.get("attn_mask")
            causal = shape["causal"]
            base = {x: kw[x] for x in ("attn_mask", "is_causal") if x in kw}
            mutants = {
                "wrong scale": lambda: sd(q, k.repeat_interleave(group, 1),
                                          v.repeat_interleave(group, 1), scale=1.0, **base),
                "dropped first key": lambda: sd(
                    q, k[:, :, 1:].repeat_interleave(group, 1),
                    v[:, :, 1:].repeat_interleave(group, 1),
                    **({"attn_mask": mask[:, 1:]} if mask is not None else base)),
                "unwritten output": lambda: torch.full(
                    (shape["batch"], shape["q_heads"], shape["q_len"], shape["head_dim"]),
                    float("nan"), dtype=q.dtype),
            }
            if shape["kv_len"] == 1:
                del mutants["dropped first key"]
            if causal and shape["q_len"] > 1:
                mutants["causal ignored"] = lambda: sd(q, k.repeat_interleave(group, 1),
                                                       v.repeat_interleave(group, 1))
            if causal and 1 < shape["q_len"] < shape["kv_len"]:
                mutants["top-left causal"] = lambda: sd(q, k.repeat_interleave(group, 1),
                                                        v.repeat_interleave(group, 1),
                                                        is_causal=True)
            if group > 1 and shape["kv_heads"] > 1:
                mutants["GQA heads tiled"] = lambda: sd(q, k.repeat(1, group, 1, 1),
                                                        v.repeat(1, group, 1, 1), **base)
            for name, mf in mutants.items():
                with torch.inference_mode():
                    bad = mf()
                res = attention_check(torch, np, shape, dt, q, k, v, bad, rows)
                if C.verdict(res["error"], res["bound"]) != "fail":
                    problems.append(f"{shape} {dt}: mutant '{name}' NOT detected (error "
                                    f"{res['error']:.3g} <= bound {res['bound']:.3g})")
    for p in problems:
        C.log("SELF-TEST FAIL: " + p)
    C.log("self-test: " + ("FAILED" if problems else "ok"))
    return 1 if problems else 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.shape and not args.self_test:
        C.die("give at least one --shape (or --self-test)")
    if args.causal:
        for s in args.shape:
            if s["q_len"] > s["kv_len"]:
                C.die(f"--causal: shape {s} has q_len > kv_len")
            s["causal"] = True
    C.prepare_environment(args.threads, args.keep_openblas_env)
    import numpy as np
    import torch
    torch.set_num_threads(args.threads)
    limiter = C.limit_threads(args.threads)  # noqa: F841
    ver = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])
    if ver < (2, 5) and any(s["q_heads"] != s["kv_heads"] for s in args.shape):
        C.die(f"torch {torch.__version__}: enable_gqa needs torch >= 2.5")
    if args.self_test:
        return self_test(torch, np, args)
    writer = C.RowWriter(args.out, args.append)
    failed = False
    try:
        for shape in args.shape:
            for dt in args.dtype:
                C.log(f"torch attention {shape} {dt} ...")
                try:
                    row, _ = run_case(torch, np, args, shape, dt)
                except C.TooSlow as e:
                    C.log(f"  skipped: torch attention {shape} {dt}: {e}")
                    continue
                writer.write(row)
                med = sorted(row["samples_s"])[len(row["samples_s"]) // 2]
                v = row["verification"]
                C.log(f"  median {med * 1e3:.3f} ms ({len(row['samples_s'])} samples, "
                      f"backend {row.get('config', {}).get('sdpa_backend')})  verification "
                      f"{v['verdict']} err {v['error']} bound {v['bound']:.3g}")
                failed |= v["verdict"] != "pass"
    except KeyboardInterrupt:
        C.log("interrupted")
        return 130
    finally:
        writer.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
