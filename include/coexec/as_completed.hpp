// coexec/as_completed.hpp — futures in the order they finish.
//
//   for (future<R> f : as_completed(futures, 5s)) { ... }          // blocking
//   auto stream = as_completed(futures);
//   while (auto f = co_await stream.next()) { ... }                // coroutine
//
// Like Python's concurrent.futures.as_completed: each future is yielded once
// (duplicates are dropped), already finished ones first, cancelled ones count
// as finished. With a timeout, both the blocking iteration and
// `co_await stream.next()` throw timeout_error once the time passes with
// futures left (the coroutine is woken by coexec's timer thread: it holds no
// thread while it waits, and resumes on its own executor, or on the timer
// thread if it runs on none). Futures may come from different executors. A
// map keyed by futures works too (its keys are used).
//
// @par Thread safety
// One consumer per completion_stream.
#pragma once

#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "coexec/detail/completion_queue.hpp"
#include "coexec/detail/future_range.hpp"
#include "coexec/detail/timer_service.hpp"
#include "coexec/errors.hpp"
#include "coexec/future.hpp"
#include "coexec/task.hpp"

namespace coexec {

template <class R>
class completion_stream {
  public:
    explicit completion_stream(std::vector<future<R>> futures,
                               std::optional<std::chrono::steady_clock::time_point> deadline = {})
        : m_remaining(futures.size()), m_deadline(deadline) {
        for (auto& f : futures) {
            auto queue = m_queue;
            detail::add_signal_callback(f, [queue](const future<R>& done) { queue->push(done); });
        }
    }
    completion_stream(completion_stream&& o) noexcept
        : m_queue(o.m_queue),
          m_remaining(o.m_remaining),
          m_deadline(o.m_deadline),
          m_timer(std::exchange(o.m_timer, {})) {}
    completion_stream& operator=(completion_stream&&) = delete;
    ~completion_stream() { detail::cancel_timer(m_timer); }

    /// Futures not yet yielded.
    std::size_t remaining() const noexcept { return m_remaining; }

    /// Blocking: the next finished future, nullopt when all were yielded.
    /// Throws timeout_error if the deadline passes first.
    std::optional<future<R>> next_blocking() {
        if (m_remaining == 0) return std::nullopt;
        const auto* deadline = m_deadline ? &*m_deadline : nullptr;
        auto f = m_queue->pop_until(deadline);
        if (!f) throw_timeout();
        --m_remaining;
        return f;
    }

    /// For coroutines: the next finished future, holding no thread while
    /// waiting. Throws timeout_error if the deadline passes first.
    task<std::optional<future<R>>> next() {
        if (m_remaining == 0) co_return std::nullopt;
        auto queue = m_queue;  // keep the queue alive across the suspension
        if (m_deadline && m_timer.id == 0) {
            // Armed once per stream: at the deadline the queue is marked
            // expired, which wakes this or any later next().
            std::weak_ptr<detail::completion_queue<future<R>>> weak = queue;
            m_timer = detail::schedule_timer(*m_deadline, [weak] {
                if (auto q = weak.lock()) q->expire();
            });
        }
        std::optional<future<R>> f = co_await queue->pop_or_expired();
        if (!f) throw_timeout();
        --m_remaining;
        co_return f;
    }

    class iterator {
      public:
        using iterator_category = std::input_iterator_tag;
        using value_type = future<R>;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        explicit iterator(completion_stream* s) : m_stream(s) { ++*this; }
        const future<R>& operator*() const { return *m_current; }
        iterator& operator++() {
            m_current = m_stream->next_blocking();
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) {
            return !it.m_current;
        }

      private:
        completion_stream* m_stream = nullptr;
        std::optional<future<R>> m_current;
    };
    iterator begin() { return iterator(this); }
    std::default_sentinel_t end() const noexcept { return {}; }

  private:
    [[noreturn]] void throw_timeout() const {
        throw timeout_error("as_completed: " + std::to_string(m_remaining) +
                            " future(s) unfinished when the timeout passed");
    }

    std::shared_ptr<detail::completion_queue<future<R>>> m_queue =
        std::make_shared<detail::completion_queue<future<R>>>();
    std::size_t m_remaining;
    std::optional<std::chrono::steady_clock::time_point> m_deadline;
    detail::timer_handle m_timer;
};

/// Yields the futures of `futures` as they finish.
template <class Range>
auto as_completed(const Range& futures) {
    using R = detail::range_future_value_t<Range>;
    return completion_stream<R>(detail::unique_futures(futures));
}

/// As above; iterating (blocking or awaiting) throws timeout_error after `timeout`.
template <class Range, class Rep, class Period>
auto as_completed(const Range& futures, std::chrono::duration<Rep, Period> timeout) {
    using R = detail::range_future_value_t<Range>;
    return completion_stream<R>(
        detail::unique_futures(futures),
        std::chrono::steady_clock::now() +
            std::chrono::ceil<std::chrono::steady_clock::duration>(timeout));
}

/// `as_completed({f1, f2})`: a braced list of futures of one type.
template <class R>
auto as_completed(std::initializer_list<future<R>> futures) {
    return as_completed(std::vector<future<R>>(futures));
}
template <class R, class Rep, class Period>
auto as_completed(std::initializer_list<future<R>> futures,
                  std::chrono::duration<Rep, Period> timeout) {
    return as_completed(std::vector<future<R>>(futures), timeout);
}

}  // namespace coexec
