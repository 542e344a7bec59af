"""Per run of results/rounds/ab.sh: each case's ratio of perfledger's packed row to each peer row
(peer median time / perfledger's: > 1, perfledger faster), then per --rounds value the ratios'
median, quartiles, min and max over the runs, and the median absolute deviation of their logs
(the spread). Usage: python3 results/rounds/tab.py RUN.json..."""
import json, math, re, statistics, sys
from collections import defaultdict

by_mode = defaultdict(list)  # (rounds, case, peer) -> [ratio]
print("run | rounds | case | packed GFLOP/s | OpenBLAS | gemm | packed/OpenBLAS | packed/gemm")
for path in sorted(sys.argv[1:], key=lambda p: (p.rsplit("/", 1)[0], int(re.search(r"p(\d+)-", p).group(1)), p)):
    d = json.load(open(path))
    rounds = (d["config"]["options"] or {}).get("rounds") or 1
    cases = defaultdict(dict)
    for r in d["results"]:
        if r["status"] != "ok":
            continue
        cases[r["case"]][r["kernel"]["family"].split(".")[-1]] = r["stats"]["median_s"]
    for case, t in cases.items():
        g = {k: 2 * 512**3 / v / 1e9 if "512x" in case else 2 * 2048**3 / v / 1e9 for k, v in t.items()}
        ro = t["openblas"] / t["packed"]
        rg = t["gemm"] / t["packed"]
        by_mode[(rounds, case, "OpenBLAS")].append(ro)
        by_mode[(rounds, case, "gemm")].append(rg)
        print(f'{"/".join(path.split("/")[-2:])} | {rounds} | {case} | {g["packed"]:.0f} | {g["openblas"]:.0f} | {g["gemm"]:.0f} | {ro:.3f} | {rg:.3f}')
print()
print("rounds | case | peer | runs | median ratio | quartiles | min | max | MAD of log ratio")
for (rounds, case, peer), v in sorted(by_mode.items()):
    q = statistics.quantiles(v, n=4)
    logs = [math.log(x) for x in v]
    mad = statistics.median(abs(x - statistics.median(logs)) for x in logs)
    print(f"{rounds} | {case} | {peer} | {len(v)} | {statistics.median(v):.3f} | {q[0]:.3f}–{q[2]:.3f} "
          f"| {min(v):.3f} | {max(v):.3f} | {mad:.3f}")
