// coexec/thread_pool.hpp — the executor for I/O-bound and blocking work.
//
// Python's ThreadPoolExecutor, with coroutines: a submitted callable may
// block (it holds a worker while it does), or be a coroutine returning
// task<U> that awaits futures or I/O (it holds no thread while suspended).
//
// Workers keep per-worker queues and steal from each other; submissions from
// other threads go through one shared inbox. Idle workers spin briefly, then
// sleep in the kernel, in their own I/O reactor (an io_uring ring, or epoll
// where io_uring is refused): one wait covers new work and the completions
// of the coexec::io operations (coexec/io.hpp) their coroutines started.
//
// @par Thread safety
// Every member may be called from any thread, including from tasks running
// on the pool (except waiting shutdown, which does not wait when called from
// one of its own workers).
//
// @par Shutdown
// `shutdown(wait = true)` lets queued work finish; `cancel_futures = true`
// cancels everything still queued and signals running tasks' stop tokens.
// Submitting afterwards throws executor_shutdown. The destructor signals stop
// tokens and then waits for all work, including suspended coroutines.
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

#include "coexec/detail/invoke.hpp"
#include "coexec/detail/io_op.hpp"
#include "coexec/detail/thread_pool_core.hpp"
#include "coexec/executor.hpp"
#include "coexec/future.hpp"
#include "coexec/results.hpp"

namespace coexec {

namespace detail {

/// Forwards the pool's stop request to one job's stop source.
struct stop_forwarder {
    shared_state_base* job;
    void operator()() const noexcept { job->request_stop(); }
};

/// Bookkeeping of a coroutine job, kept in its driver's frame. (At namespace
/// scope, not local to pool_job: GCC rejects frames holding local types of
/// templates instantiated with lambdas, -Wsubobject-linkage.)
template <class R>
struct pool_job_finisher {
    thread_pool_core* core;
    std::unique_ptr<std::stop_callback<stop_forwarder>> link;
    void before(status final) const noexcept { core->on_job_finished(final); }
    void after(shared_state<R>* s) noexcept {
        link.reset();  // as in run_job: no stop callback may outlive the job
        s->release();
        core->on_coroutine_finished();
    }
};

/// A submitted call: its shared state and its queue node in one allocation.
template <class R, class F, class... Args>
class pool_job final : public shared_state<R>, public work_item {
  public:
    template <class FF, class... AA>
    pool_job(thread_pool_core& core, FF&& f, AA&&... args)
        : m_core(core), m_fn(std::forward<FF>(f)), m_args(std::forward<AA>(args)...) {
        this->run = &pool_job::run_job;
        this->discard = &pool_job::discard_job;
        // Coroutine jobs always get a token: future::cancel() signals it and
        // the coexec::io awaitables they start use it (docs/api-io.md).
        if constexpr (takes_stop_token_v<F&, Args&...> || is_task_v<call_type>) this->enable_stop();
    }

  private:
    using call_type = call_result_t<F&, Args&...>;

    static void discard_job(work_item* w, std::exception_ptr reason) noexcept {
        auto* job = static_cast<pool_job*>(w);
        job->m_core.on_job_dequeued();
        job->m_core.on_job_finished(reason ? status::has_exception : status::cancelled);
        if (reason) {
            job->set_exception(std::move(reason));
        } else {
            job->set_cancelled();
        }
        job->release();
    }

    static void run_job(work_item* w) noexcept {
        auto* job = static_cast<pool_job*>(w);
        thread_pool_core& core = job->m_core;
        core.on_job_dequeued();
        if (!job->try_start()) {  // cancelled while queued
            core.on_job_finished(status::cancelled);
            job->release();
            return;
        }
        if constexpr (is_task_v<call_type>) {
            // While the job's frames run here, io awaitables find its stop
            // token through this thread-local (the reactor and schedule()
            // carry it across the resumptions they perform).
            shared_state_base* previous = exchange_current_io_job(job);
            job->start_coroutine();  // may finish and free the job: do not touch it after
            exchange_current_io_job(previous);
        } else {
            std::optional<std::stop_callback<stop_forwarder>> link;
            if constexpr (takes_stop_token_v<F&, Args&...>)
                link.emplace(core.stop_token(), stop_forwarder{job});
            // Counters are updated before the result is published, so a caller
            // woken by the future sees stats that include its task.
            try {
                if constexpr (std::is_void_v<R>) {
                    call_with(job->m_fn, job->m_args, job->stop_token());
                    core.on_job_finished(status::has_value);
                    job->set_value();
                } else {
                    R value = call_with(job->m_fn, job->m_args, job->stop_token());
                    core.on_job_finished(status::has_value);
                    job->set_value(std::move(value));
                }
            } catch (...) {
                core.on_job_finished(status::has_exception);
                job->set_exception(std::current_exception());
            }
            // Unlink first: the pool's stop callback may be running on another
            // thread; reset() waits for it, so it never touches a freed job.
            link.reset();
            job->release();
        }
    }

    void start_coroutine() noexcept {
        m_core.on_coroutine_started();
        using finisher = pool_job_finisher<R>;
        finisher done{&m_core, nullptr};
        try {
            if constexpr (takes_stop_token_v<F&, Args&...>) {
                done.link = std::make_unique<std::stop_callback<stop_forwarder>>(
                    m_core.stop_token(), stop_forwarder{this});
            }
            auto t = call_with(m_fn, m_args, this->stop_token());
            drive_task_into<R>(std::move(t), this, std::move(done));
        } catch (...) {  // the call itself threw before producing a coroutine
            done.before(status::has_exception);
            this->set_exception(std::current_exception());
            done.after(this);
        }
    }

    thread_pool_core& m_core;
    F m_fn;
    std::tuple<Args...> m_args;
};

}  // namespace detail

class thread_pool {
  public:
    /// Starts the workers (default: min(32, cores + 4) of them).
    thread_pool() : thread_pool(thread_pool_options{}) {}
    explicit thread_pool(thread_pool_options options)
        : m_core(std::make_unique<detail::thread_pool_core>(std::move(options))) {}
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;
    /// shutdown(wait = true), after signalling running tasks' stop tokens.
    ~thread_pool() = default;

    /// Runs `f(args...)` on a worker (`f(stop_token, args...)` if f takes a
    /// stop_token first). If f returns task<U>, the coroutine runs on the pool
    /// and the future holds U. Allocates one block (state + queue node).
    /// Throws executor_shutdown after shutdown().
    template <class F, class... Args>
    auto submit(F&& f, Args&&... args)
        -> future<detail::submit_result_t<std::decay_t<F>&, std::decay_t<Args>&...>> {
        using R = detail::submit_result_t<std::decay_t<F>&, std::decay_t<Args>&...>;
        using job_type = detail::pool_job<R, std::decay_t<F>, std::decay_t<Args>...>;
        auto* job = new job_type(*m_core, std::forward<F>(f), std::forward<Args>(args)...);
        future<R> result(static_cast<detail::shared_state<R>*>(job));  // second reference
        try {
            m_core->submit_job(job);
        } catch (...) {
            job->release();  // the queue's reference; `result` dies with the throw
            throw;
        }
        return result;
    }

    /// Applies `f` to each input; lazily, in chunks, with bounded look-ahead.
    /// See results<R> and map_options.
    template <class F, class Range>
    auto map(F&& f, Range&& inputs, map_options options = {}) {
        return detail::make_results(*this, std::forward<F>(f), std::forward<Range>(inputs),
                                    std::move(options));
    }

    /// Awaitable that moves the awaiting coroutine onto a worker. The awaiter
    /// is the queue node: scheduling allocates nothing. A coroutine job keeps
    /// its stop token for io awaitables across the hop.
    auto schedule() noexcept {
        struct awaiter : detail::resume_item {
            detail::thread_pool_core* core;
            bool await_ready() const noexcept { return false; }
            void await_suspend(std::coroutine_handle<> h) noexcept {
                suspend(h);  // remembers the job, restored when a worker resumes us
                core->post(this);
            }
            void await_resume() const noexcept {}
        };
        awaiter a;
        a.core = m_core.get();
        return a;
    }

    void shutdown(bool wait = true, bool cancel_futures = false) {
        m_core->shutdown(wait, cancel_futures);
    }
    std::size_t max_workers() const noexcept { return m_core->max_workers(); }
    executor_stats stats() const noexcept { return m_core->stats(); }
    /// True if the calling thread is one of this pool's workers.
    bool running_in_this_thread() const noexcept { return m_core->on_worker_thread(); }

  private:
    std::unique_ptr<detail::thread_pool_core> m_core;
};

}  // namespace coexec
