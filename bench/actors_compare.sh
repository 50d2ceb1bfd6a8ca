#!/usr/bin/env bash
# Run wisp's actor benchmarks side by side with the Erlang/OTP and CAF anchors
# (shared/anchors/actors), interleaved (wisp erlang caf, wisp erlang caf, ...) because the
# machine is shared and noisy, and print medians with the ratio of wisp to each anchor.
#
#   bench/actors_compare.sh [BUILD_DIR]      (default: build-rel, configured as release)
#
# Environment: RUNS (default 3), WORKLOADS (default: all six), ANCHORS_DIR (default:
# ../shared/anchors/actors next to the repository). Needs erlang-base, libcaf-dev and g++
# (the script installs them with apt-get when missing).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-rel}
runs=${RUNS:-3}
workloads=${WORKLOADS:-"pingpong ring ring100 fanin fanin4 spawn"}
anchors=${ANCHORS_DIR:-$here/../shared/anchors/actors}
export BUILD_DIR=${ANCHOR_BUILD_DIR:-/tmp/wisp-anchor-build}

if ! command -v erl >/dev/null || [ ! -e /usr/include/caf/all.hpp ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq erlang-base \
    erlang-nox libcaf-dev g++ >/dev/null
fi
if [ ! -d "$build" ]; then
  meson setup "$build" --buildtype=release -Dtests=false >/dev/null
fi
ninja -C "$build" bench/actor_bench >/dev/null

results=$(mktemp)
trap 'rm -f "$results"' EXIT
run_one() { # anchor workload
  case $1 in
    wisp) "$build/bench/actor_bench" "$2" --workers 2 ;;
    *) "$anchors/run.sh" "$1" "$2" ;;
  esac
}
for w in $workloads; do
  for a in wisp erlang caf; do run_one "$a" "$w" >/dev/null; done # warm-up (and builds)
  for ((i = 1; i <= runs; i++)); do
    for a in wisp erlang caf; do
      run_one "$a" "$w" | tee -a "$results"
    done
  done
done

echo
echo "# medians over $runs interleaved runs (2 scheduler threads each); ratio = wisp / anchor"
awk '
function median(list,    n, a, i, j, t) {
  n = split(list, a, " ")
  for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t }
  return (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
{
  an = ""; wl = ""; val = ""; unit = ""; extra = ""
  for (i = 1; i <= NF; i++) {
    split($i, kv, "=")
    if (kv[1] == "anchor") an = kv[2]
    else if (kv[1] == "workload") wl = kv[2]
    else if (kv[1] == "value") val = kv[2]
    else if (kv[1] == "unit") unit = kv[2]
    else if (kv[1] == "peak_rss_kb" || kv[1] == "bytes_per_actor" || kv[1] == "exit_s") {
      key = wl SUBSEP an SUBSEP kv[1]; sec[key] = sec[key] " " kv[2]; seckeys[wl SUBSEP kv[1]] = 1
    }
  }
  v[wl SUBSEP an] = v[wl SUBSEP an] " " val; u[wl] = unit; order[wl] = NR
}
END {
  printf "%-9s %-13s %14s %14s %14s %10s %10s\n", "workload", "metric", "wisp", "erlang", "caf", "wisp/erl", "wisp/caf"
  n = 0; for (w in order) ws[++n] = w
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (order[ws[j]] < order[ws[i]]) { t = ws[i]; ws[i] = ws[j]; ws[j] = t }
  for (i = 1; i <= n; i++) {
    w = ws[i]
    mw = median(v[w SUBSEP "wisp"]); me = median(v[w SUBSEP "erlang"]); mc = median(v[w SUBSEP "caf"])
    # for times (unit s) lower is better: report anchor/wisp so that > 1 means wisp wins
    if (u[w] == "s") { re = me / mw; rc = mc / mw } else { re = mw / me; rc = mw / mc }
    printf "%-9s %-13s %14.4g %14.4g %14.4g %9.2fx %9.2fx\n", w, u[w], mw, me, mc, re, rc
    for (k in seckeys) {
      split(k, p, SUBSEP); if (p[1] != w) continue
      sw = median(sec[w SUBSEP "wisp" SUBSEP p[2]]); se = median(sec[w SUBSEP "erlang" SUBSEP p[2]]); sc = median(sec[w SUBSEP "caf" SUBSEP p[2]])
      printf "%-9s %-13s %14.4g %14.4g %14.4g %9.2fx %9.2fx\n", "", p[2], sw, se, sc, se / sw, sc / sw
    }
  }
  print "(for s, bytes and kb the ratio is anchor / wisp: above 1 means wisp is faster or smaller)"
}' "$results"
