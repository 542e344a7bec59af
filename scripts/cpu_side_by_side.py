#!/usr/bin/env python3
"""The table of scripts/cpu-side-by-side.sh: per workload (op, shape, input dtype), perfledger's
best verified kernel against the best verified peer of the rule for that dtype, from one run file
(perfledger's rows, the in-process peers of the same run, and the imported PyTorch/numpy rows).

Usage: scripts/cpu_side_by_side.py RUN.json [--md OUT.md] [--title TITLE] [--json OUT.json]

Peers that count for a dtype (the CPU-peers issue):
  f32   every f32 peer (OpenBLAS sgemm in-process and through numpy, ndarray, the gemm crate, PyTorch f32)
  f16   every f16 peer (the gemm crate's f16, PyTorch f16) and every f32 sgemm peer (OpenBLAS, numpy)
  bf16  every bf16 peer (PyTorch bf16, OpenBLAS sbgemm)
Attention: flash rows against PyTorch SDPA at the same dtype; decode rows as a share of the run's
read-bandwidth ceiling (K+V bytes per second over the higher of the read probes before and after).

Ratio = best peer median time / perfledger median time (> 1: perfledger faster), 95% CI by
percentile bootstrap of both sample sets (independent resamples, seeded). Standard library only.
"""
import argparse
import json
import random
import statistics
import sys

from side_by_side import prec, shape_key, shape_str


def ratio_ci(num, den, resamples=4000, seed=7):
    rng = random.Random(seed)
    rs = []
    for _ in range(resamples):
        a = [num[rng.randrange(len(num))] for _ in num]
        b = [den[rng.randrange(len(den))] for _ in den]
        rs.append(statistics.median(a) / statistics.median(b))
    rs.sort()
    return rs[int(0.025 * resamples)], rs[int(0.975 * resamples) - 1]


def peer_name(r):
    if r.get("kernel"):
        return r["id"]
    prov = r.get("provenance") or {}
    tool = prov.get("tool") or r["device"]["name"]
    return f"{tool} ({prec(r)}, imported)"


def is_sgemm(r):
    """An f32 GEMM peer from OpenBLAS (in-process or numpy's)."""
    if r["precision"]["input"] != "f32":
        return False
    if r.get("kernel"):
        return "openblas" in r["kernel"]["family"]
    return ((r.get("provenance") or {}).get("tool") or "") == "numpy"


def counts_for(dtype, peer):
    pin = peer["precision"]["input"]
    if dtype == "f16":
        return pin == "f16" or is_sgemm(peer)
    return pin == dtype


def gflops(r):
    return r["flops"]["useful"] / statistics.median(r["samples_s"]) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--md")
    ap.add_argument("--json")
    ap.add_argument("--title", default="CPU side by side")
    args = ap.parse_args()
    run = json.load(open(args.run))
    ceil = run.get("measured_ceilings", {})
    fma = dict(ceil.get("cpu_fma_gflops", {}))
    for k, v in (ceil.get("cpu_fma_gflops_after") or {}).items():
        fma[k] = max(v, fma.get(k, 0))
    read = max((x for x in (ceil.get("cpu_read_gbs"), ceil.get("cpu_read_gbs_after")) if x),
               default=None)
    rows = [r for r in run["results"] if r.get("samples_s")]
    ok = [r for r in rows if r["status"] == "ok" and r["kind"] == "measured"]
    peers = [r for r in rows if r["kind"] == "peer"
             and (r.get("verification") or {}).get("verdict") == "pass"
             and r["status"] == "ok"]
    # Workloads in the order of the run.
    keys = []
    for r in ok:
        key = (shape_key(r), r["precision"]["input"])
        if key not in keys:
            keys.append(key)
    cpu = run["environment"]["cpu"]
    out = [f"# {args.title}\n",
           f"Run file: `{args.run}` (run_id {run['run_id']}, created {run['created']}).",
           f"CPU: {cpu.get('model')} — {cpu.get('threads_used')} threads, ISA selected "
           f"{cpu.get('isa_selected')}, load average at start {cpu.get('load_avg')}.",
           "Measured ceilings (higher of before/after): FMA " +
           ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in sorted(fma.items())) +
           (f"; read {read:.1f} GB/s" if read else "") + ".",
           "Ratio = best peer's median time / perfledger's best kernel's median time (> 1: "
           "perfledger faster), 95% CI by bootstrap of both sample sets. Peers per dtype: f32 "
           "every f32 peer; f16 the f16 peers and OpenBLAS sgemm (f32 data); bf16 the bf16 peers. "
           "Decode: K+V bytes/s as a share of the read ceiling.\n",
           "| op | shape | dtype | perfledger best kernel | GFLOP/s [95% CI] | best peer | peer GFLOP/s "
           "| ratio [95% CI] | other peers (GFLOP/s) |",
           "|---|---|---|---|---|---|---|---|---|"]
    table = []
    for (sk, dtype) in keys:
        mine = [r for r in ok if shape_key(r) == sk and r["precision"]["input"] == dtype]
        best = max(mine, key=gflops)
        cand = [p for p in peers if shape_key(p) == sk and counts_for(dtype, p)]
        g = best["gflops"]
        entry = {"op": best["op"], "shape": shape_str(best), "dtype": dtype, "kernel": best["id"],
                 "gflops": g["median"], "gflops_ci95": g["ci95"]}
        line = (f"| {best['op']} | {shape_str(best)} | {dtype} | `{best['id']}` | "
                f"{g['median']:.1f} [{g['ci95'][0]:.1f}, {g['ci95'][1]:.1f}] |")
        if cand:
            top = max(cand, key=gflops)
            lo, hi = ratio_ci(top["samples_s"], best["samples_s"])
            ratio = statistics.median(top["samples_s"]) / statistics.median(best["samples_s"])
            others = sorted((p for p in cand if p is not top), key=gflops, reverse=True)
            entry.update({"peer": peer_name(top), "peer_gflops": gflops(top), "ratio": ratio,
                          "ratio_ci95": [lo, hi]})
            line += (f" {peer_name(top)} | {gflops(top):.1f} | **{ratio:.2f}** [{lo:.2f}, {hi:.2f}] | "
                     + "; ".join(f"{peer_name(p)} {gflops(p):.0f}" for p in others) + " |")
        elif best["op"] == "attention" and best["shape"].get("q_len") == 1 and read:
            gbs = best["min_bytes"] / statistics.median(best["samples_s"]) / 1e9
            entry.update({"read_gbs": gbs, "read_share": gbs / read})
            line += f" — | — | {100 * gbs / read:.0f}% of read ({gbs:.1f} of {read:.1f} GB/s) | |"
        else:
            line += " — | — | — | |"
        # Each of perfledger's kernels for this workload, when more than one ran.
        if len(mine) > 1:
            line = line[:-1] + " perfledger: " + "; ".join(
                f"{r['kernel']['variant']} {gflops(r):.0f}" for r in sorted(mine, key=gflops, reverse=True)) + " |"
        out.append(line)
        table.append(entry)
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    if args.md:
        with open(args.md, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"run": args.run, "rows": table}, f, indent=1)


if __name__ == "__main__":
    main()
