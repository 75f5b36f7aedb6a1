#!/usr/bin/env bash
# Clustering quality and training time on the labelled short-text sets of
# ../shared/data/benchmarks/ (release build): preprocess each set, train with
# `adlens batch`, and print NMI/ARI and the number of clusters found against
# the true topics. A set is NAME:K[:ALGORITHM] (kmeans by default; for dmm,
# K is the upper bound).
# Usage: scripts/quality.sh ADLENS_BIN WORK_DIR PYTHON [NAME:K[:ALGORITHM] ...]
set -euo pipefail
bin=$1 work=$2 python=$3
shift 3
sets=("$@")
[[ ${#sets[@]} -gt 0 ]] || sets=(stackoverflow:20 searchsnippets:8 searchsnippets:152 stackoverflow:60:dmm searchsnippets:24:dmm)
bench=$(dirname "$0")/../../shared/data/benchmarks
[[ -d $bench ]] || { echo "no $bench: the labelled sets are not here"; exit 0; }
for spec in "${sets[@]}"; do
  IFS=: read -r name k algorithm <<< "$spec"
  algorithm=${algorithm:-kmeans}
  dir=$work/quality-$name
  [[ -f $dir/clean/_manifest.json ]] || "$bin" --quiet preprocess --input "$bench/$name.csv" --output "$dir/clean"
  rm -rf "$dir/models"
  start=$(date +%s.%N)
  "$bin" --quiet batch --data "$dir/clean" --models "$dir/models" --algorithm "$algorithm" --k "$k" > /dev/null
  secs=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
  "$bin" sql --data "$dir/clean" --format csv -c "SELECT campaign_id, cluster_id FROM assignments" > "$dir/assigned.csv"
  "$python" - "$name" "$k" "$algorithm" "$secs" "$bench/$name.labels.csv" "$dir/assigned.csv" <<'PY'
import csv, math, sys
from collections import Counter
name, k, algorithm, secs, labels, assigned = sys.argv[1:]
truth = {r["id"]: r["topic"] for r in csv.DictReader(open(labels))}
pairs = [(truth[r["campaign_id"]], r["cluster_id"]) for r in csv.DictReader(open(assigned)) if r["campaign_id"] in truth]
n = len(pairs)
a, b, ab = Counter(t for t, _ in pairs), Counter(c for _, c in pairs), Counter(pairs)
h = lambda c: -sum(v / n * math.log(v / n) for v in c.values())
mi = sum(v / n * math.log(v * n / (a[t] * b[c])) for (t, c), v in ab.items())
nmi = mi / ((h(a) + h(b)) / 2)
comb = lambda x: x * (x - 1) / 2
sab, sa, sb = sum(comb(v) for v in ab.values()), sum(comb(v) for v in a.values()), sum(comb(v) for v in b.values())
exp = sa * sb / comb(n)
ari = (sab - exp) / ((sa + sb) / 2 - exp)
print(f"{name} {algorithm} k={k}: {n:,} texts, {len(b)} clusters, NMI {nmi:.3f}, ARI {ari:.3f}, batch {secs} s")
PY
done
