#!/usr/bin/env bash
# Screenshot an HTML report (`perfledger report ... --format html --out REPORT.html`) in headless
# Chromium, to look at the charts and tables without a browser session.
#
# Usage: scripts/screenshot-report.sh REPORT.html OUT.png [WIDTH,HEIGHT]   (default 1400,2000)
#
# Needs Chromium (Debian/Ubuntu: `apt-get install -y chromium`; set CHROMIUM=/path/to/binary to
# use another). The report is self-contained (inline CSS and SVG, no script, nothing fetched), and
# Chromium runs with networking features off and a throwaway profile, so the screenshot needs no
# network. `--no-sandbox` is needed when running as root (containers); drop it otherwise with
# SANDBOX=1. Only the top WIDTH×HEIGHT pixels of the page are captured: raise HEIGHT for more.
set -euo pipefail

if [ $# -lt 2 ]; then
    sed -n '2,12p' "$0"
    exit 2
fi
html=$1
out=$2
size=${3:-1400,2000}
[ -f "$html" ] || { echo "screenshot-report: $html: no such file" >&2; exit 2; }

chromium=${CHROMIUM:-}
if [ -z "$chromium" ]; then
    for c in chromium chromium-browser google-chrome; do
        if command -v "$c" >/dev/null 2>&1; then chromium=$c; break; fi
    done
fi
[ -n "$chromium" ] || { echo "screenshot-report: no chromium (apt-get install -y chromium)" >&2; exit 2; }

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
abs=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
out_abs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

sandbox=(--no-sandbox)
[ "${SANDBOX:-0}" = 1 ] && sandbox=()

"$chromium" --headless "${sandbox[@]}" --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$profile" \
    --screenshot="$out_abs" --window-size="$size" "file://$abs" >/dev/null 2>&1

[ -s "$out_abs" ] || { echo "screenshot-report: no screenshot written" >&2; exit 1; }
echo "screenshot: $out_abs ($size)"
