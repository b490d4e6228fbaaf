// coexec/io/timer.hpp — io::sleep_for / io::sleep_until.
//
// `co_await io::sleep_for(10ms)` suspends the coroutine without holding a
// thread (the worker keeps sleepers in a timer heap and sleeps in the kernel,
// io_uring or epoll, until the earliest is due) and resumes it on a worker of
// the same thread_pool (see io/socket.hpp). Ten thousand sleepers cost ten
// thousand small awaiters in their frames (112 bytes each), nothing else: a
// sleep is cancelled through its job without making a std::stop_source.
//
// @par Cancellation
// By `token` if one is given, else by the stop token of the submitted
// coroutine job that is running (signalled by future::cancel()), and by the
// pool's shutdown(cancel_futures = true) or destruction: the sleep then ends
// early with std::system_error(std::errc::operation_canceled).
//
// @par Errors
// Awaiting outside a thread_pool worker throws coexec::error.
#pragma once

#include <chrono>
#include <cstdint>
#include <stop_token>
#include <type_traits>

#include "coexec/detail/io_op.hpp"

namespace coexec::io {

class sleep_awaitable : public detail::io_awaitable_base<detail::io_op> {
  public:
    void await_resume() const { checked_result(); }

  private:
    friend struct detail::io_factory;
    // named_until: made by sleep_until (errors name that function).
    sleep_awaitable(std::chrono::steady_clock::time_point deadline, bool named_until) noexcept
        : io_awaitable_base(detail::io_opcode::sleep) {
        set_deadline(deadline, named_until);
    }
    sleep_awaitable(std::chrono::steady_clock::time_point deadline, bool named_until,
                    std::stop_token token) noexcept
        : io_awaitable_base(detail::io_opcode::sleep, std::move(token)) {
        set_deadline(deadline, named_until);
    }

    void set_deadline(std::chrono::steady_clock::time_point deadline, bool named_until) noexcept {
        m_op.named_until = named_until;
        // steady_clock is CLOCK_MONOTONIC, which both backends use (absolute).
        m_op.offset =
            std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch())
                .count();
    }
};

namespace detail_timer {
using steady = std::chrono::steady_clock;

/// `from + d`, saturated: a duration too long to add (seconds::max()) gives
/// the latest time point, a sleep for ever (as std::this_thread::sleep_for),
/// and one before the clock's epoch gives the epoch, due at once. Compared
/// in floating point, which cannot overflow; a second of margin covers its
/// rounding near the limit.
template <class Rep, class Period>
steady::time_point deadline_in(steady::time_point from, std::chrono::duration<Rep, Period> d) {
    using seconds = std::chrono::duration<double>;
    const seconds wanted = d;
    if (wanted >= seconds(steady::time_point::max() - from) - std::chrono::seconds(1))
        return steady::time_point::max();
    if (-wanted >= seconds(from.time_since_epoch())) return steady::time_point{};
    return from + std::chrono::ceil<steady::duration>(d);
}

template <class Clock, class Duration>
steady::time_point to_steady(std::chrono::time_point<Clock, Duration> t) {
    if constexpr (std::is_same_v<Clock, steady> && std::is_same_v<Duration, steady::duration>) {
        return t;
    } else {
        // Other clocks (and coarser durations) are converted once, now, as
        // the time left; saturated as above.
        using seconds = std::chrono::duration<double>;
        const steady::time_point now = steady::now();
        typename Clock::time_point clock_now;
        if constexpr (std::is_same_v<Clock, steady>) {
            clock_now = now;
        } else {
            clock_now = Clock::now();
        }
        return deadline_in(now,
                           seconds(t.time_since_epoch()) - seconds(clock_now.time_since_epoch()));
    }
}
}  // namespace detail_timer

/// Resumes after `d` (measured from this call). Zero or negative: at once,
/// still through the reactor. A duration too long for the clock
/// (seconds::max()) sleeps until cancelled.
template <class Rep, class Period>
sleep_awaitable sleep_for(std::chrono::duration<Rep, Period> d) {
    return detail::io_factory::make<sleep_awaitable>(
        detail_timer::deadline_in(std::chrono::steady_clock::now(), d), false);
}
template <class Rep, class Period>
sleep_awaitable sleep_for(std::chrono::duration<Rep, Period> d, std::stop_token token) {
    return detail::io_factory::make<sleep_awaitable>(
        detail_timer::deadline_in(std::chrono::steady_clock::now(), d), false, std::move(token));
}

/// Resumes at `t` (other clocks than steady_clock are converted once, now).
/// A time point past what steady_clock can hold sleeps until cancelled.
template <class Clock, class Duration>
sleep_awaitable sleep_until(std::chrono::time_point<Clock, Duration> t) {
    return detail::io_factory::make<sleep_awaitable>(detail_timer::to_steady(t), true);
}
template <class Clock, class Duration>
sleep_awaitable sleep_until(std::chrono::time_point<Clock, Duration> t, std::stop_token token) {
    return detail::io_factory::make<sleep_awaitable>(detail_timer::to_steady(t), true,
                                                     std::move(token));
}

}  // namespace coexec::io
