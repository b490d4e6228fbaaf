// lib/io/run_loop_io.cpp — coexec::io under sync_wait: the run loop's reactor.
//
// A pool worker makes its reactor when it starts; a sync_wait loop gets one
// only when a coroutine on it first awaits an io operation (most sync_waits
// never do). From then on the loop sleeps in the reactor rather than on its
// condition variable: post() and finish() write the loop's eventfd, which
// the reactor watches, and finished I/O wakes it by itself. The reactor is
// the thread's current one only while the loop lives; the previous one (a
// pool worker's, when a blocking task calls sync_wait; an outer loop's)
// comes back afterwards.
//
// A ring is dear to make (io_uring_setup and its mappings: 280 µs measured
// on a PVM guest, against 27 µs for an epoll set), so a loop that ends with
// nothing outstanding leaves its reactor to the thread's next loop: one
// spare per thread, freed when the thread exits. Not in a forked child: the
// ring's memory is not mapped there (MADV_DONTFORK, uring_reactor.cpp) and
// an epoll set would be the parent's own, so a child that inherited the
// spare neither uses nor frees it (its exit() would otherwise run the
// thread_local's destructor on the parent's ring).
#include <unistd.h>

#include <atomic>
#include <exception>
#include <memory>

#include "coexec/sync_wait.hpp"
#include "io/reactor.hpp"
#include "util/eventfd.hpp"
#include "util/unique_fd.hpp"

namespace coexec::detail {

struct run_loop_io {
    unique_fd wake_fd;
    std::unique_ptr<io_reactor> reactor;
    io_reactor* previous = nullptr;  // the thread's reactor before this one
    pid_t pid = ::getpid();          // the process whose reactor it is
};

namespace {

/// A reactor a forked child inherited: left unfreed, but kept reachable so
/// that a leak checker in the child (LeakSanitizer at exit) does not report it.
std::atomic<run_loop_io*> g_inherited{nullptr};

void abandon(std::unique_ptr<run_loop_io>& host) noexcept {
    g_inherited.store(host.release(), std::memory_order_relaxed);
}

/// The thread's spare reactor, if any.
class spare_reactor {
  public:
    ~spare_reactor() { (void)take(); }
    /// The spare, if this process made it; one inherited by fork is dropped
    /// unfreed (see the file comment).
    std::unique_ptr<run_loop_io> take() noexcept {
        if (m_host && m_host->pid != ::getpid()) abandon(m_host);
        return std::move(m_host);
    }
    bool empty() const noexcept { return !m_host; }
    void keep(std::unique_ptr<run_loop_io> host) noexcept { m_host = std::move(host); }

  private:
    std::unique_ptr<run_loop_io> m_host;
};

thread_local spare_reactor t_spare;

}  // namespace

run_loop::run_loop() = default;

run_loop::~run_loop() {
    if (!m_io) return;
    io_reactor* const previous = m_io->previous;
    io_reactor& r = *m_io->reactor;
    if (m_io->pid != ::getpid()) {
        abandon(m_io);  // a forked child's copy: not ours to touch (see above)
    } else if (t_spare.empty() && !r.closed() && r.outstanding() == 0) {
        r.set_owner(nullptr);  // no coroutine passes io_check_context with it meanwhile
        t_spare.keep(std::move(m_io));
    } else {
        m_io.reset();  // a closed reactor (io was left in flight) is not reused
    }
    io_reactor::exchange_current(previous);
}

bool run_loop::attach_io_reactor() {
    if (m_io) return false;  // it has one, yet the thread's current is another: not ours to fix
    io_reactor* const previous = io_reactor::current();
    std::unique_ptr<run_loop_io> host = t_spare.take();
    if (host) {
        host->reactor->set_owner(this);
        io_reactor::exchange_current(host->reactor.get());
    } else {
        host = std::make_unique<run_loop_io>();
        host->wake_fd = make_eventfd();
        host->reactor = io_reactor::create(host->wake_fd.get(), this, {});  // makes it current
    }
    host->previous = previous;
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
            it->run();  // may free `it`
            it = next;
        }
        if (reactor.has_work()) {
            reactor.poll();
            std::size_t n = 0;
            for (work_item* it = reactor.take_ready(n); it != nullptr;) {
                work_item* next = it->next;
                it->run();
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
