#!/usr/bin/env bash
# Times `adlens preprocess`, `adlens batch` and `adlens score` on one dump and
# prints rows/s, MB/s and peak RSS for each (release build).
# Usage: scripts/bench.sh ADLENS_BIN RAW_CSV OUT_DIR MODELS_DIR
set -euo pipefail
bin=$1 raw=$2 out=$3 models=$4
bytes=$(stat -c %s "$raw")

# run NAME CMD...: runs CMD under /usr/bin/time, sets $secs and $rss_mib.
run() {
  local log; log=$(mktemp)
  local start; start=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$log" "$@" > /dev/null
  secs=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$start" "$(date +%s.%N)")
  rss_mib=$(( $(tail -1 "$log") / 1024 ))
  rm -f "$log"
}

run "$bin" --quiet preprocess --input "$raw" --output "$out"
records=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['counts']['records_in'])" "$out/_manifest.json")
rows=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['counts']['rows_out'])" "$out/_manifest.json")
python3 -c "import sys; r,b,s,m=map(float,sys.argv[1:]); print(f'preprocess: {r:,.0f} records, {b/1e6:,.0f} MB in {s:.2f} s: {r/s:,.0f} rows/s, {b/1e6/s:.1f} MB/s, peak RSS {m:,.0f} MiB')" "$records" "$bytes" "$secs" "$rss_mib"

rm -rf "$models"
run "$bin" --quiet batch --data "$out" --models "$models" --k 16
timings=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1]+'/'+open(sys.argv[1]+'/LATEST').read().strip()+'/model.json')); print(m['training']['sampled_rows'], m['training']['steps'])" "$models")
python3 -c "import sys; r,s,m=map(float,sys.argv[1:4]); print(f'batch (sample {sys.argv[4]} rows, {sys.argv[5]} steps, then score all): {r:,.0f} rows in {s:.2f} s: {r/s:,.0f} rows/s, peak RSS {m:,.0f} MiB')" "$rows" "$secs" "$rss_mib" $timings

run "$bin" --quiet score --data "$out" --models "$models"
python3 -c "import sys; r,s,m=map(float,sys.argv[1:]); print(f'score: {r:,.0f} rows in {s:.2f} s: {r/s:,.0f} rows/s, peak RSS {m:,.0f} MiB')" "$rows" "$secs" "$rss_mib"
