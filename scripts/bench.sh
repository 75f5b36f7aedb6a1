#!/usr/bin/env bash
# Times one `adlens preprocess` run and prints rows/s, MB/s and peak RSS.
# Usage: scripts/bench.sh ADLENS_BIN RAW_CSV OUT_DIR
set -euo pipefail
bin=$1 raw=$2 out=$3
rows=$(($(wc -l < "$raw") - 1))   # physical lines; quoted newlines make this a slight over-count
bytes=$(stat -c %s "$raw")
log=$(mktemp)
start=$(date +%s.%N)
/usr/bin/time -f '%M' -o "$log" "$bin" --quiet preprocess --input "$raw" --output "$out"
end=$(date +%s.%N)
records=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['counts']['records_in'])" "$out/_manifest.json")
python3 - "$start" "$end" "$records" "$bytes" "$(cat "$log")" <<'PY'
import sys
start, end, records, size, rss_kb = map(float, sys.argv[1:])
secs = end - start
print(f"preprocess: {int(records)} records, {size/1e6:.0f} MB in {secs:.2f} s wall")
print(f"  {records/secs:,.0f} rows/s   {size/1e6/secs:.1f} MB/s   peak RSS {rss_kb/1024:.0f} MiB")
PY
rm -f "$log"
