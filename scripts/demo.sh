#!/usr/bin/env bash
# Install what wisp needs (Debian 12), build it, and run the main program. Until the server
# program exists that is examples/handshake_roundtrip: a client and a server engine doing the
# opening handshake, messages, a ping and the close handshake through memory.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -d build ] || meson setup build --buildtype=release
ninja -C build
exec ./build/examples/handshake_roundtrip
