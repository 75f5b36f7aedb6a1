#!/usr/bin/env bash
# Clustering quality and training time on the labelled short-text sets of
# ../shared/data/benchmarks/ (release build): preprocess each set, train with
# `adlens batch`, and print NMI/ARI and the number of clusters found against
# the true topics. A set is NAME:K[:ALGORITHM] (kmeans by default; for dmm,
# K is the upper bound; for online, K is the micro-batch size: the records go
# topic-sorted through the online topics of `stream --online`, by
# examples/online_quality.rs, built next to ADLENS_BIN).
# Usage: scripts/quality.sh ADLENS_BIN WORK_DIR PYTHON [NAME:K[:ALGORITHM] ...]
set -euo pipefail
bin=$1 work=$2 python=$3
shift 3
here=$(dirname "$0")
sets=("$@")
[[ ${#sets[@]} -gt 0 ]] || sets=(stackoverflow:20 searchsnippets:8 searchsnippets:152 stackoverflow:60:dmm searchsnippets:24:dmm stackoverflow:2000:online searchsnippets:2000:online)
bench=$here/../../shared/data/benchmarks
[[ -d $bench ]] || { echo "no $bench: the labelled sets are not here"; exit 0; }
for spec in "${sets[@]}"; do
  IFS=: read -r name k algorithm <<< "$spec"
  algorithm=${algorithm:-kmeans}
  dir=$work/quality-$name
  [[ -f $dir/clean/_manifest.json ]] || "$bin" --quiet preprocess --input "$bench/$name.csv" --output "$dir/clean"
  start=$(date +%s.%N)
  if [[ $algorithm == online ]]; then
    setting="topic-sorted, micro-batches of $k"
    "$(dirname "$bin")/examples/online_quality" "$dir/clean" "$bench/$name.labels.csv" "$k" "$dir/assigned.csv"
  else
    setting="k=$k"
    rm -rf "$dir/models"
    "$bin" --quiet batch --data "$dir/clean" --models "$dir/models" --algorithm "$algorithm" --k "$k" > /dev/null
    "$bin" sql --data "$dir/clean" --format csv -c "SELECT campaign_id, cluster_id FROM assignments" > "$dir/assigned.csv"
  fi
  secs=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
  "$python" "$here/../bench/cluster_quality.py" "$name" "$algorithm" "$setting" "$secs" "$bench/$name.labels.csv" "$dir/assigned.csv"
done
