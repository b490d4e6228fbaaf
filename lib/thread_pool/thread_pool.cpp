// lib/thread_pool/thread_pool.cpp — posting, waking, stealing and the
// worker loop (worker.hpp: the structures; shutdown.cpp: shutdown and exit).
#include <pthread.h>

#include "coexec/errors.hpp"
#include "thread_pool/worker.hpp"
#include "util/eventfd.hpp"

namespace coexec::detail {
namespace {

std::size_t default_worker_count() {
    unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    return std::min<std::size_t>(32, cores + 4);
}

thread_local thread_pool_core::worker* t_worker = nullptr;

}  // namespace

void set_pool_test_hook(pool_hook h) noexcept {
    g_pool_hook.store(h, std::memory_order_relaxed);
}

thread_pool_core::thread_pool_core(thread_pool_options options)
    : m_worker_count(options.max_workers != 0 ? options.max_workers : default_worker_count()),
      m_shared(std::make_unique<shared>()) {
    m_shared->options = std::move(options);
    m_shared->max_spinners =
        static_cast<int>(std::max(1u, std::thread::hardware_concurrency() / 2));
    m_shared->workers.reserve(m_worker_count);
    for (std::size_t i = 0; i < m_worker_count; ++i) {
        auto w = std::make_unique<worker>();
        w->pool = this;
        w->index = i;
        w->wake_fd = make_eventfd();  // blocking: the reactor polls it
        m_shared->workers.push_back(std::move(w));
    }
    m_shared->trace.emplace(
        "thread_pool", m_shared->options.thread_name_prefix,
        [](const void* self) noexcept {
            return static_cast<const thread_pool_core*>(self)->stats();
        },
        this);
    // Start threads only once every worker slot exists: thieves scan them all.
    for (auto& w : m_shared->workers) {
        m_alive.fetch_add(1, std::memory_order_relaxed);
        w->thread = std::thread([this, i = w->index] { worker_main(i); });
    }
}

thread_pool_core::~thread_pool_core() {
    // Destruction signals running tasks' stop tokens, then waits (RAII = `with`).
    m_stop.request_stop();
    shutdown(true, false);
    // A thread outside the pool may still be in post() for an item that has
    // already run (it was waking a worker for it): let it leave first.
    for (int round = 1; m_shared->outside_posts.load(std::memory_order_acquire) != 0; ++round)
        wait_a_little(round);
    m_shared->trace.reset();  // before the counters it samples go
}

job_counters& thread_pool_core::counters() noexcept {
    return on_worker_thread() ? t_worker->counters : m_counters;
}

bool thread_pool_core::on_worker_thread() const noexcept {
    return t_worker != nullptr && t_worker->pool == this;
}

void thread_pool_core::submit_job(work_item* job) {
    if (m_shutdown.load(std::memory_order_acquire)) {
        throw executor_shutdown(
            "thread_pool::submit: the pool has been shut down; no new work is accepted");
    }
    if (m_broken.load(std::memory_order_acquire)) {
        throw broken_pool("thread_pool::submit: the pool is broken (a worker's initializer threw)");
    }
    m_counters.on_submitted();
    post(job);
}

void thread_pool_core::post(work_item* item) noexcept {
    bool queued = false;
    const bool outside = !on_worker_thread();
    if (!outside && t_worker->lock.try_lock()) {
        worker& self = *t_worker;
        item->next = nullptr;
        queued = append_to_queue(self, item) == nullptr;
        self.lock.unlock();
    }
    // Relaxed: it is sequenced before the push, which a worker acquires
    // before running the item, so whoever destroys the pool after seeing
    // the item's effect sees this too. (A worker is joined before the pool
    // goes, so its own posts need no count.)
    if (outside) m_shared->outside_posts.fetch_add(1, std::memory_order_relaxed);
    if (!queued) {
        // From outside, or a thief holds our queue's lock: the shared inbox.
        // Waiting for the thief instead makes a worker that produces many
        // items (a fan-out) fight an idle thief for its lock once per item,
        // each steal taking one; the inbox is drained in batches. Measured
        // (100k-child fan-out, 2 workers, median of 15): 1.8-3.2 became
        // 7.0-7.4 M children/s.
        hook(pool_event::before_inbox_push, not_a_worker);
        if (!m_shared->inbox.try_push(item)) {
            // Closed: the workers are gone (run_leftovers). Checked in the same
            // atomic step as the push, so an item is either queued before the
            // last drain or run here, never stranded between the two.
            if (outside) m_shared->outside_posts.fetch_sub(1, std::memory_order_release);
            item->run();
            return;
        }
        hook(pool_event::after_inbox_push, not_a_worker);
    }
    // Pairs with the fence in worker_main: either the sleeper sees the item,
    // or we see it sleeping and wake it (no lost wake-up).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // A spinning worker will take the item (or, if its spin is ending, will
    // see it in the re-check after its own fence, before it sleeps): waking a
    // sleeper as well only costs a syscall and a core.
    if (m_shared->idle.load(std::memory_order_relaxed) > 0 &&
        m_shared->spinners.load(std::memory_order_relaxed) == 0) {
        wake_one();
    }
    // Release: the destructor that sees the count drop sees this thread done.
    if (outside) m_shared->outside_posts.fetch_sub(1, std::memory_order_release);
}

namespace {
/// Wakes `w` if it sleeps: moves it to `notified` (one waker wins) and
/// signals the door it sleeps behind. False if it was not sleeping.
bool try_wake(thread_pool_core::worker& w, std::atomic<int>& idle) noexcept {
    std::uint32_t expected = sleeping;
    if (w.state.load(std::memory_order_seq_cst) != sleeping ||
        !w.state.compare_exchange_strong(expected, notified, std::memory_order_acq_rel)) {
        return false;
    }
    idle.fetch_sub(1, std::memory_order_relaxed);
    hook(pool_event::notified, w.index);
    // Seeing `sleeping` (seq_cst) we also see how it sleeps.
    if (w.sleeps_in_reactor.load(std::memory_order_relaxed)) {
        eventfd_signal(w.wake_fd.get());
    } else {
        w.state.notify_one();
    }
    return true;
}

/// A saturated worker's share of its finished I/O (the chain `first`, n >= 2
/// items) for a worker that sleeps, if one does: moves the back half into
/// that worker's own queue and wakes it. The front half stays in `first`.
void give_to_sleeper(std::vector<std::unique_ptr<thread_pool_core::worker>>& workers,
                     std::atomic<std::size_t>& cursor, std::atomic<int>& idle, inbox_stack& inbox,
                     work_item* first, std::size_t n) noexcept {
    thread_pool_core::worker* peer = nullptr;
    std::size_t start = cursor.fetch_add(1, std::memory_order_relaxed);
    for (std::size_t k = 0; k < workers.size() && peer == nullptr; ++k) {
        thread_pool_core::worker& w = *workers[(start + k) % workers.size()];
        // One without a reactor could not start their next operations.
        if (w.state.load(std::memory_order_relaxed) == sleeping &&
            w.sleeps_in_reactor.load(std::memory_order_relaxed)) {
            peer = &w;
        }
    }
    if (peer == nullptr) return;
    work_item* keep_last = first;
    for (std::size_t k = 1; k < n / 2; ++k)
        keep_last = keep_last->next;
    work_item* given = keep_last->next;
    keep_last->next = nullptr;
    peer->lock.lock();
    given = append_to_queue(*peer, given);
    peer->lock.unlock();
    spill_to_inbox(inbox, given);
    hook(pool_event::gave_completions, peer->index);
    // Pairs with the fence of a worker announcing its sleep: it sees the
    // items in its last look, or we see it sleeping and wake it. One that
    // woke meanwhile looks at its queue before it sleeps again.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    try_wake(*peer, idle);
}
}  // namespace

void thread_pool_core::wake_one() noexcept {
    auto& workers = m_shared->workers;
    std::size_t start = m_shared->wake_cursor.fetch_add(1, std::memory_order_relaxed);
    for (std::size_t k = 0; k < workers.size(); ++k) {
        if (try_wake(*workers[(start + k) % workers.size()], m_shared->idle)) return;
    }
}

bool thread_pool_core::work_visible() const noexcept {
    if (!m_shared->inbox.empty()) return true;
    for (const auto& w : m_shared->workers) {
        if (w->queued.load(std::memory_order_relaxed) != 0) return true;
    }
    return false;
}

// A worker that leaves the idle state with an item may have been counted on
// for other work: a poster skipped its wake-up because this worker was
// spinning, or spent one on it while it was already finding something else
// in its last look before sleeping. If work is still queued and a worker
// sleeps, wake one, so no item waits for a busy worker while another sleeps.
void thread_pool_core::pass_on_wake() noexcept {
    // Pairs with the fence in post: either the poster saw us (and skipped
    // its wake-up), and we see its item here, or it woke someone itself.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (m_shared->idle.load(std::memory_order_relaxed) > 0 && work_visible()) wake_one();
}

work_item* thread_pool_core::find_work(worker& self) noexcept {
    work_item* item = find_local_work(self);
    return item != nullptr ? item : steal_work(self);
}

work_item* thread_pool_core::find_local_work(worker& self) noexcept {
    // 1. Own queue, read without the lock (whose line thieves touch) to see
    // it empty. Others add to it only when giving completions to a worker
    // they saw asleep (give_to_sleeper), which may have woken meanwhile: a
    // zero read here then misses nothing for good, since a worker looks
    // again after the fence of its sleep announcement, and the giver fences
    // after its push and wakes it if it sleeps.
    if (self.queued.load(std::memory_order_relaxed) != 0) {
        self.lock.lock();
        work_item* item = nullptr;
        if (!self.queue.empty()) {  // a thief may have emptied it meanwhile
            item = self.queue.front();
            self.queue.pop_front();
            set_queued(self);
        }
        self.lock.unlock();
        if (item != nullptr) return item;
    }
    // 2. The shared inbox: run the oldest, keep the rest where others can steal.
    if (work_item* batch = take_inbox(m_shared->inbox)) {
        work_item* rest = batch->next;
        if (rest != nullptr) {
            self.lock.lock();
            rest = append_to_queue(self, rest);
            self.lock.unlock();
            spill_to_inbox(m_shared->inbox, rest);
            if (m_shared->idle.load(std::memory_order_relaxed) > 0) wake_one();
        }
        return batch;
    }
    return nullptr;
}

namespace {

// Half of another worker's queue: the first item to run, the rest queued on
// `self` (or spilled to the inbox). A victim whose lock is taken is passed
// over, unless `wait`: then one whose queue holds items is waited for. The
// last look before sleeping waits, as a skipped queue is not an empty one
// there: a poster that saw no worker idle woke nobody and counts on that
// look (a thief holding the victim's lock to take part of the queue leaves
// the rest, and wakes nobody for it either).
template <class Shared>
work_item* steal_from_others(Shared& shared, thread_pool_core::worker& self, bool wait) noexcept {
    auto& workers = shared.workers;
    for (std::size_t k = 1; k < workers.size(); ++k) {
        thread_pool_core::worker& victim = *workers[(self.index + k) % workers.size()];
        if (wait) {
            // Pairs with the fence in post (the caller has fenced since it
            // announced sleep): an item posted before sees it counted.
            if (victim.queued.load(std::memory_order_relaxed) == 0) continue;
            victim.lock.lock();
        } else if (!victim.lock.try_lock()) {
            continue;
        }
        std::size_t n = victim.queue.size();
        if (n == 0) {
            victim.lock.unlock();
            continue;
        }
        // The back half, chained through `next` (queued items do not use
        // it): no allocation while the victim waits, and none to hand it on.
        const auto from = victim.queue.end() - static_cast<std::ptrdiff_t>((n + 1) / 2);
        work_item* first = *from;
        work_item* last = first;
        for (auto it = from + 1; it != victim.queue.end(); ++it) {
            last->next = *it;
            last = *it;
        }
        last->next = nullptr;
        victim.queue.erase(from, victim.queue.end());  // at the end: frees, never allocates
        set_queued(victim);
        hook(pool_event::stole_half, self.index);
        victim.lock.unlock();
        if (work_item* rest = first->next) {
            self.lock.lock();
            rest = append_to_queue(self, rest);
            self.lock.unlock();
            spill_to_inbox(shared.inbox, rest);
        }
        return first;
    }
    return nullptr;
}

}  // namespace

work_item* thread_pool_core::steal_work(worker& self) noexcept {
    // 3. Half of another worker's queue.
    return steal_from_others(*m_shared, self, false);
}

void thread_pool_core::worker_main(std::size_t index) noexcept {
    worker& self = *m_shared->workers[index];
    t_worker = &self;
    t_lent_first_run = &self.first_run;  // the worker outlives the thread
    exchange_current_resumer(this);
    const thread_pool_options& options = m_shared->options;
    std::string name = options.thread_name_prefix + "-" + std::to_string(index);
    if (name.size() > 15) name.resize(15);
    ::pthread_setname_np(::pthread_self(), name.c_str());

    if (options.initializer) {
        try {
            options.initializer();
        } catch (...) {
            m_broken.store(true, std::memory_order_release);
        }
    }

    // The I/O reactor (io_uring ring or epoll set) is made here, on the
    // worker's own thread: the ring is this thread's alone and is never
    // inherited (see lib/io/uring_reactor.cpp). Without one (both backends
    // refused, fd limits) the worker still runs work and sleeps on its
    // futex word; io awaitables then report that no reactor runs them.
    try {
        self.reactor = io_reactor::create(self.wake_fd.get(), this, m_stop.get_token());
        self.sleeps_in_reactor.store(true, std::memory_order_relaxed);
    } catch (const std::exception&) {
        self.reactor.reset();
    }
    io_reactor* const reactor = self.reactor.get();
    // Finished I/O. A worker with time to spare resumes it at once, so a
    // coroutine's ops stay on one ring: a 64-connection echo whose server
    // keeps up with its client reaps 64 completions per batch on one worker;
    // spread over two it is reaped mostly one at a time and its rate fell by
    // 40% (2 cores shared with the client). A saturated worker, busy for
    // `saturated_after` without running out of work, instead pushes the batch
    // to the back of its queue, where a worker with nothing to do steals
    // half: resuming those coroutines starts their next ops on its own ring.
    // (And a coroutine that blocks its worker does not hold up the rest.)
    // If a worker sleeps, it first gives that worker the back half of the
    // batch, in its own queue, and wakes it: left for the sleeper to steal
    // once awake, a wake-up's tens of µs let the owner resume them all
    // first, and 32 file readers started on one worker stayed there, at half
    // the speed, in 4 passes of 12.
    constexpr auto saturated_after = std::chrono::milliseconds(1);
    self.awake_since = std::chrono::steady_clock::now();
    auto resume_ready = [&]() noexcept -> bool {
        std::size_t n = 0;
        work_item* first = reactor->take_ready(n);
        if (first == nullptr) return false;
        if (n == 1 || std::chrono::steady_clock::now() - self.awake_since < saturated_after) {
            for (work_item* it = first; it != nullptr;) {
                work_item* next = it->next;
                it->run();  // may free `it`
                it = next;
            }
            return true;
        }
        if (m_shared->idle.load(std::memory_order_relaxed) > 0) {
            give_to_sleeper(m_shared->workers, m_shared->wake_cursor, m_shared->idle,
                            m_shared->inbox, first, n);
        }
        self.lock.lock();
        work_item* rest = append_to_queue(self, first);
        self.lock.unlock();
        spill_to_inbox(m_shared->inbox, rest);
        // As in post: pairs with the sleeper's fence (no lost wake-up).
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (m_shared->idle.load(std::memory_order_relaxed) > 0 &&
            m_shared->spinners.load(std::memory_order_relaxed) == 0) {
            wake_one();
        }
        return true;
    };

    for (;;) {
        work_item* item = find_local_work(self);
        // Out of queued work: collect finished I/O (no syscall for io_uring
        // when nothing is pending) and resume it here, before stealing: two
        // busy workers that stole each other's queued completions first
        // moved 32 file readers back and forth, and the readers drifted to
        // one of them (cached reads 0.94x the floor of 2 plain pread
        // threads, 1.04x reaping first). But every 16th time the steal comes
        // first: a worker whose ring always has something ready would
        // otherwise never steal, and work queued behind a blocked worker
        // (a job waiting for its own child) would wait as long as I/O flows.
        if (item == nullptr && ++self.misses_since_steal >= steal_first_every) {
            self.misses_since_steal = 0;
            item = steal_work(self);
        }
        if (item == nullptr && reactor != nullptr && reactor->has_work()) {
            reactor->poll();
            if (resume_ready()) continue;
        }
        if (item == nullptr) item = steal_work(self);
        if (item == nullptr) {
            self.awake_since = std::chrono::steady_clock::now();  // out of work: not saturated
            // Spin briefly: a hand-off to a spinning worker costs a few µs, to a
            // sleeping one tens of µs. Finished io_uring ops end the spin too.
            if (m_shared->spinners.fetch_add(1, std::memory_order_relaxed) <
                m_shared->max_spinners) {
                hook(pool_event::spin_begin, index);
                spin_until(
                    [&] {
                        return (item = find_work(self)) != nullptr || may_exit() ||
                               (reactor != nullptr && reactor->ready_hint());
                    },
                    spin::pool_worker);
                hook(item != nullptr ? pool_event::spin_found_work : pool_event::spin_ended_empty,
                     index);
            }
            // Posters skip their wake-up while anyone spins: the last spinner
            // to leave with an item looks for work it was counted on for.
            // (One leaving empty-handed looks again before it sleeps.)
            const bool last = m_shared->spinners.fetch_sub(1, std::memory_order_seq_cst) == 1;
            if (item != nullptr && last) pass_on_wake();
            if (item == nullptr && reactor != nullptr && reactor->ready_hint()) continue;
        }
        if (item == nullptr) {
            self.state.store(sleeping, std::memory_order_seq_cst);
            m_shared->idle.fetch_add(1, std::memory_order_seq_cst);
            std::atomic_thread_fence(std::memory_order_seq_cst);
            hook(pool_event::sleep_announced, index);
            item = find_local_work(self);
            if (item == nullptr) item = steal_from_others(*m_shared, self, true);
            if (item == nullptr) {
                hook(pool_event::last_look_empty, index);
                if (may_exit()) {
                    if (reactor == nullptr || reactor->outstanding() == 0) {
                        leave_idle(self, m_shared->idle);
                        // A worker may sleep because the inbox still held an
                        // item when it looked, which a spinner then took (the
                        // poster woke nobody: the spinner was counted on).
                        // Nothing else would make it look again: wake them all.
                        wake_all();
                        break;
                    }
                    // I/O of coroutines that are not pool jobs (they hopped here
                    // with schedule()) is still in flight: cancel it, let it
                    // finish with ECANCELED, then exit.
                    reactor->close();
                }
                hook(pool_event::about_to_sleep, index);
                // One wait covers both new work (the wake eventfd, written by
                // wake_one/wake_all after they see `sleeping`) and finished I/O.
                if (reactor != nullptr) {
                    reactor->wait();
                } else {
                    self.state.wait(sleeping, std::memory_order_acquire);
                }
                self.awake_since = std::chrono::steady_clock::now();
            }
            // Found work in the last look, yet a poster chose us meanwhile:
            // its item may be another one, so its wake-up goes on.
            const bool absorbed = leave_idle(self, m_shared->idle) && item != nullptr;
            if (absorbed) pass_on_wake();
            if (item == nullptr) {
                if (reactor != nullptr) resume_ready();
                continue;
            }
        }
        if (m_broken.load(std::memory_order_relaxed) &&
            item->try_drop(std::make_exception_ptr(
                broken_pool("thread_pool: the pool is broken (a worker's initializer threw)")))) {
            continue;
        }
        item->run();
        // A busy worker still reaps its I/O now and then, so completions are
        // not starved by a long stream of queued work (and submissions batch).
        if (reactor != nullptr && ++self.runs_since_poll >= 32) {
            self.runs_since_poll = 0;
            if (reactor->has_work()) {
                reactor->poll();
                resume_ready();
            }
        }
    }
    self.reactor.reset();
    exchange_current_resumer(nullptr);
    t_worker = nullptr;
    t_lent_first_run = nullptr;
    // The last worker out closes the inbox and runs what reached it after
    // the others left: with shutdown(wait = false) nobody else would.
    if (m_alive.fetch_sub(1, std::memory_order_acq_rel) == 1) run_leftovers();
}

namespace {
/// Adds one to a counter only its owner thread writes: no read-modify-write,
/// and its line stays in the owner's cache. Sequentially consistent, as the
/// reads in coroutines_in_flight, so all counts fall in one order.
void bump_owned(std::atomic<std::uint64_t>& n) noexcept {
    n.store(n.load(std::memory_order_relaxed) + 1, std::memory_order_seq_cst);
}
}  // namespace

// Each worker counts the coroutine starts and ends it sees on its own line; a
// shared counter both workers add to was 9% of all cycles with 100k sleepers
// on 2 workers (perf): a start on one worker and the end on the other moved
// its cache line twice per sleeper. Only threads that are not workers add to
// the pool's shared pair, and they, not knowing whether a worker will look
// again, wake the workers when they see the count at zero after shutdown. A
// worker that ends the last coroutine looks by itself (may_exit) before it
// sleeps, and the first to exit wakes the others.
void thread_pool_core::coroutine_started() noexcept {
    if (on_worker_thread()) {
        bump_owned(t_worker->coroutines_started);
        return;
    }
    m_outside_started.fetch_add(1, std::memory_order_seq_cst);
    wake_if_drained();
}

void thread_pool_core::coroutine_ended() noexcept {
    if (on_worker_thread()) {
        bump_owned(t_worker->coroutines_ended);
        return;
    }
    m_outside_ended.fetch_add(1, std::memory_order_seq_cst);
    wake_if_drained();
}

void thread_pool_core::wake_if_drained() noexcept {
    if (m_shutdown.load(std::memory_order_seq_cst) && !coroutines_in_flight()) wake_all();
}

}  // namespace coexec::detail
