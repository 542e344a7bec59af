#!/usr/bin/env python3
"""Time PyTorch on a CUDA GPU (cuBLAS matmul, fused scaled_dot_product_attention) on perfledger's
shapes and emit perfledger external rows (JSON lines, kind "peer"), for `perfledger import`.

    python3 scripts/reference/torch_cuda.py --matmul 4096x4096x4096 --matmul 8192x8192x8192 \
        --attention 1,32,8,4096,128,causal --dtype bf16,f16 --out peer.jsonl

Timing: CUDA events around back-to-back calls on the current stream (torch.cuda.Event with
enable_timing), after a warm-up; each sample is (end - start) / iters, iters chosen so a sample
lasts >= 10 ms; torch.cuda.synchronize() before reading. Verification: sampled output rows (matmul)
or query rows (attention) against a float64 reference on the CPU, with the same error measures and
bounds as the CPU scripts (scripts/reference/README.md): the output is poisoned (NaN) before the
first checked call, and the output of the last timed call is checked again.

Precision recorded: input = output = the dtype, accum = f32. cuBLAS is told so for half types
(torch.backends.cuda.matmul.allow_{bf16,fp16}_reduced_precision_reduction = False, and TF32 off for
f32), so the f32-accumulation bound applies.

Exit codes: 0 all rows verified, 1 a verification failed, 2 bad usage or no CUDA device.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
import torch_attention as TA  # noqa: E402  (stdlib-only at import time)
import torch_matmul as TM  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="PyTorch CUDA (cuBLAS / SDPA) peer rows for perfledger")
    p.add_argument("--matmul", action="append", type=C.parse_matmul_shape, default=[],
                   metavar="[Bx]MxNxK", help="matmul shape (repeatable)")
    p.add_argument("--trans-b", action="store_true", help="matmul B stored [N,K]")
    p.add_argument("--attention", action="append", type=TA.parse_attention_shape, default=[],
                   metavar="SHAPE", help=f"attention shape (repeatable): {TA.SHAPE_HELP}")
    p.add_argument("--device", type=int, default=0, help="CUDA device index (default 0)")
    C.add_common_args(p, default_dtypes="bf16,f16")
    p.set_defaults(min_time=1.0)
    return p


def cuda_device(torch, index: int) -> dict:
    props = torch.cuda.get_device_properties(index)
    return {"name": props.name, "software": False, "cuda_index": index,
            "compute_capability": f"{props.major}.{props.minor}",
            "memory_bytes": int(props.total_memory),
            "multiprocessors": int(props.multi_processor_count)}


def tool_version(torch) -> str:
    cublas = None
    try:
        cublas = torch._C._cuda_getCompiledVersion()
    except Exception:  # noqa: BLE001
        pass
    return (f"{torch.__version__} (CUDA {torch.version.cuda}, cuDNN "
            f"{torch.backends.cudnn.version()}, compiled CUDA {cublas})")


def time_cuda(torch, fn, *, min_time: float, min_samples: int, max_samples: int, warmup: int):
    """CUDA-event timing: warm-up, choose iters so a sample lasts >= 10 ms, then samples."""
    for _ in range(max(warmup, 1)):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    per_call = max(start.elapsed_time(end) * 1e-3, 1e-7)
    iters = max(1, int(math.ceil(0.01 / per_call)))
    samples, total = [], 0.0
    while True:
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        end.synchronize()
        dt = start.elapsed_time(end) * 1e-3
        samples.append(dt / iters)
        total += dt
        if len(samples) >= max_samples or (len(samples) >= min_samples and total >= min_time):
            break
    timing = {"method": "cuda_event", "clock": "torch.cuda.Event", "warmup_iters": warmup + 1,
              "iters_per_sample": iters, "samples": len(samples), "sampled_s": round(total, 6),
              "stop_reason": "max_samples" if len(samples) >= max_samples else "min_time"}
    return samples, timing


def matmul_row(torch, np, args, shape: dict, dtype: str) -> dict:
    seed = C.derive_seed(args.seed, "torch-cuda", "matmul", shape, args.trans_b, dtype)
    a_cpu, b_cpu = TM.make_inputs(torch, shape, args.trans_b, dtype, seed)
    dev = torch.device("cuda", args.device)
    a, bm = a_cpu.to(dev), b_cpu.to(dev)
    bop = bm.transpose(-1, -2) if args.trans_b else bm
    c = torch.empty((shape["batch"], shape["m"], shape["n"]), dtype=a.dtype, device=dev)
    a2, b2, c2 = (a[0], bop[0], c[0]) if shape["batch"] == 1 else (a, bop, c)
    bop_cpu = b_cpu.transpose(-1, -2) if args.trans_b else b_cpu
    rows = C.pick_rows(seed + 1, shape["batch"], shape["m"], args.verify_rows)

    def call():
        torch.matmul(a2, b2, out=c2)

    def f64(t):
        return t.to(torch.float64).numpy()

    def check():
        torch.cuda.synchronize()
        return C.matmul_rows_check(
            rows, n=shape["n"], k=shape["k"],
            a_rows_f64=lambda b, idx: f64(a_cpu[b, idx, :]),
            b_block_f64=lambda b, j0, j1: f64(bop_cpu[b, :, j0:j1]),
            c_rows_f64=lambda b, idx: f64(c[b, idx, :].cpu()),
            out_dtype=dtype, acc_dtype="f32")

    with torch.inference_mode():
        c.fill_(float("nan"))
        call()
        checks = [check()]
        samples, timing = time_cuda(torch, call, min_time=args.min_time,
                                    min_samples=args.min_samples, max_samples=args.max_samples,
                                    warmup=args.warmup)
        checks.append(check())  # the output of the last timed call
    method = "full" if len(rows) == shape["batch"] * shape["m"] else "rows"
    return {
        "kind": args.kind, "op": "matmul", "shape": {**shape, "trans_b": bool(args.trans_b)},
        "precision": {"input": dtype, "accum": "f32", "output": dtype},
        "device": cuda_device(torch, args.device), "instance": None,
        "samples_s": [float(s) for s in samples],
        "verification": C.merge_checks(checks, method, len(rows)),
        "tool": "torch.matmul (cuBLAS)", "tool_version": tool_version(torch),
        "date": C.utc_now(), "source": C.source_path(__file__), "timing": timing,
        "config": {"seed": args.seed, "input_seed": seed, "argv": sys.argv[1:]},
    }


def attention_row(torch, np, args, shape: dict, dtype: str) -> dict:
    seed = C.derive_seed(args.seed, "torch-cuda", "attention", shape, dtype)
    q_cpu, k_cpu, v_cpu = TA.make_inputs(torch, shape, dtype, seed)
    dev = torch.device("cuda", args.device)
    q, k, v = q_cpu.to(dev), k_cpu.to(dev), v_cpu.to(dev)
    kw, mask_kind = TA.sdpa_args(torch, shape)
    if "attn_mask" in kw:
        kw["attn_mask"] = kw["attn_mask"].to(dev)
    holder = [None]
    F = torch.nn.functional

    def call():
        holder[0] = F.scaled_dot_product_attention(q, k, v, **kw)

    rows = TA.pick_query_rows(np, seed + 1, shape, args.verify_rows)

    def check():
        torch.cuda.synchronize()
        return TA.attention_check(torch, np, shape, dtype, q_cpu, k_cpu, v_cpu,
                                  holder[0].cpu(), rows)

    with torch.inference_mode():
        call()
        checks = [check()]
        samples, timing = time_cuda(torch, call, min_time=args.min_time,
                                    min_samples=args.min_samples, max_samples=args.max_samples,
                                    warmup=args.warmup)
        checks.append(check())
    total = shape["batch"] * shape["q_heads"] * shape["q_len"]
    backend = TA.sdpa_backend(torch, q, k, v, kw)
    return {
        "kind": args.kind, "op": "attention", "shape": dict(shape),
        "precision": {"input": dtype, "accum": "f32", "output": dtype},
        "device": cuda_device(torch, args.device), "instance": None,
        "samples_s": [float(s) for s in samples],
        "verification": C.merge_checks(checks, "full" if len(rows) == total else "rows",
                                       len(rows)),
        "tool": "torch scaled_dot_product_attention (CUDA)",
        "tool_version": f"{tool_version(torch)}, SDPA backend {backend}",
        "date": C.utc_now(), "source": C.source_path(__file__), "timing": timing,
        "config": {"seed": args.seed, "input_seed": seed, "mask": mask_kind,
                   "sdpa_backend": backend, "argv": sys.argv[1:],
                   "verification_rule": "error = max |O-Oref| / (P|V|); "
                                        "bound = 2*naive_error + 4*u_out"},
    }


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.matmul and not args.attention:
        C.die("give at least one --matmul or --attention shape")
    if args.max_call_time:
        C.die("--max-call-time is for the CPU scripts (numpy_matmul, torch_matmul, "
              "torch_attention)")
    C.prepare_environment(args.threads, args.keep_openblas_env)
    try:
        import numpy as np
        import torch
    except ImportError as e:
        C.die(f"PyTorch is not installed: {e}")
    if not torch.cuda.is_available():
        C.die("PyTorch has no CUDA device here (torch.cuda.is_available() is False)")
    torch.cuda.set_device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    writer = C.RowWriter(args.out, args.append)
    failed = False
    try:
        jobs = [("matmul", s) for s in args.matmul] + [("attention", s) for s in args.attention]
        for op, shape in jobs:
            for dt in args.dtype:
                C.log(f"torch cuda {op} {shape} {dt} ...")
                row = (matmul_row if op == "matmul" else attention_row)(torch, np, args, shape, dt)
                row = C.finish_row(row, args.core_fields_only)
                # check_row's device rule is the CPU's (threads); a CUDA device has none.
                problems = [e for e in C.check_row(row, op) if not e.startswith("device ")]
                if problems:
                    C.die(f"internal error, bad row: {problems}", 1)
                writer.write(row)
                med = sorted(row["samples_s"])[len(row["samples_s"]) // 2]
                v = row["verification"]
                C.log(f"  median {med * 1e3:.3f} ms ({len(row['samples_s'])} samples) "
                      f"verification {v['verdict']} err {v['error']} bound {v['bound']}")
                failed |= v["verdict"] != "pass"
    finally:
        writer.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
