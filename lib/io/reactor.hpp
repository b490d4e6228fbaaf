// lib/io/reactor.hpp — the per-worker I/O reactor behind coexec::io.
//
// Each thread_pool worker owns one reactor, created on the worker thread
// itself (rings are never shared or inherited: see uring_reactor.cpp). The
// reactor is driven only by its owner thread: ops are started, reaped and
// resumed there. Other threads talk to it through three lock-free doors:
//   - the worker's wake eventfd (new work for a sleeping worker),
//   - request_cancel(op): a stop callback asks for one op to be cancelled,
//   - request_close(): the pool's stop token asks for all of them.
// Each pushes or flags, then writes the eventfd; the owner acts on it the
// next time it reaps (it polls periodically while busy, and a sleeping owner
// is woken by the eventfd).
//
// Completion is two-step so the worker's sleep protocol stays simple:
// reap() only collects finished ops into a ready list; take_ready() hands
// them, as work items, to the worker, which resumes them, or queues them
// where an idle worker can steal them when it is saturated (lib/thread_pool).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>

#include "coexec/detail/intrusive_stack.hpp"
#include "coexec/detail/io_op.hpp"
#include "coexec/detail/work_item.hpp"
#include "coexec/io/backend.hpp"

namespace coexec::detail {

class io_reactor {
  public:
    /// Creates the calling worker thread's reactor with the process's backend
    /// (io::backend()) and makes it current on this thread. `owner` is the
    /// pool (the resumer io awaitables must be running under); `pool_stop`
    /// closes the reactor when signalled. Throws std::system_error.
    static std::unique_ptr<io_reactor> create(int wake_fd, resumer* owner,
                                              std::stop_token pool_stop);
    virtual ~io_reactor();
    io_reactor(const io_reactor&) = delete;
    io_reactor& operator=(const io_reactor&) = delete;

    /// The reactor of the calling thread, or null.
    static io_reactor* current() noexcept;
    /// Makes `r` the calling thread's reactor; returns the previous one (a
    /// sync_wait loop lends its thread a reactor and gives the old one back).
    static io_reactor* exchange_current(io_reactor* r) noexcept;
    resumer* owner() const noexcept { return m_owner; }
    /// Owner thread, with nothing outstanding: hands the reactor to another
    /// resumer of the same thread (a later sync_wait loop reuses a ring).
    void set_owner(resumer* owner) noexcept { m_owner = owner; }
    /// close() has run: every later start completes with ECANCELED.
    bool closed() const noexcept { return m_closing; }
    io::backend_kind kind() const noexcept { return m_kind; }

    // ---- owner thread only ----
    /// Starts `op`. False if it finished at once (op.result is set).
    bool start(io_op& op) noexcept;
    /// Acts on cross-thread requests, flushes submissions and collects
    /// finished ops without blocking.
    void poll() noexcept { reap(false); }
    /// As poll(), but sleeps until at least one op finishes or the wake
    /// eventfd is written (returns at once if ops are ready already).
    void wait() noexcept { reap(true); }
    /// Cheap, syscall-free hint that poll() would find something (spinning).
    bool ready_hint() const noexcept;
    /// True if polling could find anything (ops in flight, requests queued).
    bool has_work() const noexcept;
    /// The collected ops, oldest first, linked through work_item::next (null
    /// if none); `count` receives how many. Each is detached from this
    /// reactor: running it (on any thread of the pool) resumes its coroutine.
    work_item* take_ready(std::size_t& count) noexcept;
    /// Ops started and not yet resumed.
    std::size_t outstanding() const noexcept { return m_in_flight + m_ready_count; }
    /// Cancels everything in flight and completes later starts with ECANCELED.
    void close() noexcept;

    // ---- any thread ----
    /// Asks the owner to cancel `op` (idempotent). `op` stays alive until the
    /// owner has acted: it is not resumed before the request is drained.
    void request_cancel(io_op& op) noexcept;
    /// Asks the owner to close() the reactor.
    void request_close() noexcept;

  protected:
    io_reactor(io::backend_kind kind, int wake_fd, resumer* owner) noexcept;

    /// Hands `op` to the kernel. False if it finished at once (result set).
    virtual bool backend_start(io_op& op) noexcept = 0;
    /// `op` is in flight: make it finish soon (it completes later via
    /// complete(), with -ECANCELED or with its result if it won the race).
    virtual void backend_cancel(io_op& op) noexcept = 0;
    /// Completes every sleep in flight with -ECANCELED (close()).
    virtual void backend_cancel_sleeps() noexcept = 0;
    /// Flushes submissions and collects completions (calls complete()),
    /// blocking until there is one or the eventfd is written if `block`.
    virtual void backend_reap(bool block) noexcept = 0;
    virtual bool backend_ready_hint() const noexcept { return false; }

    /// Owner thread: `op` finished with `result`; queue it for take_ready().
    void complete(io_op& op, std::int64_t result) noexcept;
    /// Called from the derived constructor once the backend is ready.
    void link_pool_stop(std::stop_token pool_stop);

    int wake_fd() const noexcept { return m_wake_fd; }
    bool closing() const noexcept { return m_closing; }

  private:
    struct close_fn {
        io_reactor* self;
        void operator()() const noexcept { self->request_close(); }
    };

    void reap(bool block) noexcept;
    /// Acts on queued cancel/close requests; true if it did anything.
    bool drain_requests() noexcept;

    io::backend_kind m_kind;
    int m_wake_fd;
    resumer* m_owner;

    // Owner-thread state.
    // Ops in flight but sleeps (doubly linked through list_prev/list_next);
    // sleeps are in the backend's timer heap.
    io_fd_op* m_list = nullptr;
    std::size_t m_in_flight = 0;
    io_op* m_ready_head = nullptr;
    io_op* m_ready_tail = nullptr;
    std::size_t m_ready_count = 0;
    bool m_closing = false;

    // Cross-thread doors: stop callbacks push ops to cancel, the owner takes
    // them all when it reaps.
    alignas(64) intrusive_stack<io_op, &io_op::cancel_next> m_cancels;
    std::atomic<bool> m_close_requested{false};
    std::optional<std::stop_callback<close_fn>> m_pool_stop_link;
};

/// Backend constructors (uring_reactor.cpp, epoll_reactor.cpp).
std::unique_ptr<io_reactor> make_uring_reactor(int wake_fd, resumer* owner);
std::unique_ptr<io_reactor> make_epoll_reactor(int wake_fd, resumer* owner);
/// True if io_uring_setup works in this process (a throwaway ring).
bool uring_supported() noexcept;

}  // namespace coexec::detail
