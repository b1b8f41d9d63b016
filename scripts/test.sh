#!/bin/bash
# README command 2: install what is missing, build, run the whole suite.
#   scripts/test.sh [BUILD_DIR [meson setup options...]]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
gw_install_deps $GW_BUILD_DEPS $GW_TEST_DEPS

builddir=${1:-build}
shift || true
if [ ! -d "$builddir/meson-private" ]; then
    meson setup "$builddir" "$@" >/dev/null
fi
ninja -C "$builddir"
if [ -n "${CI:-}" ] || [ -n "${GW_FORMAT_CHECK:-}" ]; then
    ninja -C "$builddir" clang-format-check
fi
meson test -C "$builddir" --print-errorlogs --timeout-multiplier 4
