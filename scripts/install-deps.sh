#!/bin/sh
# Installs the Debian packages Loom needs to build, test and run its demo. Idempotent: does
# nothing when everything is already installed. Run as root (or with sudo).
#   install-deps.sh        what `make demo` and `make test` need
#   install-deps.sh fuzz   and clang with libFuzzer, for `make fuzz`
set -eu
PACKAGES="build-essential cmake ninja-build pkg-config libdnnl-dev libyaml-cpp-dev libtbb-dev \
libboost-dev libboost-filesystem-dev libgtest-dev zlib1g-dev libpng-dev nlohmann-json3-dev \
dataset-fashion-mnist ocl-icd-opencl-dev libcli11-dev ccache chromium \
libcairo2-dev fonts-dejavu-core libopenmpi-dev openmpi-bin"
if [ "${1:-}" = fuzz ]; then
  PACKAGES="$PACKAGES clang libclang-rt-14-dev"
fi
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
  exit 0
fi
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
