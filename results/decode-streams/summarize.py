"""Decode rows of the alternated runs: K+V GB/s, the read alongside and the share."""
import glob
import json
import sys

pattern = sys.argv[1] if len(sys.argv) > 1 else "run-*.json"
for f in sorted(glob.glob(pattern), key=lambda f: (f.split("-")[-1], f)):
    d = json.load(open(f))
    for r in d["results"]:
        if r["status"] != "ok":
            continue
        ra = r.get("read_alongside") or {}
        st = r.get("stats") or {}
        med = st.get("median_s")
        gbs = r["min_bytes"] / med / 1e9
        streams = ((r.get("kernel") or {}).get("params") or {}).get("kv_streams", "-")
        print(f"{f:24} {r['id']:48} streams {streams}  {gbs:5.1f} GB/s  alongside {ra.get('median_gbs', 0):5.1f}  share {ra.get('share') or 0:.3f}")
