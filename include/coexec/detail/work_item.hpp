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

/// A work item that resumes a coroutine: the building block of awaiters that
/// hop threads (`schedule()`, sticky resumption after a future completes).
struct resume_item : work_item {
    std::coroutine_handle<> handle;
    resume_item() { run = &resume_item::invoke; }
    static void invoke(work_item* w) noexcept { static_cast<resume_item*>(w)->handle.resume(); }
};

}  // namespace coexec::detail
