// lib/thread_pool/worker.hpp — a thread_pool's workers and what they share:
// the per-worker queues and sleep states, the inbox for submissions from
// outside, and the small queue operations both halves of the pool use
// (thread_pool.cpp: posting, stealing, the worker loop; shutdown.cpp:
// shutdown, exit and statistics).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "coexec/detail/intrusive_stack.hpp"
#include "coexec/detail/spin.hpp"
#include "coexec/detail/thread_pool_core.hpp"
#include "coexec/thread_pool.hpp"
#include "io/reactor.hpp"
#include "trace/registry.hpp"
#include "util/unique_fd.hpp"

namespace coexec::detail {

/// A test-and-test-and-set lock for the short critical sections of the
/// local queues (a few pointer moves; a mutex's syscall path never pays off).
class spinlock {
  public:
    void lock() noexcept {
        for (;;) {
            if (!m_flag.exchange(true, std::memory_order_acquire)) return;
            while (m_flag.load(std::memory_order_relaxed))
                cpu_relax();
        }
    }
    bool try_lock() noexcept {
        return !m_flag.load(std::memory_order_relaxed) &&
               !m_flag.exchange(true, std::memory_order_acquire);
    }
    void unlock() noexcept { m_flag.store(false, std::memory_order_release); }

  private:
    std::atomic<bool> m_flag{false};
};

// Submissions from threads that are not workers (see shared::inbox).
using inbox_stack = intrusive_stack<work_item, &work_item::next>;

// A worker's sleep state. A waker moves a worker from `sleeping` to
// `notified` (one winner); the worker moves itself back to `awake`, and the
// value it leaves says whether a wake-up was spent on it.
constexpr std::uint32_t awake = 0;
constexpr std::uint32_t sleeping = 1;
constexpr std::uint32_t notified = 2;

// A worker out of queued work reaps its own I/O before it steals, except
// every this many times (worker_main).
constexpr unsigned steal_first_every = 16;

inline std::atomic<pool_hook> g_pool_hook{nullptr};

inline void hook(pool_event e, std::size_t worker) noexcept {
    if (pool_hook h = g_pool_hook.load(std::memory_order_relaxed)) h(e, worker);
}

constexpr std::size_t not_a_worker = static_cast<std::size_t>(-1);

struct thread_pool_core::worker {
    thread_pool_core* pool = nullptr;
    std::size_t index = 0;
    alignas(64) spinlock lock;
    // The owner appends and pops the front; thieves take from the back; a
    // saturated worker appends completions it gives to this one asleep.
    std::deque<work_item*> queue;
    // queue.size(), stored under `lock`; read without it by work_visible().
    std::atomic<std::uint32_t> queued{0};
    alignas(64) std::atomic<std::uint32_t> state{awake};  // awake, sleeping or notified
    // Set before the worker first sleeps: it sleeps in its reactor (woken by
    // writing `wake_fd`) rather than on the `wake` futex word.
    std::atomic<bool> sleeps_in_reactor{false};
    unique_fd wake_fd;                    // eventfd the reactor watches; made with the worker
    std::unique_ptr<io_reactor> reactor;  // owner thread only
    unsigned runs_since_poll = 0;
    // Times this worker ran out of queued work since it last stole first
    // (owner thread only; see worker_main).
    unsigned misses_since_steal = 0;
    // When this worker last ran out of work or woke from sleep (owner thread
    // only): how long it has been busy, for resume_ready's saturation test.
    std::chrono::steady_clock::time_point awake_since{};
    std::thread thread;
    job_counters counters;  // the jobs this worker took and finished
    // Coroutine jobs this worker counted as started (suspended in their
    // first run) and as ended: written by the owner only, summed by
    // coroutines_in_flight (see there).
    std::atomic<std::uint64_t> coroutines_started{0};
    std::atomic<std::uint64_t> coroutines_ended{0};
    // Lent to the worker's thread as its first_run_here() (detail/job.hpp):
    // written by the owner twice per coroutine job, read by may_exit.
    alignas(64) first_run_slot first_run{nullptr};
};

struct thread_pool_core::shared {
    thread_pool_options options;
    // Submissions from threads that are not workers. A worker takes them all
    // at once and runs them oldest first.
    alignas(64) inbox_stack inbox;
    // Workers between announcing their sleep and being woken: a waker that
    // moves one to `notified` takes it off (so posters do not scan the
    // workers for a sleeper while the only one is already woken, waiting for
    // a core); one that wakes by itself takes itself off.
    alignas(64) std::atomic<int> idle{0};
    std::atomic<std::size_t> wake_cursor{0};
    // Idle workers spinning for work right now. Capped at half the cores:
    // every spinner holds a core, and with more runnable threads than cores a
    // spinner delays the very thread (a submitter, a woken worker) it waits for.
    alignas(64) std::atomic<int> spinners{0};
    int max_spinners = 1;
    // Threads outside the pool inside post(). Its item may run, and the
    // pool's owner see that and destroy the pool, before post() has done
    // waking a worker; the destructor waits for this to be 0.
    alignas(64) std::atomic<std::uint32_t> outside_posts{0};
    // On a line of its own, away from outside_posts: idle workers read it
    // while they look for work to steal, and every outside post writes
    // outside_posts twice. Sharing the line made each of those writes a
    // cross-core miss (thread_pool round trip p50 1.1 -> 1.5 us).
    alignas(64) std::vector<std::unique_ptr<worker>> workers;
    std::mutex join_mutex;
    bool joined = false;
    // Its counters in a trace (queue depth, in flight, workers alive).
    std::optional<trace::executor_track> trace;
};

/// Takes every item from the inbox, oldest first (nothing once it is closed).
inline work_item* take_inbox(inbox_stack& inbox) noexcept {
    return inbox_stack::reversed(inbox.take_open());
}

/// The worker leaves the idle state; true if a waker had notified it (and
/// so already took it off `idle`).
inline bool leave_idle(thread_pool_core::worker& self, std::atomic<int>& idle) noexcept {
    const bool was_notified = self.state.exchange(awake, std::memory_order_acq_rel) == notified;
    if (!was_notified) idle.fetch_sub(1, std::memory_order_relaxed);
    return was_notified;
}

/// Publishes the queue's length for work_visible(). Under `w.lock`.
inline void set_queued(thread_pool_core::worker& w) noexcept {
    w.queued.store(static_cast<std::uint32_t>(w.queue.size()), std::memory_order_relaxed);
}

// A worker's queue is a std::deque, which allocates a block every 64 items;
// the inbox is intrusive and never allocates. So an item the queue cannot
// take (out of memory) goes to the inbox: a worker short of memory neither
// loses work nor terminates inside a noexcept path.

/// Appends the chain `first` (linked through `next`) to `w`'s queue, under
/// `w.lock`. Returns the part that found no room (null: all of it queued).
inline work_item* append_to_queue(thread_pool_core::worker& w, work_item* first) noexcept {
    for (; first != nullptr; first = first->next) {
        try {
            w.queue.push_back(first);
        } catch (...) {
            break;
        }
    }
    set_queued(w);
    return first;
}

/// Queues on the inbox what append_to_queue could not (not under a lock);
/// once the inbox is closed (the workers are gone), runs it here.
inline void spill_to_inbox(inbox_stack& inbox, work_item* first) noexcept {
    while (first != nullptr) {
        work_item* next = first->next;
        if (!inbox.try_push(first)) first->run();
        first = next;
    }
}

}  // namespace coexec::detail
