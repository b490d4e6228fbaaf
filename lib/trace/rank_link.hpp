// lib/trace/rank_link.hpp — mpi_pool's worker ranks in rank 0's trace.
//
// A worker rank records nothing itself and writes no file. Rank 0 marks each
// task submitted while its trace records as traced; the rank times it
// (arrival; start and end as its worker process or thread took them; when the
// outcome was known) on its own CLOCK_MONOTONIC and sends the times back in
// the task's result message. Rank 0 draws the span here, named after the task
// from its own ticket, on the rank's track. A rank may run on another host,
// whose clock has another origin: when the pool opens, rank 0 estimates each
// rank's clock offset from a few ping exchanges (Cristian's method: the
// exchange with the smallest round trip; the error is at most half of it)
// and moves the rank's times onto its own clock.
//
// Tracks: each rank is one process in the file, "rank R (host)", with a
// track for its serve loop (faults and the clock estimate) and one per local
// worker (process isolation: per worker process; thread isolation: per
// thread), ids from remote_track() (recorder.hpp).
//
// Trust: a rank's times are untrusted. Each is moved onto rank 0's clock with
// saturating arithmetic and clamped into the interval from the task's send to
// now (on rank 0), in order (arrival <= start <= end); names are rank 0's own
// or built from numbers, the host and reasons are bounded in length and
// escaped by the string table; a rank gets at most max_remote_lanes tracks.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "coexec/detail/trace_hooks.hpp"

namespace coexec::detail::trace::ranks {

using clock = std::chrono::steady_clock;

/// One ping exchange: rank 0 sent at `sent`, the rank read `remote` on its
/// clock, rank 0 received the answer at `received` (ns).
struct clock_sample {
    std::int64_t sent = 0;
    std::int64_t remote = 0;
    std::int64_t received = 0;
};

/// The rank's clock minus rank 0's, within ±error ns.
struct clock_estimate {
    std::int64_t offset = 0;
    std::int64_t error = 0;
    bool known = false;
};

/// Cristian's method over `samples`: the one with the smallest round trip
/// gives offset = remote - (sent + received) / 2, error = round trip / 2.
/// An offset within its own error of zero is taken as zero (the same clock:
/// ranks on one host share CLOCK_MONOTONIC). Samples with a negative round
/// trip are ignored; none left: not known.
clock_estimate estimate_offset(std::span<const clock_sample> samples) noexcept;

/// A rank's times for one task, as it sent them (span_trailer in lib/mpi/protocol.hpp).
struct remote_span {
    std::int64_t received = 0;
    std::int64_t started = 0;  // 0: unknown
    std::int64_t finished = 0;
    std::uint32_t worker = 0;  // 0: unknown
    bool thread = false;       // `worker` is a thread id
};

/// `x` (the rank's clock) on rank 0's clock, clamped into [lo, hi].
std::int64_t to_local(std::int64_t x, const clock_estimate& c, std::int64_t lo,
                      std::int64_t hi) noexcept;

/// One worker rank, on rank 0. Used by one thread at a time (the pool's
/// constructor, then its progress thread). Every member but identify() does
/// nothing unless a trace records, and never throws.
class rank_track {
  public:
    /// What the rank said when the pool opened (`host` is bounded here).
    void identify(int rank, std::uint64_t pid, std::string_view host, clock_estimate clock);

    /// A traced task `t`, sent to the rank at `sent`, answered now: its span on
    /// its worker's track. `flags`: task_flag (died, killed). Returns the
    /// span's end on rank 0's clock (0 if not drawn).
    std::int64_t task(const task_ticket& t, clock::time_point sent, const remote_span& s,
                      std::uint8_t flags) noexcept;

    /// An instant event `what` (a literal) with `reason` on the track of the
    /// rank's worker `worker` (0: the serve loop's), at `at` (0: now); `task`
    /// = its name id or 0.
    void fault(const char* what, std::string_view reason, std::uint32_t task = 0,
               std::uint32_t worker = 0, bool thread = false, std::int64_t at = 0) noexcept;

  private:
    std::uint32_t lane(std::uint32_t worker, bool thread);
    void describe(std::uint32_t lane, std::uint32_t worker, bool thread);

    int m_rank = 0;
    std::uint64_t m_pid = 0;
    std::string m_host;
    clock_estimate m_clock;
    std::unordered_map<std::uint64_t, std::uint32_t> m_lanes;  // worker (with kind) → lane
    std::vector<std::uint64_t> m_described;                    // per lane: the session told
};

/// The progress thread's track name: "<pool> progress" (pool: "mpi_pool N").
void name_progress_thread(const std::string& pool) noexcept;

}  // namespace coexec::detail::trace::ranks
