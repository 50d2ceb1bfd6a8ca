#!/bin/sh
# Installs what the benchmarks need, skipping whatever is already there:
#   libwebsockets-dev (for lws_echo), gnuplot-nox (the chart of bench/compare), Node.js and
#   npm, and the `ws` package from package-lock.json into bench/servers/node_modules (which
#   git ignores).
# Debian/Ubuntu; apt-get needs root (sudo is used when not root). Re-run meson setup
# (or "meson setup --reconfigure") afterwards so that lws_echo gets built.
#
# npm: with no node at all, Debian's nodejs and npm. With a node but no npm, Debian's npm only
# if that node is Debian's own: NodeSource's nodejs bundles npm and declares "Conflicts: npm",
# so apt cannot install npm next to it; the npm bundled with such a node is linked into
# /usr/local/bin instead (as scripts/install-deps.sh does). An npm on PATH is always used as is.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
updated=no

apt_install() {
    if [ $updated = no ]; then
        $SUDO apt-get update
        updated=yes
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

deb_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

need=
if pkg-config --exists libwebsockets 2>/dev/null; then
    echo "libwebsockets $(pkg-config --modversion libwebsockets): already installed"
else
    need="$need libwebsockets-dev pkg-config"
fi
if command -v gnuplot >/dev/null 2>&1; then
    echo "$(gnuplot --version): already installed"
else
    need="$need gnuplot-nox"
fi

link_bundled_npm=no
if ! command -v node >/dev/null 2>&1; then
    need="$need nodejs"
    command -v npm >/dev/null 2>&1 || need="$need npm"
elif ! command -v npm >/dev/null 2>&1; then
    if deb_installed nodejs && ! dpkg-query -W -f='${Conflicts}' nodejs 2>/dev/null | grep -qw npm
    then
        need="$need npm" # Debian's own nodejs: Debian's npm goes with it
    else
        link_bundled_npm=yes # NodeSource (or a node from elsewhere): never apt's npm
    fi
fi
if [ -n "$need" ]; then
    # shellcheck disable=SC2086
    apt_install $need
fi

if [ $link_bundled_npm = yes ]; then
    prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
    bundled=$prefix/lib/node_modules/npm/bin
    if [ -f "$bundled/npm-cli.js" ]; then
        echo "linking the npm bundled with node into /usr/local/bin"
        $SUDO ln -sf "$bundled/npm-cli.js" /usr/local/bin/npm
        $SUDO ln -sf "$bundled/npx-cli.js" /usr/local/bin/npx
    else
        echo "install.sh: node $(node --version) has no npm; scripts/install-deps.sh can" \
             "install one with corepack" >&2
        exit 1
    fi
fi
echo "node $(node --version), npm $(npm --version)"

cd "$here"
if node -e 'require.resolve("ws")' >/dev/null 2>&1 &&
   [ "$(node -p 'require("ws/package.json").version')" = \
     "$(node -p 'require("./package-lock.json").packages["node_modules/ws"].version')" ]; then
    echo "ws $(node -p 'require("ws/package.json").version'): already installed"
else
    npm ci --no-audit --no-fund
fi
