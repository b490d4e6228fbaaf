// detail/timer_service.hpp — deadlines for awaiters that may run anywhere.
//
// A coroutine waiting with a timeout (as_completed's stream, map's results)
// may run on a thread_pool worker, an asio_executor, a sync_wait loop or no
// executor at all, so it cannot count on a reactor to wake it. One process-wide
// timer thread does: it is started on first use, sleeps until the earliest
// deadline, and calls the callbacks due. A callback must be short and must not
// block (it typically resumes a coroutine through its home executor).
//
// Thread-safe. In a child forked from a process that used timers, the first
// use starts a fresh timer thread (the parent's does not exist there).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace coexec::detail {

/// Names one scheduled callback, for cancel_timer().
struct timer_handle {
    std::chrono::steady_clock::time_point deadline{};
    std::uint64_t id = 0;
};

/// Calls `fn()` once, on the timer thread, at `deadline` (at once if it has
/// passed). Throws std::system_error if the timer thread cannot be started.
timer_handle schedule_timer(std::chrono::steady_clock::time_point deadline,
                            std::function<void()> fn);

/// Drops the callback if it has not started; true if it was dropped. A
/// callback already running is not waited for.
bool cancel_timer(const timer_handle& handle) noexcept;

}  // namespace coexec::detail
