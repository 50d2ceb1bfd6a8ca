#!/usr/bin/env bash
# Install what wisp needs (Debian 12), build it, and run wisp-echo, a WebSocket echo server on
# every path, in the foreground on 127.0.0.1:9001 until Ctrl-C (which closes every connection
# with 1001 and exits 0). Any other wisp-echo option is passed on, e.g. --workers 2.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -d build ] || meson setup build --buildtype=release
ninja -C build
cat <<'HOW'
Connect from another terminal and type lines; each comes back (Ctrl-D to leave):
  /usr/bin/python3 -m websockets ws://127.0.0.1:9001/
Stop the server with Ctrl-C.
HOW
exec ./build/actors/wisp-echo --host 127.0.0.1 --port 9001 "$@"
