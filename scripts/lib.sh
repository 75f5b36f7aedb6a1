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

# stop_pidfile FILE: stops the process FILE names, if any, and removes FILE.
stop_pidfile() {
    if [[ -f "$1" ]]; then
        kill "$(cat "$1")" 2>/dev/null || true
        rm -f "$1"
    fi
}
