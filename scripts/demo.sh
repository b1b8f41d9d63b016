#!/bin/bash
# README command 1: install what is missing, build, run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
gw_install_deps $GW_BUILD_DEPS

[ -d build/meson-private ] || meson setup build >/dev/null
ninja -C build >/dev/null
gw=./build/godwit

echo "== godwit $($gw --version | cut -d' ' -f2): what it understood"
( set -x; $gw --memory size=512M --cpus boot=2 \
    --vdpa path=/dev/vhost-vdpa-0,num_queues=2 \
    --vdpa path=/dev/vhost-vdpa-1,id=disk1 --print-config )
echo "== a bad option is refused before anything is created"
( set -x; $gw --vdpa path=/dev/vhost-vdpa-0,num_queues=0 ) || true
