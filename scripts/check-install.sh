#!/usr/bin/env bash
# Install a build into a scratch directory and build a program against the installed headers
# and wisp.pc only (no source tree), then run it: proves the public headers are complete and
# the shared library exports what they declare.
#   check-install.sh BUILD_DIR
set -euo pipefail
build=$1
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
meson install -C "$build" --destdir "$root" >/dev/null
pc=$(dirname "$(find "$root" -name wisp.pc | head -1)")
export PKG_CONFIG_PATH=$pc PKG_CONFIG_SYSROOT_DIR=$root
libdir=$(dirname "$pc")
cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags wisp) \
   "$(dirname "$0")/../examples/handshake_roundtrip.c" -o "$root/consumer" $(pkg-config --libs wisp)
LD_LIBRARY_PATH=$libdir "$root/consumer" >/dev/null
echo "check-install: a program built from the installed headers and wisp.pc runs"
