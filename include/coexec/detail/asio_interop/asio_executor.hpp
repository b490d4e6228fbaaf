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
#include <memory>
#include <mutex>
#include <optional>
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

/// What the jobs of an asio_executor use (the job runner's host, the
/// resumer its coroutines come back to), shared by the executor and its
/// running jobs so that a job can end after its executor was destroyed.
template <class Net, class AsioExecutor>
class asio_executor_core final
    : public resumer,
      public std::enable_shared_from_this<asio_executor_core<Net, AsioExecutor>> {
  public:
    explicit asio_executor_core(AsioExecutor ex) : m_ex(std::move(ex)) {}

    /// Posts `job` and counts it until it ends.
    template <class Job>
    void start(Job* job) {
        m_counters.on_submitted();
        m_outstanding.fetch_add(1, std::memory_order_acq_rel);
        try {
            Net::post(m_ex, [self = this->shared_from_this(), job] {
                // Coroutines awaiting coexec futures here come back here (sticky).
                resumer_scope here(self.get());
                running_here mark(self.get());
                job->execute(*self);
            });
        } catch (...) {
            job_ended();
            throw;
        }
    }

    /// Blocks until every job has ended except those running on this thread
    /// (whose frames are below the caller: waiting for them never ends).
    void wait_for_jobs() noexcept {
        const std::uint64_t mine = running_here::count(this);
        for (auto n = m_outstanding.load(std::memory_order_acquire); n > mine;
             n = m_outstanding.load(std::memory_order_acquire)) {
            m_outstanding.wait(n, std::memory_order_acquire);
        }
    }

    const AsioExecutor& executor() const noexcept { return m_ex; }
    std::stop_source& stop_source() noexcept { return m_stop; }

    // ---- the job runner's host (detail/job.hpp) ----
    job_counters& counters() noexcept { return m_counters; }
    std::stop_token stop_token() const noexcept { return m_stop.get_token(); }
    /// While coroutine jobs are in flight, one work guard keeps run() going
    /// (a suspended job's resumption is posted back here) and the core keeps
    /// itself alive (a job may end after its executor was destroyed). The end
    /// may be counted before the start (detail/job.hpp): the counter wraps
    /// and comes back, and the starter's handler holds the core meanwhile.
    void coroutine_started() noexcept {
        std::lock_guard lock(m_lease_mutex);
        if (m_coroutines++ != 0) return;
        m_work.emplace(Net::make_work_guard(m_ex));
        m_self = this->shared_from_this();
    }
    void coroutine_ended() noexcept {
        std::unique_lock lock(m_lease_mutex);
        if (--m_coroutines != 0) return;
        std::shared_ptr<asio_executor_core> self = std::move(m_self);  // destroyed last
        std::optional<work_guard> work = std::move(m_work);
        m_work.reset();
        lock.unlock();  // `self` may be the last owner of the mutex
    }
    void job_ended() noexcept {
        if (m_outstanding.fetch_sub(1, std::memory_order_acq_rel) == 1) m_outstanding.notify_all();
    }

    void post(work_item* item) noexcept override {
        Net::post(m_ex, [self = this->shared_from_this(), item] {
            resumer_scope here(self.get());
            running_here mark(self.get());
            item->run();
        });
    }

  private:
    /// The cores whose jobs run on this thread now, innermost first (a job
    /// may complete a future that runs another executor's handler inline).
    class running_here {
      public:
        explicit running_here(const void* core) noexcept : m_core(core), m_outer(t_top) {
            t_top = this;
        }
        running_here(const running_here&) = delete;
        running_here& operator=(const running_here&) = delete;
        ~running_here() { t_top = m_outer; }
        static std::uint64_t count(const void* core) noexcept {
            std::uint64_t n = 0;
            for (const running_here* r = t_top; r != nullptr; r = r->m_outer)
                n += r->m_core == core ? 1 : 0;
            return n;
        }

      private:
        static inline thread_local const running_here* t_top = nullptr;
        const void* m_core;
        const running_here* m_outer;
    };

    using work_guard = decltype(Net::make_work_guard(std::declval<AsioExecutor&>()));

    AsioExecutor m_ex;
    std::atomic<std::uint64_t> m_outstanding{0};
    std::mutex m_lease_mutex;
    std::uint64_t m_coroutines = 0;
    std::optional<work_guard> m_work;
    std::shared_ptr<asio_executor_core> m_self;
    std::stop_source m_stop;
    job_counters m_counters;
};

template <class Net, class AsioExecutor>
class basic_asio_executor {
  public:
    explicit basic_asio_executor(AsioExecutor ex)
        : m_core(std::make_shared<asio_executor_core<Net, AsioExecutor>>(std::move(ex))) {}
    basic_asio_executor(const basic_asio_executor&) = delete;
    basic_asio_executor& operator=(const basic_asio_executor&) = delete;
    /// Signals running tasks' stop tokens, then shutdown(wait = true).
    ~basic_asio_executor() {
        m_core->stop_source().request_stop();
        shutdown(true);
    }

    const AsioExecutor& get_executor() const noexcept { return m_core->executor(); }

    /// Posts `f(args...)` to the Asio executor, run there by the same job
    /// runner as thread_pool (`f(stop_token, args...)` if f takes a stop_token
    /// first). Throws executor_shutdown after shutdown().
    template <class F, class... Args>
    auto submit(F&& f, Args&&... args)
        -> future<detail::submit_result_t<std::decay_t<F>, std::decay_t<Args>...>> {
        using R = detail::submit_result_t<std::decay_t<F>, std::decay_t<Args>...>;
        if (m_shutdown.load(std::memory_order_acquire)) {
            throw executor_shutdown("asio_executor::submit: the executor has been shut down");
        }
        auto* job = new detail::job<R, std::decay_t<F>, std::decay_t<Args>...>(
            std::forward<F>(f), std::forward<Args>(args)...);
        future<R> result(static_cast<detail::shared_state<R>*>(job));
        try {
            m_core->start(job);
        } catch (...) {
            job->release();  // the runner's reference; `result` dies with the throw
            throw;
        }
        return result;
    }

    template <class F, class Range>
    auto map(F&& f, Range&& inputs, map_options options = {}) {
        return detail::make_results(*this, std::forward<F>(f), std::forward<Range>(inputs),
                                    std::move(options));
    }

    /// Stops accepting work; with `wait`, blocks until submitted work is done
    /// (but for the jobs running on the calling thread, see above).
    /// (Asio has no queue coexec can cancel, so `cancel_futures` cancels
    /// nothing that is already posted: those tasks see their futures cancelled
    /// only if the caller cancelled them. It does signal the stop tokens of
    /// tasks that take one.)
    void shutdown(bool wait = true, bool cancel_futures = false) {
        m_shutdown.store(true, std::memory_order_release);
        if (cancel_futures) m_core->stop_source().request_stop();
        if (wait) m_core->wait_for_jobs();
    }
    /// shutdown(wait = false, cancel_futures = true): Asio's threads are the
    /// program's, so this stops accepting work and signals stop tokens.
    void terminate_workers() { shutdown(false, true); }

    std::size_t max_workers() const noexcept { return 1; }

    executor_stats stats() const noexcept {
        executor_stats s = m_core->counters().snapshot();
        s.workers_alive = 1;
        return s;
    }

  private:
    std::shared_ptr<asio_executor_core<Net, AsioExecutor>> m_core;
    std::atomic<bool> m_shutdown{false};
};

}  // namespace coexec::detail::asio_interop
