#!/usr/bin/env bash
# The chat demo in a real browser (chat_demo.js): Debian's Chromium, headless, driven by
# playwright-core from npm.
#   tests/browser/run.sh
# Environment: WISP_BIN (the wisp program) or WISP_DEMO_CMD (a stand-in command line), and
# optionally WISP_ARTIFACTS, CHROMIUM, WISP_BROWSER_BUDGET_MS: see chat_demo.js.
# Installs playwright-core from package-lock.json (npm ci) when node_modules lacks it; never
# downloads Playwright's browsers. Exits 0 if the test passed, 1 if it failed, 77 (skipped)
# without node, npm or Chromium.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
chromium=${CHROMIUM:-/usr/bin/chromium}
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "browser test: skipped, $tool is not installed" >&2
    exit 77
  fi
done
if [ ! -x "$chromium" ]; then
  echo "browser test: skipped, $chromium is missing (apt-get install chromium)" >&2
  exit 77
fi
if [ -z "${WISP_DEMO_CMD:-}" ] && [ ! -x "${WISP_BIN:-}" ]; then
  echo "browser test: WISP_BIN (${WISP_BIN:-unset}) is not an executable wisp program" >&2
  exit 1
fi

cd "$here"
if [ ! -f node_modules/playwright-core/package.json ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --silent --no-audit --no-fund ||
    { echo "browser test: npm ci failed" >&2; exit 1; }
fi
# chat_demo.js bounds itself (60 s by default); this is the backstop if node itself hangs.
CHROMIUM=$chromium timeout -k 5 120 node chat_demo.js
