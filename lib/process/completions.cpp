// lib/process/completions.cpp — see completions.hpp.
#include "process/completions.hpp"

#include <pthread.h>

#include <system_error>

namespace coexec::detail::proc {

void completion_thread::run_all(work_item* list) noexcept {
    for (work_item* it = decltype(m_queue)::reversed(list); it != nullptr;) {
        work_item* next = it->next;  // run may free the item
        it->run();
        it = next;
    }
}

void completion_thread::post(work_item* item) noexcept {
    m_queue.push(item);
    if (!m_started.load(std::memory_order_acquire)) {
        std::lock_guard lock(m_mutex);
        if (!m_started.load(std::memory_order_relaxed) && !m_stop.load(std::memory_order_relaxed)) {
            try {
                m_thread = std::thread([this, owner = m_owner.lock()] { run(); });
                m_started.store(true, std::memory_order_release);
            } catch (const std::system_error&) {
                // No thread to be had: run it here, as before there was one.
                run_all(m_queue.take_all());
                return;
            }
        }
        if (!m_started.load(std::memory_order_relaxed)) {
            run_all(m_queue.take_all());  // finished already: nobody else will
            return;
        }
    }
    m_signal.notify();
}

void completion_thread::run() noexcept {
    ::pthread_setname_np(::pthread_self(), "coexec-callback");
    for (;;) {
        const std::uint32_t seen = m_signal.epoch();
        if (work_item* list = m_queue.take_all()) {
            run_all(list);
            continue;
        }
        if (m_stop.load(std::memory_order_acquire)) {
            if (m_queue.empty(std::memory_order_acquire)) return;
            continue;
        }
        m_signal.wait(seen);
    }
}

void completion_thread::finish() noexcept {
    std::lock_guard lock(m_mutex);
    m_stop.store(true, std::memory_order_release);
    m_signal.notify();
    if (!m_thread.joinable()) return;
    if (m_thread.get_id() == std::this_thread::get_id()) {
        // A callback shut the pool down: this thread drains and ends on its own.
        m_thread.detach();
    } else {
        m_thread.join();
    }
}

}  // namespace coexec::detail::proc
