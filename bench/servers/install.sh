#!/bin/sh
# Installs what the peer echo servers need, skipping whatever is already there:
#   libwebsockets-dev (for lws_echo), Node.js and npm, and the `ws` package from
#   package-lock.json into bench/servers/node_modules (which git ignores).
# Debian/Ubuntu; apt-get needs root (sudo is used when not root). Re-run meson setup
# (or "meson setup --reconfigure") afterwards so that lws_echo gets built.
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

if pkg-config --exists libwebsockets 2>/dev/null; then
    echo "libwebsockets $(pkg-config --modversion libwebsockets): already installed"
else
    apt_install libwebsockets-dev pkg-config
fi

need=
command -v node >/dev/null 2>&1 || need="$need nodejs"
command -v npm >/dev/null 2>&1 || need="$need npm"
if [ -n "$need" ]; then
    # shellcheck disable=SC2086
    apt_install $need
else
    echo "node $(node --version), npm $(npm --version): already installed"
fi

cd "$here"
if node -e 'require.resolve("ws")' >/dev/null 2>&1 &&
   [ "$(node -p 'require("ws/package.json").version')" = \
     "$(node -p 'require("./package-lock.json").packages["node_modules/ws"].version')" ]; then
    echo "ws $(node -p 'require("ws/package.json").version'): already installed"
else
    npm ci --no-audit --no-fund
fi
