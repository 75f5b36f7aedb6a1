#!/usr/bin/env bash
# Times `adlens preprocess` on the full-size dump (release build) and prints
# wall time, rows/s, MB/s, peak RSS, the duplicate pass's share and whether the
# manifest's counts balance (the run fails if they do not).
# Usage: scripts/bench-full.sh ADLENS_BIN RAW_CSV OUT_DIR
set -euo pipefail
bin=$1 raw=$2 out=$3
bytes=$(stat -c %s "$raw")
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s.%N)
/usr/bin/time -f '%M' -o "$log" "$bin" --quiet preprocess --input "$raw" --output "$out"
end=$(date +%s.%N)
python3 - "$out/_manifest.json" "$bytes" "$start" "$end" "$(tail -1 "$log")" <<'PY'
import json, sys
manifest, size, start, end, rss_kib = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
m = json.load(open(manifest))
c, t, s = m["counts"], m["timings_ms"], m["settings"]
secs = end - start
print(f"preprocess (full): {c['records_in']:,} records, {size/1e9:,.2f} GB in {secs:,.1f} s: "
      f"{c['records_in']/secs:,.0f} rows/s, {size/1e6/secs:,.1f} MB/s, peak RSS {rss_kib/1024:,.0f} MiB")
print(f"  id scan {t.get('id_scan', 0)/1000:,.1f} s; clean + write {t['clean_and_write']/1000:,.1f} s; "
      f"duplicate pass {t['dedup']/1000:,.1f} s ({s.get('dedup_rows_staged', 'all'):,} rows staged, "
      f"{s['dedup_passes']} pass(es) over their ids, {s['dedup_files_rewritten']} files rewritten)")
print(f"  kept {c['rows_out']:,} + rejected {c['rejected']:,} + duplicates {c['duplicates_dropped']:,} = "
      f"{c['rows_out'] + c['rejected'] + c['duplicates_dropped']:,}")
if c["records_in"] != c["rows_out"] + c["rejected"] + c["duplicates_dropped"]:
    sys.exit("counts do not balance")
PY
