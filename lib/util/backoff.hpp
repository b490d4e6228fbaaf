// lib/util/backoff.hpp — how a loop waits for events it can only poll for.
//
// MPI reports arrivals only when asked (MPI_Iprobe, MPI_Test), and a
// "blocking" MPI call polls just the same inside. Polling non-stop is fine on
// a dedicated core, but on an oversubscribed node (more ranks and workers than
// cores) it takes the CPU from the processes doing the work: measured here,
// 4 ms per task. So a polling loop spins briefly after its last event (a
// reply usually follows a request within microseconds), then sleeps for
// growing intervals, up to a cap, until the next event resets it.
#pragma once

#include <algorithm>
#include <chrono>
#include <thread>

#include "coexec/detail/spin.hpp"

namespace coexec::detail {

class idle_backoff {
  public:
    using clock = std::chrono::steady_clock;

    /// `policy`: how long to keep polling without sleeping after an event,
    /// and whether to yield meanwhile; sleeps then start at `first_sleep`
    /// and double up to `max_sleep`.
    explicit idle_backoff(spin_policy policy = spin::mpi_poll,
                          std::chrono::microseconds first_sleep = std::chrono::microseconds{20},
                          std::chrono::microseconds max_sleep = std::chrono::microseconds{1000})
        : m_policy(policy), m_first(first_sleep), m_max(max_sleep), m_last_event(clock::now()) {}

    /// Something happened: poll without sleeping again for a while.
    void reset() noexcept {
        m_last_event = clock::now();
        m_sleep = std::chrono::microseconds{0};
    }

    /// Nothing happened in the last poll. Returns zero while still in the
    /// spinning phase (the caller polls again after relax()), else how long to
    /// sleep now (each call doubles it, up to the cap).
    std::chrono::microseconds next() noexcept {
        if (m_sleep.count() == 0) {
            if (clock::now() - m_last_event < m_policy.budget) return m_sleep;
            m_sleep = m_first;
            return m_sleep;
        }
        m_sleep = std::min(m_sleep * 2, m_max);
        return m_sleep;
    }

    /// Between polls of the spinning phase: a short pause, and every 8th
    /// time the CPU offered to others (on an oversubscribed node the event
    /// comes from one of them; yielding after every poll measured 50 us per
    /// round trip instead of 31 here, the polls themselves being costly).
    void relax() noexcept {
        for (int i = 0; i < 16; ++i)
            cpu_relax();
        if (m_policy.yields != yielding::never && (++m_polls & 7) == 0) std::this_thread::yield();
    }

  private:
    spin_policy m_policy;
    std::chrono::microseconds m_first;
    std::chrono::microseconds m_max;
    std::chrono::microseconds m_sleep{0};
    unsigned m_polls = 0;
    clock::time_point m_last_event;
};

}  // namespace coexec::detail
