#!/usr/bin/env bash
# Serves the dashboard over the demo data and saves a screenshot of it with
# headless Chromium (for the README). Usage: scripts/screenshot.sh BIN OUT.png
set -euo pipefail
bin=$1 out=$2
log=$(mktemp)
"$bin" dashboard --data data/demo/clean --stream-data data/demo/stream \
    --models data/demo/models --port 0 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 50); do grep -q '^dashboard: ' "$log" && break; sleep 0.1; done
url=$(sed -n 's/^dashboard: //p' "$log" | head -1)
profile=$(mktemp -d)
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --virtual-time-budget=8000 --window-size=1200,1150 \
    --hide-scrollbars --screenshot="$out" "$url" 2>/dev/null
rm -rf "$profile"
echo "wrote $out from $url" >&2
