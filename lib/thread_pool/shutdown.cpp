// lib/thread_pool/shutdown.cpp — how a thread_pool stops: shutdown (with
// or without cancelling queued work), when a worker may exit, the count of
// coroutine jobs in flight that keeps workers alive, and the statistics.
#include "thread_pool/worker.hpp"
#include "util/eventfd.hpp"

namespace coexec::detail {

void thread_pool_core::wake_all() noexcept {
    // Rare (shutdown): both doors, whichever way each worker sleeps.
    for (auto& w : m_shared->workers) {
        std::uint32_t expected = sleeping;
        if (w->state.compare_exchange_strong(expected, notified, std::memory_order_seq_cst)) {
            m_shared->idle.fetch_sub(1, std::memory_order_relaxed);
        }
        w->state.notify_one();
        eventfd_signal(w->wake_fd.get());
    }
}

bool thread_pool_core::may_exit() const noexcept {
    if (!m_shutdown.load(std::memory_order_acquire) || coroutines_in_flight() ||
        !m_shared->inbox.empty(std::memory_order_acquire)) {
        return false;
    }
    // A coroutine job is counted only after its first run suspends (see
    // detail/job.hpp): one a worker started and another resumed may be in
    // flight uncounted, its ops even on this worker's ring. Its starter is
    // still in that first run; the record is cleared after the count, so
    // reading the count again after the records catches a count just made.
    for (const auto& w : m_shared->workers) {
        if (w->first_run.load(std::memory_order_acquire) != nullptr) return false;
    }
    return !coroutines_in_flight();
}

void thread_pool_core::run_leftovers() noexcept {
    // Closing makes later posts run where they are made (see post).
    for (work_item* it = inbox_stack::reversed(m_shared->inbox.close()); it != nullptr;) {
        work_item* next = it->next;
        it->run();
        it = next;
    }
}

// Counters are only ever added to, and a job's end is counted after its start
// except while its starter is still in the first run (may_exit looks at
// those). Reading every "ended" before every "started" then never gives a
// false zero: the ends read are at most those made by the last end read, the
// starts read at least those made by then, and every coroutine live at that
// moment is among the starts but not the ends. A false "in flight" is only a
// count moving meanwhile, made by a thread that looks again itself.
bool thread_pool_core::coroutines_in_flight() const noexcept {
    std::uint64_t ended = m_outside_ended.load(std::memory_order_seq_cst);
    for (const auto& w : m_shared->workers)
        ended += w->coroutines_ended.load(std::memory_order_seq_cst);
    std::uint64_t started = m_outside_started.load(std::memory_order_seq_cst);
    for (const auto& w : m_shared->workers)
        started += w->coroutines_started.load(std::memory_order_seq_cst);
    return started != ended;
}

void thread_pool_core::shutdown(bool wait, bool cancel_futures) {
    m_shutdown.store(true, std::memory_order_seq_cst);
    if (cancel_futures) {
        // Chained through `next`, allocating nothing (shutdown runs in the
        // destructor too): the inbox's items, then every worker's queue.
        work_item* drained = take_inbox(m_shared->inbox);
        work_item** tail = &drained;
        while (*tail != nullptr)
            tail = &(*tail)->next;
        for (auto& w : m_shared->workers) {
            w->lock.lock();
            for (work_item* it : w->queue) {
                *tail = it;
                tail = &it->next;
            }
            *tail = nullptr;
            w->queue.clear();
            set_queued(*w);
            w->lock.unlock();
        }
        // Only now: a task that ends at its stop would free its worker to
        // start queued work that is being cancelled.
        m_stop.request_stop();
        while (drained != nullptr) {
            work_item* next = drained->next;
            // A job is cancelled; a coroutine's resumption must still run.
            if (!drained->try_drop(nullptr) && !m_shared->inbox.try_push(drained)) drained->run();
            drained = next;
        }
    }
    wake_all();
    if (!wait || on_worker_thread()) return;
    std::lock_guard lock(m_shared->join_mutex);
    if (m_shared->joined) return;
    for (auto& w : m_shared->workers) {
        if (w->thread.joinable()) w->thread.join();
    }
    m_shared->joined = true;
    // The last worker closed the inbox and ran what it held; this is a
    // no-op unless a worker thread ended some other way.
    run_leftovers();
}

executor_stats thread_pool_core::stats() const noexcept {
    job_counters::totals t = m_counters.load();
    for (const auto& w : m_shared->workers)
        t += w->counters.load();
    executor_stats s = job_counters::to_stats(t);
    s.workers_alive = m_alive.load(std::memory_order_relaxed);
    return s;
}

}  // namespace coexec::detail
