#!/usr/bin/env bash
# Install every Debian 12 package llmq's build, tests and benchmarks need. Idempotent.
set -euo pipefail
packages=(
  build-essential meson ninja-build pkg-config cmake ccache
  libboost-all-dev libtomlplusplus-dev nlohmann-json3-dev libcli11-dev doctest-dev
  libopenmpi-dev openmpi-bin libstb-dev libpng-dev libjpeg62-turbo-dev
  clang-14 libfuzzer-14-dev libclang-rt-14-dev
  python3-numpy python3-torch
  curl prometheus
  libedit-dev
  # the demo model: its training text (the KJV) and a BLAS for python3-torch on the CPU
  bible-kjv libopenblas0-pthread
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
