// detail/work_item.hpp — the intrusive node every scheduler queue holds.
#pragma once

#include <coroutine>
#include <exception>

namespace coexec::detail {

/// A unit of work in an executor queue. Intrusive so that queueing allocates
/// nothing: a scheduled coroutine's awaiter, a submitted job and a resumed
/// continuation are all work items themselves.
struct work_item {
    work_item* next = nullptr;
    /// Runs (and, if it owns itself, frees) the item. Never throws.
    void (*run)(work_item*) noexcept = nullptr;
    /// Non-null for items that may be dropped unrun (submitted jobs): fails
    /// the job's future with `reason`, or cancels it if `reason` is null, and
    /// frees the item. Used by shutdown(cancel_futures = true) and broken pools.
    void (*discard)(work_item*, std::exception_ptr reason) noexcept = nullptr;
};

/// Something that can run work items later: a thread pool, a sync_wait loop.
/// A coroutine that awaits a coexec future resumes through the resumer that
/// was current on its thread when it suspended (sticky resumption).
class resumer {
  public:
    /// Queue `item` to run on this resumer's thread(s). Thread-safe.
    virtual void post(work_item* item) noexcept = 0;

  protected:
    ~resumer() = default;
};

/// The resumer whose thread is running now, or null on a plain thread.
resumer* current_resumer() noexcept;

/// Sets the current resumer for this thread; returns the previous one.
resumer* exchange_current_resumer(resumer* r) noexcept;

class shared_state_base;

/// The job (submitted coroutine) whose frames run on this thread now, or
/// null: io awaitables without an explicit token use its stop token. Set by
/// thread_pool's job runner, and carried across every suspension by
/// resume_item (lib/io/reactor.cpp).
shared_state_base* current_io_job() noexcept;
shared_state_base* exchange_current_io_job(shared_state_base* job) noexcept;

/// A work item that resumes a coroutine: the building block of awaiters that
/// hop threads (`schedule()`, sticky resumption after a future completes).
/// It remembers the coroutine job that was running when it suspended and
/// restores it around the resumption, so a job's stop token reaches the io
/// awaitables it starts after any kind of await.
struct resume_item : work_item {
    std::coroutine_handle<> handle;
    shared_state_base* job = nullptr;

    resume_item() { run = &resume_item::invoke; }
    /// Call in await_suspend: records the handle and the current job.
    void suspend(std::coroutine_handle<> h) noexcept {
        handle = h;
        job = current_io_job();
    }
    /// Resumes on this thread with the job restored. `*this` may be gone afterwards.
    void resume() noexcept {
        shared_state_base* previous = exchange_current_io_job(job);
        handle.resume();
        exchange_current_io_job(previous);
    }
    static void invoke(work_item* w) noexcept { static_cast<resume_item*>(w)->resume(); }
};

}  // namespace coexec::detail
