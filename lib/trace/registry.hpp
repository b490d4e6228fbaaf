// lib/trace/registry.hpp — the executors whose counters a trace samples.
//
// Each thread_pool and process_pool registers itself for its whole life
// (whether or not a trace records: a trace started later sees pools made
// earlier). The writer thread samples every registered executor's stats()
// each flush interval and writes a counter event when a value changed:
// queue depth, tasks in flight and workers alive, as Perfetto counter tracks
// named "<executor> queued", "<executor> in flight", "<executor> workers alive".
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "coexec/executor.hpp"

namespace coexec::detail::trace {

using stats_fn = executor_stats (*)(const void* executor) noexcept;

/// One registered executor. Unregisters on destruction (a stats() call the
/// writer is making meanwhile finishes first), recording a last sample if a
/// trace records. Destroy it before the executor's counters go.
class executor_track {
  public:
    /// `kind` ("thread_pool"), its number among its kind and `label` ("io",
    /// may be empty) name the counter tracks: "thread_pool 2 io".
    executor_track(const char* kind, const std::string& label, stats_fn fn, const void* executor);
    executor_track(const executor_track&) = delete;
    executor_track& operator=(const executor_track&) = delete;
    ~executor_track();

    /// "thread_pool 2 io", "process_pool 1": the name of its tracks.
    std::uint32_t name() const noexcept { return m_name; }
    /// Its number among executors of its kind (1, 2, ...).
    std::uint32_t number() const noexcept { return m_number; }
    /// name() as text.
    const std::string& text() const noexcept { return m_text; }

  private:
    std::string m_text;
    std::uint32_t m_name = 0;
    std::uint32_t m_number = 0;
};

struct counter_sample {
    std::uint32_t name;
    std::uint64_t queued;
    std::uint64_t in_flight;
    std::uint64_t workers;
};

/// Writer thread: samples every executor and calls `out` for those whose
/// counters changed since the last sample (all of them with `force`).
void sample_executors(bool force, const std::function<void(const counter_sample&)>& out);

/// Forgets the last samples (a new session writes every counter again).
void reset_samples() noexcept;

}  // namespace coexec::detail::trace
