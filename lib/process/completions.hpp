// lib/process/completions.hpp — a process pool's completion thread.
//
// The supervisor completes futures itself: it stores the result and wakes
// the threads blocked in get()/wait(), and resumes coroutines that belong to
// an executor by posting them there. What would run user code on it — a
// done-callback, or a coroutine with no executor to go back to — it hands to
// this thread instead (it is the supervisor's user_code_sink). So a callback
// that blocks, even on another future of the same pool, delays only the
// callbacks queued behind it, never results, deaths or deadlines.
//
// Started on first use (most pools have no callbacks). Items run in the
// order they were handed over, on this one thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include "coexec/detail/event_signal.hpp"
#include "coexec/detail/intrusive_stack.hpp"
#include "coexec/detail/work_item.hpp"

namespace coexec::detail::proc {

class completion_thread final : public resumer {
  public:
    completion_thread() = default;
    completion_thread(const completion_thread&) = delete;
    completion_thread& operator=(const completion_thread&) = delete;
    ~completion_thread() { finish(); }

    /// What the thread keeps alive while it runs (the pool's state), so a
    /// callback that destroys the pool does not pull it from under itself.
    void set_owner(std::weak_ptr<void> owner) noexcept { m_owner = std::move(owner); }

    /// Queues `item`; starts the thread if needed. From the supervisor, or a
    /// caller reading results in its place (waiter_help.cpp).
    void post(work_item* item) noexcept override;

    /// Runs what is queued, then ends the thread, waiting for it unless
    /// called from it (then it finishes on its own). Call once nothing posts.
    void finish() noexcept;

  private:
    void run() noexcept;
    static void run_all(work_item* list) noexcept;

    intrusive_stack<work_item, &work_item::next> m_queue;
    event_signal m_signal;
    std::atomic<bool> m_stop{false};
    std::atomic<bool> m_started{false};
    std::mutex m_mutex;  // m_thread
    std::thread m_thread;
    std::weak_ptr<void> m_owner;
};

}  // namespace coexec::detail::proc
