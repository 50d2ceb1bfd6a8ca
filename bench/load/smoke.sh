#!/bin/bash
# Smoke test for wisp-load against the Python echo server.
#   bench/load/smoke.sh [WISP_LOAD] [extra wisp-load options...]
# WISP_LOAD defaults to build/bench/load/wisp-load. Exits non-zero unless the run reports
# msgs_per_s > 0 and errors=0.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-build/bench/load/wisp-load}
shift || true
[ -x "$bin" ] || { echo "smoke: $bin is not executable" >&2; exit 2; }

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
out=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
    rm -rf "$out"
}
trap cleanup EXIT

/usr/bin/python3 "$here/py_echo_server.py" --port "$port" >"$out/server.out" 2>"$out/server.err" &
server_pid=$!
for _ in $(seq 100); do
    grep -q "^listening $port" "$out/server.out" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { echo "smoke: server died:" >&2; cat "$out/server.err" >&2; exit 1; }
    sleep 0.1
done
grep -q "^listening $port" "$out/server.out" || { echo "smoke: server did not start" >&2; exit 1; }

"$bin" --url "ws://127.0.0.1:$port/echo" --conns 10 --size 100 --duration 2 "$@" >"$out/load.out"
rc=$?
cat "$out/load.out"
line=$(grep '^wisp-load mode=echo ' "$out/load.out")
mps=$(sed -n 's/.* msgs_per_s=\([0-9.]*\) .*/\1/p' <<<"$line")
errs=$(sed -n 's/.* errors=\([0-9]*\) .*/\1/p' <<<"$line")
if [ "$rc" -ne 0 ] || [ -z "$mps" ] || [ "$errs" != 0 ] || ! awk -v m="$mps" 'BEGIN { exit !(m > 0) }'; then
    echo "smoke: FAIL (exit $rc, msgs_per_s=${mps:-?}, errors=${errs:-?})" >&2
    exit 1
fi
echo "smoke: ok"
