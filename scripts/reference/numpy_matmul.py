#!/usr/bin/env python3
"""Time numpy matmul (OpenBLAS sgemm: f32 in, f32 accumulate, f32 out) on perfledger's shapes and
emit perfledger external rows (JSON lines, kind "peer").

    .venv-ref/bin/python scripts/reference/numpy_matmul.py --shape 2048x2048x2048 \
        --shape 1x14336x4096 --trans-b --threads 2 --min-time 2 --out numpy.jsonl

See scripts/reference/README.md for the timing and verification rules.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402  (stdlib-only; numpy is imported after the environment is fixed)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="numpy (OpenBLAS sgemm) matmul reference rows for perfledger",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Shapes: MxNxK (batch 1) or BxMxNxK; C[M,N] = A[M,K] . B[K,N], or with --trans-b "
               "B is stored [N,K] and C = A . B^T.")
    p.add_argument("--shape", action="append", type=C.parse_matmul_shape, default=[],
                   metavar="[Bx]MxNxK", help="matmul shape (repeatable)")
    p.add_argument("--trans-b", action="store_true",
                   help="B is stored [N,K] and the op is A.B^T (applies to all shapes)")
    C.add_common_args(p, default_dtypes="f32", allowed_dtypes=("f32",))
    return p


def make_inputs(np, shape: dict, trans_b: bool, seed: int):
    """Uniform [-1, 1) f32 inputs, exact zeros replaced by 0.5 (never zeros)."""
    rng = np.random.default_rng(seed)
    b_, m, n, k = shape["batch"], shape["m"], shape["n"], shape["k"]

    def uni(sz):
        x = rng.random(sz, dtype=np.float32)
        x *= 2
        x -= 1  # exact in f32: x is a multiple of 2^-24 in [0, 1)
        x[x == 0] = 0.5
        return x

    a = uni((b_, m, k))
    bm = uni((b_, n, k) if trans_b else (b_, k, n))
    return a, bm


def run_case(np, args, shape: dict, trans_b: bool, dtype: str, pools_fn, time_it=True):
    seed = C.derive_seed(args.seed, "numpy", "matmul", shape, trans_b, dtype)
    flops, key = C.matmul_budget(args, shape, dtype)
    a, bm = make_inputs(np, shape, trans_b, seed)
    bop = np.swapaxes(bm, -1, -2) if trans_b else bm  # a view: BLAS gets the transpose flag
    c = np.empty((shape["batch"], shape["m"], shape["n"]), dtype=np.float32)
    if shape["batch"] == 1:
        a2, b2, c2 = a[0], bop[0], c[0]
    else:
        a2, b2, c2 = a, bop, c

    # Memory-bound shapes cycle through copies of A and B, each set with its own output, as
    # perfledger's runner does (C.rotation_sets); the first set is the one verified.
    min_bytes = 4 * (a.size + bm.size + c.size)
    nsets = C.rotation_sets(2.0 * a.size * shape["n"], min_bytes, args.rotate)
    sets = [(a2, b2, c2)] + [(a2.copy(), b2.copy(), np.empty_like(c2)) for _ in range(nsets - 1)]
    turn = [0]

    def call():
        x, y, z = sets[turn[0] % nsets]
        turn[0] += 1
        np.matmul(x, y, out=z)

    rows = C.pick_rows(seed + 1, shape["batch"], shape["m"], args.verify_rows)

    def check():
        return C.matmul_rows_check(
            rows, n=shape["n"], k=shape["k"],
            a_rows_f64=lambda b, idx: a[b, idx, :].astype(np.float64),
            b_block_f64=lambda b, j0, j1: bop[b, :, j0:j1].astype(np.float64),
            c_rows_f64=lambda b, idx: c[b, idx, :].astype(np.float64),
            out_dtype="f32", acc_dtype="f32")

    # poison, one verified call, timed samples, re-poison, one more call, verify again
    c.fill(np.nan)
    C.first_call(call, args, key, flops)
    checks = [check()]
    if time_it:
        samples, timing = C.time_row(call, args, key, flops)
    else:
        samples, timing = [], {"method": "none"}
    c.fill(np.nan)
    turn[0] = 0
    call()
    checks.append(check())
    method = "full" if len(rows) == shape["batch"] * shape["m"] else "rows"
    ver = C.merge_checks(checks, method, len(rows))
    pools = pools_fn()
    row = {
        "kind": args.kind, "op": "matmul",
        "shape": {**shape, "trans_b": bool(trans_b)},
        "precision": {"input": "f32", "accum": "f32", "output": "f32"},
        "device": C.cpu_device(args.threads), "instance": None,
        "samples_s": [float(s) for s in samples],
        "verification": ver,
        "tool": "numpy",
        "tool_version": f"{np.__version__} ({C.openblas_summary(pools)}){C.env_note()}",
        "date": C.utc_now(), "source": C.source_path(__file__),
        "timing": timing,
        "config": {**C.config_block(args, seed, pools), "input_sets": nsets},
    }
    return C.finish_row(row, args.core_fields_only), (a, bop, c, rows, check)


def self_test(np, args, pools_fn) -> int:
    """Tiny shapes: fields must be right and verification must pass; then the checker must reject
    deliberately wrong outputs (K off by one, B transposed, unwritten output, stale output)."""
    args.min_time, args.min_samples, args.max_samples = 0.0, 3, 3
    problems = []
    cases = [({"batch": 1, "m": 33, "n": 17, "k": 65}, False),
             ({"batch": 2, "m": 40, "n": 40, "k": 40}, True),
             ({"batch": 1, "m": 1, "n": 300, "k": 129}, True)]
    for shape, tb in cases:
        row, (a, bop, c, rows, check) = run_case(np, args, shape, tb, "f32", pools_fn)
        problems += [f"{shape} trans_b={tb}: {e}" for e in C.check_row(row, "matmul")]
        if row["verification"]["verdict"] != "pass":
            problems.append(f"{shape}: correct output failed verification {row['verification']}")
        print(C.dumps_row(row))
        k = shape["k"]
        mutants = {
            "K off by one": lambda: np.matmul(a[:, :, :k - 1], bop[:, :k - 1, :]),
            "unwritten output": lambda: np.full_like(c, np.nan),
            "stale output": lambda: np.matmul(a[:, ::-1, :], bop),
            "wrong sign": lambda: -np.matmul(a, bop),
        }
        if shape["n"] == shape["k"]:
            mutants["B transposed"] = lambda: np.matmul(a, np.swapaxes(bop, -1, -2))
        for name, fn in mutants.items():
            c[...] = fn()
            if shape["m"] == 1 and name == "stale output":
                continue  # a single row reversed is itself
            res = check()
            if C.verdict(res["error"], res["bound"]) != "fail":
                problems.append(f"{shape}: mutant '{name}' was NOT detected (error "
                                f"{res['error']:.3g} <= bound {res['bound']:.3g})")
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
    limiter = C.limit_threads(args.threads)  # noqa: F841  (kept alive for the whole run)
    pools_fn = C.threadpools
    if args.self_test:
        return self_test(np, args, pools_fn)
    writer = C.RowWriter(args.out, args.append)
    failed = False
    try:
        for shape in args.shape:
            for dt in args.dtype:
                C.log(f"numpy matmul {shape} trans_b={args.trans_b} {dt} ...")
                try:
                    row, _ = run_case(np, args, shape, args.trans_b, dt, pools_fn)
                except C.TooSlow as e:
                    C.log(f"  skipped: numpy matmul {shape} trans_b={args.trans_b} {dt}: {e}")
                    continue
                writer.write(row)
                med = sorted(row["samples_s"])[len(row["samples_s"]) // 2]
                gf = 2.0 * shape["batch"] * shape["m"] * shape["n"] * shape["k"] / med / 1e9
                C.log(f"  median {med * 1e3:.3f} ms  ({gf:.1f} GFLOP/s, {len(row['samples_s'])} "
                      f"samples)  verification {row['verification']['verdict']} "
                      f"err {row['verification']['error']} bound {row['verification']['bound']:.3g}")
                failed |= row["verification"]["verdict"] != "pass"
    except KeyboardInterrupt:
        C.log("interrupted")
        return 130
    finally:
        writer.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
