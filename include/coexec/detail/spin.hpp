// detail/spin.hpp — the one policy for spinning before a thread sleeps.
//
// Measured on these VMs: a hand-off costs 2–5 µs while the receiver still
// spins and 30–40 µs once it sleeps in a futex or eventfd. So every waiter
// spins for a short, bounded time (with `pause`, to be kind to the sibling
// hyperthread) before it sleeps. Waiters differ only in the budget and in
// whether they yield the CPU between bursts: those are the named policies
// below, so the trade-offs are read (and tuned) in one place.
//
// It lives here rather than in lib/util because event_signal (a header, used
// by pipeline) spins too. Portable on purpose: std::this_thread::yield is
// sched_yield on Linux, and the pause instruction is a compiler builtin.
#pragma once

#include <chrono>
#include <thread>

namespace coexec::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

/// How long a waiter spins, and how it treats the CPU meanwhile.
struct spin_policy {
    /// Spin at most this long (long enough to catch a hand-off in flight,
    /// short enough that an idle program does not burn a core).
    std::chrono::microseconds budget;
    /// Yield the CPU between bursts of pauses. Needed wherever the thread
    /// that would end the wait may share this core: on a machine with fewer
    /// cores than spinning parties (caller, supervisor, worker), a pure spin
    /// starves the very thread it waits for.
    bool yield;
};

/// Checks of the condition (each followed by one pause) between two clock
/// reads, and between two yields when the policy yields.
inline constexpr int spin_burst = 64;

/// One step of waiting, without a bound, for another thread to finish a
/// short step it has begun (holding a lock bit, leaving a function): a
/// pause, and every spin_burst rounds a yield, since it may have lost its core.
inline void wait_a_little(int round) noexcept {
    if (round % spin_burst == 0) {
        std::this_thread::yield();
    } else {
        cpu_relax();
    }
}

/// The named policies, one per kind of waiter.
namespace spin {
using std::chrono::microseconds;
/// An idle thread_pool worker looking for work. No yield: at most half the
/// cores spin at once (thread_pool caps its spinners), so the others run.
inline constexpr spin_policy pool_worker{microseconds{50}, false};
/// A thread blocked in future::wait/get.
inline constexpr spin_policy future_wait{microseconds{50}, true};
/// A consumer blocked in event_signal::wait (pipeline stages).
inline constexpr spin_policy event_wait{microseconds{50}, false};
/// A process_pool worker waiting for its next message: long enough to cover
/// a caller that submits again right after its previous result.
inline constexpr spin_policy process_worker{microseconds{100}, true};
/// A process_pool supervisor after its last event, before it sleeps in
/// epoll: a caller that submits one task at a time then never pays a wake-up.
inline constexpr spin_policy process_supervisor{microseconds{50}, true};
/// An MPI poller (mpi_pool's progress thread, a worker rank's serve loop)
/// after its last event, before its sleeps start (lib/util/backoff.hpp): long
/// enough for an answer that comes back through a rank's process pool and
/// for a caller's next submit. A poll runs MPI's progress engine, so the
/// poller yields every 8th poll rather than after each.
inline constexpr spin_policy mpi_poll{microseconds{200}, true};
/// A process waiting for a shared primitive's lock (process_mutex,
/// shared_queue), held by another process for the copy of one item.
inline constexpr spin_policy shared_lock{microseconds{20}, true};
}  // namespace spin

/// Spins until `ready()` or `policy`'s budget is spent; returns ready()'s
/// last value.
template <class Pred>
bool spin_until(Pred&& ready, spin_policy policy) noexcept {
    if (ready()) return true;
    const auto deadline = std::chrono::steady_clock::now() + policy.budget;
    for (;;) {
        for (int i = 0; i < spin_burst; ++i) {
            if (ready()) return true;
            cpu_relax();
        }
        if (std::chrono::steady_clock::now() >= deadline) return ready();
        if (policy.yield) std::this_thread::yield();
    }
}

/// One pause of a spin whose check is too costly to repeat a burst's worth
/// of times (the process supervisor polls every worker's channel): half a
/// burst of pauses, then a yield if the policy yields.
inline void spin_pause(spin_policy policy) noexcept {
    for (int i = 0; i < spin_burst / 2; ++i)
        cpu_relax();
    if (policy.yield) std::this_thread::yield();
}

}  // namespace coexec::detail
