import json,glob,re,statistics
from collections import defaultdict
rat=defaultdict(list); gf=defaultdict(list)
print("run | config | case | dtype | packed GFLOP/s | OpenBLAS GFLOP/s | packed/OpenBLAS")
for f in sorted(glob.glob('results/blocking-xeon207-session18/ab-p*-*.json')):
    p, c = re.search(r'ab-p(\d+)-(\w+)\.json', f).groups()
    d=json.load(open(f))
    by=defaultdict(dict)
    for r in d['results']:
        if r['status']=='ok':
            by[(r['case'], r['precision']['input'])][r['kernel']['family'].split('.')[-1]]=r
    for (case,dt),t in sorted(by.items()):
        ob=[v for (cc,dd),tt in by.items() if cc==case for k,v in tt.items() if k=='openblas']
        if 'packed' not in t or not ob: continue
        o=ob[0]; pk=t['packed']
        q=o['stats']['median_s']/pk['stats']['median_s']
        rat[(c,case,dt)].append(q)
        print(f"p{p} | {c} | {case} | {dt} | {pk['gflops']['median']:.0f} | {o['gflops']['median']:.0f} | {q:.3f}")
print()
print("config | case | dtype | runs | ratios | median")
for k,v in sorted(rat.items()):
    print(f"{k[0]} | {k[1]} | {k[2]} | {len(v)} | {', '.join(f'{x:.3f}' for x in v)} | {statistics.median(v):.3f}")
