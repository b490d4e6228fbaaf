// coexec/inline_executor.hpp — runs each task at once, on the calling thread.
//
// For tests and debugging: the same executor interface with no concurrency,
// so a program's logic can be checked apart from its scheduling. submit()
// returns an already finished future (a coroutine task runs until its first
// suspension on the caller's thread, then wherever it is resumed).
//
// @par Thread safety
// Stateless apart from atomic counters: safe from any thread.
//
// @par Shutdown
// Nothing is ever queued. The executor must outlive the coroutine tasks it
// started (their completion is counted in its stats); its destruction and
// shutdown(cancel_futures = true) signal the stop tokens of those still
// suspended.
#pragma once

#include <atomic>
#include <cstddef>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "coexec/detail/job.hpp"
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
    ~inline_executor() { m_stop.request_stop(); }

    /// Runs `f(args...)` now, on this thread, through the same job runner as
    /// thread_pool (`f(stop_token, args...)` if f takes a stop_token first; a
    /// task<U> coroutine runs until it first suspends). Throws
    /// executor_shutdown after shutdown().
    template <class F, class... Args>
    auto submit(F&& f, Args&&... args)
        -> future<detail::submit_result_t<std::decay_t<F>, std::decay_t<Args>...>> {
        using R = detail::submit_result_t<std::decay_t<F>, std::decay_t<Args>...>;
        if (m_shutdown.load(std::memory_order_acquire)) {
            throw executor_shutdown("inline_executor::submit: the executor has been shut down");
        }
        auto* job = new detail::job<R, std::decay_t<F>, std::decay_t<Args>...>(
            std::forward<F>(f), std::forward<Args>(args)...);
        future<R> result(static_cast<detail::shared_state<R>*>(job));
        m_counters.on_submitted();
        job->execute(*this);
        return result;
    }

    template <class F, class Range>
    auto map(F&& f, Range&& inputs, map_options options = {}) {
        return detail::make_results(*this, std::forward<F>(f), std::forward<Range>(inputs),
                                    std::move(options));
    }

    /// Stops accepting work; `cancel_futures` signals stop tokens (see above).
    void shutdown(bool /*wait*/ = true, bool cancel_futures = false) noexcept {
        m_shutdown.store(true, std::memory_order_release);
        if (cancel_futures) m_stop.request_stop();
    }
    /// shutdown(wait = false, cancel_futures = true): nothing runs here but
    /// on the submitting thread, so there is nothing else to stop.
    void terminate_workers() noexcept { shutdown(false, true); }
    std::size_t max_workers() const noexcept { return 1; }
    executor_stats stats() const noexcept {
        executor_stats s = m_counters.snapshot();
        s.workers_alive = 1;
        return s;
    }

  private:
    // ---- the job runner's host (detail/job.hpp) ----
    template <class, class, class...>
    friend class detail::job;
    detail::job_counters& counters() noexcept { return m_counters; }
    std::stop_token stop_token() const noexcept { return m_stop.get_token(); }
    void coroutine_started() noexcept {}
    void coroutine_ended() noexcept {}
    void job_ended() noexcept {}

    std::atomic<bool> m_shutdown{false};
    std::stop_source m_stop;
    detail::job_counters m_counters;
};

}  // namespace coexec
