#!/usr/bin/env bash
# Builds the libFuzzer harnesses (preset `fuzz`: clang-16, ASan + UBSan), then
# for every registered one (build/fuzz/tests/fuzz/fuzzers.txt): replays its
# committed corpus input by input, then fuzzes it for a bounded time starting
# from that corpus. Fails if any harness reports a finding: a crash, a
# sanitizer report, a leak, an input slower than FUZZ_TIMEOUT seconds, or more
# memory than FUZZ_RSS_MB.
#
#   .ci/fuzz.sh [seconds per harness]
#
# Seconds per harness: the argument, else FUZZ_SECONDS, else 60 (sized for CI
# on 2 cores: the whole run stays within a few minutes); 0 only replays.
#
# New inputs go to build/fuzz/corpus/<name>/ (the committed corpus is only
# read); a crashing input is saved as build/fuzz/artifacts/<name>-crash-<sha1>
# and replays with: build/fuzz/tests/fuzz/fuzz_<name> <that file>.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-${FUZZ_SECONDS:-60}}
timeout=${FUZZ_TIMEOUT:-10}
rss_mb=${FUZZ_RSS_MB:-2048}

command -v clang++-16 >/dev/null || {
    echo "fuzz: clang++-16 not found (Debian packages clang-16 and libfuzzer-16-dev)" >&2
    exit 2
}

cmake --preset fuzz
cmake --build --preset fuzz -j"${FUZZ_BUILD_JOBS:-2}"

list=build/fuzz/tests/fuzz/fuzzers.txt
[ -s "$list" ] || { echo "fuzz: no harness registered ($list)" >&2; exit 1; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
mkdir -p build/fuzz/artifacts
failed=()
while read -r name exe corpus; do
    [ -n "$name" ] || continue
    work=build/fuzz/corpus/$name
    mkdir -p "$work"
    limits=(-timeout="$timeout" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb"
        -artifact_prefix="build/fuzz/artifacts/$name-")
    seeds=()
    if [ -d "$corpus" ]; then
        seeds=("$corpus")
        # Every committed input once, whatever the time budget: a regression
        # fails here deterministically (libFuzzer runs files given by name).
        count=$(find "$corpus" -type f | wc -l)
        echo "fuzz: $name: replaying $count committed inputs"
        if ! find "$corpus" -type f -print0 |
            xargs -0 -r "$exe" "${limits[@]}" >"build/fuzz/$name-replay.log" 2>&1; then
            tail -n 40 "build/fuzz/$name-replay.log" >&2
            failed+=("$name")
            continue
        fi
    fi
    [ "$seconds" -gt 0 ] || continue
    echo "fuzz: $name for ${seconds}s"
    if ! "$exe" -max_total_time="$seconds" "${limits[@]}" -print_final_stats=1 \
        "$work" "${seeds[@]}"; then
        failed+=("$name")
    fi
done <"$list"

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz: findings in: ${failed[*]} (inputs in build/fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: every harness replayed its corpus and ran ${seconds}s clean"
