#!/usr/bin/env bash
# A local S3-API server for the object-storage tests: moto in server mode
# (Apache-2.0), pinned in scripts/s3/requirements.txt and installed into a
# venv outside the work tree. No Docker, no credentials of any real account.
#
#   scripts/s3.sh path                  install if needed, print the server binary
#   scripts/s3.sh start PORT DIR        start on 127.0.0.1:PORT (pid and log in DIR)
#   scripts/s3.sh bucket PORT NAME...   create buckets
#   scripts/s3.sh put PORT BUCKET KEY FILE   upload a file
#   scripts/s3.sh ls PORT BUCKET [PREFIX]    list keys, one per line
#   scripts/s3.sh stop DIR              stop the server started with DIR
#
# Clients reach it with AWS_ENDPOINT_URL=http://127.0.0.1:PORT AWS_ALLOW_HTTP=true
# and any AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (moto accepts all).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${ADLENS_CACHE:-$HOME/.cache/adlens}
VENV=$CACHE/s3-venv
REQUIREMENTS=$HERE/s3/requirements.txt
# shellcheck source=scripts/lib.sh
source "$HERE/lib.sh"

install_server() {
    local stamp=$VENV/.installed
    if [[ ! -f "$stamp" ]] || ! cmp -s "$REQUIREMENTS" "$stamp"; then
        echo "installing moto (S3 API server) into $VENV" >&2
        test -x "$VENV/bin/python" || python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS" >&2
        cp "$REQUIREMENTS" "$stamp"
    fi
    echo "$VENV/bin/moto_server"
}

start() {
    local port=$1 dir=$2 bin
    bin=$(install_server)
    mkdir -p "$dir"
    launch "$dir/s3" "S3 server" "$port" 20 "$bin" -H 127.0.0.1 -p "$port"
    echo "S3 API on 127.0.0.1:$port (pid $(cat "$dir/s3.pid"), log $dir/s3.log)" >&2
}

# boto3 (installed with moto) against the server: an S3 client that is not
# the one adlens uses.
client() {
    local port=$1 action=$2
    shift 2
    install_server >/dev/null
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 \
        "$VENV/bin/python" - "http://127.0.0.1:$port" "$action" "$@" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
action, args = sys.argv[2], sys.argv[3:]
if action == "bucket":
    for name in args:
        s3.create_bucket(Bucket=name)
elif action == "put":
    bucket, key, path = args
    s3.upload_file(path, bucket, key)
elif action == "ls":
    bucket, prefix = args[0], (args[1] if len(args) > 1 else "")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            print(item["Key"])
PY
}

stop() {
    stop_pidfile "$1/s3.pid"
}

cmd=${1:-path}
shift || true
case "$cmd" in
    path) install_server ;;
    start) start "$@" ;;
    bucket | put | ls) client "$1" "$cmd" "${@:2}" ;;
    stop) stop "$@" ;;
    *) echo "usage: $0 path|start PORT DIR|bucket PORT NAME...|put PORT BUCKET KEY FILE|ls PORT BUCKET [PREFIX]|stop DIR" >&2; exit 2 ;;
esac
