#!/usr/bin/env bash
# Times `adlens preprocess`, `adlens batch` and `adlens score` on one dump and
# prints rows/s, MB/s and peak RSS for each (release build). Preprocess runs
# BENCH_RUNS times (default 5) alternating with DuckDB's version of the job
# (bench/duckdb_job.py) on the same file; medians are printed, and the ratio
# as the median of the pairs' ratios (each adlens run over the DuckDB run
# right after it), which keeps it meaningful when the machine's speed drifts.
# Usage: scripts/bench.sh ADLENS_BIN RAW_CSV OUT_DIR MODELS_DIR PYTHON
set -euo pipefail
bin=$1 raw=$2 out=$3 models=$4 python=$5
runs=${BENCH_RUNS:-5}
here=$(dirname "$0")
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

adlens_secs=() duck_secs=() adlens_rss=() duck_rss=()
for _ in $(seq "$runs"); do
  run "$bin" --quiet preprocess --input "$raw" --output "$out"
  adlens_secs+=("$secs") adlens_rss+=("$rss_mib")
  run "$python" "$here/../bench/duckdb_job.py" "$raw" "$out.duckdb.parquet"
  duck_secs+=("$secs") duck_rss+=("$rss_mib")
done
rm -f "$out.duckdb.parquet"
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
secs=$(median "${adlens_secs[@]}") rss_mib=$(median "${adlens_rss[@]}")
duck=$(median "${duck_secs[@]}") duck_mib=$(median "${duck_rss[@]}")
records=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['counts']['records_in'])" "$out/_manifest.json")
rows=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['counts']['rows_out'])" "$out/_manifest.json")
python3 -c "import sys; r,b,s,m=map(float,sys.argv[1:]); print(f'preprocess (median of $runs): {r:,.0f} records, {b/1e6:,.0f} MB in {s:.2f} s: {r/s:,.0f} rows/s, {b/1e6/s:.1f} MB/s, peak RSS {m:,.0f} MiB')" "$records" "$bytes" "$secs" "$rss_mib"
python3 - "$duck" "$duck_mib" "${adlens_secs[*]}" "${duck_secs[*]}" <<'PY'
import statistics, sys
duck, mib = map(float, sys.argv[1:3])
pairs = [a / d for a, d in zip(map(float, sys.argv[3].split()), map(float, sys.argv[4].split()))]
print(f"duckdb peer (median of {len(pairs)}): {duck:.2f} s, peak RSS {mib:,.0f} MiB; "
      f"adlens / duckdb wall: {statistics.median(pairs):.2f}x (median of {len(pairs)} alternating pairs, {min(pairs):.2f}-{max(pairs):.2f})")
PY

rm -rf "$models"
run "$bin" --quiet batch --data "$out" --models "$models" --k 16
python3 - "$models" "$rows" "$secs" "$rss_mib" <<'PY'
import json, sys
models, rows, secs, rss = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
m = json.load(open(f"{models}/{open(models + '/LATEST').read().strip()}/model.json"))
t, tr = m["timings_ms"], m["training"]
print(f"batch: {rows:,.0f} rows in {secs:.2f} s, peak RSS {rss:,.0f} MiB")
print(f"  features (read + sample {tr['sampled_rows']:,} + IDF): {t['sample_and_features']/1000:.2f} s, {rows/(t['sample_and_features']/1000):,.0f} rows/s scanned")
print(f"  training ({tr['steps']} iterations over {tr['sampled_rows']:,} rows, {tr['n_runs']} runs, k={m['k']}, dim={m['features']['dim']}): {t['train']/1000:.2f} s")
print(f"  scoring + assignments: {t['score']/1000:.2f} s, {rows/(t['score']/1000):,.0f} rows/s")
PY

run "$bin" --quiet score --data "$out" --models "$models"
python3 -c "import sys; r,s,m=map(float,sys.argv[1:]); print(f'score: {r:,.0f} rows in {s:.2f} s: {r/s:,.0f} rows/s, peak RSS {m:,.0f} MiB')" "$rows" "$secs" "$rss_mib"
