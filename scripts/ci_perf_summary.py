#!/usr/bin/env python3
"""results/ci-perf.md from the compare.json files scripts/ci-perf-check.sh keeps.

    python3 scripts/ci_perf_summary.py results/ci-perf > results/ci-perf.md

Tables: per A/A repetition the verdict counts; per row the noise floor, tolerance and minimum
detectable effect (MDE) across the A/A repetitions; per power repetition the rows flagged; per row
touched by the patch how often it was flagged and its measured slowdown; the --threads 1 check.
"""
import glob
import json
import os
import statistics
import sys


def load(pattern):
    files = sorted(glob.glob(pattern), key=lambda f: int(f.rsplit("-", 1)[1].split(".")[0]))
    return [(f, json.load(open(f))) for f in files]


def pct(x):
    return "—" if x is None else f"{x * 100:.1f}%"


def short(row):
    return f"{row['id']} {row['shape']}"


def main(d):
    machine = open(os.path.join(d, "machine.txt")).read().strip()
    aa = load(os.path.join(d, "aa-*.json"))
    power = load(os.path.join(d, "power-*.json"))
    out = []
    w = out.append
    w("# CI performance tracking: A/A, power and configuration checks")
    w("")
    w("Command: `scripts/ci-perf-check.sh 5 5 REV` (each comparison `scripts/ci-perf.sh REV REV 5`:")
    w("quick suite, CPU rows, probes off, every row one process, base and head back to back, base first in")
    w("odd rounds and head first in even ones; `perfledger compare --paired`, threshold 3%, Holm at 5%")
    w("family-wise). Summary by `scripts/ci_perf_summary.py results/ci-perf`; every compare.json is in")
    w("`results/ci-perf/`.")
    w("")
    w("```")
    w(machine)
    w("```")
    w("")

    # A/A
    w("## A/A: the same build on both sides")
    w("")
    w("| repetition | slower | faster | no change | not comparable | unsupported | noisy | exit |")
    w("|---|---|---|---|---|---|---|---|")
    flagged_aa = 0
    for f, c in aa:
        k = c["counts"]
        flagged_aa += k["slower"] + k["faster"]
        w(f"| {os.path.basename(f)} | {k['slower']} | {k['faster']} | {k['no_change']} | "
          f"{k['not_comparable']} | {k['unsupported']} | {k['noisy']} | {c['exit_code']} |")
    w("")
    w(f"Rows flagged in {len(aa)} A/A comparisons: **{flagged_aa}**.")
    w("")
    w("### Per-row noise floor (A/A)")
    w("")
    w("Per row over the A/A repetitions: the ratio's range, the noise floor (2 × 1.4826 × MAD of the")
    w("pair ratios / their median), the tolerance t = max(3%, floor), and the MDE: the smallest slowdown")
    w("the row would flag at Holm's strictest level (α / hypotheses) given its own spread at 5 rounds.")
    w("")
    w("| kernel | shape | ratio min–max | floor (median) | t (median) | MDE median | MDE max | 5% detectable? |")
    w("|---|---|---|---|---|---|---|---|")
    rows = {}
    for _, c in aa:
        for r in c["rows"]:
            if r["ratio"] is None:
                continue
            rows.setdefault(r["key"], []).append(r)
    mdes = []
    for key, rs in rows.items():
        ratios = [r["ratio"] for r in rs]
        floors = [r["noise_floor_rounds"] for r in rs if r["noise_floor_rounds"] is not None]
        ts = [r["tolerance"] for r in rs if r["tolerance"] is not None]
        ms = [r["mde"] for r in rs if r["mde"] is not None]
        mde = statistics.median(ms) if ms else None
        if mde is not None:
            mdes.append(mde)
        w(f"| {rs[0]['id']} | {rs[0]['shape']} | {min(ratios):.3f}–{max(ratios):.3f} | "
          f"{pct(statistics.median(floors) if floors else None)} | "
          f"{pct(statistics.median(ts) if ts else None)} | {pct(mde)} | {pct(max(ms) if ms else None)} | "
          f"{'yes' if mde is not None and mde <= 0.05 else 'no'} |")
    w("")
    if mdes:
        w(f"MDE over {len(mdes)} rows: median {pct(statistics.median(mdes))}, best {pct(min(mdes))}, "
          f"worst {pct(max(mdes))}; {sum(m <= 0.05 for m in mdes)} rows would detect a 5% slowdown, "
          f"{sum(m <= 0.10 for m in mdes)} a 10% one.")
        w("")

    # Power
    if power:
        w("## Power: a genuinely slower head (scripts/ci-perf/slower-nc.patch)")
        w("")
        w("The patch sizes the packed matmul's B panel at 192 columns whatever the caches (a mis-sized")
        w("NC), so packed rows with N > 192 pack B in several blocks. The head build's rows record the")
        w("blocking they chose (`kernel chose nc 8192 → 192`): touched rows are those whose parameters")
        w("changed.")
        w("")
        w("| repetition | slower | faster | no change | flagged rows not touched | exit |")
        w("|---|---|---|---|---|---|")
        touched = {}
        untouched_flags = 0
        for f, c in power:
            k = c["counts"]
            bad = 0
            for r in c["rows"]:
                hit = any(p["name"] == "nc" for p in r["params_changed"])
                if hit:
                    touched.setdefault(r["key"], []).append(r)
                elif r["verdict"] in ("slower", "faster"):
                    bad += 1
            untouched_flags += bad
            w(f"| {os.path.basename(f)} | {k['slower']} | {k['faster']} | {k['no_change']} | {bad} | {c['exit_code']} |")
        w("")
        w(f"Rows not touched by the patch that were flagged, over {len(power)} comparisons: **{untouched_flags}**.")
        w("")
        w("| touched row | shape | measured slowdown (median ratio, range over repetitions) | flagged slower | MDE (A/A median) |")
        w("|---|---|---|---|---|")
        for key, rs in touched.items():
            ratios = [r["ratio"] for r in rs if r["ratio"] is not None]
            n_slow = sum(r["verdict"] == "slower" for r in rs)
            aa_m = [r["mde"] for r in rows.get(key, []) if r["mde"] is not None]
            w(f"| {rs[0]['id']} | {rs[0]['shape']} | "
              f"{statistics.median(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f}) | "
              f"{n_slow} of {len(rs)} | {pct(statistics.median(aa_m) if aa_m else None)} |")
        w("")

    # Threads
    refused = os.path.join(d, "threads-refused.json")
    allowed = os.path.join(d, "threads-allowed.json")
    if os.path.exists(refused) and os.path.exists(allowed):
        r = json.load(open(refused))
        a = json.load(open(allowed))
        w("## A `--threads 1` candidate")
        w("")
        w("Three whole-suite rounds per side (quick, CPU rows, probes off), the candidate with `--threads 1`.")
        w("")
        diffs = ", ".join(f"`{x['setting']}` {x['base']} → {x['candidate']}" for x in r["config_differences"])
        w(f"- Without `--allow-config-diff`: exit {r['exit_code']}, rows compared: {r['rows_compared']}, "
          f"configuration differences: {diffs}.")
        k = a["counts"]
        w(f"- With it: exit {a['exit_code']}: {k['slower']} slower, {k['faster']} faster, {k['no_change']} "
          f"no change, {k['not_comparable']} not comparable.")
        w("")
        w("| kernel | shape | ratio [95% CI] | verdict |")
        w("|---|---|---|---|")
        for x in a["rows"]:
            if x["ratio"] is None:
                continue
            w(f"| {x['id']} | {x['shape']} | {x['ratio']:.3f} [{x['ci95'][0]:.3f}, {x['ci95'][1]:.3f}] | {x['verdict']} |")
        w("")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/ci-perf")
