// coexec/executor.hpp — what every coexec executor offers.
//
// thread_pool, process_pool, inline_executor, asio_executor and mpi_pool all
// satisfy coexec::executor, so code written against one compiles against the
// others: switching strategy is a change of one type.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <variant>

namespace coexec {

/// Counters an executor keeps; a snapshot, each field read atomically.
struct executor_stats {
    std::uint64_t submitted = 0;      ///< tasks accepted by submit/map (map counts chunks)
    std::uint64_t completed = 0;      ///< finished with a value
    std::uint64_t failed = 0;         ///< finished with an exception
    std::uint64_t cancelled = 0;      ///< cancelled before or while running
    std::uint64_t queued = 0;         ///< waiting for a worker now
    std::uint64_t running = 0;        ///< on a worker now
    std::uint64_t workers_alive = 0;  ///< worker threads or processes alive now
    std::uint64_t respawns = 0;       ///< process workers started to replace dead ones
};

/// Progress of a map or pipeline stage, reported to a progress callback.
struct progress_info {
    std::uint64_t done = 0;  ///< elements finished (value or exception)
    /// The input's size when the range knows it (or once it is exhausted);
    /// before that, the elements taken from the input so far.
    std::uint64_t total = 0;
    bool input_exhausted = false;        ///< true once `total` is final
    std::chrono::nanoseconds elapsed{};  ///< since the map (or the stage) started
    double rate = 0;                     ///< elements finished per second, on average

    /// Time left at the current rate: nullopt until `total` is final and an
    /// element has finished.
    std::optional<std::chrono::nanoseconds> eta() const {
        if (!input_exhausted || rate <= 0 || done > total) return std::nullopt;
        return std::chrono::nanoseconds(
            static_cast<std::int64_t>(static_cast<double>(total - done) / rate * 1e9));
    }
};

/// Options of `executor.map(f, inputs, options)`; documented in docs/api.md.
struct map_options {
    /// Elements per task; 0 = chosen from the input size (when known) and the worker count.
    std::size_t chunksize = 0;
    /// true: results in input order (Python `map`/`imap`); false: completion order
    /// (`imap_unordered`).
    bool ordered = true;
    /// Bound on elements taken from the input ahead of the consumer; 0 = 2 chunks per worker.
    std::size_t buffersize = 0;
    /// Whole-map deadline, measured from the call; zero = none. Passing it throws timeout_error.
    std::chrono::nanoseconds timeout{0};
    /// A callback `void(const progress_info&)`, or `true` for a bar on stderr when it is a
    /// terminal.
    std::variant<bool, std::function<void(const progress_info&)>> progress = false;
};

/// The one concept executors satisfy (members common to all of them).
template <class E>
concept executor = requires(E& e, const E& ce) {
    e.submit([] {});
    { e.shutdown() };
    { e.shutdown(true, false) };
    { e.terminate_workers() };
    { ce.max_workers() } -> std::convertible_to<std::size_t>;
    { ce.stats() } -> std::same_as<executor_stats>;
};

}  // namespace coexec
