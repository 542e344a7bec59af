#!/usr/bin/env python3
"""PyTorch's bf16 GEMV against perfledger's (`mmtime` paths), interleaved round by round.

Usage: scripts/gemv_pairs.py N K ROUNDS PATH[,PATH...]   (run with the reference venv's python)

Each round times, in a rotating order, PyTorch's `matmul(a[1, K], B[N, K].t())` in bf16 (2
threads, 200 calls cycling `GEMV_SETS` input sets, median) and one `mmtime 1 N K bf16 PATH - bt`
process per PATH (`MMTIME_SETS` the same, its median), and prints one line: GB/s of B read for each (bf16: the
same number as GFLOP/s). A round takes about a second per column, so the columns of one line
share the host's memory state; on a host whose bandwidth moves between states within seconds,
compare the columns pair by pair over many rounds (the paired ratios, summarized at the end),
not the best of each.

`MMTIME` (default target/release/examples/mmtime) names the binary; build it with
`cargo build --release --examples`. `GEMV_SETS` (default 16): the input sets both sides cycle
through (16 × 32 MiB at N = K = 4096: the runner's 16 × L3 on a 32 MiB L3). On Zen 4 a decode
rotation of 4 × L3 still read 1.06-1.16× one of 28 × L3 (`results/decode-zen4-session13/`).
"""
import os
import re
import statistics
import subprocess
import sys
import time


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__.strip().splitlines()[2])
    try:
        n, k, rounds = (int(x) for x in sys.argv[1:4])
    except ValueError:
        sys.exit(f"gemv_pairs.py: N, K and ROUNDS must be whole numbers, got {sys.argv[1:4]}")
    if min(n, k, rounds) < 1:
        sys.exit("gemv_pairs.py: N, K and ROUNDS must be at least 1")
    paths = [p for p in sys.argv[4].split(",") if p]
    mmtime = os.environ.get("MMTIME", "target/release/examples/mmtime")
    if not os.access(mmtime, os.X_OK):
        sys.exit(f"gemv_pairs.py: {mmtime} is not an executable "
                 "(cargo build --release --examples, or set MMTIME)")
    import torch

    torch.set_num_threads(2)
    try:
        sets = int(os.environ.get("GEMV_SETS", "16"))
    except ValueError:
        sys.exit(f"gemv_pairs.py: GEMV_SETS must be a whole number, got {os.environ['GEMV_SETS']!r}")
    if sets < 1:
        sys.exit("gemv_pairs.py: GEMV_SETS must be at least 1")
    a = [torch.randn(1, k).bfloat16() for _ in range(sets)]
    b = [torch.randn(n, k).bfloat16() for _ in range(sets)]

    def torch_gbs():
        for i in range(10):
            torch.matmul(a[i % sets], b[i % sets].t())
        ts = []
        for i in range(200):
            t = time.perf_counter()
            torch.matmul(a[i % sets], b[i % sets].t())
            ts.append(time.perf_counter() - t)
        return n * k * 2 / statistics.median(ts) / 1e9

    def ours_gbs(path):
        env = dict(os.environ, MMTIME_SETS=str(sets), RAYON_NUM_THREADS="2")
        out = subprocess.run([mmtime, "1", str(n), str(k), "bf16", path, "-", "bt"],
                             env=env, capture_output=True, text=True)
        m = re.search(r"([0-9.]+) GFLOP/s", out.stdout)
        if out.returncode != 0 or not m:
            sys.exit(f"gemv_pairs.py: {mmtime} {path} failed: {out.stderr.strip()}")
        return float(m.group(1))  # bf16 GEMV: 2 FLOP per 2-byte element of B

    names = ["torch"] + paths
    rows = []
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        res = {nm: (torch_gbs() if nm == "torch" else ours_gbs(nm)) for nm in order}
        rows.append(res)
        print(time.strftime("%H:%M:%S"), " ".join(f"{nm} {res[nm]:5.1f}" for nm in names),
              flush=True)
    base = paths[0]
    print(f"# {rounds} rounds of 1x{n}x{k} bf16 Bt; paired ratio to {base} "
          "(median [quartiles], rounds above it), and each column's median / 90th percentile")
    for nm in names:
        col = sorted(x[nm] for x in rows)
        line = f"# {nm}: median {statistics.median(col):.1f} p90 {col[int(0.9 * len(col))]:.1f} GB/s"
        if nm != base:
            q = sorted(x[nm] / x[base] for x in rows)
            above = sum(1 for v in q if v > 1)
            line += (f"; /{base} {statistics.median(q):.3f} [{q[len(q) // 4]:.3f}, "
                     f"{q[3 * len(q) // 4]:.3f}], above in {above}/{len(q)}")
        print(line)


if __name__ == "__main__":
    main()
