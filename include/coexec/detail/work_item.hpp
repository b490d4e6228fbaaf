// detail/work_item.hpp — the intrusive node every scheduler queue holds.
#pragma once

#include <coroutine>
#include <exception>

#include "coexec/detail/trace_hooks.hpp"

namespace coexec::detail {

/// A unit of work in an executor queue. Intrusive so that queueing allocates
/// nothing: a scheduled coroutine's awaiter, a submitted job and a resumed
/// continuation are all work items themselves.
struct work_item {
    work_item* next = nullptr;
    /// What the item does: with `drop` null, runs it (see run()); else see
    /// try_drop(). One pointer for both: an item is in every job, every
    /// awaiting frame and every await, and a word less there is a size
    /// class less for a sleeping coroutine's frame (detail/io_op.hpp).
    bool (*handler)(work_item*, const std::exception_ptr* drop) noexcept = nullptr;

    /// Runs (and, if it owns itself, frees) the item. Never throws; the item
    /// may be gone afterwards.
    void run() noexcept { handler(this, nullptr); }
    /// Drops an item that may be dropped unrun (a submitted job): fails the
    /// job's future with `reason`, or cancels it if `reason` is null, frees
    /// the item, and returns true. Any other item (a coroutine's resumption)
    /// is left as it was, and false returned: it must still run. Used by
    /// shutdown(cancel_futures = true) and broken pools.
    bool try_drop(const std::exception_ptr& reason) noexcept { return handler(this, &reason); }
};

/// Something that can run work items later: a thread pool, a sync_wait loop.
/// A coroutine that awaits a coexec future resumes through the resumer that
/// was current on its thread when it suspended (sticky resumption).
class resumer {
  public:
    /// Queue `item` to run on this resumer's thread(s). Thread-safe.
    virtual void post(work_item* item) noexcept = 0;
    /// Called on this resumer's thread by a coexec::io operation that finds
    /// no reactor for it: a resumer that can drive one makes it current on
    /// the thread and returns true. The default (a pool worker has its
    /// reactor already; other resumers run no I/O) returns false.
    virtual bool attach_io_reactor() { return false; }

  protected:
    ~resumer() = default;
};

/// The resumer whose thread is running now, or null on a plain thread.
resumer* current_resumer() noexcept;

/// Sets the current resumer for this thread; returns the previous one.
resumer* exchange_current_resumer(resumer* r) noexcept;

/// Makes `r` the current resumer of this thread for a scope: what an
/// executor does around the work it runs (a sync_wait loop, an Asio handler).
class resumer_scope {
  public:
    explicit resumer_scope(resumer* r) noexcept : m_previous(exchange_current_resumer(r)) {}
    resumer_scope(const resumer_scope&) = delete;
    resumer_scope& operator=(const resumer_scope&) = delete;
    ~resumer_scope() { exchange_current_resumer(m_previous); }

  private:
    resumer* m_previous;
};

/// Where this thread sends user code (done-callbacks, resumptions that would
/// run here) instead of running it, or null (the default: it runs them).
/// Set on a process pool's supervisor thread (lib/process/completions.hpp).
resumer* user_code_sink() noexcept;
/// Sets this thread's sink; returns the previous one.
resumer* exchange_user_code_sink(resumer* sink) noexcept;

class shared_state_base;

/// The job (submitted coroutine) whose frames run on this thread now, or
/// null: io awaitables without an explicit token use its stop token. Set by
/// thread_pool's job runner, and carried across every suspension by
/// resume_item (lib/io/reactor.cpp).
shared_state_base* current_io_job() noexcept;
shared_state_base* exchange_current_io_job(shared_state_base* job) noexcept;

/// A work item that resumes a coroutine: the building block of every awaiter
/// that suspends (`schedule()`, `co_await future`, the combinators).
///
/// Sticky resumption lives here, once: suspend() records the resumer of the
/// executor the coroutine runs on (a thread_pool worker, an asio_executor, a
/// sync_wait loop; none on a plain thread), and resume_home() resumes it
/// there: at once if the completing thread already runs that executor, else
/// by posting this item to it. A coroutine on no executor resumes on the
/// completing thread, unless that thread runs no user code (it has a
/// user_code_sink(): a process pool's supervisor), which posts it to its
/// sink instead. The item also remembers the coroutine job that was
/// running and restores it around the resumption, so a job's stop token
/// reaches the io awaitables it starts after any kind of await.
struct resume_item : work_item {
    std::coroutine_handle<> handle;
    shared_state_base* job = nullptr;
    resumer* home = nullptr;

    resume_item() { handler = &resume_item::invoke; }
    /// Call in await_suspend: records the handle, the current job and executor.
    void suspend(std::coroutine_handle<> h) noexcept {
        handle = h;
        job = current_io_job();
        home = current_resumer();
    }
    /// Resumes on this thread with the job restored. `*this` may be gone afterwards.
    void resume() noexcept {
        shared_state_base* previous = exchange_current_io_job(job);
        trace::resume_scope traced(job);  // a coroutine task's later run
        handle.resume();
        exchange_current_io_job(previous);
    }
    /// Resumes on the executor recorded by suspend(). `*this` may be gone afterwards.
    void resume_home() noexcept {
        if (home != nullptr && home != current_resumer()) {
            home->post(this);
        } else if (resumer* sink = user_code_sink()) {
            sink->post(this);
        } else {
            resume();
        }
    }
    static bool invoke(work_item* w, const std::exception_ptr* drop) noexcept {
        if (drop != nullptr) return false;  // a resumption always runs
        static_cast<resume_item*>(w)->resume();
        return true;
    }
};

}  // namespace coexec::detail
