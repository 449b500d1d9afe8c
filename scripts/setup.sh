#!/usr/bin/env bash
# Installs everything the build and the tests need on a fresh Debian 12 machine (as root), only
# what is missing: Debian packages, then the pinned npm reference tools (tests/reference).
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  qt6-base-dev qt6-base-dev-tools qt6-charts-dev libgl-dev
  libeigen3-dev libhdf5-dev hdf5-tools python3-h5py python3-numpy
  libzstd-dev libssh-dev nlohmann-json3-dev libyaml-cpp-dev zlib1g-dev
  xvfb xauth time nodejs npm
  g++-aarch64-linux-gnu qemu-user file  # the board build (static aarch64) and its tests under qemu
  openssh-server  # tests/board: the SSH board fixture starts /usr/sbin/sshd on 127.0.0.1
)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# nodejs/npm may come from outside apt (e.g. a preinstalled Node): accept working binaries.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm reference tools for the tests (pinned by tests/reference/package-lock.json). The native
# llama.cpp binaries ship inside @node-llama-cpp/linux-x64; nothing is downloaded or built.
# `npm install --no-save` rather than `npm ci`: npm leaves other platforms' optional packages out
# of the lock file and `npm ci` then refuses it; install still takes every version from the lock.
if [ ! -f tests/reference/node_modules/.package-lock.json ] ||
   [ tests/reference/package-lock.json -nt tests/reference/node_modules/.package-lock.json ]; then
  echo "setup: installing npm reference tools (tests/reference)"
  (cd tests/reference && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --omit=optional --no-save --no-audit --no-fund --loglevel=error)
fi
echo "setup: ok"
