#!/usr/bin/env bash
# bench/server/run.sh — the sample server under load, once per CPU executor.
#
#   bench/server/run.sh [path/to/server]      # default: build/release/samples/server/server
#   DURATION=10s CONNECTIONS=128 BELOW="20000" bench/server/run.sh
#   KEEP_OUTPUT=1 bench/server/run.sh         # keep wrk's reports (path on stderr)
#
# For each N in BELOW (default 20000, ~0.5 ms of work, and 200000, ~10 ms),
# for --executor=process, thread and inline in turn: start the server, then
# for DURATION run at the same time
#   wrk -t2 -c64 --latency  /primes?below=N       (the CPU-bound load)
#   wrk -t1 -c1  --latency  /health               (a latency probe: no CPU work)
# and report requests/s and p99 latency of the load, and p99 of the probe.
#
# The point is the probe. /health needs no pool, so its latency measures how
# responsive the event loop is. With process and thread executors the loop
# only submits and awaits; with inline it computes every /primes itself and a
# /health waits behind the queue of them.
#
# Output: human-readable lines on stderr; RESULT/NOTE lines on stdout (see
# bench/common/bench_report.hpp), each pool-backed executor against the inline
# executor as the peer. bench/run_all.sh runs this through the bench_server
# wrapper that bench/server/CMakeLists.txt generates.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
server=${1:-$here/../../build/release/samples/server/server}
duration=${DURATION:-5s}
connections=${CONNECTIONS:-64}
below_list=${BELOW:-20000 200000}

if ! command -v wrk >/dev/null; then
    echo "NOTE|server benchmark skipped: wrk is not installed (Debian package wrk)."
    exit 0
fi
[[ -x $server ]] || { echo "run.sh: no server binary at $server" >&2; exit 1; }

work=$(mktemp -d)
server_pid=
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    if [[ -n ${KEEP_OUTPUT:-} ]]; then echo "run.sh: wrk outputs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Prints the p99 latency of a wrk --latency report in milliseconds.
p99_ms() {
    awk '$1 == "99%" {
        v = $2
        if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v) }
        else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }
        printf "%.4g\n", v; found = 1
    } END { if (!found) print 0 }' "$1"
}
completed() { awk '/ requests in / { print $1; found = 1 } END { if (!found) print 0 }' "$1"; }
duration_ms() {
    awk -v d="$duration" 'BEGIN {
        v = d + 0
        if (d ~ /ms$/) m = v; else if (d ~ /m$/) m = v * 60000; else m = v * 1000
        printf "%.4g\n", m }'
}
rps() { awk '/^Requests\/sec:/ { print $2; found = 1 } END { if (!found) print 0 }' "$1"; }
timeouts() {
    awk '/Socket errors:/ { for (i = 1; i <= NF; i++) if ($i == "timeout") { print $(i + 1) + 0; f = 1 } }
         END { if (!f) print 0 }' "$1"
}

# Measures one executor at one N; sets rps_<ex>, p99_<ex>, health_<ex>.
measure() {
    local ex=$1 below=$2
    # A fresh file per run: the background job truncates its redirection only
    # once it starts, so reusing a name could read the previous server's port.
    local out="$work/out.$ex.$below"
    "$server" --port 0 --executor="$ex" --root "$work" --max-pending 100000 \
        >"$out" 2>"$work/err" &
    server_pid=$!
    local port=
    for _ in $(seq 200); do
        [[ -f $out ]] && port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out")
        [[ -n $port ]] && break
        sleep 0.05
    done
    [[ -n $port ]] || { echo "run.sh: the server did not start:" >&2; cat "$work/err" >&2; exit 1; }
    local base="http://127.0.0.1:$port"

    wrk -t2 -c8 -d1s "$base/primes?below=$below" >/dev/null  # warm-up
    wrk -t2 -c"$connections" -d"$duration" --timeout 10s --latency \
        "$base/primes?below=$below" >"$work/load.$ex" &
    local load=$!
    wrk -t1 -c1 -d"$duration" --timeout 10s --latency "$base/health" >"$work/probe.$ex"
    wait "$load"

    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=

    printf -v "rps_$ex" '%s' "$(rps "$work/load.$ex")"
    printf -v "p99_$ex" '%s' "$(p99_ms "$work/load.$ex")"
    printf -v "health_$ex" '%s' "$(p99_ms "$work/probe.$ex")"
    if [[ $(completed "$work/probe.$ex") == 0 ]]; then
        # Not one /health answered during the run: wrk has no percentiles then.
        # Report the run's length, a lower bound of the real figure.
        printf -v "health_$ex" '%s' "$(duration_ms)"
        echo "NOTE|server benchmark: with --executor=$ex and /primes?below=$below, no /health probe was answered within the $duration run; its p99 is shown as ${duration} (a lower bound)."
    fi
    local t
    t=$(($(timeouts "$work/load.$ex") + $(timeouts "$work/probe.$ex")))
    local r="rps_$ex" p="p99_$ex" h="health_$ex"
    printf '%-8s /primes?below=%s: %8.1f req/s, p99 %8.2f ms | /health p99 %8.2f ms | wrk timeouts %s\n' \
        "$ex" "$below" "${!r}" "${!p}" "${!h}" "$t" >&2
    if ((t > 0)); then
        echo "NOTE|server benchmark: $t wrk timeouts (10 s) with --executor=$ex; those requests are not in its latency figures."
    fi
}

# ratio = coexec/peer for rates, peer/coexec for latencies (> 1: coexec ahead).
result() {  # name value unit peer_value direction(higher|lower)
    awk -v n="$1" -v v="$2" -v u="$3" -v pv="$4" -v d="$5" 'BEGIN {
        r = 0
        if (v > 0 && pv > 0) r = (d == "higher") ? v / pv : pv / v
        printf "RESULT|%s|%.4g|%s|inline executor|%.4g|%.3g\n", n, v, u, pv, r
    }'
}
for below in $below_list; do
    for ex in process thread inline; do
        measure "$ex" "$below"
    done
    for ex in process thread; do
        label=$([[ $ex == process ]] && echo process_pool || echo thread_pool)
        r="rps_$ex" p="p99_$ex" h="health_$ex"
        result "server /primes?below=$below throughput, $label" "${!r}" "req/s" "$rps_inline" higher
        result "server /primes?below=$below p99 latency, $label" "${!p}" "ms" "$p99_inline" lower
        result "server /health p99 under /primes?below=$below load, $label" "${!h}" "ms" \
            "$health_inline" lower
    done
done
echo "NOTE|server: samples/server on 127.0.0.1 (one event-loop thread, CPU workers = cores), load" \
    "wrk -t2 -c$connections -d$duration on /primes?below=N plus a wrk -t1 -c1 /health probe at" \
    "the same time; wrk runs on the same cores as the server. Peer: the same server with" \
    "--executor=inline (CPU work on the event loop)."
