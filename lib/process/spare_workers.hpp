// lib/process/spare_workers.hpp — workers the fork server forks ahead.
//
// A fork is most of a worker's start (~0.2–0.5 ms on a 2-vCPU guest). The
// fork server keeps a few workers forked before any pool asks: a fork
// request is then answered by handing one its channel, and the forks that
// refill the spares wait until no request came for `refill_delay`, so they
// do not take a core from the workers of a pool that is starting; while a
// spare is still ready, they also wait (up to `refill_patience` after the
// last request) until fewer tasks besides the fork server are runnable than
// there are CPUs: on a 2-vCPU guest whose forks cost ~1 ms, a refill 0.5 ms
// after a pool took its first spare ran beside that worker's start and
// held the supervisor off a CPU (pools made 5 ms apart, start -> first
// result, medians of 5 alternating runs: 1.65 ms -> 1.14 ms).
// COEXEC_SPARE_WORKERS=n keeps n (default 2; at most 4).
//
// A spare holds nothing of the fork server's but stdio and its own socket:
// not the control socket, not any pool's report socket, so a spare's long
// wait keeps no hang-up from anyone. It is the fork server's child like any
// worker: reaped by it, reported to no pool until handed out. A task may
// kill or stop a spare (it is a sibling); one that cannot take its channel
// is killed and the request served by a fork.
//
// Only async-signal-safe calls in the spare, as in any child of the fork
// server, and nothing here allocates but the fork server's child map.
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>

#include "process/launch.hpp"
#include "util/unique_fd.hpp"

namespace coexec::detail::proc {

class spare_workers {
  public:
    static constexpr std::size_t max_count = 4;
    /// A refill waits until no fork was asked for during this long (a pool
    /// asks for its workers one after another, each once the one before is
    /// ready: ~0.1–0.5 ms apart).
    static constexpr std::chrono::microseconds refill_delay{500};
    /// A refill due while every CPU is busy waits another refill_delay, for
    /// at most this long in all (see refill()).
    static constexpr std::chrono::milliseconds refill_patience{20};

    /// `fork_server`: this process's pid (the spares' parent). `children`:
    /// the fork server's map of worker pid → pool id, which spares join.
    spare_workers(pid_t fork_server, std::map<pid_t, std::uint32_t>& children) noexcept;

    /// A fork was asked for: gives a spare the worker end of a channel, as
    /// `pool_id`'s worker, and puts refills off until refill_delay from now.
    /// Returns it (pid and pidfd) or, if none is ready or none can take it,
    /// an empty `launched` (the caller forks instead).
    launched hand_out(const int (&channel)[channel_fd_count], std::uint32_t pool_id) noexcept;

    /// A child was reaped: if it was a spare, forget it (and refill after
    /// refill_delay).
    void reaped(pid_t pid) noexcept;

    /// Kills the spares a task stopped (they would never run a channel).
    void kill_stopped() noexcept;

    /// How long until a refill is due: negative when none is (all spares
    /// ready), zero when one is due now.
    std::chrono::microseconds refill_due_in() const noexcept;

    /// Forks one spare (if one is missing). Call only when no request is
    /// waiting: a request is served first, by a spare if one is ready.
    void refill() noexcept;

  private:
    struct spare {
        pid_t pid = -1;
        unique_fd socket;  // the fork server's end
        unique_fd pidfd;   // opened before it could be reaped: surely this child
    };
    bool refill_one() noexcept;

    pid_t m_fork_server;
    std::map<pid_t, std::uint32_t>& m_children;
    std::array<spare, max_count> m_spares;
    std::size_t m_ready = 0;   // m_spares[0, m_ready) hold spares
    std::size_t m_wanted = 0;  // COEXEC_SPARE_WORKERS
    std::size_t m_cpus = 1;    // online
    std::chrono::steady_clock::time_point m_refill_at;
    std::chrono::steady_clock::time_point m_postponed_since;  // epoch: not postponed
};

}  // namespace coexec::detail::proc
