#!/usr/bin/env bash
# Interop tests: the Node `ws` client against wisp-echo, and wisp-cat against a `ws` server.
#   tests/integration/node/run.sh BUILD_DIR [SCRIPT...]
# Installs `ws` from package-lock.json (npm ci) if node_modules is missing, then runs each
# script (default: all of them) with `node SCRIPT.js BUILD_DIR/actors/wisp-echo`. Every script
# starts its own wisp-echo on 127.0.0.1 with a free port and finishes within 60 s.
# Exits 0 if every script passed, 1 if one failed, 77 (skipped) without node or npm.
set -uo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [SCRIPT...]" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd) || exit 1
shift
bin=$build/actors/wisp-echo
if [ ! -x "$bin" ]; then
  echo "node interop: $bin is missing (build it first)" >&2
  exit 1
fi
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "node interop: skipped, $tool is not installed (bash scripts/install-deps.sh)" >&2
    exit 77
  fi
done

cd "$here"
if [ ! -d node_modules/ws ]; then
  npm ci --silent --no-audit --no-fund || { echo "node interop: npm ci failed" >&2; exit 1; }
fi
# 1,000 clients need more descriptors than the usual soft limit of 1024.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

scripts=("$@")
[ ${#scripts[@]} -gt 0 ] || scripts=(cli echo control concurrency shutdown client tls)
passed=0
failed=()
for s in "${scripts[@]}"; do
  s=${s%.js}
  echo "== $s"
  if timeout -k 5 90 node "$s.js" "$bin"; then
    passed=$((passed + 1))
  else
    failed+=("$s")
  fi
done
echo "node interop: $passed passed, ${#failed[@]} failed${failed[*]:+ (${failed[*]})}"
[ ${#failed[@]} -eq 0 ]
