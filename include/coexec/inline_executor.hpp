// coexec/inline_executor.hpp — runs each task at once, on the calling thread.
//
// For tests and debugging: the same executor interface with no concurrency,
// so a program's logic can be checked apart from its scheduling. submit()
// returns an already finished future (a coroutine task runs until its first
// suspension on the caller's thread, then wherever it is resumed).
//
// @par Thread safety
// Stateless apart from atomic counters: safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <tuple>
#include <type_traits>
#include <utility>

#include "coexec/detail/invoke.hpp"
#include "coexec/errors.hpp"
#include "coexec/executor.hpp"
#include "coexec/future.hpp"
#include "coexec/results.hpp"

namespace coexec {

class inline_executor {
  public:
    inline_executor() = default;
    inline_executor(const inline_executor&) = delete;
    inline_executor& operator=(const inline_executor&) = delete;

    template <class F, class... Args>
    auto submit(F&& f, Args&&... args)
        -> future<detail::submit_result_t<std::decay_t<F>&, std::decay_t<Args>&...>> {
        using R = detail::submit_result_t<std::decay_t<F>&, std::decay_t<Args>&...>;
        if (m_shutdown.load(std::memory_order_acquire)) {
            throw executor_shutdown("inline_executor::submit: the executor has been shut down");
        }
        m_submitted.fetch_add(1, std::memory_order_relaxed);
        auto* state = new detail::shared_state<R>();
        future<R> result(state);
        std::decay_t<F> fn(std::forward<F>(f));
        std::tuple<std::decay_t<Args>...> call_args(std::forward<Args>(args)...);
        state->try_start();
        using call_type = detail::call_result_t<std::decay_t<F>&, std::decay_t<Args>&...>;
        try {
            if constexpr (is_task_v<call_type>) {
                detail::drive_task_into<R>(detail::call_with(fn, call_args, std::stop_token{}),
                                           state, hooks<R>{this});
                return result;
            } else if constexpr (std::is_void_v<R>) {
                detail::call_with(fn, call_args, std::stop_token{});
                count(detail::status::has_value);
                state->set_value();
            } else {
                R value = detail::call_with(fn, call_args, std::stop_token{});
                count(detail::status::has_value);
                state->set_value(std::move(value));
            }
        } catch (...) {
            count(detail::status::has_exception);
            state->set_exception(std::current_exception());
        }
        state->release();
        return result;
    }

    template <class F, class Range>
    auto map(F&& f, Range&& inputs, map_options options = {}) {
        return detail::make_results(*this, std::forward<F>(f), std::forward<Range>(inputs),
                                    std::move(options));
    }

    void shutdown(bool /*wait*/ = true, bool /*cancel_futures*/ = false) noexcept {
        m_shutdown.store(true, std::memory_order_release);
    }
    std::size_t max_workers() const noexcept { return 1; }
    executor_stats stats() const noexcept {
        executor_stats s;
        s.submitted = m_submitted.load(std::memory_order_relaxed);
        s.completed = m_completed.load(std::memory_order_relaxed);
        s.failed = m_failed.load(std::memory_order_relaxed);
        s.workers_alive = 1;
        return s;
    }

  private:
    // At class scope, not local to submit: GCC rejects coroutine frames that
    // hold local types of templates instantiated with lambdas.
    template <class R>
    struct hooks {
        inline_executor* self;
        void before(detail::status s) const noexcept { self->count(s); }
        void after(detail::shared_state<R>* st) const noexcept { st->release(); }
    };

    void count(detail::status s) noexcept {
        (s == detail::status::has_value ? m_completed : m_failed)
            .fetch_add(1, std::memory_order_relaxed);
    }

    std::atomic<bool> m_shutdown{false};
    std::atomic<std::uint64_t> m_submitted{0};
    std::atomic<std::uint64_t> m_completed{0};
    std::atomic<std::uint64_t> m_failed{0};
};

}  // namespace coexec
