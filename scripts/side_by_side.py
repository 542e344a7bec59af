#!/usr/bin/env python3
"""Ratios of perfledger's measured rows to peer rows on the same shape, from one run file.

Usage: scripts/side_by_side.py RUN.json [--md OUT.md] [--title TITLE]

For each `ok` measured row and each verified peer row with the same op and shape, prints
ratio = peer median time / perfledger median time (> 1: perfledger faster) with a 95% percentile
bootstrap CI (each side resampled independently, 4000 resamples, seeded), and perfledger's fraction
of the run's measured ceiling (FMA peak of the kernel's ISA, or read bandwidth for memory-bound
rows: the higher of the probes before and after the rows). Standard library only.
"""
import argparse
import json
import random
import statistics
import sys


def median(xs):
    return statistics.median(xs)


def ratio_ci(num, den, resamples=4000, seed=7):
    """CI of median(num) / median(den) by independent percentile bootstrap."""
    rng = random.Random(seed)
    rs = []
    for _ in range(resamples):
        a = [num[rng.randrange(len(num))] for _ in num]
        b = [den[rng.randrange(len(den))] for _ in den]
        rs.append(median(a) / median(b))
    rs.sort()
    return rs[int(0.025 * resamples)], rs[int(0.975 * resamples) - 1]


def shape_key(row):
    s = dict(row["shape"])
    s.setdefault("batch", 1)
    s.setdefault("trans_b", False)
    if "scale" in s:
        # perfledger stores the attention scale as f32 (1/sqrt(d) rounded), the peer scripts as
        # f64: the same scale to 6 significant digits.
        s["scale"] = float(f'{s["scale"]:.6g}')
    return (row["op"], json.dumps(s, sort_keys=True))


def shape_str(row):
    s = row["shape"]
    if row["op"] == "matmul":
        return f'{s["m"]}x{s["n"]}x{s["k"]}' + (" Bt" if s.get("trans_b") else "")
    return f'h{s["q_heads"]}/{s["kv_heads"]} q{s["q_len"]} kv{s["kv_len"]} d{s["head_dim"]}' + (
        " causal" if s.get("causal") else "")


def prec(row):
    p = row["precision"]
    return f'{p["input"]}-{p["accum"]}-{p["output"]}'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--md")
    ap.add_argument("--title", default="Side by side")
    args = ap.parse_args()
    run = json.load(open(args.run))
    ceil = run.get("measured_ceilings", {})
    fma_before = ceil.get("cpu_fma_gflops", {})
    fma_after = ceil.get("cpu_fma_gflops_after", {})
    # FMA ceilings: the higher of the probes before and after the rows (as in perfledger).
    fma = {k: max(v, fma_after.get(k, v)) for k, v in fma_before.items()}
    read_before = ceil.get("cpu_read_gbs")
    read_after = ceil.get("cpu_read_gbs_after")
    # The ceiling is the higher of the probes before and after the rows (as in perfledger).
    read = max((x for x in (read_before, read_after) if x), default=None)
    rows = run["results"]
    ours = [r for r in rows if r["kind"] == "measured" and r["status"] == "ok"]
    peers = [r for r in rows if r["kind"] == "peer" and r.get("samples_s")
             and (r.get("verification") or {}).get("verdict") == "pass"]
    out = []
    out.append(f"# {args.title}\n")
    out.append(f"Run file: `{args.run}` (run_id {run['run_id']}, created {run['created']}).")
    cpu = run["environment"]["cpu"]
    out.append(f"CPU: {cpu.get('model')} — {cpu.get('threads_used')} threads, ISA selected "
               f"{cpu.get('isa_selected')}, load average at start {cpu.get('load_avg')}, steal "
               f"{cpu.get('steal_pct')}%.")
    out.append("Measured ceilings (same run): FMA " + ", ".join(
        f"{k} {v:.0f} GFLOP/s" + (f" ({fma_after[k]:.0f} after the rows)" if k in fma_after else "")
        for k, v in fma_before.items())
               + (f"; read {read_before:.1f} GB/s" if read_before else "")
               + (f" before, {read_after:.1f} GB/s after the rows (ceiling: the higher)" if read_after else "")
               + ".")
    out.append("Ratio = peer median time / perfledger median time (> 1: perfledger is faster), 95% CI by "
               "bootstrap of both sample sets. FLOPs: matmul 2·M·N·K, attention 4·D·unmasked pairs.\n")
    out.append("| shape | perfledger kernel | GFLOP/s [95% CI] | % of ceiling | peer | peer precision | peer GFLOP/s | ratio [95% CI] |")
    out.append("|---|---|---|---|---|---|---|---|")
    for r in ours:
        flops = r["flops"]["useful"]
        t = median(r["samples_s"])
        g = r["gflops"]
        variant = r["kernel"]["variant"]
        # The kernel's own ISA path's probe; a path without one (avx512bf16) has no compute ceiling.
        peak = fma.get(variant) or (max(fma.values()) if fma and variant == "scalar" else None)
        ai = flops / r["min_bytes"]
        roof = min(x for x in (peak, ai * read if read else None) if x) if (peak or read) else None
        if read and ai * read < (peak or float("inf")) and ai < 4:
            frac = f"{100 * flops / t / 1e9 / (ai * read):.0f}% of read BW ({r['min_bytes'] / t / 1e9:.1f} GB/s)"
        elif peak and roof:
            frac = f"{100 * flops / t / 1e9 / peak:.0f}% of {variant} FMA"
        else:
            frac = f"n/a (no {variant} probe)"
        matches = [p for p in peers if shape_key(p) == shape_key(r)]
        if not matches:
            out.append(f"| {shape_str(r)} | {r['id']} | {g['median']:.1f} [{g['ci95'][0]:.1f}, {g['ci95'][1]:.1f}] | {frac} | — | | | |")
        for p in matches:
            lo, hi = ratio_ci(p["samples_s"], r["samples_s"])
            pr = median(p["samples_s"]) / t
            pg = flops / median(p["samples_s"]) / 1e9
            tool = p.get("provenance", {}) or {}
            name = tool.get("tool") or p["device"]["name"]
            out.append(f"| {shape_str(r)} | {r['id']} | {g['median']:.1f} [{g['ci95'][0]:.1f}, {g['ci95'][1]:.1f}] | {frac} "
                       f"| {name} | {prec(p)} | {pg:.1f} | **{pr:.2f}** [{lo:.2f}, {hi:.2f}] |")
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    if args.md:
        with open(args.md, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
