#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script):
#   1. gcc build with -Werror, every test
#   2. clang build with -Werror under ASan+UBSan, every test again
#   3. clang build under TSan, the runtime's and the server's tests again (a data race is a
#      bug even if no test fails)
#   4. each libFuzzer target for FUZZ_SECONDS (default 60) on its seed corpus
# It ends with one line "N passed, N failed" and exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || exit 1

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
passed=0
failed=0
failures=()

# Run one meson test suite in a build dir and add its counts to the totals.
run_suite() {
  local dir=$1 label=$2
  shift 2
  local log="$dir/meson-logs/summary.txt"
  meson test -C "$dir" --print-errorlogs "$@" | tee "$log"
  local ok fail
  ok=$(awk '/^Ok:/ {print $2}' "$log")
  fail=$(awk '/^(Fail|Timeout|Unexpected Pass):/ {s += $NF} END {print s + 0}' "$log")
  passed=$((passed + ${ok:-0}))
  failed=$((failed + fail))
  [ "$fail" -eq 0 ] || failures+=("$label: $fail failing test(s)")
}

build() {
  local dir=$1
  shift
  rm -rf "$dir"
  if ! meson setup "$dir" -Dwerror=true "$@" >"/tmp/wisp-setup-$(basename "$dir").log" 2>&1; then
    cat "/tmp/wisp-setup-$(basename "$dir").log"
    return 1
  fi
  ninja -C "$dir"
}

echo "== gcc, -Werror"
if CC=gcc build build-ci-gcc; then
  run_suite build-ci-gcc gcc
  if bash scripts/check-install.sh build-ci-gcc; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); failures+=("install + pkg-config consumer")
  fi
else
  failed=$((failed + 1)); failures+=("gcc build failed")
fi

echo "== clang, -Werror, ASan+UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if CC=clang build build-ci-asan -Dsanitizers=address,undefined -Db_lundef=false; then
  run_suite build-ci-asan asan+ubsan
else
  failed=$((failed + 1)); failures+=("clang ASan+UBSan build failed")
fi

echo "== clang, -Werror, TSan, runtime and integration suites"
if CC=clang build build-ci-tsan -Dsanitizers=thread -Db_lundef=false; then
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" run_suite build-ci-tsan tsan --suite runtime --suite integration
else
  failed=$((failed + 1)); failures+=("clang TSan build failed")
fi

echo "== fuzzing, ${FUZZ_SECONDS}s per target"
if CC=clang build build-ci-fuzz -Dfuzzing=true -Dbench=false; then
  for corpus in tests/fuzz/corpus/*/; do
    name=$(basename "$corpus")
    exe="build-ci-fuzz/tests/fuzz/$name"
    work=$(mktemp -d)
    cp "$corpus"/* "$work"/
    if [ -x "$exe" ] && "$exe" -max_total_time="$FUZZ_SECONDS" -max_len=8192 -timeout=10 \
         -print_final_stats=1 -artifact_prefix="build-ci-fuzz/$name-" "$work" \
         >"build-ci-fuzz/$name.log" 2>&1; then
      passed=$((passed + 1))
      echo "fuzz $name: OK ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "build-ci-fuzz/$name.log" | awk '{print $2}') runs)"
    else
      failed=$((failed + 1)); failures+=("fuzz $name")
      tail -40 "build-ci-fuzz/$name.log"
    fi
    rm -rf "$work"
  done
else
  failed=$((failed + 1)); failures+=("fuzz build failed")
fi

echo
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
