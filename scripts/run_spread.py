#!/usr/bin/env python3
"""Run-to-run spread between two run files of the same suite (the noise floor for CI tracking).

Usage: scripts/run_spread.py A.json B.json [--md OUT.md]

For every row present in both (same id and shape) with status ok in both: ratio of medians B/A with
a 95% bootstrap CI (independent resampling of both sample sets), and |ratio − 1|. Prints the
per-row table and the summary: median and max |ratio − 1| — what a regression threshold must
exceed on this machine. Standard library only.
"""
import argparse
import json
import random
import statistics
import sys


def ratio_ci(num, den, resamples=4000, seed=11):
    rng = random.Random(seed)
    rs = sorted(
        statistics.median([num[rng.randrange(len(num))] for _ in num])
        / statistics.median([den[rng.randrange(len(den))] for _ in den])
        for _ in range(resamples)
    )
    return rs[int(0.025 * resamples)], rs[int(0.975 * resamples) - 1]


def key(r):
    return (r.get("id"), json.dumps(r["shape"], sort_keys=True))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--md")
    args = ap.parse_args()
    A, B = json.load(open(args.a)), json.load(open(args.b))
    rows_b = {key(r): r for r in B["results"] if r["kind"] == "measured"}
    lines = ["| kernel | shape | A median (s) | B median (s) | B/A [95% CI] | abs(B/A − 1) |", "|---|---|---|---|---|---|"]
    devs = []
    for ra in A["results"]:
        rb = rows_b.get(key(ra))
        if ra["kind"] != "measured" or not rb or ra["status"] != "ok" or rb["status"] != "ok":
            continue
        ma, mb = statistics.median(ra["samples_s"]), statistics.median(rb["samples_s"])
        lo, hi = ratio_ci(rb["samples_s"], ra["samples_s"])
        d = abs(mb / ma - 1)
        devs.append(d)
        s = ra["shape"]
        shape = f'{s["m"]}x{s["n"]}x{s["k"]}' + (" Bt" if s.get("trans_b") else "") if "m" in s else json.dumps(s)
        lines.append(f"| {ra['id']} | {shape} | {ma:.3e} | {mb:.3e} | {mb / ma:.3f} [{lo:.3f}, {hi:.3f}] | {100 * d:.1f}% |")
    if devs:
        lines.append("")
        lines.append(f"{len(devs)} rows; run-to-run |B/A − 1|: median {100 * statistics.median(devs):.1f}%, "
                     f"max {100 * max(devs):.1f}%.")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.md:
        open(args.md, "w").write(text)


if __name__ == "__main__":
    main()
