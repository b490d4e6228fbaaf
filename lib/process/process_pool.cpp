// lib/process/process_pool.cpp — the process_pool's core: queue, dispatch, supervisor.
//
// Threads: callers (submit/cancel/shutdown) and one supervisor thread per
// pool. `m_mutex` guards the queue, the slots' task bookkeeping and the
// producer side of every channel (so each parent→worker ring has one
// producer at a time). The supervisor is the only consumer of the
// worker→parent rings and the only thread that starts or reaps workers.
//
// Invariants:
// - A worker holds at most one task (`slot::current`), so a death or a
//   deadline is pinned to exactly that task, and a task handed out is running
//   (try_start succeeded at hand-off). Everything else waits, cancellable, in
//   `m_pending`. (CPython allows workers + 1 ahead; one per worker keeps
//   deadlines and crash attribution exact, at the cost of one hand-off of a
//   few µs between tasks — map sends whole chunks, so that cost is per chunk.)
// - Futures are completed, and tasks destroyed, outside `m_mutex`: completing
//   runs callbacks and resumes coroutines, which may call back into the pool.
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "coexec/process_pool.hpp"
#include "process/channel.hpp"
#include "process/launch.hpp"
#include "util/spin.hpp"

namespace coexec::detail {
namespace {

using clock = std::chrono::steady_clock;
using namespace proc;

constexpr std::size_t ring_capacity = 256 * 1024;
// The supervisor spins this long after its last event before sleeping in
// epoll: a caller that submits one task at a time then never pays a wake-up.
constexpr std::chrono::microseconds supervisor_spin{50};
// ... unless tasks take this long on average (from hand-off to result): then
// a wake-up is small next to the task, and on a machine with as many workers
// as cores the spinning would take that time from the workers (measured:
// primes on 2 workers, 64 tasks of ~3.5 ms, lost ~4% to the parent's spins).
constexpr std::int64_t long_task_ns = 1'000'000;
// SIGTERM → SIGKILL grace for deadlines and terminate_workers.
constexpr std::chrono::milliseconds term_grace{200};
// How long workers get to exit after a clean shutdown before SIGKILL.
constexpr std::chrono::milliseconds exit_grace{2000};
// If the fork server's report of a death does not come, give up waiting.
constexpr std::chrono::milliseconds status_wait{1000};
// Workers dying before they are ready this many times in a row break the pool
// (a crashing initializer would otherwise respawn forever).
constexpr int max_start_failures = 5;

constexpr auto never = clock::time_point::max();

enum class ev : std::uint64_t { wake = 1, report = 2, result = 3, pidfd = 4 };

std::uint64_t ev_data(ev kind, std::size_t slot, std::uint32_t gen) {
    return (static_cast<std::uint64_t>(kind) << 56) | (static_cast<std::uint64_t>(slot) << 32) |
           gen;
}

std::size_t default_workers() {
    cpu_set_t set;
    if (::sched_getaffinity(0, sizeof set, &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0) return static_cast<std::size_t>(n);
    }
    const unsigned n = std::thread::hardware_concurrency();
    return n != 0 ? n : 1;
}

struct worker_status {
    int signal = 0;
    int exit_code = -1;  // -1: unknown (the report was lost)
};

worker_status from_wait_status(int st) {
    if (WIFSIGNALED(st)) return {WTERMSIG(st), 0};
    if (WIFEXITED(st)) return {0, WEXITSTATUS(st)};
    return {};
}

struct slot {
    std::uint32_t gen = 0;
    bool live = false;           // a process exists (or existed and is not yet accounted for)
    bool dead = false;           // its pidfd fired
    bool accepting = false;      // may be given tasks
    bool ready = false;          // its initializer finished
    bool expected_exit = false;  // we asked it to exit or killed it
    pid_t pid = -1;
    unique_fd pidfd;
    bool direct_child = false;
    channel ch;
    std::unique_ptr<process_task> current;
    std::uint64_t current_id = 0;
    std::size_t tasks_done = 0;
    clock::time_point deadline = never;      // of the current task
    clock::time_point kill_at = never;       // SIGKILL escalation
    clock::time_point status_until = never;  // dead, waiting for the fork server's report
    clock::time_point dispatched_at{};       // of the current task
};

class cancel_registry;

}  // namespace

struct process_pool_core::impl : std::enable_shared_from_this<process_pool_core::impl> {
    explicit impl(const process_pool_options& o);
    ~impl();

    void start();
    void submit(std::unique_ptr<process_task> t);
    void shutdown(bool wait, bool cancel_futures);
    void terminate_workers();
    executor_stats stats() const noexcept;
    /// Takes `state`'s task away from its worker (killing the worker) and
    /// counts it cancelled; null if this pool does not run it.
    std::unique_ptr<process_task> take_running(shared_state_base& state) noexcept;

    using task_list = std::vector<std::unique_ptr<process_task>>;

    // ---- under m_mutex ----
    void dispatch_locked(task_list& dropped);
    void retire_locked(std::size_t i) noexcept;
    void signal_locked(slot& s, int sig) noexcept;
    void break_locked(const std::string& reason, task_list& failed);
    void launch_locked(std::size_t i);

    // ---- supervisor ----
    void run(std::promise<void>& started);
    bool poll_results();
    void handle_message(std::size_t i, message& m);
    bool check_timers(clock::time_point now);
    void handle_event(std::uint64_t data);
    void finish_death(std::size_t i, worker_status st);
    bool try_finish_deaths();
    void wake() noexcept;
    void join();

    process_pool_options m_options;
    std::size_t m_workers;
    launch_method m_method = launch_method::spawn;
    zygote* m_zygote = nullptr;
    std::uint32_t m_pool_id = 0;
    unique_fd m_report;
    bool m_zygote_gone = false;
    unique_fd m_epoll;
    unique_fd m_wake;

    mutable std::mutex m_mutex;
    std::deque<std::unique_ptr<process_task>> m_pending;
    std::vector<slot> m_slots;
    std::vector<std::size_t> m_idle;  // LIFO: the most recently active worker is still spinning
    std::uint64_t m_next_id = 0;
    bool m_shutdown = false;
    bool m_broken = false;
    std::string m_broken_reason;
    int m_start_failures = 0;
    clock::time_point m_stop_deadline = never;  // set when the final stop begins

    std::map<pid_t, int> m_reports;  // supervisor only: fork-server reports not yet matched

    // Encoding buffers of finished large tasks, kept for the next submits:
    // a 64 MiB argument then lands in pages that already exist instead of
    // faulting in fresh ones (this VM: ~5x slower than a warm copy).
    std::mutex m_buffers_mutex;
    std::vector<std::vector<std::byte>> m_buffers;  // reserved: pushing never allocates
    std::size_t m_buffer_bytes = 0;
    std::atomic<std::size_t> m_buffer_count{0};

    static constexpr std::size_t recycle_min_bytes = std::size_t{1} << 20;
    static constexpr std::size_t recycle_max_total = std::size_t{512} << 20;

    void recycle_message(std::vector<std::byte>& b) noexcept {
        if (b.capacity() < recycle_min_bytes) return;
        std::lock_guard lock(m_buffers_mutex);
        if (m_buffers.size() == m_buffers.capacity() ||
            m_buffer_bytes + b.capacity() > recycle_max_total) {
            return;
        }
        b.clear();
        m_buffer_bytes += b.capacity();
        m_buffers.push_back(std::move(b));
        m_buffer_count.store(m_buffers.size(), std::memory_order_relaxed);
    }

    std::vector<std::byte> take_message_buffer() noexcept {
        if (m_buffer_count.load(std::memory_order_relaxed) == 0) return {};
        std::lock_guard lock(m_buffers_mutex);
        if (m_buffers.empty()) return {};
        std::vector<std::byte> b = std::move(m_buffers.back());
        m_buffers.pop_back();
        m_buffer_bytes -= b.capacity();
        m_buffer_count.store(m_buffers.size(), std::memory_order_relaxed);
        return b;
    }

    std::thread m_thread;
    std::thread::id m_thread_id;
    std::mutex m_join_mutex;

    std::atomic<std::uint64_t> m_submitted{0}, m_completed{0}, m_failed{0}, m_cancelled{0},
        m_respawns{0};
    // Bumped at every hand-off to a worker. The supervisor treats a change as
    // activity and keeps spinning for the result; otherwise a caller that
    // submits one task at a time from its own thread would find the
    // supervisor asleep (its spin measured from the previous result) and pay
    // an eventfd wake-up per task, which then keeps it in that slow regime.
    std::atomic<std::uint64_t> m_dispatches{0};
    // Mean task service time (hand-off to result), an exponential moving
    // average over the last ~8 tasks; decides whether the supervisor spins.
    std::atomic<std::int64_t> m_service_ns{0};
    // Mirrors m_shutdown so the spinning supervisor need not take the mutex.
    std::atomic<bool> m_shutdown_flag{false};
};

namespace {

// future::cancel() on a running process task lands here. One immortal hook
// for all pools: a state may be cancelled while its pool is being destroyed,
// so the hook must not be a pool object; it finds the pool in a registry that
// pools leave (under the registry lock) before they die.
class cancel_registry final : public cancel_hook {
  public:
    static cancel_registry& instance() {
        static auto* r = new cancel_registry();  // never destroyed (used during static destruction)
        return *r;
    }
    void add(process_pool_core::impl* p) {
        std::lock_guard lock(m_mutex);
        m_pools.push_back(p);
    }
    void remove(process_pool_core::impl* p) {
        std::lock_guard lock(m_mutex);
        std::erase(m_pools, p);
    }
    bool cancel_running(shared_state_base& state) noexcept override {
        std::unique_ptr<process_task> victim;
        {
            std::lock_guard lock(m_mutex);
            for (auto* p : m_pools) {
                if ((victim = p->take_running(state))) break;
            }
        }
        if (!victim) return false;
        // Completed outside every lock: callbacks may cancel other futures.
        // We own the task now, so nobody else can have completed the state.
        return state.set_cancelled();
    }

  private:
    std::mutex m_mutex;
    std::vector<process_pool_core::impl*> m_pools;
};

}  // namespace

process_pool_core::impl::impl(const process_pool_options& o)
    : m_options(o), m_workers(o.max_workers != 0 ? o.max_workers : default_workers()) {
    m_slots.resize(m_workers);
    m_buffers.reserve(m_workers);
    switch (o.start) {
        case start_method::fork_server:
            // Only ever made while single-threaded; otherwise fall back to spawn.
            m_zygote = zygote::ensure(true);
            m_method = m_zygote != nullptr ? launch_method::fork_server : launch_method::spawn;
            break;
        case start_method::fork:
            m_method = launch_method::fork;
            break;
        case start_method::spawn:
            m_method = launch_method::spawn;
            break;
    }
    m_epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!m_epoll) throw_errno("epoll_create1");
    m_wake.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!m_wake) throw_errno("eventfd");
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = ev_data(ev::wake, 0, 0);
    if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, m_wake.get(), &e) != 0) throw_errno("epoll_ctl");
    if (m_method == launch_method::fork_server) {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) {
            throw_errno("socketpair");
        }
        m_report.reset(sv[0]);
        unique_fd theirs(sv[1]);
        m_pool_id = m_zygote->register_pool(theirs.get());
        e.data.u64 = ev_data(ev::report, 0, 0);
        if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, m_report.get(), &e) != 0)
            throw_errno("epoll_ctl");
    }
}

process_pool_core::impl::~impl() {
    if (m_zygote != nullptr && m_pool_id != 0) m_zygote->unregister_pool(m_pool_id);
}

void process_pool_core::impl::start() {
    std::promise<void> started;
    auto ready = started.get_future();
    // Workers are started by the supervisor thread: PR_SET_PDEATHSIG follows
    // the thread that forked, and this one lives as long as the workers.
    // The thread keeps the impl alive, so a pool destroyed from one of its own
    // done-callbacks (on this thread) does not pull the state from under it.
    m_thread = std::thread([self = shared_from_this(), &started] { self->run(started); });
    try {
        ready.get();
    } catch (...) {
        m_thread.join();
        throw;
    }
    cancel_registry::instance().add(this);
}

void process_pool_core::impl::wake() noexcept {
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t r = ::write(m_wake.get(), &one, sizeof one);
}

// ---------------------------------------------------------------------------
// Dispatch (under m_mutex)
// ---------------------------------------------------------------------------

void process_pool_core::impl::dispatch_locked(task_list& dropped) {
    bool timed = false;
    while (!m_pending.empty() && !m_idle.empty()) {
        std::unique_ptr<process_task>& front = m_pending.front();
        // A task requeued after its worker died before starting it is already running.
        const auto st = front->state->load_status();
        if (st == status::pending ? !front->state->try_start() : front->state->is_done()) {
            m_cancelled.fetch_add(1, std::memory_order_relaxed);
            dropped.push_back(std::move(front));
            m_pending.pop_front();
            continue;
        }
        const std::size_t i = m_idle.back();
        slot& s = m_slots[i];
        const std::uint64_t id = ++m_next_id;
        try {
            s.ch.send(msg_kind::task, id, front->message, front->fds);
        } catch (...) {
            // The worker is gone or wedged; its death will be noticed through
            // its pidfd. Stop giving it work; the task stays first in line.
            m_idle.pop_back();
            s.accepting = false;
            signal_locked(s, SIGKILL);
            continue;
        }
        m_idle.pop_back();
        s.current = std::move(front);
        m_pending.pop_front();
        s.current_id = id;
        const auto now = clock::now();
        s.dispatched_at = now;
        m_dispatches.fetch_add(1, std::memory_order_relaxed);
        const auto timeout =
            s.current->timeout.count() != 0 ? s.current->timeout : m_options.task_timeout;
        if (timeout.count() > 0) {
            s.deadline = now + std::chrono::duration_cast<clock::duration>(timeout);
            timed = true;
        } else {
            s.deadline = never;
        }
    }
    // The supervisor may be asleep with no timer: make it recompute its timeout.
    if (timed && std::this_thread::get_id() != m_thread_id) wake();
}

void process_pool_core::impl::signal_locked(slot& s, int sig) noexcept {
    if (!s.live || s.dead) return;
    s.expected_exit = true;
    // pidfd first: it cannot hit a recycled pid. The process group (the worker
    // leads its own) catches any children the task started.
    if (pidfd_send_signal(s.pidfd.get(), sig) == 0) ::kill(-s.pid, sig);
}

void process_pool_core::impl::retire_locked(std::size_t i) noexcept {
    slot& s = m_slots[i];
    s.accepting = false;
    std::erase(m_idle, i);
    s.expected_exit = true;
    try {
        s.ch.send(msg_kind::exit, 0, {});
        s.kill_at = clock::now() + exit_grace;
    } catch (...) {
        signal_locked(s, SIGKILL);
    }
}

void process_pool_core::impl::break_locked(const std::string& reason, task_list& failed) {
    if (!m_broken) {
        m_broken = true;
        m_broken_reason = reason;
    }
    for (auto& t : m_pending)
        failed.push_back(std::move(t));
    m_pending.clear();
    for (auto& s : m_slots) {
        if (s.current) failed.push_back(std::move(s.current));
        s.accepting = false;
        signal_locked(s, SIGKILL);
    }
    m_idle.clear();
}

void process_pool_core::impl::launch_locked(std::size_t i) {
    slot& s = m_slots[i];
    channel_fds w;
    channel ch = channel::create(ring_capacity, w);
    struct closer {
        channel_fds& w;
        ~closer() {
            for (int fd : {w.memfd, w.to_worker_event, w.to_parent_event, w.socket})
                ::close(fd);
        }
    } close_worker_end{
        w};  // the parent must not keep the worker's end: its hang-up is the worker's signal
    launched l;
    if (m_method == launch_method::fork_server && !m_zygote_gone) {
        try {
            l = m_zygote->spawn(m_pool_id, w);
        } catch (const std::system_error&) {
            if (m_zygote->alive()) throw;
            m_zygote_gone = true;  // fall back to spawn below
        }
    }
    if (!l.pidfd) {
        l = launch_direct(
            m_method == launch_method::fork ? launch_method::fork : launch_method::spawn, w);
    }
    s.gen++;
    s.live = true;
    s.dead = false;
    s.accepting = true;
    s.ready = false;
    s.expected_exit = false;
    s.pid = l.pid;
    s.pidfd = std::move(l.pidfd);
    s.direct_child = l.direct_child;
    s.ch = std::move(ch);
    s.tasks_done = 0;
    s.deadline = s.kill_at = s.status_until = never;
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = ev_data(ev::result, i, s.gen);
    if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, s.ch.wake_fd(), &e) != 0)
        throw_errno("epoll_ctl");
    e.data.u64 = ev_data(ev::pidfd, i, s.gen);
    if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, s.pidfd.get(), &e) != 0) throw_errno("epoll_ctl");
    std::vector<std::byte> cfg;
    byte_writer cw(cfg);
    cw.put_u64(m_options.initializer != nullptr
                   ? encode_code_address(std::bit_cast<const void*>(m_options.initializer))
                   : 0);
    s.ch.send(msg_kind::config, 0, cfg);
    m_idle.push_back(i);
}

// ---------------------------------------------------------------------------
// Caller-facing operations
// ---------------------------------------------------------------------------

void process_pool_core::impl::submit(std::unique_ptr<process_task> t) {
    t->state->set_cancel_hook(&cancel_registry::instance());
    task_list dropped;
    {
        std::lock_guard lock(m_mutex);
        if (m_broken)
            throw broken_pool("process_pool::submit: the pool is broken: " + m_broken_reason);
        if (m_shutdown)
            throw executor_shutdown("process_pool::submit: the pool has been shut down");
        m_submitted.fetch_add(1, std::memory_order_relaxed);
        m_pending.push_back(std::move(t));
        dispatch_locked(dropped);
    }
}

std::unique_ptr<process_task> process_pool_core::impl::take_running(
    shared_state_base& state) noexcept {
    std::unique_ptr<process_task> victim;
    {
        std::lock_guard lock(m_mutex);
        for (auto& s : m_slots) {
            if (s.current && s.current->state == &state) {
                victim = std::move(s.current);
                s.accepting = false;
                signal_locked(s, SIGKILL);  // the supervisor respawns it when the pidfd fires
                break;
            }
        }
        if (!victim) {
            // A started task requeued after its worker died before running it.
            for (auto it = m_pending.begin(); it != m_pending.end(); ++it) {
                if ((*it)->state == &state) {
                    victim = std::move(*it);
                    m_pending.erase(it);
                    break;
                }
            }
        }
    }
    // Counted before the state completes (see handle_message).
    if (victim) m_cancelled.fetch_add(1, std::memory_order_relaxed);
    return victim;
}

void process_pool_core::impl::shutdown(bool wait, bool cancel_futures) {
    task_list cancelled;
    {
        std::lock_guard lock(m_mutex);
        m_shutdown = true;
        m_shutdown_flag.store(true, std::memory_order_release);
        if (cancel_futures) {
            for (auto& t : m_pending)
                cancelled.push_back(std::move(t));
            m_pending.clear();
        }
    }
    wake();
    for (auto& t : cancelled) {
        if (t->state->set_cancelled()) m_cancelled.fetch_add(1, std::memory_order_relaxed);
    }
    cancelled.clear();
    if (wait) join();
}

void process_pool_core::impl::terminate_workers() {
    task_list cancelled;
    {
        std::lock_guard lock(m_mutex);
        m_shutdown = true;
        m_shutdown_flag.store(true, std::memory_order_release);
        for (auto& t : m_pending)
            cancelled.push_back(std::move(t));
        m_pending.clear();
        const auto kill_at = clock::now() + term_grace;
        for (auto& s : m_slots) {
            if (s.current) cancelled.push_back(std::move(s.current));
            s.accepting = false;
            if (s.live && !s.dead) {
                signal_locked(s, SIGTERM);
                s.kill_at = kill_at;
            }
        }
        m_idle.clear();
    }
    wake();
    for (auto& t : cancelled) {
        if (t->state->set_cancelled()) m_cancelled.fetch_add(1, std::memory_order_relaxed);
    }
    cancelled.clear();
    join();
}

void process_pool_core::impl::join() {
    std::lock_guard lock(m_join_mutex);
    if (std::this_thread::get_id() == m_thread_id) {
        // From a done-callback: we cannot wait for ourselves. The thread owns a
        // reference to the impl and finishes the shutdown on its own.
        if (m_thread.joinable()) m_thread.detach();
        return;
    }
    if (m_thread.joinable()) m_thread.join();
}

executor_stats process_pool_core::impl::stats() const noexcept {
    executor_stats st;
    st.submitted = m_submitted.load(std::memory_order_relaxed);
    st.completed = m_completed.load(std::memory_order_relaxed);
    st.failed = m_failed.load(std::memory_order_relaxed);
    st.cancelled = m_cancelled.load(std::memory_order_relaxed);
    st.respawns = m_respawns.load(std::memory_order_relaxed);
    try {
        std::lock_guard lock(m_mutex);
        for (const auto& t : m_pending) {
            if (!t->state->is_done()) ++st.queued;
        }
        for (const auto& s : m_slots) {
            if (s.current) ++st.running;
            if (s.live && !s.dead) ++st.workers_alive;
        }
    } catch (...) {
        // std::mutex::lock only throws on a broken system; report the counters alone.
    }
    return st;
}

// ---------------------------------------------------------------------------
// Supervisor
// ---------------------------------------------------------------------------

void process_pool_core::impl::run(std::promise<void>& started) {
    // Written here, read by others only after `started` is set (which orders it).
    m_thread_id = std::this_thread::get_id();
    try {
        std::lock_guard lock(m_mutex);
        for (std::size_t i = 0; i < m_slots.size(); ++i)
            launch_locked(i);
    } catch (...) {
        // Kill whatever did start, then report the failure to the constructor.
        for (auto& s : m_slots) {
            if (s.live) {
                pidfd_send_signal(s.pidfd.get(), SIGKILL);
                if (s.direct_child) {
                    siginfo_t info;
                    ::waitid(P_PIDFD, static_cast<id_t>(s.pidfd.get()), &info, WEXITED);
                }
            }
        }
        started.set_exception(std::current_exception());
        return;
    }
    started.set_value();

    auto last_activity = clock::now();
    auto last_epoll = last_activity;
    std::uint64_t seen_dispatches = 0;
    std::vector<epoll_event> events(m_slots.size() * 2 + 4);
    for (;;) {
        bool progress = poll_results();
        if (const auto d = m_dispatches.load(std::memory_order_relaxed); d != seen_dispatches) {
            seen_dispatches = d;
            progress = true;
        }
        const auto now = clock::now();
        if (now - last_epoll >= std::chrono::milliseconds(1)) {
            // Busy with results: still look at deaths and the fork server
            // now and then, without sleeping.
            last_epoll = now;
            const int n =
                ::epoll_wait(m_epoll.get(), events.data(), static_cast<int>(events.size()), 0);
            for (int k = 0; k < n; ++k)
                handle_event(events[static_cast<std::size_t>(k)].data.u64);
        }
        progress |= check_timers(now);
        progress |= try_finish_deaths();
        if (m_shutdown_flag.load(std::memory_order_acquire)) {
            std::lock_guard lock(m_mutex);
            const bool busy = !m_pending.empty() ||
                              std::any_of(m_slots.begin(), m_slots.end(),
                                          [](const slot& s) { return s.current != nullptr; });
            if (m_shutdown && !busy) {
                if (m_stop_deadline == never) {
                    // Everything accepted has finished: ask the workers to exit.
                    m_stop_deadline = now + exit_grace;
                    for (std::size_t i = 0; i < m_slots.size(); ++i) {
                        if (m_slots[i].live && !m_slots[i].dead) retire_locked(i);
                    }
                }
                if (std::none_of(m_slots.begin(), m_slots.end(),
                                 [](const slot& s) { return s.live; }))
                    break;
            }
        }
        if (progress) {
            last_activity = clock::now();
            continue;
        }
        const bool long_tasks = m_service_ns.load(std::memory_order_relaxed) > long_task_ns;
        if (!long_tasks && clock::now() - last_activity < supervisor_spin) {
            // Yield rather than only pause: on a machine with fewer cores
            // than spinning parties (caller, supervisor, worker), the one
            // with real work to do must get the CPU.
            for (int k = 0; k < 32; ++k)
                cpu_relax();
            ::sched_yield();
            continue;
        }
        // Announce sleep on every live channel, then re-check (see process/channel.hpp).
        bool quiet = true;
        for (auto& s : m_slots) {
            if (s.live && s.ch && !s.ch.prepare_sleep()) quiet = false;
        }
        if (quiet) {
            clock::time_point next = never;
            {
                std::lock_guard lock(m_mutex);
                for (const auto& s : m_slots) {
                    next = std::min({next, s.deadline, s.kill_at, s.status_until});
                }
                next = std::min(next, m_stop_deadline);
            }
            int timeout_ms = -1;
            if (next != never) {
                const auto left =
                    std::chrono::ceil<std::chrono::milliseconds>(next - clock::now()).count();
                timeout_ms = static_cast<int>(std::clamp<long long>(left, 0, 60'000));
            }
            const int n = ::epoll_wait(m_epoll.get(), events.data(),
                                       static_cast<int>(events.size()), timeout_ms);
            for (int k = 0; k < n; ++k)
                handle_event(events[static_cast<std::size_t>(k)].data.u64);
            last_epoll = clock::now();
        }
        for (auto& s : m_slots) {
            if (s.live && s.ch) s.ch.end_sleep(false);
        }
        last_activity = clock::now();
    }
    // Final reap of anything left (the fork server reaps its own children).
    for (auto& s : m_slots)
        s.ch = channel();
}

void process_pool_core::impl::handle_event(std::uint64_t data) {
    const auto kind = static_cast<ev>(data >> 56);
    const std::size_t i = static_cast<std::size_t>((data >> 32) & 0xff'ffff);
    const auto gen = static_cast<std::uint32_t>(data);
    switch (kind) {
        case ev::wake: {
            std::uint64_t v;
            [[maybe_unused]] ssize_t r = ::read(m_wake.get(), &v, sizeof v);
            break;
        }
        case ev::report: {
            death_report rep;
            for (;;) {
                const ssize_t r = ::recv(m_report.get(), &rep, sizeof rep, MSG_DONTWAIT);
                if (r == static_cast<ssize_t>(sizeof rep)) {
                    m_reports[rep.pid] = rep.wait_status;
                    continue;
                }
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                    // The fork server is gone (its workers die with it).
                    ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, m_report.get(), nullptr);
                    m_zygote_gone = true;
                }
                break;
            }
            break;
        }
        case ev::result:
            if (i < m_slots.size() && m_slots[i].gen == gen && m_slots[i].live)
                m_slots[i].ch.drain_wake();
            break;
        case ev::pidfd:
            if (i < m_slots.size() && m_slots[i].gen == gen && m_slots[i].live &&
                !m_slots[i].dead) {
                slot& s = m_slots[i];
                ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, s.pidfd.get(), nullptr);
                ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, s.ch.wake_fd(), nullptr);
                std::lock_guard lock(m_mutex);
                s.dead = true;
                s.accepting = false;
                std::erase(m_idle, i);
                s.status_until = clock::now() + status_wait;
            }
            break;
    }
}

bool process_pool_core::impl::try_finish_deaths() {
    bool any = false;
    for (std::size_t i = 0; i < m_slots.size(); ++i) {
        slot& s = m_slots[i];
        if (!s.live || !s.dead) continue;
        worker_status st;
        bool known = false;
        if (s.direct_child) {
            siginfo_t info{};
            if (::waitid(P_PIDFD, static_cast<id_t>(s.pidfd.get()), &info, WEXITED | WNOHANG) ==
                    0 &&
                info.si_pid != 0) {
                st = info.si_code == CLD_EXITED ? worker_status{0, info.si_status}
                                                : worker_status{info.si_status, 0};
            }
            known = true;  // ECHILD (someone else reaped it): status unknown
        } else if (auto it = m_reports.find(s.pid); it != m_reports.end()) {
            st = from_wait_status(it->second);
            m_reports.erase(it);
            known = true;
        } else if (m_zygote_gone || clock::now() >= s.status_until) {
            known = true;
        }
        if (!known) continue;
        finish_death(i, st);
        any = true;
    }
    return any;
}

void process_pool_core::impl::finish_death(std::size_t i, worker_status st) {
    slot& s = m_slots[i];
    // A result written just before the death still counts.
    message m;
    try {
        while (s.ch.try_receive(m)) {
            handle_message(i, m);
            s.ch.release(m);
        }
    } catch (...) {
        s.ch.release(m);
    }
    task_list failed;
    std::unique_ptr<process_task> died_with;
    std::exception_ptr died_error;
    std::string break_reason;
    {
        std::lock_guard lock(m_mutex);
        const pid_t pid = s.pid;
        if (s.current) {
            if (s.ch.running_id() != s.current_id) {
                // It never started there: run it elsewhere.
                m_pending.push_front(std::move(s.current));
            } else {
                died_with = std::move(s.current);
            }
        }
        const bool unexpected = !s.expected_exit;
        const bool was_ready = s.ready;
        s.live = false;
        s.dead = false;
        s.accepting = false;
        s.pidfd.reset();
        s.ch = channel();
        s.deadline = s.kill_at = s.status_until = never;
        std::erase(m_idle, i);

        if (died_with) {
            worker_died death(pid, st.signal, st.exit_code, "a process_pool task");
            if (m_options.on_worker_death == worker_death::break_pool) {
                break_reason = std::string("a worker died: ") + death.what();
                failed.push_back(std::move(died_with));
            } else {
                died_error = std::make_exception_ptr(death);  // completed below, outside the lock
            }
        }
        if (unexpected && !was_ready && !died_with && !m_broken) {
            if (++m_start_failures >= max_start_failures) {
                worker_died death(pid, st.signal, st.exit_code);
                break_reason =
                    std::string("worker processes keep dying while starting: ") + death.what();
            }
        }
        if (!break_reason.empty()) break_locked(break_reason, failed);
        const bool needed =
            !m_broken && (!m_shutdown || !m_pending.empty() ||
                          std::any_of(m_slots.begin(), m_slots.end(),
                                      [](const slot& x) { return x.current != nullptr; }));
        if (needed) {
            try {
                launch_locked(i);
                m_respawns.fetch_add(1, std::memory_order_relaxed);
            } catch (const std::exception& e) {
                break_locked(std::string("could not start a worker process: ") + e.what(), failed);
            }
        }
        task_list dropped;
        dispatch_locked(dropped);
        for (auto& t : dropped)
            failed.push_back(std::move(t));
    }
    if (died_with) {
        // Counted before completing: whoever sees the future done sees the counters too.
        m_failed.fetch_add(1, std::memory_order_relaxed);
        died_with->state->set_exception(died_error);
    }
    const std::string reason = m_broken_reason;
    for (auto& t : failed) {
        if (!t->state->is_done()) {
            m_failed.fetch_add(1, std::memory_order_relaxed);
            t->state->set_exception(std::make_exception_ptr(
                broken_pool("process_pool: the pool is broken: " + reason)));
        }
    }
}

bool process_pool_core::impl::poll_results() {
    bool any = false;
    message m;
    for (std::size_t i = 0; i < m_slots.size(); ++i) {
        slot& s = m_slots[i];
        if (!s.live || !s.ch) continue;
        try {
            while (s.ch.try_receive(m)) {
                any = true;
                handle_message(i, m);
                s.ch.release(m);
            }
        } catch (...) {
            // A malformed message: this worker cannot be trusted any more.
            s.ch.release(m);
            std::lock_guard lock(m_mutex);
            s.accepting = false;
            std::erase(m_idle, i);
            s.expected_exit = false;
            if (pidfd_send_signal(s.pidfd.get(), SIGKILL) == 0) ::kill(-s.pid, SIGKILL);
        }
    }
    return any;
}

void process_pool_core::impl::handle_message(std::size_t i, message& m) {
    slot& s = m_slots[i];
    switch (m.kind) {
        case msg_kind::ready: {
            std::lock_guard lock(m_mutex);
            s.ready = true;
            m_start_failures = 0;
            return;
        }
        case msg_kind::init_failed: {
            std::string what = "(unknown)";
            try {
                byte_reader r(m.bytes);
                (void)r.get();
                std::rethrow_exception(decode_exception(r));
            } catch (const std::exception& e) {
                what = e.what();
            } catch (...) {
            }
            task_list failed;
            {
                std::lock_guard lock(m_mutex);
                s.expected_exit = true;
                break_locked("the initializer failed in a worker process: " + what, failed);
            }
            for (auto& t : failed) {
                if (!t->state->is_done()) {
                    m_failed.fetch_add(1, std::memory_order_relaxed);
                    t->state->set_exception(std::make_exception_ptr(broken_pool(
                        "process_pool: the pool is broken: the initializer failed in a worker "
                        "process: " +
                        what)));
                }
            }
            return;
        }
        case msg_kind::result: {
            std::unique_ptr<process_task> t;
            task_list dropped;
            {
                std::lock_guard lock(m_mutex);
                if (!s.current || s.current_id != m.id) return;  // cancelled or timed out meanwhile
                t = std::move(s.current);
                s.deadline = never;
                ++s.tasks_done;
                const std::int64_t took = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                              clock::now() - s.dispatched_at)
                                              .count();
                const std::int64_t mean = m_service_ns.load(std::memory_order_relaxed);
                m_service_ns.store(mean + (took - mean) / 8, std::memory_order_relaxed);
                if (m_options.max_tasks_per_child != 0 &&
                    s.tasks_done >= m_options.max_tasks_per_child) {
                    retire_locked(i);
                } else if (s.accepting) {
                    m_idle.push_back(i);
                }
                dispatch_locked(dropped);
            }
            // Counted before completing, so that whoever sees the future done
            // sees the counters too. The first byte is the codec's status (0: value).
            const bool value = !m.bytes.empty() && m.bytes[0] == std::byte{0};
            (value ? m_completed : m_failed).fetch_add(1, std::memory_order_relaxed);
            byte_reader r(m.bytes, m.fds);
            t->complete(t->state, r, t->count);
            recycle_message(t->message);
            return;
        }
        default:
            throw serialization_error("coexec: unexpected message from a process worker");
    }
}

bool process_pool_core::impl::check_timers(clock::time_point now) {
    task_list expired;
    bool any = false;
    {
        std::lock_guard lock(m_mutex);
        for (auto& s : m_slots) {
            if (s.current && now >= s.deadline) {
                expired.push_back(std::move(s.current));
                s.deadline = never;
                s.accepting = false;
                signal_locked(s, SIGTERM);
                s.kill_at = now + term_grace;
                any = true;
            }
            if (s.live && !s.dead && now >= s.kill_at) {
                signal_locked(s, SIGKILL);
                s.kill_at = never;
                any = true;
            }
        }
        if (m_stop_deadline != never && now >= m_stop_deadline) {
            for (auto& s : m_slots)
                signal_locked(s, SIGKILL);
            m_stop_deadline = now + exit_grace;  // re-arm: keep escalating until all are gone
        }
    }
    for (auto& t : expired) {
        m_failed.fetch_add(1, std::memory_order_relaxed);
        t->state->set_exception(std::make_exception_ptr(deadline_exceeded(
            "process_pool: the task ran past its deadline; its worker process was killed")));
    }
    return any;
}

// ---------------------------------------------------------------------------
// process_pool_core
// ---------------------------------------------------------------------------

process_pool_core::process_pool_core(const process_pool_options& options)
    : m_impl(std::make_shared<impl>(options)) {
    m_impl->start();
}

process_pool_core::~process_pool_core() {
    m_impl->shutdown(true, false);
    cancel_registry::instance().remove(m_impl.get());
}

void process_pool_core::submit(std::unique_ptr<process_task> task) {
    m_impl->submit(std::move(task));
}
std::vector<std::byte> process_pool_core::take_message_buffer() noexcept {
    return m_impl->take_message_buffer();
}
void process_pool_core::shutdown(bool wait, bool cancel_futures) {
    m_impl->shutdown(wait, cancel_futures);
}
void process_pool_core::terminate_workers() {
    m_impl->terminate_workers();
}
executor_stats process_pool_core::stats() const noexcept {
    return m_impl->stats();
}
std::size_t process_pool_core::max_workers() const noexcept {
    return m_impl->m_workers;
}
bool process_pool_core::prepare() {
    return zygote::ensure(true) != nullptr;
}

}  // namespace coexec::detail
