#!/bin/sh
# Installs every Debian (bookworm) package the project needs to build, test
# and run the demo. Idempotent: apt-get install skips what is present.
set -eu

packages="
  build-essential cmake pkg-config git
  clang llvm libclang-rt-14-dev
  libbpf-dev libelf-dev zlib1g-dev bpftool
  libcap-dev libcap2-bin util-linux
  libnats-dev libmsgpack-dev libuv1-dev libssl-dev
  libcriterion-dev
  nats-server
  systemtap-sdt-dev
  python3 python3-bitcoinlib
"

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (apt-get install needs it)" >&2
  exit 1
fi

# The collector's own system user (ebpf-extractor runs the collector as it;
# the publisher runs as another uid, nobody by default).
id -u ebpf-collector >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin ebpf-collector

missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "install-deps: all packages present"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
