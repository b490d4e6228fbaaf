// samples/server/state.hpp — the server's settings and counters.
//
// Everything here is touched only from the one event-loop thread (pool
// results come back to it through coexec::async_get), so plain integers are
// enough: no atomics, no locks.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "http.hpp"

namespace server {

enum class cpu_executor { process, thread, inline_ };

/// Command-line settings (main.cpp: the flags; `server --help` lists them).
struct options {
    unsigned short port = 8080;
    std::size_t io_workers = 4;
    std::size_t cpu_workers = 0;  ///< 0 = one per core
    std::string root = ".";
    std::size_t max_pending = 64;
    cpu_executor executor = cpu_executor::process;
    http::limits limits;
    std::int64_t max_primes_below = 5'000'000;
    std::size_t max_file_bytes = 16 * 1024 * 1024;
    /// A connection waiting this long for a request's first byte is closed.
    std::chrono::milliseconds idle_timeout{30'000};
    /// Once a request's first byte has arrived, the whole request must arrive
    /// within this (else 408 and close: a slowloris client cannot hold a
    /// connection); a response must be taken by the client within it too.
    std::chrono::milliseconds request_timeout{10'000};
};

struct counters {
    std::uint64_t connections_accepted = 0;
    std::uint64_t connections_open = 0;
    std::uint64_t requests = 0;
    std::uint64_t responses_2xx = 0;
    std::uint64_t responses_4xx = 0;
    std::uint64_t responses_5xx = 0;
    std::uint64_t rejected_busy = 0;  ///< 503s from the admission bound
    std::uint64_t pool_failures = 0;  ///< requests whose pool task failed (worker died, ...)
    std::uint64_t pending = 0;        ///< requests waiting for a pool now
    std::uint64_t pending_peak = 0;
    std::uint64_t in_flight = 0;  ///< requests being handled now (for a graceful stop)
    bool stopping = false;        ///< SIGINT/SIGTERM seen: finish in-flight requests, then exit
};

}  // namespace server
