// detail/asio_interop/asio_executor.hpp — asio_executor, written once for
// standalone Asio and Boost.Asio.
//
// basic_asio_executor<Net, AsioExecutor> is the whole executor; `Net` is a
// library description (detail/asio_interop/standalone.hpp or boost.hpp) whose
// static members forward to that library's post() and make_work_guard(). The
// public class templates (coexec::asio_executor, coexec::boost_asio::
// asio_executor) derive from it and add nothing but their name. The public
// headers document the behaviour.
#pragma once

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

namespace coexec::detail::asio_interop {

template <class Net, class AsioExecutor>
class basic_asio_executor : private detail::resumer {
  public:
    explicit basic_asio_executor(AsioExecutor ex) : m_ex(std::move(ex)) {}
    basic_asio_executor(const basic_asio_executor&) = delete;
    basic_asio_executor& operator=(const basic_asio_executor&) = delete;
    /// Signals running tasks' stop tokens, then shutdown(wait = true).
    ~basic_asio_executor() {
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
        Net::post(m_ex, [this, job] {
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
    auto coroutine_started() noexcept { return Net::make_work_guard(m_ex); }
    void job_ended() noexcept {
        if (m_outstanding.fetch_sub(1, std::memory_order_acq_rel) == 1) m_outstanding.notify_all();
    }

    void post(detail::work_item* item) noexcept override {
        Net::post(m_ex, [item] { item->run(item); });
    }

    AsioExecutor m_ex;
    std::atomic<bool> m_shutdown{false};
    std::atomic<std::uint64_t> m_outstanding{0};
    std::stop_source m_stop;
    detail::job_counters m_counters;
};

}  // namespace coexec::detail::asio_interop
