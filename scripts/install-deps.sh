#!/usr/bin/env bash
# Install the Debian 12 packages wisp needs to build, test and fuzz, Node.js with npm for the
# interop tests (tests/integration/node), and Chromium for the demo page's browser test
# (tests/browser). Safe to re-run.
set -euo pipefail
packages=(
  build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
  libcmocka-dev liburing-dev libssl-dev zlib1g-dev openssl
  python3-websockets chromium
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# Node.js and npm. Without node, Debian's nodejs and npm. With a node but no npm, Debian's npm
# only if that node is Debian's: NodeSource's nodejs package bundles npm and declares
# "Conflicts: npm", so apt cannot install npm next to it; npm is then restored from the copy
# bundled with node, or else installed by the corepack that ships with node (below).
npm_from_node=no
if ! command -v node >/dev/null 2>&1; then
  missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
elif ! command -v npm >/dev/null 2>&1; then
  if dpkg-query -W -f='${Status}' nodejs 2>/dev/null | grep -q "install ok installed" &&
     ! dpkg-query -W -f='${Conflicts}' nodejs 2>/dev/null | grep -qw npm; then
    missing+=(npm)
  else
    npm_from_node=yes
  fi
fi

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "$npm_from_node" = yes ]; then
  node_prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  bundled=$node_prefix/lib/node_modules/npm/bin
  if [ -f "$bundled/npm-cli.js" ]; then
    echo "install-deps: linking the npm bundled with node into /usr/local/bin"
    $SUDO ln -sf "$bundled/npm-cli.js" /usr/local/bin/npm
    $SUDO ln -sf "$bundled/npx-cli.js" /usr/local/bin/npx
  elif command -v corepack >/dev/null 2>&1; then
    # corepack runs the npm release it knows (checked against the hash it carries), which then
    # installs npm 10 (fine for node 18.17 and later) next to node. A scratch COREPACK_HOME
    # leaves no cache behind.
    echo "install-deps: installing npm with corepack"
    corepack_home=$(mktemp -d)
    $SUDO env COREPACK_HOME="$corepack_home" COREPACK_ENABLE_DOWNLOAD_PROMPT=0 \
      COREPACK_DEFAULT_TO_LATEST=0 corepack npm install --global --no-audit --no-fund npm@10
    $SUDO rm -rf "$corepack_home"
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-deps: node $(node --version) has no npm and none could be installed;" \
         "reinstall node with its npm, or remove it and re-run to get Debian's nodejs and npm" >&2
    exit 1
  fi
fi
