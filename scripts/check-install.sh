#!/usr/bin/env bash
# Install a build into a scratch directory and build against the installed headers and wisp.pc
# only (no source tree), then run what was built: proves the public headers are complete, the
# shared library exports what they declare, and the installed `wisp` program loads a module
# built out of tree (and refuses one built for another module ABI).
#   check-install.sh BUILD_DIR
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")/.." && pwd)
root=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$root"
}
trap cleanup EXIT
meson install -C "$build" --destdir "$root" >/dev/null
pc=$(dirname "$(find "$root" -name wisp.pc | head -1)")
export PKG_CONFIG_PATH=$pc PKG_CONFIG_SYSROOT_DIR=$root
libdir=$(dirname "$pc")
cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags wisp) \
   "$src/examples/handshake_roundtrip.c" -o "$root/consumer" $(pkg-config --libs wisp)
LD_LIBRARY_PATH=$libdir "$root/consumer" >/dev/null
echo "check-install: a program built from the installed headers and wisp.pc runs"

# ---- an out-of-tree module for the installed wisp program --------------------------------------
wisp=$(find "$root" -path '*/bin/wisp' -type f | head -1)
if [ -z "$wisp" ]; then
  echo "check-install: the wisp program was not installed" >&2
  exit 1
fi
# Modules are built without -lwisp: the program provides the wisp_* functions.
cc -std=c11 -Wall -Wextra -Werror -shared -fPIC $(pkg-config --cflags wisp) \
   "$src/tests/modules/hello.c" -o "$root/hello.so"
LD_LIBRARY_PATH=$libdir "$wisp" --module "$root/hello.so" --route /hello=hello \
  --listen 127.0.0.1:0 --workers 1 >"$root/wisp.out" 2>"$root/wisp.err" </dev/null &
pid=$!
port=
for _ in $(seq 100); do
  line=$(head -1 "$root/wisp.out" 2>/dev/null || true)
  if [[ $line =~ ^wisp\ listening\ on\ 127\.0\.0\.1:([0-9]+)$ ]]; then
    port=${BASH_REMATCH[1]}
    break
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "check-install: the installed wisp did not start with hello.so:" >&2
  cat "$root/wisp.err" >&2
  exit 1
fi
/usr/bin/python3 - "$port" <<'EOF'
import asyncio, sys
import websockets

async def main(port):
    async with websockets.connect("ws://127.0.0.1:%s/hello" % port, open_timeout=10,
                                  ping_interval=None) as ws:
        await ws.send("world")
        got = await asyncio.wait_for(ws.recv(), 10)
        if got != "hello, world":
            sys.exit("check-install: hello.so answered %r, expected 'hello, world'" % got)

asyncio.run(asyncio.wait_for(main(sys.argv[1]), 30))
EOF
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
if [ "$rc" -ne 0 ]; then
  echo "check-install: wisp exited with status $rc after SIGTERM:" >&2
  cat "$root/wisp.err" >&2
  exit 1
fi
echo "check-install: the installed wisp runs a module built from the installed headers"

# A module built for another ABI version is refused, with both numbers in the message.
abi=$(LD_LIBRARY_PATH=$libdir "$wisp" --version | sed -n 's/.*(module ABI \([0-9]*\)).*/\1/p')
cc -std=c11 -Wall -Wextra -Werror -shared -fPIC $(pkg-config --cflags wisp) \
   -DWISP_MODULE_ABI_VERSION_OVERRIDE=999 "$src/tests/modules/hello.c" -o "$root/hello999.so"
rc=0
LD_LIBRARY_PATH=$libdir "$wisp" --module "$root/hello999.so" --route /hello=hello \
  --listen 127.0.0.1:0 >/dev/null 2>"$root/abi.err" </dev/null || rc=$?
msg=$(cat "$root/abi.err")
if [ "$rc" -ne 1 ] || [ -z "$abi" ] || [[ $msg != *"ABI version 999"* ]] ||
   [[ $msg != *"ABI version $abi"* ]]; then
  echo "check-install: a module for ABI 999 was not refused properly (status $rc): $msg" >&2
  exit 1
fi
echo "check-install: a module built for another ABI is refused ($msg)"
