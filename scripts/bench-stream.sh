#!/usr/bin/env bash
# End-to-end stream throughput through a local broker (release build):
#  1. produce every record of RAW_CSV into `campaigns.raw` (records/s);
#  2. `adlens stream` from the beginning until idle: records/s from the first
#     record received to the last result acknowledged, per-batch p50/p99, RSS;
#  3. per-batch latency at a fixed rate (STREAM_RATE records/s, 30 s).
#  4. the same records through a bare consume-then-produce pipe (bench/pipe.py,
#     no processing) and adlens's ratio to it;
#  5. the same backlog with `--online` (topics updated per micro-batch).
# Usage: scripts/bench-stream.sh ADLENS_BIN RAW_CSV MODELS_DIR WORK_DIR PORT PYTHON
set -euo pipefail
bin=$1 raw=$2 models=$3 work=$4 port=$5 python=$6
rate=${STREAM_RATE:-20000}
brokers=127.0.0.1:$port
here=$(dirname "$0")
kafka=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=1000)

"$here/broker.sh" start "$port" "$work/broker"
trap '"$here/broker.sh" stop "$work/broker"' EXIT
"$here/broker.sh" topic "$port" 3 campaigns.raw campaigns.scored campaigns.fixed campaigns.pipe
"$here/broker.sh" topic "$port" 1 campaigns.dead-letter

produced=$("$bin" produce --brokers "$brokers" --file "$raw" --topic campaigns.raw 2>&1)
echo "produce: $produced"
records=$(sed -n 's/^produced \([0-9]*\) records.*/\1/p' <<<"$produced")

pipe=$("$python" "$here/../bench/pipe.py" "$brokers" campaigns.raw campaigns.pipe "$records")
echo "$pipe"

rm -rf "$work/stream"
out=$(/usr/bin/time -f 'stream: peak RSS %M KiB' "$bin" stream --brokers "$brokers" --models "$models" \
    --data "$work/stream" --group bench --idle-exit 3 --status-secs 10 "${kafka[@]}" 2>&1 \
    | grep -E '^stream: (done|peak)')
echo "$out"
"$python" - "$pipe" "$out" <<'PY'
import re, sys
rate = lambda text: float(re.search(r"([\d,]+) records/s", text).group(1).replace(",", ""))
pipe, adlens = rate(sys.argv[1]), rate(sys.argv[2])
print(f"stream / bare pipe: {adlens / pipe:.2f}x ({adlens:,.0f} vs {pipe:,.0f} records/s)")
PY

# Online topics: the same backlog, the topics updated with every
# micro-batch (one pass and --iterations sweeps) instead of a frozen model.
rm -rf "$work/stream-online"
/usr/bin/time -f 'stream --online: peak RSS %M KiB' "$bin" stream --online --brokers "$brokers" \
    --models "$models" --data "$work/stream-online" --group bench-online --idle-exit 3 \
    --status-secs 0 "${kafka[@]}" 2>&1 \
    | grep -E '^stream: done|peak' | sed 's/^stream: done:/stream --online: done:/'

# Fixed rate: a producer paced at $rate records/s while the stream keeps up.
rm -rf "$work/stream-fixed"
"$bin" stream --brokers "$brokers" --models "$models" --input-topic campaigns.fixed \
    --data "$work/stream-fixed" --group bench-fixed --idle-exit 4 --status-secs 0 \
    --max-batch-ms 100 "${kafka[@]}" 2>&1 | grep -E '^stream: done' | sed "s/^stream:/stream at $rate records\/s:/" &
stream_pid=$!
sleep 4
"$bin" --quiet produce --brokers "$brokers" --file "$raw" --topic campaigns.fixed \
    --rate "$rate" --limit $((rate * 30))
wait $stream_pid
