#!/bin/bash
# Smoke test for wisp-load against the Python servers.
#   bench/load/smoke.sh [WISP_LOAD] [extra wisp-load options for the echo run...]
# WISP_LOAD defaults to build/bench/load/wisp-load. Runs, each against a fresh server:
#   echo       py_echo_server.py: msgs_per_s > 0, errors=0, exit 0
#   broadcast  py_bcast_server.py --greet --join-delay 0.2 (a greeting to allow, and
#              subscribers that join late, which the sync phase absorbs): 10 subscribers,
#              deliveries_per_s > 0, errors=0, exit 0
#   fault      py_bcast_server.py --fault drop: the gap must be reported (errors > 0, exit 1)
# Exits non-zero if any check fails.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-build/bench/load/wisp-load}
shift || true
[ -x "$bin" ] || { echo "smoke: $bin is not executable" >&2; exit 2; }

out=$(mktemp -d)
server_pid=
stop_server() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
    server_pid=
}
cleanup() {
    stop_server
    rm -rf "$out"
}
trap cleanup EXIT

# start_server SCRIPT [options]: sets port and server_pid, or exits
start_server() {
    local script=$1
    shift
    port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    /usr/bin/python3 "$here/$script" --port "$port" "$@" >"$out/server.out" 2>"$out/server.err" &
    server_pid=$!
    for _ in $(seq 200); do
        grep -q "^listening $port" "$out/server.out" 2>/dev/null && return
        kill -0 "$server_pid" 2>/dev/null || { echo "smoke: $script died:" >&2; cat "$out/server.err" >&2; exit 1; }
        sleep 0.1
    done
    echo "smoke: $script did not start" >&2
    exit 1
}

# field NAME LINE: the value of NAME= in a result line
field() {
    sed -n "s/.* $1=\([0-9.]*\)\( .*\)\?$/\1/p" <<<"$2"
}

fail=0

start_server py_echo_server.py
"$bin" --url "ws://127.0.0.1:$port/echo" --conns 10 --size 100 --duration 2 "$@" >"$out/load.out"
rc=$?
stop_server
cat "$out/load.out"
line=$(grep '^wisp-load mode=echo ' "$out/load.out")
mps=$(field msgs_per_s "$line")
errs=$(field errors "$line")
if [ "$rc" -ne 0 ] || [ -z "$mps" ] || [ "$errs" != 0 ] || ! awk -v m="$mps" 'BEGIN { exit !(m > 0) }'; then
    echo "smoke: echo FAIL (exit $rc, msgs_per_s=${mps:-?}, errors=${errs:-?})" >&2
    fail=1
fi

start_server py_bcast_server.py --greet --join-delay 0.2
"$bin" --url "ws://127.0.0.1:$port/bcast" --broadcast 10 --size 100 --text --duration 2 >"$out/load.out"
rc=$?
stop_server
cat "$out/load.out"
line=$(grep '^wisp-load mode=broadcast ' "$out/load.out")
dps=$(field deliveries_per_s "$line")
errs=$(field errors "$line")
if [ "$rc" -ne 0 ] || [ -z "$dps" ] || [ "$errs" != 0 ] || ! awk -v m="$dps" 'BEGIN { exit !(m > 0) }'; then
    echo "smoke: broadcast FAIL (exit $rc, deliveries_per_s=${dps:-?}, errors=${errs:-?})" >&2
    fail=1
fi

start_server py_bcast_server.py --fault drop --fault-at 100
"$bin" --url "ws://127.0.0.1:$port/bcast" --broadcast 3 --size 32 --duration 1 >"$out/load.out" 2>"$out/load.err"
rc=$?
stop_server
line=$(grep '^wisp-load mode=broadcast ' "$out/load.out")
errs=$(field errors "$line")
if [ "$rc" -ne 1 ] || [ "${errs:-0}" = 0 ] || ! grep -q "never arrived" "$out/load.err"; then
    echo "smoke: fault FAIL: a dropped message was not reported (exit $rc, errors=${errs:-?})" >&2
    cat "$out/load.err" >&2
    fail=1
else
    echo "smoke: fault ok: $(grep -m1 'never arrived' "$out/load.err")"
fi

[ "$fail" = 0 ] && echo "smoke: ok"
exit "$fail"
