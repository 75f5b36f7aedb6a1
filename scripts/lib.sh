# Shared by the scripts that start local servers (sourced, not run).

# wait_port PORT SECONDS: succeeds once something accepts connections on
# 127.0.0.1:PORT, fails after SECONDS.
wait_port() {
    local port=$1 tries=$(($2 * 10))
    for _ in $(seq "$tries"); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# launch STEM LABEL PORT SECONDS CMD...: starts CMD in the background, its
# output in STEM.log and its pid in STEM.pid, and waits until it accepts
# connections on 127.0.0.1:PORT; if it does not within SECONDS, exits the
# calling script naming LABEL and the log.
launch() {
    local stem=$1 label=$2 port=$3 secs=$4
    shift 4
    "$@" >"$stem.log" 2>&1 &
    echo $! >"$stem.pid"
    if ! wait_port "$port" "$secs"; then
        echo "$label did not start; see $stem.log" >&2
        exit 1
    fi
}

# stop_pidfile FILE: stops the process FILE names, if any, and removes FILE.
stop_pidfile() {
    if [[ -f "$1" ]]; then
        kill "$(cat "$1")" 2>/dev/null || true
        rm -f "$1"
    fi
}
