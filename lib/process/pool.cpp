// lib/process/pool.cpp — process_pool, the callers' side: the queue, submit,
// dispatch to idle workers, shutdown, and cancelling running tasks. The
// supervisor thread's side is supervisor.cpp; their shared state and its
// locking rules are in pool_impl.hpp.
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "process/pool_impl.hpp"
#include "sandbox/sandbox.hpp"
#include "util/cpus.hpp"
#include "util/eventfd.hpp"
#include "util/system_error.hpp"

namespace coexec::detail {
namespace {

using namespace proc;

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
    bool spin_wait(const shared_state_base& state, spin_policy policy,
                   bool eager) noexcept override {
        // The pool running the task, kept alive while this thread helps it
        // (waiter_help.cpp); a pool leaves the registry before it dies.
        std::shared_ptr<process_pool_core::impl> pool;
        {
            // A thread whose waits have been long spins first, but never
            // waits for a lock here: a pool holds its mutex across a
            // respawn's fork (up to the fork server's reply timeout if a
            // task stopped it), and every waiter of every pool would wait.
            std::unique_lock lock(m_mutex, std::defer_lock);
            if (eager) {
                lock.lock();
            } else if (!lock.try_lock()) {
                return cancel_hook::spin_wait(state, policy, eager);
            }
            for (auto* p : m_pools) {
                if (p->runs(state, eager)) {
                    pool = p->weak_from_this().lock();
                    break;
                }
            }
        }
        if (!pool) return cancel_hook::spin_wait(state, policy, eager);  // queued: spin only
        return pool->help_wait(state, policy, eager);
    }

  private:
    std::mutex m_mutex;
    std::vector<process_pool_core::impl*> m_pools;
};

}  // namespace

process_pool_core::impl::impl(const process_pool_options& o)
    : m_options(o), m_workers(o.max_workers != 0 ? o.max_workers : usable_cpus()) {
    sandboxing::check_options(o);  // before any process exists
    m_slots.resize(m_workers);
    m_buffers.reserve(m_workers);
    switch (o.start) {
        case start_method::fork_server:
            m_method = launch_method::fork_server;
            break;
        case start_method::fork:
            m_method = launch_method::fork;
            break;
        case start_method::spawn:
            m_method = launch_method::spawn;
            break;
    }
    reserve_stdio();  // no descriptor of the pool's on 0–2, which workers keep
    m_epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!m_epoll) throw_errno("epoll_create1");
    m_wake = make_eventfd(EFD_NONBLOCK);
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = ev_data(ev::wake, 0, 0);
    if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, m_wake.get(), &e) != 0) throw_errno("epoll_ctl");
    m_trace.emplace(
        "process_pool", "",
        [](const void* self) noexcept { return static_cast<const impl*>(self)->stats(); }, this);
    if (m_method == launch_method::fork_server) {
        // A fork server that died (a task may kill it) is replaced while the
        // program is single-threaded; otherwise this pool spawns. Either way
        // the constructor does not fail for it.
        for (int attempt = 0; attempt < 2 && m_fork_server == nullptr; ++attempt) {
            fork_server* server = fork_server::ensure(true);
            if (server == nullptr) break;
            int sv[2];
            if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) {
                throw_errno("socketpair");
            }
            unique_fd mine(sv[0]);
            unique_fd theirs(sv[1]);
            try {
                m_pool_id = server->register_pool(theirs.get());
            } catch (const std::system_error&) {
                if (server->alive()) throw;
                continue;
            }
            m_fork_server = server;
            m_report = std::move(mine);
        }
        if (m_fork_server == nullptr) {
            m_method = launch_method::spawn;
            warn_spawn_fallback(
                "no fork server is running and the program already runs several threads, "
                "so none can be made safely (process_pool::prepare() was not called while "
                "the program had one thread)");
        } else {
            e.data.u64 = ev_data(ev::report, 0, 0);
            if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, m_report.get(), &e) != 0) {
                // ~impl does not run for a constructor that throws: unregister
                // here, or the fork server keeps the report socket.
                const int err = errno;
                m_fork_server->unregister_pool(m_pool_id);
                throw_system_error(err, "epoll_ctl");
            }
        }
    }
}

process_pool_core::impl::~impl() {
    if (m_fork_server != nullptr && m_pool_id != 0) m_fork_server->unregister_pool(m_pool_id);
}

void process_pool_core::impl::start() {
    m_completions.set_owner(weak_from_this());
    // With the fork server, worker 0 is forked from here (the fork server is
    // its parent, so the forking thread's life does not matter to
    // PR_SET_PDEATHSIG), and the constructor does not wait for the
    // supervisor thread: two hand-offs fewer before the first task is sent.
    // Spawned and forked workers are started by the supervisor thread, which
    // lives as long as they do (PR_SET_PDEATHSIG follows the thread that
    // forked), while the caller waits here.
    const bool first_started = m_method == launch_method::fork_server &&
                               !m_fork_server_gone.load(std::memory_order_relaxed) &&
                               start_first_worker_here();
    std::promise<void> started;
    auto ready = started.get_future();
    // In the registry before the thread exists (adding may throw), and out
    // of it again if the constructor throws: ~process_pool_core, which
    // removes it, does not run then.
    try {
        cancel_registry::instance().add(this);
    } catch (...) {
        std::lock_guard lock(m_mutex);
        kill_live_workers_locked();
        throw;
    }
    {
        // The thread keeps the impl alive, so a pool destroyed from one of
        // its own done-callbacks (on this thread) does not pull the state
        // from under it. It takes m_mutex before anything else.
        std::lock_guard lock(m_mutex);
        try {
            m_thread = std::thread([self = shared_from_this(),
                                    s = first_started ? nullptr : &started] { self->run(s); });
        } catch (...) {
            kill_live_workers_locked();
            cancel_registry::instance().remove(this);
            throw;
        }
        m_thread_id = m_thread.get_id();
    }
    if (!first_started) {
        try {
            ready.get();
        } catch (...) {
            m_thread.join();
            cancel_registry::instance().remove(this);
            throw;
        }
    }
}

void process_pool_core::impl::wake() noexcept {
    eventfd_signal(m_wake.get());
}

// ---------------------------------------------------------------------------
// Dispatch (under m_mutex)
// ---------------------------------------------------------------------------

void process_pool_core::impl::dispatch_locked(task_list& dropped, failure_list& failed) {
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
            // Never blocks: a worker that does not drain its ring or socket
            // is a protocol violation, not a reason to wait under our lock.
            trace::link::sync_worker(s.trace, s.ch, m_trace ? &*m_trace : nullptr, i, s.pid);
            s.ch.send(msg_kind::task, id, front->message, front->fds);
        } catch (const proc::protocol_violation& e) {
            // The worker is wedged or hostile; the task never reached it, so
            // it stays first in line for another worker.
            violate_locked(i, e.what());
            continue;
        } catch (...) {
            // Ours (out of memory or descriptors): this task fails, the
            // worker stays, unless a part of the message may have reached it.
            failed.emplace_back(std::move(front), std::current_exception());
            m_pending.pop_front();
            if (s.ch.poisoned()) {
                std::erase(m_idle, i);
                s.accepting = false;
                signal_locked(s, SIGKILL);
            }
            continue;
        }
        m_idle.pop_back();
        s.current = std::move(front);
        m_pending.pop_front();
        s.current_id = id;
        const auto now = clock::now();
        s.dispatched_at = now;
        m_dispatches.fetch_add(1, std::memory_order_relaxed);
        if (arm_deadline_locked(s, now)) timed = true;
        // The supervisor looks for stopped workers among its own children
        // only while one has a task (watch_stops): unless its sleep already
        // does, the first such task is a new timer.
        if (s.direct_child && !m_sleep_watches_stops) {
            timed = true;
            m_sleep_watches_stops = true;  // until its next sleep, which counts this slot
        }
    }
    // The supervisor may be asleep with no timer: make it recompute its timeout.
    if (timed && std::this_thread::get_id() != m_thread_id) wake();
    // A task waits for a worker: the starter's cue (worker_start.cpp).
    if (m_starter_waiting && !m_pending.empty()) m_first_ready_cv.notify_all();
}

bool process_pool_core::impl::arm_deadline_locked(slot& s, clock::time_point now) noexcept {
    s.deadline = never;
    if (!s.current) return false;
    const auto timeout =
        s.current->timeout.count() != 0 ? s.current->timeout : m_options.task_timeout;
    if (timeout.count() <= 0) return false;
    s.deadline = now + std::chrono::duration_cast<clock::duration>(timeout);
    return true;
}

void process_pool_core::impl::violate_locked(std::size_t i, const std::string& reason) noexcept {
    slot& s = m_slots[i];
    if (!s.live) return;
    if (!s.violated) {
        s.violated = true;
        try {
            s.violation = reason;
        } catch (...) {
            // No memory for the reason: the worker is killed all the same.
        }
    }
    s.ch.poison();
    s.accepting = false;
    std::erase(m_idle, i);
    signal_locked(s, SIGKILL);
}

void process_pool_core::impl::complete_failures(failure_list& failed) noexcept {
    for (auto& [t, error] : failed) {
        if (t->state->is_done()) continue;
        // Counted before completing: whoever sees the future done sees the counters too.
        m_failed.fetch_add(1, std::memory_order_relaxed);
        t->state->set_exception(error);
    }
    failed.clear();
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
        // A new timer: a supervisor asleep (a caller read this result in
        // its place) must recompute its timeout.
        if (std::this_thread::get_id() != m_thread_id) wake();
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

// ---------------------------------------------------------------------------
// Caller-facing operations
// ---------------------------------------------------------------------------

void process_pool_core::impl::submit(std::unique_ptr<process_task> t) {
    if (t->fds.size() > max_fds_per_message) {
        throw serialization_error("process_pool::submit: the call holds " +
                                  std::to_string(t->fds.size()) + " shared_buffers; at most " +
                                  std::to_string(max_fds_per_message) +
                                  " may cross in one message");
    }
    t->state->set_cancel_hook(&cancel_registry::instance());
    task_list dropped;
    failure_list failed;
    {
        std::lock_guard lock(m_mutex);
        if (m_broken)
            throw broken_pool("process_pool::submit: the pool is broken: " + m_broken_reason);
        if (m_shutdown)
            throw executor_shutdown("process_pool::submit: the pool has been shut down");
        m_submitted.fetch_add(1, std::memory_order_relaxed);
        m_pending.push_back(std::move(t));
        dispatch_locked(dropped, failed);
    }
    complete_failures(failed);
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
                signal_locked(s, SIGKILL);  // the supervisor starts another when the pidfd fires
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

void process_pool_core::impl::stop_stoppable() {
    task_list stopped;
    {
        std::lock_guard lock(m_mutex);
        for (auto& s : m_slots) {
            if (s.current && s.current->stoppable) {
                stopped.push_back(std::move(s.current));
                s.accepting = false;
                signal_locked(s, SIGKILL);  // never replaced: the pool is shutting down
            }
        }
        move_stoppable(m_pending, stopped);
    }
    for (auto& t : stopped) {
        if (t->state->set_cancelled()) m_cancelled.fetch_add(1, std::memory_order_relaxed);
    }
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
    // Running work that takes a stop token is asked to stop: on a process
    // pool, stopped (its worker killed), so a task that only ends when told
    // cannot keep the shutdown waiting.
    if (cancel_futures) stop_stoppable();  // also one requeued since (a death)
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
    // Nothing posts to it once the supervisor is gone: run what it holds, end it.
    m_completions.finish();
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
// process_pool_core
// ---------------------------------------------------------------------------

process_pool_core::process_pool_core(const process_pool_options& options)
    : m_impl(std::make_shared<impl>(options)) {
    m_impl->start();
}

process_pool_core::~process_pool_core() {
    // Closed first (nothing more is accepted or respawned), then, as a
    // thread_pool's destruction signals its tasks' stop tokens, the tasks
    // taking one are stopped; the rest are waited for.
    m_impl->shutdown(false, false);
    m_impl->stop_stoppable();
    m_impl->shutdown(true, false);
    m_impl->m_trace.reset();
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
    return fork_server::ensure(true) != nullptr;
}

}  // namespace coexec::detail
