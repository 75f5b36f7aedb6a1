#!/usr/bin/env bash
# Times `adlens preprocess` locally and on a 1-scheduler / 2-executor cluster
# of the same machine, over the same inputs, alternating, and checks that the
# two outputs' counts are the same. On one machine the cluster can only add
# overhead (the same cores, plus Flight transfers back to the client); the
# point is that it runs the same plan.
# Usage: scripts/bench-cluster.sh ADLENS_BIN OUT_DIR INPUT...
set -euo pipefail
bin=$1 out=$2
shift 2
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

sched=$(free_port)
launch "$work/scheduler" "the scheduler" "$sched" 10 "$bin" cluster scheduler --bind "127.0.0.1:$sched"
pids+=("$(cat "$work/scheduler.pid")")
for n in 1 2; do
    flight=$(free_port) grpc=$(free_port)
    mkdir -p "$work/executor-$n"
    launch "$work/executor-$n" "executor $n" "$flight" 10 "$bin" cluster executor \
        --scheduler "127.0.0.1:$sched" --bind "127.0.0.1:$flight" --grpc-port "$grpc" \
        --work-dir "$work/executor-$n"
    pids+=("$(cat "$work/executor-$n.pid")")
done

run() { # NAME ARGS...: wall seconds and the client's peak RSS
    local name=$1 start end
    shift
    start=$(date +%s.%N)
    /usr/bin/time -f '%M' -o "$work/$name.rss" "$bin" --quiet preprocess --output "$out/$name" "$@"
    end=$(date +%s.%N)
    echo "$name $(python3 -c "print(f'{$end - $start:.1f}')") $(($(tail -1 "$work/$name.rss") / 1024))"
}
executor_rss() { # peak RSS of the executors so far, MiB
    local total=0
    for pid in "${pids[@]:1}"; do
        total=$((total + $(awk '/VmHWM/ {print $2}' "/proc/$pid/status") / 1024))
    done
    echo "$total"
}

for round in 1 2; do
    run local --input "$@"
    run cluster --cluster "df://127.0.0.1:$sched" --input "$@"
done | tee "$work/times"
python3 - "$work/times" "$out/local/_manifest.json" "$out/cluster/_manifest.json" "$(executor_rss)" "$#" <<'PY'
import json, statistics, sys
times, local, cluster, executor_rss, inputs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
runs = {}
for line in open(times):
    name, secs, rss = line.split()
    runs.setdefault(name, []).append((float(secs), int(rss)))
a, b = json.load(open(local))["counts"], json.load(open(cluster))["counts"]
if a != b:
    sys.exit(f"counts differ: local {a} cluster {b}")
records = a["records_in"]
for name in ("local", "cluster"):
    secs = statistics.median(s for s, _ in runs[name])
    rss = max(r for _, r in runs[name])
    extra = f", executors' peak RSS {executor_rss:,} MiB (two processes)" if name == "cluster" else ""
    print(f"preprocess {name:<8} {inputs} input(s), {records:,} records: median {secs:,.1f} s, "
          f"{records/secs:,.0f} rows/s, client peak RSS {rss:,} MiB{extra}")
lm = statistics.median(s for s, _ in runs["local"])
cm = statistics.median(s for s, _ in runs["cluster"])
print(f"cluster / local wall: {cm/lm:.2f}x; counts identical")
PY
