#!/bin/bash
# Runs libFuzzer targets for a bounded time each, under ASan+UBSan.
#   scripts/fuzz.sh [SECONDS [TARGET...]]    (default: 60 s, every target)
# Builds build-fuzz (CC=clang, -Dfuzz=true) if needed.  Each target
# starts from its committed seeds (tests/fuzz/corpus/TARGET) plus what
# earlier runs found (build-fuzz/corpus/TARGET), in a scratch working
# directory, and prints libFuzzer's last status line (execs, cov).  A
# crash leaves its input in build-fuzz/artifacts/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-60}
shift || true
targets=${*:-"board pci qmp qtest config vring mig-stream mig-incoming svq iommu iommu-state"}
bdir=$root/build-fuzz
if [ ! -d "$bdir/meson-private" ]; then
    CC=clang meson setup "$bdir" -Dfuzz=true >/dev/null
fi
for t in $targets; do
    ninja -C "$bdir" "tests/fuzz/fuzz-$t" >/dev/null
done
mkdir -p "$bdir/artifacts"
status=0
for t in $targets; do
    corpus=$bdir/corpus/$t
    mkdir -p "$corpus"
    seeds=$root/tests/fuzz/corpus/$t
    dict=$root/tests/fuzz/$t.dict
    args=(-max_total_time="$secs" -timeout=20 -rss_limit_mb=4096
          -print_final_stats=1 -artifact_prefix="$bdir/artifacts/$t-")
    [ -f "$dict" ] && args+=(-dict="$dict")
    [ -d "$seeds" ] || seeds=
    scratch=$(mktemp -d)
    log=$bdir/fuzz-$t.log
    echo "== fuzz-$t: ${secs}s"
    if (cd "$scratch" &&
        ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
            "$bdir/tests/fuzz/fuzz-$t" "${args[@]}" "$corpus" $seeds \
            >"$log" 2>&1); then
        grep -E '^#[0-9]+.*(pulse|DONE|cov:)' "$log" | tail -1 || true
        grep -E 'stat::number_of_executed_units' "$log" || true
    else
        echo "fuzz-$t FAILED (log: $log)"
        grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5 || true
        status=1
    fi
    rm -rf "$scratch"
done
exit $status
