#!/usr/bin/env python3
"""Time torch.matmul on the CPU (f32, bf16, f16) on perfledger's shapes and emit perfledger
external rows (JSON lines, kind "peer").

    .venv-ref/bin/python scripts/reference/torch_matmul.py --shape 2048x2048x2048 \
        --dtype f32,bf16 --threads 2 --min-time 2 --out torch.jsonl

Precision recorded: input = output = the dtype; accum = "f32" for every dtype. For bf16/f16 this
is an assumption about torch's CPU kernels (oneDNN and ATen's fallback gemm both accumulate half
types in float); the verification bound uses u_acc = 2^-24, so a kernel that accumulated in the
half type would fail verification at realistic K rather than pass silently.

See scripts/reference/README.md for the timing and verification rules.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402  (stdlib-only; numpy/torch are imported after the env is fixed)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="torch.matmul (CPU) reference rows for perfledger",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Shapes: MxNxK (batch 1) or BxMxNxK; C[M,N] = A[M,K] . B[K,N], or with --trans-b "
               "B is stored [N,K] and C = A . B^T.")
    p.add_argument("--shape", action="append", type=C.parse_matmul_shape, default=[],
                   metavar="[Bx]MxNxK", help="matmul shape (repeatable)")
    p.add_argument("--trans-b", action="store_true",
                   help="B is stored [N,K] and the op is A.B^T (applies to all shapes)")
    C.add_common_args(p, default_dtypes="f32,bf16,f16")
    return p


def torch_dtype(torch, name: str):
    return {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[name]


def torch_runtime(torch) -> dict:
    """What torch says about its CPU build: ATen capability, MKL/oneDNN versions, half support."""
    info = {"torch": torch.__version__, "cpu_capability": None, "mkl": None, "onednn": None,
            "onednn_bf16": None, "onednn_fp16": None, "num_threads": torch.get_num_threads()}
    try:
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except Exception:  # noqa: BLE001
        pass
    try:
        for line in torch.__config__.show().splitlines():
            line = line.strip(" -")
            if "Math Kernel Library Version" in line:
                info["mkl"] = line.split("Version", 1)[1].strip().split("-")[0].strip()
            elif line.startswith("Intel(R) MKL-DNN") or line.startswith("oneDNN"):
                info["onednn"] = line.split()[2] if len(line.split()) > 2 else line
    except Exception:  # noqa: BLE001
        pass
    for key, fn in (("onednn_bf16", "_is_mkldnn_bf16_supported"),
                    ("onednn_fp16", "_is_mkldnn_fp16_supported")):
        try:
            info[key] = bool(getattr(torch.ops.mkldnn, fn)())
        except Exception:  # noqa: BLE001
            pass
    return info


def tool_version(torch, dtype: str) -> str:
    rt = torch_runtime(torch)
    if dtype == "f32":
        path = f"MKL {rt['mkl']}" if rt["mkl"] else "BLAS"
    else:
        sup = rt["onednn_bf16"] if dtype == "bf16" else rt["onednn_fp16"]
        path = (f"oneDNN {rt['onednn']} with {dtype} support" if sup
                else f"no oneDNN {dtype} on this CPU: ATen fallback gemm")
    return (f"{torch.__version__} (CPU, ATen {rt['cpu_capability']}, {path}, "
            f"{rt['num_threads']} threads){C.env_note()}")


def make_inputs(torch, shape: dict, trans_b: bool, dtype: str, seed: int):
    """Uniform [-1, 1) inputs drawn in f32, rounded to the dtype; exact zeros -> 0.5."""
    g = torch.Generator().manual_seed(seed)
    b_, m, n, k = shape["batch"], shape["m"], shape["n"], shape["k"]
    td = torch_dtype(torch, dtype)

    def uni(sz):
        x = torch.rand(sz, generator=g, dtype=torch.float32)
        x.mul_(2).sub_(1)  # exact: x is a multiple of 2^-24 in [0, 1)
        x = x.to(td)
        x[x == 0] = 0.5
        return x.contiguous()

    a = uni((b_, m, k))
    bm = uni((b_, n, k) if trans_b else (b_, k, n))
    return a, bm


def run_case(torch, np, args, shape: dict, trans_b: bool, dtype: str, time_it=True):
    seed = C.derive_seed(args.seed, "torch", "matmul", shape, trans_b, dtype)
    flops, key = C.matmul_budget(args, shape, dtype)
    a, bm = make_inputs(torch, shape, trans_b, dtype, seed)
    bop = bm.transpose(-1, -2) if trans_b else bm  # a strided view: gemm gets the transpose flag
    c = torch.empty((shape["batch"], shape["m"], shape["n"]), dtype=torch_dtype(torch, dtype))
    if shape["batch"] == 1:
        a2, b2, c2 = a[0], bop[0], c[0]
    else:
        a2, b2, c2 = a, bop, c

    # Memory-bound shapes cycle through copies of A and B, each set with its own output, as
    # perfledger's runner does (C.rotation_sets); the first set is the one verified.
    esize = a.element_size()
    min_bytes = esize * (a.numel() + bm.numel() + c.numel())
    nsets = C.rotation_sets(2.0 * a.numel() * shape["n"], min_bytes, args.rotate)
    sets = [(a2, b2, c2)] + [
        (a2.clone(), b2.clone(), torch.empty_like(c2)) for _ in range(nsets - 1)
    ]
    turn = [0]

    def call():
        x, y, z = sets[turn[0] % nsets]
        turn[0] += 1
        torch.matmul(x, y, out=z)

    rows = C.pick_rows(seed + 1, shape["batch"], shape["m"], args.verify_rows)

    def f64(t):
        return t.to(torch.float64).numpy()

    def check():
        return C.matmul_rows_check(
            rows, n=shape["n"], k=shape["k"],
            a_rows_f64=lambda b, idx: f64(a[b, idx, :]),
            b_block_f64=lambda b, j0, j1: f64(bop[b, :, j0:j1]),
            c_rows_f64=lambda b, idx: f64(c[b, idx, :]),
            out_dtype=dtype, acc_dtype="f32")

    with torch.inference_mode():
        c.fill_(float("nan"))
        C.first_call(call, args, key, flops)
        checks = [check()]
        if time_it:
            samples, timing = C.time_row(call, args, key, flops)
        else:
            samples, timing = [], {"method": "none"}
        c.fill_(float("nan"))
        turn[0] = 0
        call()
        checks.append(check())
    method = "full" if len(rows) == shape["batch"] * shape["m"] else "rows"
    ver = C.merge_checks(checks, method, len(rows))
    pools = C.threadpools()
    cfg = C.config_block(args, seed, pools)
    cfg["torch_runtime"] = torch_runtime(torch)
    cfg["accum_note"] = "accum f32 is assumed for torch CPU half matmul (not reported by torch)"
    cfg["input_sets"] = nsets
    row = {
        "kind": args.kind, "op": "matmul",
        "shape": {**shape, "trans_b": bool(trans_b)},
        "precision": {"input": dtype, "accum": "f32", "output": dtype},
        "device": C.cpu_device(args.threads), "instance": None,
        "samples_s": [float(s) for s in samples],
        "verification": ver,
        "tool": "torch", "tool_version": tool_version(torch, dtype),
        "date": C.utc_now(), "source": C.source_path(__file__),
        "timing": timing, "config": cfg,
    }
    return C.finish_row(row, args.core_fields_only), (a, bop, c, rows, check)


def self_test(torch, np, args) -> int:
    args.min_time, args.min_samples, args.max_samples = 0.0, 3, 3
    problems = []
    cases = [({"batch": 1, "m": 33, "n": 17, "k": 65}, False),
             ({"batch": 2, "m": 40, "n": 40, "k": 40}, True),
             ({"batch": 1, "m": 1, "n": 300, "k": 129}, True)]
    for shape, tb in cases:
        for dt in ("f32", "bf16", "f16"):
            row, (a, bop, c, rows, check) = run_case(torch, np, args, shape, tb, dt)
            problems += [f"{shape} {dt}: {e}" for e in C.check_row(row, "matmul")]
            if row["verification"]["verdict"] != "pass":
                problems.append(f"{shape} {dt}: correct output failed verification "
                                f"{row['verification']}")
            if row["precision"] != {"input": dt, "accum": "f32", "output": dt}:
                problems.append(f"{shape} {dt}: precision {row['precision']}")
            print(C.dumps_row(row))
            k = shape["k"]
            mutants = {
                "K off by one": lambda: torch.matmul(a[:, :, :k - 1], bop[:, :k - 1, :]),
                "unwritten output": lambda: torch.full_like(c, float("nan")),
                "wrong sign": lambda: -torch.matmul(a, bop),
            }
            if shape["m"] > 1:
                mutants["stale output"] = lambda: torch.matmul(a.flip(1), bop)
            if shape["n"] == shape["k"]:
                mutants["B transposed"] = lambda: torch.matmul(a, bop.transpose(-1, -2))
            for name, fn in mutants.items():
                with torch.inference_mode():
                    c.copy_(fn())
                res = check()
                if C.verdict(res["error"], res["bound"]) != "fail":
                    problems.append(f"{shape} {dt}: mutant '{name}' was NOT detected "
                                    f"(error {res['error']:.3g} <= bound {res['bound']:.3g})")
    for p in problems:
        C.log("SELF-TEST FAIL: " + p)
    C.log("self-test: " + ("FAILED" if problems else "ok"))
    return 1 if problems else 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.shape and not args.self_test:
        C.die("give at least one --shape (or --self-test)")
    C.prepare_environment(args.threads, args.keep_openblas_env)
    import numpy as np
    import torch
    torch.set_num_threads(args.threads)
    limiter = C.limit_threads(args.threads)  # noqa: F841
    if args.self_test:
        return self_test(torch, np, args)
    rt = torch_runtime(torch)
    for dt, key in (("bf16", "onednn_bf16"), ("f16", "onednn_fp16")):
        if dt in args.dtype and rt[key] is False:
            C.log(f"note: this CPU has no oneDNN {dt} gemm in torch {torch.__version__}; "
                  f"{dt} matmul takes ATen's fallback path (much slower; the row says so)")
    writer = C.RowWriter(args.out, args.append)
    failed = False
    try:
        for shape in args.shape:
            for dt in args.dtype:
                C.log(f"torch matmul {shape} trans_b={args.trans_b} {dt} ...")
                try:
                    row, _ = run_case(torch, np, args, shape, args.trans_b, dt)
                except C.TooSlow as e:
                    C.log(f"  skipped: torch matmul {shape} trans_b={args.trans_b} {dt}: {e}")
                    continue
                writer.write(row)
                med = sorted(row["samples_s"])[len(row["samples_s"]) // 2]
                gf = 2.0 * shape["batch"] * shape["m"] * shape["n"] * shape["k"] / med / 1e9
                v = row["verification"]
                C.log(f"  median {med * 1e3:.3f} ms  ({gf:.1f} GFLOP/s, {len(row['samples_s'])} "
                      f"samples)  verification {v['verdict']} err {v['error']} "
                      f"bound {v['bound']:.3g}")
                failed |= v["verdict"] != "pass"
    except KeyboardInterrupt:
        C.log("interrupted")
        return 130
    finally:
        writer.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
