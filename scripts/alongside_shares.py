#!/usr/bin/env python3
"""Each memory-bound row of perfledger run files against the read of its own inputs alongside its
samples (`read_alongside`, run schema 1.7) and against its run's read probe (the higher of the
probes before and after all rows).

    python3 scripts/alongside_shares.py results/decode-zen4-session14/run-*.json

One block per run file: the probes, then per verified row with a read alongside its bytes/s
(`min_bytes` per median iteration), its share of the read alongside and of the probe.
Standard library only.
"""
import json
import sys


def main(paths):
    if not paths:
        sys.exit(__doc__)
    for path in paths:
        try:
            with open(path) as f:
                run = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit(f"alongside_shares.py: {path}: {e}")
        mc = run.get("measured_ceilings") or {}
        before, after = mc.get("cpu_read_gbs"), mc.get("cpu_read_gbs_after")
        probe = max((x for x in (before, after) if x), default=None)
        print(f"{path}: read probe {before or 0:.1f} before, {after or 0:.1f} after the rows")
        for r in run["results"]:
            along = r.get("read_alongside")
            if r.get("status") != "ok" or not along or not r.get("stats"):
                continue
            gbs = r["min_bytes"] / r["stats"]["median_s"] / 1e9
            share = along.get("share")
            print(f"    {r['id']:<52} {gbs:5.1f} GB/s: "
                  f"{'—' if share is None else f'{100 * share:.0f}%'} of {along['median_gbs']:.1f} "
                  f"alongside, " + (f"{100 * gbs / probe:.0f}% of the probe" if probe else "no probe"))


if __name__ == "__main__":
    main(sys.argv[1:])
