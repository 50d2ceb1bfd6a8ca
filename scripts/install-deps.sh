#!/usr/bin/env bash
# Install the Debian 12 packages wisp needs to build, test and fuzz. Safe to re-run.
set -euo pipefail
packages=(
  build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
  libcmocka-dev liburing-dev libssl-dev zlib1g-dev openssl
  python3-websockets
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
