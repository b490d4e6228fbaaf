// detail/job.hpp — the one job runner of thread_pool, inline_executor and asio_executor.
//
// A job is a submitted call: its shared state, the callable and its arguments
// in one allocation. Running it is the same everywhere: take it (counted),
// start the state (a job cancelled while queued is counted and dropped),
// call the function (handing it the job's stop token if it wants one, see
// detail/invoke.hpp) or, if it returns task<U>, start that coroutine on the
// executor with the job as its driver (task.hpp: the frame's final
// suspension hands the outcome to the job, no frame of its own between);
// count the outcome, then publish it. Counting before publishing
// means a caller woken by the future already sees its task in stats().
//
// What differs between executors is supplied by the `Host` (the executor's
// side of the job):
//   job_counters& counters() noexcept;
//   std::stop_token stop_token() const noexcept;  // the executor's stop, forwarded
//                                                 // to jobs that take a token
//   void coroutine_started() noexcept;  // a coroutine job suspended: the host stays
//   void coroutine_ended() noexcept;    //   alive (and running) until it ends
//   void job_ended() noexcept;          // after a job's state is released
//
// coroutine_started() is called only for a job whose first run suspends, after
// that run returns: one that ends without suspending never left the thread
// that runs it, which is inside the host's own loop (or handler) until it
// returns, so it needs no count, and a pool of synchronous coroutine children
// does not bounce one counter's cache line between its workers (two contended
// atomics per child). So coroutine_ended() may come first, from the thread
// that resumed and finished the job while its starter had not counted it yet:
// hosts count with a signed (or wrapping) counter and treat the pair in either
// order. The count may read low meanwhile, while the starter is still inside
// the host; a host that acts on the count from another thread (thread_pool's
// workers exiting at shutdown) also checks its threads' first_run_here().
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

#include "coexec/detail/invoke.hpp"
#include "coexec/detail/shared_state.hpp"
#include "coexec/detail/trace_hooks.hpp"
#include "coexec/detail/work_item.hpp"
#include "coexec/errors.hpp"
#include "coexec/executor.hpp"
#include "coexec/task.hpp"

namespace coexec::detail {

/// The value type of the future `submit(f, args...)` returns.
template <class F, class... Args>
using submit_result_t = typename unwrap_task<call_result_t<F, Args...>>::type;

/// The counters behind executor_stats, kept the same way by every executor
/// that runs jobs. Relaxed: they are statistics, read as a snapshot.
class job_counters {
  public:
    void on_submitted() noexcept { m_submitted.fetch_add(1, std::memory_order_relaxed); }
    /// A job left the queue: it starts now, or is found cancelled, or is dropped.
    void on_taken() noexcept { m_taken.fetch_add(1, std::memory_order_relaxed); }
    void on_finished(status final) noexcept {
        switch (final) {
            case status::has_value:
                m_completed.fetch_add(1, std::memory_order_relaxed);
                break;
            case status::has_exception:
                m_failed.fetch_add(1, std::memory_order_relaxed);
                break;
            default:
                m_cancelled.fetch_add(1, std::memory_order_relaxed);
                break;
        }
    }
    /// The raw counts, which add up across the shards of one executor.
    struct totals {
        std::uint64_t submitted = 0, taken = 0, completed = 0, failed = 0, cancelled = 0;
        totals& operator+=(const totals& o) noexcept {
            submitted += o.submitted;
            taken += o.taken;
            completed += o.completed;
            failed += o.failed;
            cancelled += o.cancelled;
            return *this;
        }
    };
    totals load() const noexcept {
        totals t;
        // Later stages first: a job seen finished is then also seen taken
        // and submitted, or the derived queued/running clamp at zero.
        t.completed = m_completed.load(std::memory_order_relaxed);
        t.failed = m_failed.load(std::memory_order_relaxed);
        t.cancelled = m_cancelled.load(std::memory_order_relaxed);
        t.taken = m_taken.load(std::memory_order_relaxed);
        t.submitted = m_submitted.load(std::memory_order_relaxed);
        return t;
    }
    /// Every field but workers_alive and respawns (the executor's own).
    static executor_stats to_stats(const totals& t) noexcept {
        executor_stats s;
        s.submitted = t.submitted;
        s.completed = t.completed;
        s.failed = t.failed;
        s.cancelled = t.cancelled;
        const std::uint64_t finished = t.completed + t.failed + t.cancelled;
        s.queued = t.submitted > t.taken ? t.submitted - t.taken : 0;
        s.running = t.taken > finished ? t.taken - finished : 0;
        return s;
    }
    executor_stats snapshot() const noexcept { return to_stats(load()); }

  private:
    // Submitters and workers write different lines.
    alignas(64) std::atomic<std::uint64_t> m_submitted{0};
    alignas(64) std::atomic<std::uint64_t> m_taken{0};
    std::atomic<std::uint64_t> m_completed{0};
    std::atomic<std::uint64_t> m_failed{0};
    std::atomic<std::uint64_t> m_cancelled{0};
};

/// Forwards the executor's stop request to one job's stop source.
struct stop_forwarder {
    shared_state_base* job;
    void operator()() const noexcept { job->request_stop(); }
};

/// A fire-and-forget coroutine (tests drive tasks with it).
struct detached_coro {
    struct promise_type {
        detached_coro get_return_object() noexcept { return {}; }
        std::suspend_never initial_suspend() const noexcept { return {}; }
        std::suspend_never final_suspend() const noexcept { return {}; }
        void return_void() const noexcept {}
        void unhandled_exception() const noexcept { std::terminate(); }
    };
};

/// The first run of a coroutine job, on its starter's stack: from the call
/// that makes its frame to the first suspension. An end reached inside it
/// clears `job`: the job never suspended and is not counted.
struct first_run_record {
    const void* job;
};
/// Where a thread keeps its innermost first run (null: none). Atomic so that
/// a pool may read a worker's from another thread (thread_pool's exit test:
/// a job between its first suspension and its count is in flight uncounted);
/// its own thread reads it relaxed. A host may lend its threads a slot that
/// outlives them (thread_pool keeps one per worker); else the thread's own.
using first_run_slot = std::atomic<first_run_record*>;
inline thread_local first_run_slot t_own_first_run{nullptr};
inline thread_local first_run_slot* t_lent_first_run = nullptr;
inline first_run_slot& first_run_here() noexcept {
    return t_lent_first_run != nullptr ? *t_lent_first_run : t_own_first_run;
}

/// What a coroutine job adds to a job: it drives its task (task_driver) for
/// a host whose type only the job runner's templates know.
template <bool IsCoroutine, bool WantsToken>
struct coroutine_part : task_driver {
    void* m_host = nullptr;
    /// Its first run's record. An end matches it only if it is the thread's
    /// innermost record and names this job: a job ending elsewhere, or one
    /// that reuses the address of a job freed meanwhile, holds another record.
    first_run_record* m_first_run = nullptr;
};
template <>
struct coroutine_part<false, false> {};
template <>
struct coroutine_part<false, true> {};
/// A coroutine that takes a token is also linked to the executor's stop
/// while it lives.
template <>
struct coroutine_part<true, true> : coroutine_part<true, false> {
    std::optional<std::stop_callback<stop_forwarder>> m_link;
};

/// A submitted call `F(Args...)` producing R. Created with one reference for
/// whoever will run it (the queue) besides the future's.
template <class R, class F, class... Args>
class job
    : public shared_state<R>,
      public coroutine_part<is_task_v<call_result_t<F, Args...>>, takes_stop_token_v<F, Args...>> {
  public:
    template <class FF, class... AA>
    explicit job(FF&& f, AA&&... args)
        : m_fn(std::forward<FF>(f)), m_args(std::forward<AA>(args)...) {
        // Coroutine jobs always get a token: future::cancel() signals it and
        // the coexec::io awaitables they start use it.
        if constexpr (wants_token || is_coroutine) this->enable_stop();
        trace::on_submit(*this, m_fn);
    }

    /// Runs the job on this thread and drops the runner's reference.
    template <class Host>
    void execute(Host& host) noexcept {
        trace::task_scope traced(this->trace_ticket(), m_fn);  // outlives the job: a copy
        job_counters& counters = host.counters();
        counters.on_taken();
        if (!this->try_start()) {  // cancelled while queued
            counters.on_finished(status::cancelled);
            end(host);
            return;
        }
        if constexpr (is_coroutine) {
            // While the job's frames run here, io awaitables find its stop
            // token through this thread-local (the reactor, schedule() and
            // every resume_item carry it across the resumptions they perform).
            shared_state_base* previous = exchange_current_io_job(this);
            start_coroutine(host);  // may finish and free the job: do not touch it after
            exchange_current_io_job(previous);
        } else if constexpr (wants_token) {
            std::optional<std::stop_callback<stop_forwarder>> link;
            std::stop_token executor_stop = host.stop_token();
            if (executor_stop.stop_possible())
                link.emplace(std::move(executor_stop), stop_forwarder{this});
            call_and_publish(counters, traced);
            // Unlink first: the executor's stop callback may be running on
            // another thread; reset() waits for it, so it never touches a freed job.
            link.reset();
            end(host);
        } else {
            call_and_publish(counters, traced);
            end(host);
        }
    }

    /// Drops the job unrun (shutdown with cancel_futures, a broken pool):
    /// fails it with `reason`, or cancels it if `reason` is null.
    template <class Host>
    void drop(Host& host, std::exception_ptr reason) noexcept {
        host.counters().on_taken();
        host.counters().on_finished(reason ? status::has_exception : status::cancelled);
        if (reason) {
            this->set_exception(std::move(reason));
        } else {
            this->set_cancelled();
        }
        end(host);
    }

  private:
    // Called once, with the callable and the arguments as rvalues (detail/invoke.hpp).
    using call_type = call_result_t<F, Args...>;
    static constexpr bool is_coroutine = is_task_v<call_type>;
    static constexpr bool wants_token = takes_stop_token_v<F, Args...>;

    decltype(auto) call() {
        if constexpr (wants_token) {
            return call_with(std::move(m_fn), std::move(m_args), this->stop_token());
        } else {
            return std::apply(std::move(m_fn), std::move(m_args));
        }
    }

    void call_and_publish(job_counters& counters, trace::task_scope& traced) noexcept {
        try {
            if constexpr (std::is_void_v<R>) {
                call();
                traced.finish();
                counters.on_finished(status::has_value);
                this->set_value();
            } else {
                R value = call();
                traced.finish();
                counters.on_finished(status::has_value);
                this->set_value(std::move(value));
            }
        } catch (...) {
            traced.finish();
            counters.on_finished(status::has_exception);
            this->set_exception(std::current_exception());
        }
    }

    template <class Host>
    void end(Host& host) noexcept {
        this->release();
        host.job_ended();
    }

    template <class Host>
    void start_coroutine(Host& host) noexcept {
        this->m_host = &host;
        this->finish = &job::finish_coroutine<Host>;
        if constexpr (wants_token) {
            std::stop_token executor_stop = host.stop_token();
            if (executor_stop.stop_possible())
                this->m_link.emplace(std::move(executor_stop), stop_forwarder{this});
        }
        // Set before anything can publish the job (nested starts nest); a
        // pool reading it elsewhere synchronizes through that publication.
        first_run_slot& here = first_run_here();
        first_run_record record{this};
        this->m_first_run = &record;
        first_run_record* const outer = here.load(std::memory_order_relaxed);
        here.store(&record, std::memory_order_relaxed);
        std::coroutine_handle<typename call_type::promise_type> frame;
        try {
            frame = call().release();
            if (!frame) throw no_state("submit: the coroutine function returned an empty task");
        } catch (...) {  // the call itself threw before producing a coroutine
            host.counters().on_finished(status::has_exception);
            this->set_exception(std::current_exception());
            end_coroutine(host);
            here.store(outer, std::memory_order_release);
            return;
        }
        frame.promise().set_driver(this);
        frame.resume();  // runs to its first suspension; if it ends, the job may be gone
        if (record.job != nullptr) host.coroutine_started();  // in flight beyond this run
        // After the count: a pool that sees the record gone also sees the count.
        here.store(outer, std::memory_order_release);
    }

    /// The task's final suspension: take its outcome, destroy its frame (its
    /// parameters are gone before anyone sees the outcome), count, publish.
    template <class Host>
    static void finish_coroutine(task_driver* driver, std::coroutine_handle<> done) noexcept {
        auto* self = static_cast<job*>(static_cast<coroutine_part<true, wants_token>*>(driver));
        Host& host = *static_cast<Host*>(self->m_host);
        auto frame =
            std::coroutine_handle<typename call_type::promise_type>::from_address(done.address());
        std::exception_ptr failure;
        try {
            if constexpr (std::is_void_v<R>) {
                frame.promise().take_result();
                frame.destroy();
                host.counters().on_finished(status::has_value);
                self->set_value();
            } else {
                R value = frame.promise().take_result();
                frame.destroy();
                host.counters().on_finished(status::has_value);
                self->set_value(std::move(value));
            }
        } catch (...) {
            failure = std::current_exception();
        }
        if (failure) {
            frame.destroy();
            host.counters().on_finished(status::has_exception);
            self->set_exception(std::move(failure));
        }
        self->end_coroutine(host);
    }

    template <class Host>
    void end_coroutine(Host& host) noexcept {
        if constexpr (wants_token) this->m_link.reset();  // no stop callback may outlive the job
        // Ending inside its first run: it was never counted (see start_coroutine).
        first_run_record* const current = first_run_here().load(std::memory_order_relaxed);
        const bool counted =
            current == nullptr || current != this->m_first_run || current->job != this;
        if (!counted) current->job = nullptr;
        this->release();
        host.job_ended();
        if (counted) host.coroutine_ended();
    }

    // An empty callable (a lambda without captures) or no arguments take no room.
    [[no_unique_address]] F m_fn;
    [[no_unique_address]] std::tuple<Args...> m_args;
};

}  // namespace coexec::detail
