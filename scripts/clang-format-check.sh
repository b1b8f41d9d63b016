#!/bin/sh
# Fails listing the C files whose formatting differs from .clang-format.
cd "$1" || exit 1
bad=0
for f in $(git ls-files '*.c' '*.h' 2>/dev/null | grep -v '^tests/guest/'); do
    if ! clang-format --style=file "$f" | cmp -s - "$f"; then
        echo "needs clang-format: $f"
        bad=1
    fi
done
exit $bad
