#!/usr/bin/env bash
# Builds the libFuzzer harnesses (preset `fuzz`) and runs each over its
# committed seed corpus for a bounded time (FUZZ_SECONDS, default 60), under
# ASan + UBSan. A crash, a leak, a timeout or an out-of-memory fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
cmake --preset fuzz
cmake --build --preset fuzz
for corpus in tests/fuzz/corpus/*/; do
    name="$(basename "$corpus")"
    harness="build/fuzz/tests/fuzz/fuzz_${name}"
    [ -x "$harness" ] || { echo "no harness for corpus $name" >&2; exit 1; }
    work="$(mktemp -d)"
    cp "$corpus"* "$work"/
    echo "fuzz_${name}: ${seconds} s"
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$harness" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "$work" "$corpus"
    rm -rf "$work"
done
