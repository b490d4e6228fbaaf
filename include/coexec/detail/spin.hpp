// detail/spin.hpp — the one policy for spinning before a thread sleeps.
//
// Measured on these VMs: a hand-off costs 2–5 µs while the receiver still
// spins and 30–40 µs once it sleeps in a futex or eventfd. So every waiter
// spins for a short, bounded time (with `pause`, to be kind to the sibling
// hyperthread) before it sleeps. Waiters differ only in the budget and in
// whether, and how often, they yield the CPU: those are the named policies
// below, so the trade-offs are read (and tuned) in one place.
//
// It lives here rather than in lib/util because event_signal (a header, used
// by pipeline) spins too. Portable on purpose: std::this_thread::yield is
// sched_yield on Linux, and the pause instruction is a compiler builtin.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>

namespace coexec::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

/// Checks of the condition (each followed by one pause) between two clock
/// reads, and between two yields unless the policy yields more often.
inline constexpr int spin_burst = 64;

/// Whether a waiter gives its core away while it spins. Yielding is needed
/// wherever the thread that would end the wait may share this core: on a
/// machine with fewer cores than spinning parties, a pure spin starves the
/// very thread it waits for, and every pause before the yield is added to
/// the hand-off. (A pause is ~25 ns on the AMD hosts, ~40 on Intel; a yield
/// ~0.5 µs.)
enum class yielding : std::uint8_t {
    never,        ///< pure spin
    every_burst,  ///< a yield after each spin_burst pauses
    /// a yield after each short_burst pauses on a machine with fewer than 4
    /// usable CPUs (crowded()), else after each spin_burst: for the process
    /// pool's caller, worker and supervisor, three spinning parties
    often_if_crowded,
};

/// Pauses between yields of yielding::often_if_crowded on a crowded machine.
/// Measured on 2 cores with the floor of bench/process_pool/round_trip.cpp
/// (three parties relaying a counter), its bursts varied: p50 8.0 µs with
/// 64 pauses per yield, 5.3 µs with 16, 4.6 µs with 4. With each party on
/// its own core the short bursts would cost instead (two parties: 0.8 µs
/// with 4 pauses per yield, 0.14 µs with 64).
inline constexpr int short_burst = 4;

/// Fewer than 4 usable CPUs (this process's affinity mask): the process
/// pool's three spinning parties cannot each have a core. Read once
/// (lib/core/spin.cpp).
bool crowded() noexcept;

/// How long a waiter spins, and how it treats the CPU meanwhile.
struct spin_policy {
    /// Spin at most this long (long enough to catch a hand-off in flight,
    /// short enough that an idle program does not burn a core).
    std::chrono::microseconds budget;
    yielding yields;
};

/// Pauses between two yields (or clock reads, for a policy that never yields).
inline int pauses_between_yields(spin_policy policy) noexcept {
    return policy.yields == yielding::often_if_crowded && crowded() ? short_burst : spin_burst;
}

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
/// (Yielding every burst cut the tail of process-pool results awaited from
/// a pool worker, p99 ~75 → ~20 µs, but gave thread_pool round trips an
/// occasional p99 of 6–13 µs instead of 0.5–0.6.)
inline constexpr spin_policy pool_worker{microseconds{50}, yielding::never};
/// A thread blocked in future::wait/get. Its completer may share its core
/// (a process pool's supervisor and worker: two parties for two cores with
/// this waiter), and then runs only when the waiter yields.
inline constexpr spin_policy future_wait{microseconds{50}, yielding::often_if_crowded};
/// The same for a thread whose recent waits were short (see
/// lib/core/shared_state.cpp): its completer runs on another core, and a
/// yield would only delay seeing the result (yielding every 4 pauses here
/// measured thread_pool round trips at p99 1.1–1.4 µs instead of 0.5).
inline constexpr spin_policy future_wait_quick{microseconds{50}, yielding::every_burst};
/// A consumer blocked in event_signal::wait (pipeline stages).
inline constexpr spin_policy event_wait{microseconds{50}, yielding::never};
/// A process_pool worker waiting for its next message: long enough to cover
/// a caller that submits again right after its previous result.
inline constexpr spin_policy process_worker{microseconds{100}, yielding::often_if_crowded};
/// A process_pool supervisor after its last event, before it sleeps in
/// epoll: a caller that submits one task at a time then never pays a wake-up.
inline constexpr spin_policy process_supervisor{microseconds{50}, yielding::often_if_crowded};
/// An MPI poller (mpi_pool's progress thread, a worker rank's serve loop)
/// after its last event, before its sleeps start (lib/util/backoff.hpp): long
/// enough for an answer that comes back through a rank's process pool and
/// for a caller's next submit. A poll runs MPI's progress engine, so the
/// poller yields every 8th poll (backoff.hpp) rather than by pauses.
inline constexpr spin_policy mpi_poll{microseconds{200}, yielding::every_burst};
/// A process waiting for a shared primitive's lock (process_mutex,
/// shared_queue), held by another process for the copy of one item.
inline constexpr spin_policy shared_lock{microseconds{20}, yielding::every_burst};
}  // namespace spin

/// Spins until `ready()` or `policy`'s budget is spent; returns ready()'s
/// last value.
template <class Pred>
bool spin_until(Pred&& ready, spin_policy policy) noexcept {
    if (ready()) return true;
    const auto deadline = std::chrono::steady_clock::now() + policy.budget;
    const int burst = pauses_between_yields(policy);
    for (;;) {
        for (int i = 0; i < burst; ++i) {
            if (ready()) return true;
            cpu_relax();
        }
        if (std::chrono::steady_clock::now() >= deadline) return ready();
        if (policy.yields != yielding::never) std::this_thread::yield();
    }
}

/// One pause of a spin whose check is too costly to repeat a burst's worth
/// of times (the process supervisor polls every worker's channel): half a
/// burst of pauses (a short burst where the policy yields often on a
/// crowded machine), then a yield if the policy yields.
inline void spin_pause(spin_policy policy) noexcept {
    const int pauses = std::min(pauses_between_yields(policy), spin_burst / 2);
    for (int i = 0; i < pauses; ++i)
        cpu_relax();
    if (policy.yields != yielding::never) std::this_thread::yield();
}

}  // namespace coexec::detail
