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

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include "coexec/detail/job.hpp"
#include "coexec/detail/job_memory.hpp"
#include "coexec/detail/task_deadline.hpp"
#include "coexec/detail/thread_pool_core.hpp"
#include "coexec/executor.hpp"
#include "coexec/future.hpp"
#include "coexec/results.hpp"
#include "coexec/submit_options.hpp"

namespace coexec {

/// Options of thread_pool; fields in the order docs/api.md lists them.
struct thread_pool_options {
    /// Worker threads; 0 = min(32, cores + 4), as Python's ThreadPoolExecutor.
    std::size_t max_workers = 0;
    /// Worker threads are named "<prefix>-<index>" (truncated to 15 bytes).
    std::string thread_name_prefix = "coexec";
    /// Runs once on every worker thread before it takes work. If it throws,
    /// the pool is broken: queued and later work fails with broken_pool.
    std::function<void()> initializer = {};
};

namespace detail {

/// A thread_pool job is also its own queue node: one allocation per submit.
template <class R, class F, class... Args>
class pool_job final : public job<R, F, Args...>, public work_item {
  public:
    template <class... A>
    explicit pool_job(thread_pool_core& core, A&&... a)
        : job<R, F, Args...>(std::forward<A>(a)...) {
        if constexpr (drives_coroutine) {
            this->m_host = &core;
        } else {
            m_core = &core;
        }
        this->work_item::handler = &pool_job::handle_item;
    }
    // Deleted through shared_state_base's virtual destructor: the size is this type's.
    static void* operator new(std::size_t n) { return job_memory::allocate(n); }
    static void operator delete(void* p, std::size_t n) noexcept { job_memory::deallocate(p, n); }
    // An over-aligned job (a callable holding an alignas(64) value) bypasses the cache.
    static void* operator new(std::size_t n, std::align_val_t a) { return ::operator new(n, a); }
    // (Unsized: clang before 19 declares no sized global delete by default.)
    static void operator delete(void* p, std::size_t, std::align_val_t a) noexcept {
        ::operator delete(p, a);
    }

  private:
    static constexpr bool drives_coroutine = is_task_v<call_result_t<F, Args...>>;
    struct core_in_host {};

    thread_pool_core& core() noexcept {
        if constexpr (drives_coroutine) {
            return *static_cast<thread_pool_core*>(this->m_host);
        } else {
            return *m_core;
        }
    }
    static bool handle_item(work_item* w, const std::exception_ptr* drop) noexcept {
        auto* self = static_cast<pool_job*>(w);
        if (drop == nullptr) {
            self->execute(self->core());
        } else {
            self->drop(self->core(), *drop);
        }
        return true;
    }

    // A coroutine job keeps its pool in coroutine_part's host pointer, the
    // one the job runner sets at start anyway: a word less (a coroutine
    // without captures is 96 bytes, which job_memory serves from 112 of
    // heap; 100k sleeping coroutines: 1.6 MB less than at 128).
    [[no_unique_address]] std::conditional_t<drives_coroutine, core_in_host, thread_pool_core*>
        m_core{};
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
        -> future<detail::submit_result_t<std::decay_t<F>, std::decay_t<Args>...>> {
        return submit_until(nullptr, std::forward<F>(f), std::forward<Args>(args)...);
    }

    /// submit with per-task options (the same call as on process_pool).
    /// With a `timeout` (> 0), the future fails with deadline_exceeded if the
    /// task has not finished by then, and the task's stop token is
    /// signalled; a thread cannot be killed, so the task runs on until it
    /// returns and its result is dropped. A task still queued then never
    /// runs. Holds a timer until the task ends or the deadline passes.
    template <class F, class... Args>
    auto submit_with(submit_options options, F&& f, Args&&... args)
        -> future<detail::submit_result_t<std::decay_t<F>, std::decay_t<Args>...>> {
        if (options.timeout.count() <= 0)
            return submit_until(nullptr, std::forward<F>(f), std::forward<Args>(args)...);
        const auto deadline = detail::deadline_after(options.timeout);
        return submit_until(&deadline, std::forward<F>(f), std::forward<Args>(args)...);
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
    /// Stops now, as far as threads can be stopped: shutdown(wait = false,
    /// cancel_futures = true). Queued work is cancelled and running tasks'
    /// stop tokens are signalled; a thread cannot be killed, so a running
    /// task ends when it returns (the destructor joins). (process_pool's
    /// kills its workers; the member is on every executor.)
    void terminate_workers() { shutdown(false, true); }
    std::size_t max_workers() const noexcept { return m_core->max_workers(); }
    executor_stats stats() const noexcept { return m_core->stats(); }
    /// True if the calling thread is one of this pool's workers.
    bool running_in_this_thread() const noexcept { return m_core->on_worker_thread(); }

  private:
    template <class F, class... Args>
    auto submit_until(const std::chrono::steady_clock::time_point* deadline, F&& f, Args&&... args)
        -> future<detail::submit_result_t<std::decay_t<F>, std::decay_t<Args>...>> {
        using R = detail::submit_result_t<std::decay_t<F>, std::decay_t<Args>...>;
        using job_type = detail::pool_job<R, std::decay_t<F>, std::decay_t<Args>...>;
        auto* job = new job_type(*m_core, std::forward<F>(f), std::forward<Args>(args)...);
        future<R> result(static_cast<detail::shared_state<R>*>(job));  // second reference
        try {
            if (deadline != nullptr) detail::fail_at_deadline(*job, *deadline);
        } catch (...) {
            job->release();  // never queued; `result` dies with the throw
            throw;
        }
        try {
            m_core->submit_job(job);
        } catch (...) {
            job->set_cancelled();  // ends its deadline's timer, if any
            job->release();        // the queue's reference; `result` dies with the throw
            throw;
        }
        return result;
    }

    std::unique_ptr<detail::thread_pool_core> m_core;
};

}  // namespace coexec
