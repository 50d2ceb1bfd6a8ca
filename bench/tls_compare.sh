#!/usr/bin/env bash
# TLS against plain: wisp-echo with and without --cert/--key, driven by client_bench (wisp's
# own client, the same code on both sides), interleaved plain/TLS, medians of REPEATS runs.
#   bench/tls_compare.sh [BUILD_DIR] [REPEATS] [SECONDS]
# Prints a markdown table of msgs/s and MB/s per payload size and the TLS/plain ratio.
set -euo pipefail
build=${1:-build-bench}
repeats=${2:-3}
secs=${3:-4}
conns=${CONNS:-100}
cd "$(dirname "$0")/.."
bench=$build/bench/client_bench
echo_bin=$build/actors/wisp-echo
[ -x "$bench" ] && [ -x "$echo_bin" ] || { echo "build $build first" >&2; exit 1; }
pki=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$pki"; }
trap cleanup EXIT
(
  cd "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=bench CA"
  openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj "/CN=localhost"
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.cnf
  openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 \
    -extfile san.cnf
) >/dev/null 2>&1

start() { # name args... -> port
  local name=$1
  shift
  taskset -c 0 "$echo_bin" --port 0 --workers 1 --idle-ms 0 "$@" >"$pki/$name.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do
    grep -q listening "$pki/$name.out" 2>/dev/null && break
    sleep 0.1
  done
  sed -n 's/.*:\([0-9]*\) .*/\1/p' "$pki/$name.out"
}
plain=$(start plain)
tls=$(start tls --cert "$pki/srv.pem" --key "$pki/srv.key")

median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo "| payload | plain msgs/s | TLS msgs/s | plain MB/s | TLS MB/s | TLS / plain |"
echo "|---|---:|---:|---:|---:|---:|"
for size in 16 1024 65536; do
  : >"$pki/p"; : >"$pki/t"
  for _ in $(seq "$repeats"); do
    taskset -c 1 "$bench" "ws://127.0.0.1:$plain/" "$conns" "$size" "$secs" \
      | grep -o 'msgs_per_s=[0-9]*' | cut -d= -f2 >>"$pki/p"
    taskset -c 1 "$bench" "wss://localhost:$tls/" "$conns" "$size" "$secs" "$pki/ca.pem" \
      | grep -o 'msgs_per_s=[0-9]*' | cut -d= -f2 >>"$pki/t"
  done
  p=$(median <"$pki/p"); t=$(median <"$pki/t")
  awk -v s="$size" -v p="$p" -v t="$t" 'BEGIN {
    printf "| %d B | %d | %d | %.1f | %.1f | %.2fx |\n", s, p, t, p*s/1e6, t*s/1e6, t/p }'
done
