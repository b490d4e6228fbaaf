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
#include <cmath>
#include <cstdint>
#include <ratio>
#include <stop_token>
#include <type_traits>
#include <utility>

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
static_assert(std::is_same_v<steady::period, std::nano>);

/// ~73 years of nanoseconds: a duration within it, added to a steady_clock
/// time point (the time since boot), cannot overflow.
inline constexpr std::int64_t exact_limit_ns = std::int64_t{1} << 61;

/// True if `d` is an integer count that converts to nanoseconds exactly
/// (by a multiplication) and within exact_limit_ns.
template <class Rep, class Period>
constexpr bool converts_exactly(std::chrono::duration<Rep, Period> d) noexcept {
    if constexpr (!std::is_integral_v<Rep>) {
        return false;
    } else {
        using to_ns = std::ratio_divide<Period, std::nano>;
        if constexpr (to_ns::den != 1 || to_ns::num > exact_limit_ns) {
            return false;
        } else {
            constexpr std::intmax_t limit = exact_limit_ns / to_ns::num;
            return std::cmp_less_equal(d.count(), limit) &&
                   std::cmp_greater_equal(d.count(), -limit);
        }
    }
}

/// `from + d`, saturated: a duration too long to add (seconds::max()) gives
/// the latest time point, a sleep for ever (as std::this_thread::sleep_for),
/// and one before the clock's epoch gives the epoch, due at once; a NaN is
/// due at once too (sleeping for ever would turn the bug into a hang). The
/// common case is exact integer arithmetic; the rest is decided in long
/// double nanoseconds (a 64-bit mantissa on x86-64: no overflow, no float
/// rounding of the count), with a second of margin near the limit.
template <class Rep, class Period>
steady::time_point deadline_in(steady::time_point from, std::chrono::duration<Rep, Period> d) {
    if (converts_exactly(d)) return from + std::chrono::duration_cast<steady::duration>(d);
    const long double wanted = std::chrono::duration<long double, std::nano>(d).count();
    if (std::isnan(wanted)) return from;
    const auto room = static_cast<long double>((steady::time_point::max() - from).count());
    if (wanted >= room - 1e9L) return steady::time_point::max();
    if (wanted <= -static_cast<long double>(from.time_since_epoch().count()))
        return steady::time_point{};
    return from + steady::duration(static_cast<steady::rep>(std::ceil(wanted)));
}

template <class Clock, class Duration>
steady::time_point to_steady(std::chrono::time_point<Clock, Duration> t) {
    if constexpr (std::is_same_v<Clock, steady> && std::is_same_v<Duration, steady::duration>) {
        return t;
    } else {
        // Other clocks (and coarser durations) are converted once, now, as
        // the time left: exactly when both counts convert exactly (a
        // system_clock time does, until 2043), else in long double.
        const steady::time_point now = steady::now();
        typename Clock::time_point clock_now;
        if constexpr (std::is_same_v<Clock, steady>) {
            clock_now = now;
        } else {
            clock_now = Clock::now();
        }
        const auto at = t.time_since_epoch();
        const auto at_now = clock_now.time_since_epoch();
        if (converts_exactly(at) && converts_exactly(at_now)) {
            return deadline_in(now, std::chrono::duration_cast<steady::duration>(at) -
                                        std::chrono::duration_cast<steady::duration>(at_now));
        }
        using long_nanos = std::chrono::duration<long double, std::nano>;
        return deadline_in(now, long_nanos(at) - long_nanos(at_now));
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
