// lib/io/run_loop_io.cpp — coexec::io under sync_wait: the run loop's reactor.
//
// A pool worker makes its reactor when it starts; a sync_wait loop makes one
// only when a coroutine on it first awaits an io operation (most sync_waits
// never do, and a ring costs a syscall and locked memory). From then on the
// loop sleeps in the reactor rather than on its condition variable: post()
// and finish() write the loop's eventfd, which the reactor watches, and
// finished I/O wakes it by itself. The reactor is the thread's current one
// only while the loop lives; the previous one (a pool worker's, when a
// blocking task calls sync_wait; an outer loop's) comes back afterwards.
#include <exception>

#include "coexec/sync_wait.hpp"
#include "io/reactor.hpp"
#include "util/eventfd.hpp"
#include "util/unique_fd.hpp"

namespace coexec::detail {

struct run_loop::io_host {
    unique_fd wake_fd;
    std::unique_ptr<io_reactor> reactor;
    io_reactor* previous = nullptr;  // the thread's reactor before this one
};

run_loop::run_loop() = default;

run_loop::~run_loop() {
    if (m_io) {
        m_io->reactor.reset();
        io_reactor::exchange_current(m_io->previous);
    }
}

bool run_loop::attach_io_reactor() {
    if (m_io) return false;  // it has one, yet the thread's current is another: not ours to fix
    auto host = std::make_unique<io_host>();
    host->wake_fd = make_eventfd();
    host->previous = io_reactor::current();
    try {
        host->reactor = io_reactor::create(host->wake_fd.get(), this, {});
    } catch (...) {
        io_reactor::exchange_current(host->previous);
        throw;
    }
    m_io = std::move(host);
    return true;
}

void run_loop::wake_locked() noexcept {
    if (m_sleeps_in_reactor) {
        eventfd_signal(m_io->wake_fd.get());
    } else {
        m_cv.notify_one();
    }
}

void run_loop::run_with_io() {
    io_reactor& reactor = *m_io->reactor;
    bool closed = false;
    for (;;) {
        // Everything posted so far, then everything the reactor has finished:
        // neither starves the other.
        work_item* batch;
        {
            std::lock_guard lock(m_mutex);
            batch = m_head;
            m_head = m_tail = nullptr;
        }
        bool ran = batch != nullptr;
        for (work_item* it = batch; it != nullptr;) {
            work_item* next = it->next;
            it->run(it);  // may free `it`
            it = next;
        }
        if (reactor.has_work()) {
            reactor.poll();
            std::size_t n = 0;
            for (work_item* it = reactor.take_ready(n); it != nullptr;) {
                work_item* next = it->next;
                it->run(it);
                it = next;
                ran = true;
            }
        }
        if (ran) continue;
        {
            std::lock_guard lock(m_mutex);
            if (m_head != nullptr) continue;
            if (m_finished) {
                // The awaited task is done. I/O of coroutines it left behind
                // (detached, or still racing it in when_any) is cancelled, as
                // a pool's shutdown does, and each sees ECANCELED before the
                // loop and its reactor go.
                if (reactor.outstanding() == 0) return;
                if (!closed) {
                    reactor.close();
                    closed = true;
                    continue;
                }
            }
            m_sleeps_in_reactor = true;
        }
        reactor.wait();  // until I/O finishes or the eventfd is written
        std::lock_guard lock(m_mutex);
        m_sleeps_in_reactor = false;
    }
}

}  // namespace coexec::detail
