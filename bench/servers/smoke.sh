#!/bin/sh
# Smoke test of an echo server: start it on a free port, check its echoes with Debian's
# python3-websockets (an independent client), stop it with SIGTERM and expect exit 0.
#
#   bench/servers/smoke.sh SERVER [ARGS...]    runs "SERVER ARGS... --port P"
#   bench/servers/smoke.sh --all [BUILD_DIR]   tcp_echo and lws_echo from BUILD_DIR/bench/servers
#                                              (default build-rel), node_ws_echo.js if ws is installed
#
# The check: the upgrade; a text, an empty and a 100 KiB binary message; messages of
# 65535 and 65536 bytes (the 16- and 64-bit length forms); a fragmented text message; 300
# small messages sent back to back before any echo is read; a ping; a clean close (1000).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
LIMIT=${SMOKE_TIMEOUT:-30}

if [ "${1:-}" = "--all" ]; then
    build=${2:-$here/../../build-rel}
    fail=0
    for s in "$build/bench/servers/tcp_echo" "$build/bench/servers/lws_echo"; do
        if [ -x "$s" ]; then "$0" "$s" || fail=1; else echo "SKIP $(basename "$s") (not built)"; fi
    done
    if [ -d "$here/node_modules/ws" ]; then
        "$0" node "$here/node_ws_echo.js" || fail=1
    else
        echo "SKIP node_ws_echo.js (run bench/servers/install.sh)"
    fi
    exit $fail
fi
[ $# -ge 1 ] || { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

name=$(basename "$1")
[ "$name" = node ] && name=$(basename "${2:-node}")
tmp=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$@" --port "$port" >"$tmp/out" 2>"$tmp/err" &
pid=$!

# Wait (at most 10 s) for "listening PORT".
i=0
until grep -qx "listening $port" "$tmp/out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "FAIL $name: never printed 'listening $port'"; cat "$tmp/out" "$tmp/err" >&2
        exit 1
    fi
    sleep 0.1
done

rc=0
timeout "$LIMIT" "$PY" - "$port" <<'EOF' || rc=$?
import asyncio, os, sys
import websockets

async def main(port):
    async with websockets.connect(f"ws://127.0.0.1:{port}/", max_size=None,
                                  compression=None, open_timeout=5, close_timeout=5) as ws:
        async def echo(msg):
            await ws.send(msg)
            got = await ws.recv()
            assert got == msg, f"echo of {type(msg).__name__} ({len(msg)}) differs"

        await echo("hello, wisp")
        await echo("")
        await echo(os.urandom(100 * 1024))
        await echo(os.urandom(65535))
        await echo(os.urandom(65536))
        await echo("h\u00e9llo \u2603 " * 50)

        await ws.send(["frag", "men", "ted \u00e9"])  # one message in three frames
        got = await ws.recv()
        assert got == "fragmented \u00e9", f"fragmented echo: {got!r}"

        msgs = [os.urandom(n) if n % 2 else "x" * n for n in range(300)]
        for m in msgs:
            await ws.send(m)
        for m in msgs:
            got = await ws.recv()
            assert got == m, f"pipelined echo of {len(m)} bytes differs"

        pong = await ws.ping(b"ping!")
        await asyncio.wait_for(pong, 5)
        await echo("after the ping")
    assert ws.close_code == 1000, f"close code {ws.close_code}"

asyncio.run(main(int(sys.argv[1])))
EOF

kill -TERM "$pid" 2>/dev/null || true   # it may have died already: wait tells
i=0
while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    [ $i -le 50 ] || break
    sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
    echo "FAIL $name: still running 5 s after SIGTERM"
    exit 1
fi
src=0
wait "$pid" || src=$?
pid=

if [ $rc -ne 0 ]; then
    echo "FAIL $name: the echo check failed (rc $rc)"; cat "$tmp/err" >&2
    exit 1
fi
if [ $src -ne 0 ]; then
    echo "FAIL $name: exit status $src after SIGTERM"; cat "$tmp/err" >&2
    exit 1
fi
echo "PASS $name"
