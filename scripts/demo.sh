#!/usr/bin/env bash
# Install what wisp needs (Debian 12), build it, and run the `wisp` server with the chat demo in
# the foreground on 127.0.0.1:8080 until Ctrl-C (which closes every connection with 1001 and
# exits 0). Open http://127.0.0.1:8080/ in several browser tabs and talk between them.
# Any other wisp option is passed on, e.g. --workers 2 or --log-level debug.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -d build ] || meson setup build --buildtype=release
ninja -C build
cat <<'HOW'
The chat demo: open http://127.0.0.1:8080/ in a browser, in as many tabs as you like.
Also mounted: ws://127.0.0.1:8080/echo (echo), ws://127.0.0.1:8080/pubsub (topics, JSON),
http://127.0.0.1:8080/metrics (Prometheus) and /healthz. Stop the server with Ctrl-C.
HOW
exec ./build/actors/wisp/wisp --listen 127.0.0.1:8080 \
  --route /chat=chat --route /echo=echo --route /pubsub=pubsub --static /=actors/www "$@"
