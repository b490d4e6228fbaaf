// coexec/asio/asio_executor.hpp — an Asio executor seen as a coexec executor.
//
//   asio::io_context io;
//   coexec::asio_executor ex{io.get_executor()};
//   auto f = ex.submit(parse, request);        // runs inside io.run()
//
// Code written against coexec::executor (submit/map/shutdown/stats) runs on
// an io_context, a strand or an asio::thread_pool unchanged. Coroutines
// submitted here (callables returning task<U>) resume on the Asio executor
// after awaiting coexec futures (sticky resumption).
//
// @par Thread safety
// All members are thread-safe. The asio_executor must outlive the work it
// was given; shutdown(wait = true) blocks until that work is done, so it
// must not be called from the executor's own thread while work is pending.
#pragma once

#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "coexec/detail/job.hpp"
#include "coexec/detail/work_item.hpp"
#include "coexec/errors.hpp"
#include "coexec/executor.hpp"
#include "coexec/future.hpp"
#include "coexec/results.hpp"

namespace coexec {

template <class AsioExecutor>
class asio_executor final : private detail::resumer {
  public:
    explicit asio_executor(AsioExecutor ex) : m_ex(std::move(ex)) {}
    asio_executor(const asio_executor&) = delete;
    asio_executor& operator=(const asio_executor&) = delete;
    /// Signals running tasks' stop tokens, then shutdown(wait = true).
    ~asio_executor() {
        m_stop.request_stop();
        shutdown(true);
    }

    const AsioExecutor& get_executor() const noexcept { return m_ex; }

    /// Posts `f(args...)` to the Asio executor, run there by the same job
    /// runner as thread_pool (`f(stop_token, args...)` if f takes a stop_token
    /// first). Throws executor_shutdown after shutdown().
    template <class F, class... Args>
    auto submit(F&& f, Args&&... args)
        -> future<detail::submit_result_t<std::decay_t<F>&, std::decay_t<Args>&...>> {
        using R = detail::submit_result_t<std::decay_t<F>&, std::decay_t<Args>&...>;
        if (m_shutdown.load(std::memory_order_acquire)) {
            throw executor_shutdown("asio_executor::submit: the executor has been shut down");
        }
        auto* job = new detail::job<R, std::decay_t<F>, std::decay_t<Args>...>(
            std::forward<F>(f), std::forward<Args>(args)...);
        future<R> result(static_cast<detail::shared_state<R>*>(job));
        m_counters.on_submitted();
        m_outstanding.fetch_add(1, std::memory_order_acq_rel);
        ::asio::post(m_ex, [this, job] {
            // Coroutines awaiting coexec futures here come back here (sticky).
            detail::resumer_scope here(this);
            job->execute(*this);
        });
        return result;
    }

    template <class F, class Range>
    auto map(F&& f, Range&& inputs, map_options options = {}) {
        return detail::make_results(*this, std::forward<F>(f), std::forward<Range>(inputs),
                                    std::move(options));
    }

    /// Stops accepting work; with `wait`, blocks until submitted work is done.
    /// (Asio has no queue coexec can cancel, so `cancel_futures` cancels
    /// nothing that is already posted: those tasks see their futures cancelled
    /// only if the caller cancelled them. It does signal the stop tokens of
    /// tasks that take one.)
    void shutdown(bool wait = true, bool cancel_futures = false) {
        m_shutdown.store(true, std::memory_order_release);
        if (cancel_futures) m_stop.request_stop();
        if (!wait) return;
        for (auto n = m_outstanding.load(std::memory_order_acquire); n != 0;
             n = m_outstanding.load(std::memory_order_acquire)) {
            m_outstanding.wait(n, std::memory_order_acquire);
        }
    }

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
    template <class, class>
    friend struct detail::coroutine_finisher;
    detail::job_counters& counters() noexcept { return m_counters; }
    std::stop_token stop_token() const noexcept { return m_stop.get_token(); }
    /// Keeps run() going while a coroutine job is suspended on other
    /// executors: its resumption is posted back here.
    auto coroutine_started() noexcept { return ::asio::make_work_guard(m_ex); }
    void job_ended() noexcept {
        if (m_outstanding.fetch_sub(1, std::memory_order_acq_rel) == 1) m_outstanding.notify_all();
    }

    void post(detail::work_item* item) noexcept override {
        ::asio::post(m_ex, [item] { item->run(item); });
    }

    AsioExecutor m_ex;
    std::atomic<bool> m_shutdown{false};
    std::atomic<std::uint64_t> m_outstanding{0};
    std::stop_source m_stop;
    detail::job_counters m_counters;
};

/// An io_context's executor (or any other) as a coexec executor; deduces the type.
template <class AsioExecutor>
asio_executor(AsioExecutor) -> asio_executor<AsioExecutor>;

}  // namespace coexec
