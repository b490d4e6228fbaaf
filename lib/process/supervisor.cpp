// lib/process/supervisor.cpp — process_pool's supervisor thread: it starts
// workers, takes their results, notices their deaths (pidfds, and the fork
// server's reports of their wait status), enforces deadlines, and sleeps in
// epoll when nothing happens. What follows a death is in worker_death.cpp;
// see pool_impl.hpp for the shared state.
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <exception>
#include <string>
#include <system_error>

#include "coexec/detail/spin.hpp"
#include "process/pool_impl.hpp"
#include "sandbox/limits.hpp"
#include "sandbox/sandbox.hpp"
#include "trace/names.hpp"
#include "util/eventfd.hpp"
#include "util/system_error.hpp"

namespace coexec::detail {

using namespace proc;

void process_pool_core::impl::launch_locked(std::size_t i) {
    // The worker's end is closed here once the worker has it: the parent must
    // not keep it, as its hang-up is the worker's signal that we are gone.
    channel_fds w;
    channel ch = channel::create(ring_capacity, w);
    launched l = start_process(w);
    try {
        install_locked(i, ch, l);
    } catch (...) {
        discard_unstarted(l);
        throw;
    }
}

namespace {

// SIGKILLs a worker and, if it is our child (not the fork server's), reaps it.
void kill_and_reap(const unique_fd& pidfd, bool direct_child) noexcept {
    pidfd_send_signal(pidfd.get(), SIGKILL);
    if (!direct_child) return;  // the fork server reaps its own
    siginfo_t info;
    while (::waitid(P_PIDFD, static_cast<id_t>(pidfd.get()), &info, WEXITED) != 0 &&
           errno == EINTR) {
    }
}

// True if the supervisor looks for `s` stopped: a live child of ours that
// holds a task or has not reported ready (a stopped initializer would
// otherwise leave tasks waiting for it, and the destructor too).
bool watch_stops(const proc::slot& s) noexcept {
    return s.live && !s.dead && s.direct_child && (s.current != nullptr || !s.ready);
}

// True if `s` is a live child of ours found stopped and not yet continued.
bool continue_pending(const proc::slot& s) noexcept {
    return s.live && !s.dead && s.direct_child && s.stops.continue_at != proc::clock::time_point{};
}

// The signal that stopped a child of ours (taking the kernel's notice of
// the stop), or 0 if it is not stopped.
int stop_signal_of(const unique_fd& pidfd) noexcept {
    siginfo_t info{};
    if (::waitid(P_PIDFD, static_cast<id_t>(pidfd.get()), &info, WSTOPPED | WNOHANG) != 0 ||
        info.si_pid == 0 || info.si_code != CLD_STOPPED)
        return 0;
    return info.si_status;
}

}  // namespace

void process_pool_core::impl::discard_unstarted(launched& l) noexcept {
    if (!l.pidfd) return;
    kill_and_reap(l.pidfd, l.direct_child);
    l.pidfd.reset();
}

launched process_pool_core::impl::start_process(const channel_fds& w) {
    launched l;
    if (m_method == launch_method::fork_server && !m_fork_server_gone) {
        try {
            l = m_fork_server->fork_worker(m_pool_id, w);
        } catch (const std::system_error&) {
            if (m_fork_server->alive()) throw;
            m_fork_server_gone = true;  // fall back to spawn below
            warn_spawn_fallback("the fork server has died");
        }
    }
    if (!l.pidfd) {
        l = launch_direct(
            m_method == launch_method::fork ? launch_method::fork : launch_method::spawn, w);
    }
    return l;
}

void process_pool_core::impl::install_locked(std::size_t i, channel& ch, launched& l) {
    slot& s = m_slots[i];
    const auto gen = s.gen + 1;
    // Watch the worker before the slot says it is there: a live slot the
    // supervisor does not watch would never report the worker's death, and
    // shutdown would wait for it forever. On failure nothing has changed.
    epoll_event e{};
    // RDHUP too: a worker that shuts its wake socket down would otherwise
    // leave it readable forever (level-triggered) and the supervisor spinning.
    e.events = EPOLLIN | EPOLLRDHUP;
    e.data.u64 = ev_data(ev::result, i, gen);
    if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, ch.wake_fd(), &e) != 0) throw_errno("epoll_ctl");
    e.events = EPOLLIN;
    e.data.u64 = ev_data(ev::pidfd, i, gen);
    if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, l.pidfd.get(), &e) != 0) {
        const int err = errno;
        ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, ch.wake_fd(), nullptr);
        errno = err;
        throw_errno("epoll_ctl");
    }
    s.gen = gen;
    s.trace = {};  // a new worker process has been told nothing of the trace
    s.live = true;
    s.dead = false;
    s.accepting = true;
    s.ready = false;
    s.expected_exit = false;
    s.pid = l.pid;
    s.pidfd = std::move(l.pidfd);
    s.direct_child = l.direct_child;
    s.stops = {};
    s.ch = std::move(ch);
    s.tasks_done = 0;
    s.last_id = 0;
    s.violated = false;
    s.violation.clear();
    s.deadline = s.kill_at = s.status_until = s.hup_at = never;
    std::vector<std::byte> cfg;
    byte_writer cw(cfg);
    cw.put_u64(m_options.initializer != nullptr
                   ? encode_code_address(std::bit_cast<const void*>(m_options.initializer))
                   : 0);
    sandboxing::encode_worker_config(cw, m_options);  // limits and sandbox (lib/sandbox)
    s.ch.send(msg_kind::config, 0, cfg);
    // Without an initializer, tasks may follow at once (the pool's first
    // result then costs no extra hand-off). With one, the worker takes tasks
    // only once we have read its `ready`: a task's deadline starts when it is
    // sent, and the initializer's time must not count (a model loaded for
    // 5 s would make every first task miss a 1 s timeout and, counted as
    // start failures, break the pool). Nor can the clock start at `ready`
    // for a task sent earlier: the task runs right after that record is
    // written and could rewrite it before we read it, dodging its deadline.
    if (m_options.initializer == nullptr) m_idle.push_back(i);
    // A child of ours is watched for stops until it is ready (watch_stops):
    // a supervisor asleep without that timer must recompute its sleep.
    if (s.direct_child && !m_sleep_watches_stops && std::this_thread::get_id() != m_thread_id) {
        m_sleep_watches_stops = true;  // until its next sleep, which counts this slot
        wake();
    }
}

void process_pool_core::impl::kill_live_workers_locked() noexcept {
    for (auto& s : m_slots)
        if (s.live) kill_and_reap(s.pidfd, s.direct_child);
}

bool process_pool_core::impl::start_first_worker_here() {
    channel_fds w;
    channel ch = channel::create(ring_capacity, w);
    launched l;
    try {
        l = m_fork_server->fork_worker(m_pool_id, w);
    } catch (const std::system_error&) {
        if (m_fork_server->alive()) throw;
        return false;  // gone: the supervisor starts worker 0 (start_process spawns it)
    }
    std::lock_guard lock(m_mutex);
    try {
        install_locked(0, ch, l);
    } catch (...) {
        discard_unstarted(l);  // not installed; or installed, and killed below
        kill_live_workers_locked();
        throw;
    }
    return true;
}

void process_pool_core::impl::run(std::promise<void>* started) {
    {
        std::lock_guard lock(m_mutex);  // start() wrote m_thread_id (and slot 0) under it
    }
    trace::link::name_supervisor(&*m_trace);
    if (started != nullptr) {
        try {
            // One worker before the constructor returns; the others follow
            // (start_remaining_workers), so a first task waits for one fork,
            // not for all of them. Except with start_method::fork: this
            // thread forks the program itself, which is only sound while the
            // caller waits here (after the constructor returns, its threads
            // may hold locks or be mid-update when we fork).
            std::lock_guard lock(m_mutex);
            const std::size_t now = m_method == launch_method::fork ? m_slots.size() : 1;
            for (std::size_t i = 0; i < now; ++i)
                launch_locked(i);
        } catch (...) {
            // Kill whatever did start, then report the failure to the constructor.
            {
                std::lock_guard lock(m_mutex);
                kill_live_workers_locked();
            }
            stop_starter();
            started->set_exception(std::current_exception());
            return;
        }
        started->set_value();
    }
    // Completing a future here wakes its blocked waiters and posts its
    // coroutines to their executors; callbacks go to the completion thread.
    exchange_user_code_sink(&m_completions);
    start_remaining_workers();

    auto last_activity = clock::now();
    auto last_epoll = last_activity;
    auto last_timers = last_activity;
    std::uint64_t seen_dispatches = 0;
    std::uint64_t seen_helped = 0;
    auto last_helped = clock::time_point{};
    std::vector<epoll_event> events(m_slots.size() * 2 + 4);
    for (;;) {
        bool progress = poll_results();
        const auto now = clock::now();
        // Callers blocked in get() read their results themselves whenever
        // this thread sleeps (waiter_help.cpp): while they do, sleep rather
        // than spin, and a dispatch is no reason to stay awake.
        if (const auto h = m_helped.load(std::memory_order_relaxed); h != seen_helped) {
            seen_helped = h;
            last_helped = now;
        }
        const bool helpers = now - last_helped < spin::process_supervisor.budget;
        if (const auto d = m_dispatches.load(std::memory_order_relaxed); d != seen_dispatches) {
            seen_dispatches = d;
            if (!helpers) progress = true;
        }
        if (now - last_epoll >= std::chrono::milliseconds(1)) {
            // Busy with results: still look at deaths and the fork server
            // now and then, without sleeping.
            last_epoll = now;
            const int n =
                ::epoll_wait(m_epoll.get(), events.data(), static_cast<int>(events.size()), 0);
            for (int k = 0; k < n; ++k) {
                const auto& ev = events[static_cast<std::size_t>(k)];
                handle_event(ev.data.u64, ev.events);
            }
        }
        // After the look at epoll above, not before it: that look may drain
        // the starter's wake, and this iteration may go on to sleep (no spin
        // while callers help), so a worker started meanwhile would wait
        // unseen until something else woke us (seen under TSan: a new
        // pool's second worker never installed).
        if (m_started_waiting.load(std::memory_order_acquire)) progress |= install_started();
        if (now - last_timers >= timer_check_interval) {
            last_timers = now;
            progress |= check_timers(now);
        }
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
                m_stop_starting.store(true, std::memory_order_relaxed);  // none are wanted
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
        if (!long_tasks && !helpers &&
            clock::now() - last_activity < spin::process_supervisor.budget) {
            spin_pause(spin::process_supervisor);
            continue;
        }
        // About to sleep: look at the timers now (taking the mutex costs
        // nothing here), so that none already due makes the sleep a 0 ms poll.
        last_timers = clock::now();
        if (check_timers(last_timers)) {
            last_activity = last_timers;
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
                bool watches = false;
                // Only the timers check_timers acts on: a deadline left on a
                // slot whose task is gone, or a grace on a dead worker, would
                // wake the sleep at once until the death is finished.
                for (const auto& s : m_slots) {
                    next = std::min(next, s.status_until);
                    if (s.current) next = std::min(next, s.deadline);
                    if (watch_stops(s)) {
                        next = std::min(next, m_next_stop_check);
                        watches = true;
                    }
                    if (continue_pending(s)) next = std::min(next, s.stops.continue_at);
                    if (s.live && !s.dead) next = std::min({next, s.kill_at, s.hup_at});
                }
                next = std::min(next, m_stop_deadline);
                m_sleep_watches_stops = watches;  // else a dispatch to a child of ours wakes us
            }
            int timeout_ms = -1;
            if (next != never) {
                const auto left =
                    std::chrono::ceil<std::chrono::milliseconds>(next - clock::now()).count();
                timeout_ms = static_cast<int>(std::clamp<long long>(left, 0, 60'000));
            }
            // Every live channel has its sleep announced: a caller blocked
            // in get() may take the receiving side until we wake.
            m_receiving.store(false, std::memory_order_release);
            const int n = ::epoll_wait(m_epoll.get(), events.data(),
                                       static_cast<int>(events.size()), timeout_ms);
            reclaim_receiving();
            for (int k = 0; k < n; ++k) {
                const auto& ev = events[static_cast<std::size_t>(k)];
                handle_event(ev.data.u64, ev.events);
            }
            last_epoll = clock::now();
        }
        for (auto& s : m_slots) {
            if (s.live && s.ch) s.ch.end_sleep(false);
        }
        last_activity = clock::now();
    }
    stop_starter();
    // Final reap of anything left (the fork server reaps its own children).
    for (auto& s : m_slots)
        s.ch = channel();
}

void process_pool_core::impl::handle_event(std::uint64_t data, std::uint32_t events) {
    const auto kind = static_cast<ev>(data >> 56);
    const std::size_t i = static_cast<std::size_t>((data >> 32) & 0xff'ffff);
    const auto gen = static_cast<std::uint32_t>(data);
    switch (kind) {
        case ev::wake:
            eventfd_drain(m_wake.get());  // non-blocking
            break;
        case ev::report: {
            death_report rep;
            for (;;) {
                const ssize_t r = ::recv(m_report.get(), &rep, sizeof rep, MSG_DONTWAIT);
                if (r == static_cast<ssize_t>(sizeof rep)) {
                    m_reports[rep.pid] = rep;
                    continue;
                }
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                    // The fork server is gone (its workers die with it): reap
                    // it, and start later workers by spawn.
                    ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, m_report.get(), nullptr);
                    m_fork_server_gone = true;
                    m_fork_server->notice_death();
                }
                break;
            }
            break;
        }
        case ev::result:
            if (i < m_slots.size() && m_slots[i].gen == gen && m_slots[i].live) {
                slot& s = m_slots[i];
                if ((events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)) != 0) {
                    // Normally a dying worker (its pidfd fires next); else it
                    // shut the socket itself and is killed after hup_grace.
                    ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, s.ch.wake_fd(), nullptr);
                    std::lock_guard lock(m_mutex);
                    if (s.hup_at == never) s.hup_at = clock::now() + hup_grace;
                } else {
                    s.ch.drain_wake();
                }
            }
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
bool process_pool_core::impl::poll_results() {
    bool any = false;
    for (std::size_t i = 0; i < m_slots.size(); ++i) {
        const slot& s = m_slots[i];
        if (s.live && s.ch && take_messages(i)) any = true;
    }
    return any;
}

bool process_pool_core::impl::take_messages(std::size_t i) {
    slot& s = m_slots[i];
    bool any = false;
    message m;
    try {
        // At most a batch per call: a worker that writes without end (trace
        // spans are accepted with any id) must not hold the reader here,
        // the supervisor away from its timers or a caller inside get().
        for (int n = 0; n < max_messages_per_take && s.ch.try_receive(m); ++n) {
            any = true;
            handle_message(i, m);
            s.ch.release(m);
        }
    } catch (const std::exception& e) {
        // A malformed message: this worker cannot be trusted any more.
        s.ch.release(m);
        std::lock_guard lock(m_mutex);
        violate_locked(i, e.what());
        any = true;
    }
    return any;
}

void process_pool_core::impl::handle_message(std::size_t i, message& m) {
    slot& s = m_slots[i];
    // Only results carry descriptors (shared_buffers).
    if (m.kind != msg_kind::result && !m.fds.empty())
        throw protocol_violation("descriptors with a message that has none");
    switch (m.kind) {
        case msg_kind::ready: {
            task_list dropped;
            failure_list failed;
            {
                std::lock_guard lock(m_mutex);
                if (s.ready) throw protocol_violation("a second ready message");
                s.ready = true;
                m_start_failures = 0;
                if (!m_first_ready) {
                    m_first_ready = true;
                    m_first_ready_cv.notify_all();  // the starter (worker_start.cpp)
                }
                // Held back until now (see install): it may take tasks.
                if (m_options.initializer != nullptr && s.accepting && !s.current) {
                    m_idle.push_back(i);
                    dispatch_locked(dropped, failed);
                }
            }
            complete_failures(failed);
            return;
        }
        case msg_kind::init_failed: {
            {
                std::lock_guard lock(m_mutex);
                // Only the initializer may fail this way, and only once.
                if (s.ready) throw protocol_violation("init_failed after ready");
            }
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
        case msg_kind::trace_span: {  // sent just before the task's result
            std::lock_guard lock(m_mutex);
            if (s.current && s.current_id == m.id)
                trace::link::worker_span(m.bytes, s.current->state->trace_ticket(), s.dispatched_at,
                                         s.pid);
            return;
        }
        case msg_kind::result: {
            std::unique_ptr<process_task> t;
            task_list dropped;
            failure_list failed;
            {
                std::lock_guard lock(m_mutex);
                if (!s.ready) throw protocol_violation("a result before ready");
                if (!s.current) {
                    // Its task was cancelled or timed out meanwhile (the
                    // worker is being stopped), or it made this one up.
                    if (s.expected_exit) return;
                    throw protocol_violation("a result while it held no task");
                }
                if (s.current_id != m.id) throw protocol_violation("a result for another task");
                t = std::move(s.current);
                s.last_id = s.current_id;
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
                if (!m_first_result) {
                    m_first_result = true;
                    if (m_starter_waiting) m_first_ready_cv.notify_all();
                }
                dispatch_locked(dropped, failed);
            }
            complete_failures(failed);
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
            throw protocol_violation("a message of a kind a worker does not send");
    }
}

bool process_pool_core::impl::check_timers(clock::time_point now) {
    task_list expired;
    bool any = false;
    {
        std::lock_guard lock(m_mutex);
        for (std::size_t i = 0; i < m_slots.size(); ++i) {
            slot& s = m_slots[i];
            if (s.live && !s.dead && now >= s.hup_at) {
                s.hup_at = never;
                violate_locked(i, "it closed its end of the wake-up socket");
                any = true;
            }
            if (s.current && now >= s.deadline) {
                trace::link::deadline_kill(s.pid, s.current->state->trace_ticket(),
                                           s.dispatched_at);
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
        for (auto& s : m_slots) {
            if (continue_pending(s) && now >= s.stops.continue_at) {
                s.stops.continue_at = {};
                // The group too (pidfd first: it cannot hit a recycled pid).
                if (pidfd_send_signal(s.pidfd.get(), SIGCONT) == 0) ::kill(-s.pid, SIGCONT);
            }
        }
        if (now >= m_next_stop_check) {
            m_next_stop_check = now + stop_check_period;
            for (auto& s : m_slots) {
                if (!watch_stops(s) || s.stops.killed_for != 0 || continue_pending(s)) continue;
                // Continued later, or killed if stopped too often
                // (worker_stops.hpp): its death fails the task, naming the stop.
                const int sig = stop_signal_of(s.pidfd);
                if (sig == 0) continue;
                if (stopped_too_often(s.stops, now)) {
                    s.stops.killed_for = sig;
                    signal_locked(s, SIGKILL);
                    any = true;
                } else {
                    s.stops.continue_at = now + continue_delay;
                }
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

}  // namespace coexec::detail
