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
template <class Clock, class Duration>
std::chrono::steady_clock::time_point to_steady(std::chrono::time_point<Clock, Duration> t) {
    if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
        return std::chrono::time_point_cast<std::chrono::steady_clock::duration>(t);
    } else {
        return std::chrono::steady_clock::now() +
               std::chrono::duration_cast<std::chrono::steady_clock::duration>(t - Clock::now());
    }
}
}  // namespace detail_timer

/// Resumes after `d` (measured from this call). Zero or negative: at once,
/// still through the reactor.
template <class Rep, class Period>
sleep_awaitable sleep_for(std::chrono::duration<Rep, Period> d) {
    return detail::io_factory::make<sleep_awaitable>(
        std::chrono::steady_clock::now() +
            std::chrono::ceil<std::chrono::steady_clock::duration>(d),
        false);
}
template <class Rep, class Period>
sleep_awaitable sleep_for(std::chrono::duration<Rep, Period> d, std::stop_token token) {
    return detail::io_factory::make<sleep_awaitable>(
        std::chrono::steady_clock::now() +
            std::chrono::ceil<std::chrono::steady_clock::duration>(d),
        false, std::move(token));
}

/// Resumes at `t` (other clocks than steady_clock are converted once, now).
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
