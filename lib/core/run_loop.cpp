#include <cstdio>
#include <exception>

#include "coexec/future.hpp"
#include "coexec/sync_wait.hpp"

namespace coexec::detail {

// Both wake the loop under the lock: once the loop sees its last item or the
// finish flag, sync_wait may return and destroy the loop, so nothing may
// touch it after the lock is released.
void run_loop::post(work_item* item) noexcept {
    item->next = nullptr;
    std::lock_guard lock(m_mutex);
    if (m_tail != nullptr) {
        m_tail->next = item;
    } else {
        m_head = item;
    }
    m_tail = item;
    wake_locked();
}

void run_loop::finish() noexcept {
    std::lock_guard lock(m_mutex);
    m_finished = true;
    wake_locked();
}

void run_loop::run() {
    std::unique_lock lock(m_mutex);
    for (;;) {
        // The first io operation (on this thread, inside an item) gives the
        // loop a reactor; from then on the loop sleeps in it.
        if (m_io) {
            lock.unlock();
            run_with_io();
            return;
        }
        m_cv.wait(lock, [this] { return m_head != nullptr || m_finished; });
        if (m_head == nullptr) return;  // finished and drained
        work_item* item = m_head;
        m_head = item->next;
        if (m_head == nullptr) m_tail = nullptr;
        lock.unlock();
        item->run();
        lock.lock();
    }
}

void report_callback_exception(std::exception_ptr e) noexcept {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        std::fprintf(stderr, "coexec: exception escaped a done-callback and was ignored: %s\n",
                     ex.what());
    } catch (...) {
        std::fprintf(stderr,
                     "coexec: a non-standard exception escaped a done-callback and was ignored\n");
    }
}

}  // namespace coexec::detail
