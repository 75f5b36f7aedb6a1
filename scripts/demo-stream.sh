#!/usr/bin/env bash
# The streaming half of `make demo`: a local broker, the demo dump replayed
# into `campaigns.raw`, `adlens stream` scoring it against the demo model until
# idle, then the same records through `adlens stream --online` (topics born
# and dying with the stream, into DEMO_DIR/stream-online), and a look at what
# both wrote. The broker is stopped however this ends.
#
#   scripts/demo-stream.sh BIN DEMO_DIR PORT
set -euo pipefail
BIN=$1 DIR=$2 PORT=$3
BROKERS=127.0.0.1:$PORT
HERE=$(dirname "$0")

"$HERE/broker.sh" start "$PORT" "$DIR/broker"
trap '"$HERE/broker.sh" stop "$DIR/broker"' EXIT
"$HERE/broker.sh" topic "$PORT" 3 campaigns.raw campaigns.scored
"$HERE/broker.sh" topic "$PORT" 1 campaigns.dead-letter

"$BIN" produce --brokers "$BROKERS" --file "$DIR/raw.csv" --topic campaigns.raw
rm -rf "$DIR/stream"
# tansu's group coordinator answers a join only after a delay tied to the
# session timeout, so a short one gets the first records in ~3 s.
"$BIN" stream --brokers "$BROKERS" --models "$DIR/models" --data "$DIR/stream" \
    --group adlens-demo --idle-exit 4 --status-secs 5 \
    -X session.timeout.ms=6000 -X heartbeat.interval.ms=1000

echo; echo "== messages per cluster per window (stream) =="
"$BIN" sql --data "$DIR/stream" -f sql/examples/stream/cluster_windows.sql
echo; echo "== dead letters =="
"$BIN" sql --data "$DIR/stream" -f sql/examples/stream/dead_letters.sql

# Online topics over the same records (a consumer group of their own), with
# micro-batches of 1,000 forgotten after 3, so topics are born and die.
rm -rf "$DIR/stream-online"
"$BIN" stream --online --forget-after 3 --max-batch-records 1000 \
    --brokers "$BROKERS" --models "$DIR/models" --data "$DIR/stream-online" \
    --group adlens-demo-online --idle-exit 4 --status-secs 5 \
    -X session.timeout.ms=6000 -X heartbeat.interval.ms=1000
echo; echo "== online topics: births and deaths =="
"$BIN" sql --data "$DIR/stream-online" -f sql/examples/online/topic_events.sql
