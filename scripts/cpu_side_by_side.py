#!/usr/bin/env python3
"""The table of scripts/cpu-side-by-side.sh: per workload (op, shape, input dtype), perfledger's
best verified kernel against the best verified peer of the rule for that dtype, from one run file
(perfledger's rows, the in-process peers of the same run, and the imported PyTorch/numpy rows).

Usage: scripts/cpu_side_by_side.py RUN.json [--also RUN2.json ...] [--md OUT.md] [--title TITLE]
                                   [--json OUT.json]

--also: further runs of the same suite in the same sitting (scripts/cpu-side-by-side.sh runs
perfledger after each of the imported peers' rounds: peers, perfledger, peers, perfledger by
default, a round more for each --runs / --peer-rounds above 2). Their perfledger rows and
in-process peer rows join RUN's, so each side is the best of its rounds, as the imported peers
are the best of theirs; rows from a later run are marked (r2), (r3), ... in the table.

The gate peers of a dtype (the CPU-peers issue's rule; the gate is >= 0.95x the best of them):
  f32   OpenBLAS sgemm (in-process, and numpy's)
  f16   the gemm crate's f16 and OpenBLAS sgemm (f32 data)
  bf16  PyTorch bf16 and OpenBLAS sbgemm
Every other verified peer of the same input dtype (ndarray, the gemm crate's f32, PyTorch f32 on
MKL, PyTorch f16 on oneDNN) is shown beside it as a reference, with its own ratio.
Attention: flash rows against PyTorch SDPA at the same dtype; decode rows as a share of the read
of their own inputs alongside their samples (`read_alongside`, run schema 1.7: after every sample
the runner reads the next input sets of the rotation with each buffer pattern of the read probe;
the row's K+V bytes per second over the median of the samples' best patterns): each run's best
decode row, the gate judged by the median run (the lower median of an even count), every run's
share shown, with its share of its run's read probe (the higher of the probes before and after
all rows: minutes away from the row on a host whose memory state moves within seconds, so not the
row's ceiling; the best run would be the luckiest).

Ratio = best peer median time / perfledger median time (> 1: perfledger faster), 95% CI by
percentile bootstrap of both sample sets (independent resamples, seeded). Standard library only.

The column "in the same run" pairs rows in time: per run, perfledger's best row of the workload
against the best in-process gate peer row of that same run (OpenBLAS sgemm/sbgemm, the gemm
crate's f16), timed minutes apart at most, or interleaved turn by turn with `perfledger run
--rounds N` (cpu-side-by-side.sh --rounds N). It does not change the gate verdict, which keeps the
rule above; it shows what the cross-run best-of-rounds leaves to the host's swings.
"""
import argparse
import os
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


def tool(r):
    if r.get("kernel"):
        return r["kernel"]["family"].rsplit(".", 1)[-1]
    return (r.get("provenance") or {}).get("tool") or ""


def gate_peer(dtype, peer):
    """The issue's rule: f32 against OpenBLAS sgemm; f16 against the gemm crate's f16 and
    OpenBLAS sgemm; bf16 against PyTorch bf16 and OpenBLAS sbgemm."""
    pin = peer["precision"]["input"]
    if dtype == "f32":
        return is_sgemm(peer)
    if dtype == "f16":
        return is_sgemm(peer) or (pin == "f16" and tool(peer) == "gemm")
    return pin == "bf16" and tool(peer) in ("torch", "openblas")


def reference_peer(dtype, peer):
    """Any other verified peer of the same input dtype."""
    return peer["precision"]["input"] == dtype and not gate_peer(dtype, peer)


def gflops(r):
    return r["flops"]["useful"] / statistics.median(r["samples_s"]) / 1e9


def rnd(r):
    """` (rN)` for a row of a later run (`--also`), else nothing."""
    return f" (r{r['round']})" if r.get("round") else ""


def probe_table(run_path, also, probe_files):
    """The host's probes through the sitting: around each Python peers' round (`--probes`) and
    before/after the rows of each perfledger run (its measured ceilings), in sitting order."""
    if not probe_files:
        return []

    def f32_fma(by_isa):
        # The f32 FMA probe: AVX-512F where the run has it, else its best ISA.
        return by_isa.get("avx512f") or max(by_isa.values(), default=None)

    def env_row(path):
        p = json.load(open(path))["probes"]
        fma = {f["isa"]: f["gflops"] for f in p.get("fma", [])}
        return ((p.get("amx") or {}).get("gflops"), f32_fma(fma),
                (p.get("bandwidth") or {}).get("read_gbs"))

    def run_rows(path):
        c = json.load(open(path)).get("measured_ceilings", {})
        before, after = c.get("cpu_fma_gflops") or {}, c.get("cpu_fma_gflops_after") or {}
        return [("before its rows", (before.get("amx_bf16"), f32_fma(before), c.get("cpu_read_gbs"))),
                ("after its rows", (after.get("amx_bf16"), f32_fma(after), c.get("cpu_read_gbs_after")))]

    def label(path):
        name = os.path.basename(path).removeprefix("probes-").removesuffix(".json")
        parts = name.split("-")  # peers-ROUND-start|end
        return f"Python peers, round {parts[1]}, {parts[2]}" if len(parts) == 3 else name

    by_name = {os.path.basename(f): f for f in probe_files}
    seq = []
    # Round r: the Python peers' round (before, after, 3, 4, ...), then perfledger's run r.
    runs = [run_path] + list(also)
    names = ["before", "after"] + [str(i) for i in range(3, max(len(runs), 2) + 1)]
    for i, rnd in enumerate(names):
        run = runs[i] if i < len(runs) else None
        for end in ("start", "end"):
            f = by_name.pop(f"probes-peers-{rnd}-{end}.json", None)
            if f:
                seq.append((label(f), env_row(f)))
        if run:
            seq += [(f"perfledger `{os.path.basename(run)}`, {w}", v) for w, v in run_rows(run)]
    seq += [(label(f), env_row(f)) for f in by_name.values()]
    cell = lambda x, fmt: "—" if x is None else fmt.format(x)
    return ["", "The host through the sitting (the same probes: `perfledger env --probes` around each "
            "Python peers' round, each perfledger run's own before and after its rows):", "",
            "| when | tdpbf16ps GFLOP/s | f32 FMA GFLOP/s | read GB/s |", "|---|---|---|---|"] + [
        f"| {w} | {cell(a, '{:.0f}')} | {cell(f, '{:.0f}')} | {cell(r, '{:.1f}')} |" for w, (a, f, r) in seq]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--also", action="append", default=[])
    ap.add_argument("--md")
    ap.add_argument("--json")
    ap.add_argument("--title", default="CPU side by side")
    ap.add_argument("--probes", action="append", default=[],
                    help="`perfledger env --probes` output taken around a Python peers' round "
                         "(probes-peers-ROUND-start|end.json), listed with the runs' own probes")
    ap.add_argument("--peers-log",
                    help="the Python peers' log (peers.log): rows it skipped (`skipped: ...`, "
                         "--max-call-time) are listed under the tables")
    args = ap.parse_args()
    run = json.load(open(args.run))
    ceil = run.get("measured_ceilings", {})
    fma = dict(ceil.get("cpu_fma_gflops", {}))
    for k, v in (ceil.get("cpu_fma_gflops_after") or {}).items():
        fma[k] = max(v, fma.get(k, 0))
    read = max((x for x in (ceil.get("cpu_read_gbs"), ceil.get("cpu_read_gbs_after")) if x),
               default=None)
    # Each run's own read probe (the higher of its before and after), by round (1: RUN).
    read_of_round = {1: read}
    rows = [r for r in run["results"] if r.get("samples_s")]
    for i, path in enumerate(args.also, start=2):
        more = json.load(open(path))
        mc = more.get("measured_ceilings", {})
        for k, v in list((mc.get("cpu_fma_gflops") or {}).items()) + list(
                (mc.get("cpu_fma_gflops_after") or {}).items()):
            fma[k] = max(v, fma.get(k, 0))
        read_of_round[i] = max(
            (x for x in (mc.get("cpu_read_gbs"), mc.get("cpu_read_gbs_after")) if x), default=None)
        read = max((x for x in (read, read_of_round[i]) if x), default=None)
        for r in more["results"]:
            # perfledger's and the in-process peers' rows (imported rows live in RUN only)
            if r.get("samples_s") and r.get("kernel"):
                rows.append(dict(r, round=i))
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
           f"Run file: `{args.run}` (run_id {run['run_id']}, created {run['created']})" +
           ("" if not args.also else
            "; perfledger's and the in-process peers' rows of " +
            ", ".join(f"`{a}` (r{i})" for i, a in enumerate(args.also, start=2)) +
            " join them, each side the best of its rounds") + ".",
           f"CPU: {cpu.get('model')} — {cpu.get('threads_used')} threads, ISA selected "
           f"{cpu.get('isa_selected')}, load average at start {cpu.get('load_avg')}.",
           "Measured ceilings (highest of the runs' before/after probes): FMA " +
           ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in sorted(fma.items())) +
           (f"; read {read:.1f} GB/s" if read else "") + ".",
           "Ratio = best peer's median time / perfledger's best kernel's median time (> 1: "
           "perfledger faster), 95% CI by bootstrap of both sample sets. Gate peers (the CPU-peers "
           "issue's rule, gate ≥ 0.95× the best of them): f32 OpenBLAS sgemm; f16 the gemm crate's "
           "f16 and OpenBLAS sgemm (f32 data); bf16 PyTorch bf16 and OpenBLAS sbgemm; attention "
           "(flash) PyTorch SDPA, gate ≥ 1.5×; decode: K+V bytes/s against the read of the row's own "
           "inputs alongside its samples (rN: the run; each run's share of its read probe shown too), "
           "gate ≥ 80%. Other peers of the same dtype are references, with their own ratio.\n",
           "| op | shape | dtype | perfledger best kernel | GFLOP/s [95% CI] | gate peer (best) | peer GFLOP/s "
           "| ratio [95% CI] | ≥ 0.95 | in the same run: ratio to its best in-process gate peer "
           "| fastest other reference: ratio | all rows (GFLOP/s) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    table = []
    for (sk, dtype) in keys:
        mine = [r for r in ok if shape_key(r) == sk and r["precision"]["input"] == dtype]
        best = max(mine, key=gflops)
        same = [p for p in peers if shape_key(p) == sk]
        cand = [p for p in same if gate_peer(dtype, p)]
        refs = [p for p in same if reference_peer(dtype, p)]
        g = best["gflops"]
        entry = {"op": best["op"], "shape": shape_str(best), "dtype": dtype, "kernel": best["id"],
                 "gflops": g["median"], "gflops_ci95": g["ci95"]}
        line = (f"| {best['op']} | {shape_str(best)} | {dtype} | `{best['id']}` | "
                f"{g['median']:.1f} [{g['ci95'][0]:.1f}, {g['ci95'][1]:.1f}] |")
        ratio_of = lambda peer: statistics.median(peer["samples_s"]) / statistics.median(best["samples_s"])
        # Per run: its best decode row against the read of its own inputs alongside its samples
        # (`read_alongside`, run schema 1.7) and against its run's read probe.
        per_run = []
        if best["op"] == "attention" and best["shape"].get("q_len") == 1:
            for run_no, probe in sorted(read_of_round.items()):
                theirs = [r for r in mine if r.get("round", 1) == run_no]
                if theirs:
                    top = max(theirs, key=gflops)
                    gbs = top["min_bytes"] / statistics.median(top["samples_s"]) / 1e9
                    along = top.get("read_alongside") or {}
                    per_run.append({"round": run_no, "read_gbs": gbs, "probe_gbs": probe,
                                    "probe_share": gbs / probe if probe else None,
                                    "alongside_gbs": along.get("median_gbs"),
                                    "share": along.get("share")})
        if per_run:
            # Judged by the share of the read alongside: the ceiling of the row's own seconds
            # (the run's probe is taken minutes away, before and after all rows, on a host whose
            # memory state moves within seconds). Judged by the median run (the lower median of an
            # even count: one run's own share), not the best: the best of several runs would pick
            # the luckiest of them. A run file without `read_alongside` (before schema 1.7) gives
            # no verdict.
            judged = [x for x in per_run if x["share"] is not None]
            pick = (statistics.median_low([(x["share"], x["round"]) for x in judged])
                    if judged else None)
            mid = next(x for x in per_run if x["round"] == pick[1]) if pick else None
            meets = (mid["share"] >= 0.8) if mid else None
            entry.update({"read_share": mid["share"] if mid else None,
                          "read_alongside_gbs": mid["alongside_gbs"] if mid else None,
                          "read_gbs": mid["read_gbs"] if mid else None,
                          "read_round": mid["round"] if mid else None, "meets_gate": meets,
                          "read_per_run": per_run})

            def run_text(x):
                along = (f"{100 * x['share']:.0f}% of {x['alongside_gbs']:.1f} alongside"
                         if x["share"] is not None else "no read alongside")
                probe = (f", {100 * x['probe_share']:.0f}% of probe {x['probe_gbs']:.1f}"
                         if x["probe_share"] is not None else "")
                return f"r{x['round']}: {x['read_gbs']:.1f} GB/s, {along}{probe}"
            verdict = ({True: "yes", False: "no"}[meets]
                       + f" (≥ 80% of the read alongside, the median run r{mid['round']})"
                       if meets is not None else "no verdict: no run read its inputs alongside")
            line += (f" (gate: K+V read vs the read of its inputs alongside) | — | "
                     + (f"{100 * mid['share']:.0f}% of read alongside" if mid else "—")
                     + f" ({'; '.join(run_text(x) for x in per_run)}) | {verdict} |")
        elif cand:
            top = max(cand, key=gflops)
            lo, hi = ratio_ci(top["samples_s"], best["samples_s"])
            ratio = ratio_of(top)
            gate = 1.5 if best["op"] == "attention" else 0.95
            entry.update({"peer": peer_name(top), "peer_gflops": gflops(top), "ratio": ratio,
                          "ratio_ci95": [lo, hi], "gate": gate, "meets_gate": ratio >= gate})
            line += (f" {peer_name(top)} | {gflops(top):.1f} | **{ratio:.2f}** [{lo:.2f}, {hi:.2f}] | "
                     f"{'yes' if ratio >= gate else 'no'}{'' if gate == 0.95 else f' (≥ {gate})'} |")
        else:
            line += " — | — | — | — |"
        # The same run's pair: each run's best perfledger row against its best in-process gate peer.
        same_run = []
        for run_no in sorted({r.get("round", 1) for r in mine}):
            theirs = [r for r in mine if r.get("round", 1) == run_no]
            inproc = [p for p in cand if p.get("kernel") and p.get("round", 1) == run_no]
            if theirs and inproc and not per_run:
                a, b = max(theirs, key=gflops), max(inproc, key=gflops)
                q = statistics.median(b["samples_s"]) / statistics.median(a["samples_s"])
                same_run.append({"round": run_no, "peer": b["id"], "ratio": q})
        if same_run:
            entry["same_run"] = same_run
            line += " " + "; ".join(f"r{x['round']} {x['ratio']:.2f}" for x in same_run) + " |"
        else:
            line += " — |"
        if refs:
            ref = max(refs, key=gflops)
            entry.update({"reference": peer_name(ref), "reference_ratio": ratio_of(ref)})
            line += f" {peer_name(ref)}: {ratio_of(ref):.2f} |"
        else:
            line += " — |"
        line += " " + "; ".join(
            [f"{r['kernel']['variant']}{rnd(r)} {gflops(r):.0f}" for r in sorted(mine, key=gflops, reverse=True)]
            + [f"{peer_name(p)}{rnd(p)} {gflops(p):.0f}" for p in sorted(cand + refs, key=gflops, reverse=True)]) + " |"
        out.append(line)
        table.append(entry)
    # flash.avx512bf16 against flash.avx512f in the same run (gate >= 1.6x).
    flash = {}
    for r in ok:
        if (r["op"] == "attention" and r["kernel"]["family"] == "attention.cpu.flash"
                and not r.get("round")):
            flash.setdefault(shape_key(r), {})[r["kernel"]["variant"]] = r
    # And flash.amx (AMX tiles, where the CPU has them) against the same flash.avx512f row.
    lines = []
    for sk, by in flash.items():
        for variant, key in (("avx512bf16", "flash_bf16dot_vs_f32"), ("amx", "flash_amx_vs_f32")):
            if variant in by and "avx512f" in by:
                a, b = by[variant], by["avx512f"]
                lo, hi = ratio_ci(b["samples_s"], a["samples_s"])
                ratio = statistics.median(b["samples_s"]) / statistics.median(a["samples_s"])
                lines.append(f"| {shape_str(a)} | `flash.{variant}` | {gflops(a):.1f} | {gflops(b):.1f} "
                             f"| **{ratio:.2f}** [{lo:.2f}, {hi:.2f}] | {'yes' if ratio >= 1.6 else 'no'} |")
                table.append({key: ratio, "shape": shape_str(a), "ci95": [lo, hi]})
    if lines:
        bf = fma.get("avx512bf16")
        f32 = fma.get("avx512f")
        amx = fma.get("amx_bf16")
        out += ["", "`flash.avx512bf16` (and `flash.amx` where present) against `flash.avx512f` in the same run"
                + (" (the first)" if args.also else "") + " (gate ≥ 1.6×, for `flash.avx512bf16`)"
                + (f"; the run's probes: vdpbf16ps {bf:.0f} GFLOP/s, f32 FMA {f32:.0f} GFLOP/s "
                   f"(ratio {bf / f32:.2f})" if bf and f32 else "")
                + (f", tdpbf16ps {amx:.0f} GFLOP/s" if amx else "") + ":", "",
                "| shape | path | its GFLOP/s | avx512f GFLOP/s | ratio [95% CI] | ≥ 1.6 |",
                "|---|---|---|---|---|---|"] + lines
    out += probe_table(args.run, args.also, args.probes)
    if args.peers_log:
        skipped, peer_round = [], None
        with open(args.peers_log) as f:
            for ln in f:
                ln = ln.strip()
                if ln.startswith("== peers round "):
                    peer_round = ln.split()[3]
                elif ln.startswith("skipped: "):
                    what = ln.removeprefix("skipped: ")
                    skipped.append(f"(round {peer_round}) {what}" if peer_round else what)
        if skipped:
            out += ["", "Python peer rows not timed (their first call was, or was predicted to "
                    "be, over the sitting's `--peer-max-call`; no row, so no ratio against "
                    "them):", ""]
            out += [f"- {s}" for s in skipped]
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
