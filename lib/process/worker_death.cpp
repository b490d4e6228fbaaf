// lib/process/worker_death.cpp — what process_pool's supervisor does when a
// worker dies: learn how (its pidfd, or the fork server's report of its wait
// status), then fail, retry or keep the task it held, charge a death before
// `ready` to the initializer, break the pool when told to, and start a
// replacement. See pool_impl.hpp for the shared state.
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <string>

#include "process/pool_impl.hpp"
#include "process/task_name.hpp"
#include "process/worker_stops.hpp"
#include "sandbox/limits.hpp"
#include "trace/names.hpp"

namespace coexec::detail {
namespace {

using namespace proc;

double cpu_seconds_of(const rusage& ru) {
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

// worker_died's cause for a worker the pool killed (or found dead) after it
// broke the channel protocol.
std::string violation_cause(const std::string& violation) {
    return "protocol violation: " + (violation.empty() ? std::string("unknown") : violation) +
           " (the task may have corrupted its worker's memory or shared memory; the pool "
           "stopped trusting that worker)";
}

worker_status from_wait_status(int st) {
    if (WIFSIGNALED(st)) return {WTERMSIG(st), 0};
    if (WIFEXITED(st)) return {0, WEXITSTATUS(st)};
    return {};
}

}  // namespace

bool process_pool_core::impl::try_finish_deaths() {
    bool any = false;
    for (std::size_t i = 0; i < m_slots.size(); ++i) {
        slot& s = m_slots[i];
        if (!s.live || !s.dead) continue;
        worker_status st;
        bool known = false;
        if (s.direct_child) {
            siginfo_t info{};
            rusage ru{};  // the raw call's fifth argument: the CPU time, for death_cause
            if (::syscall(SYS_waitid, P_PIDFD, s.pidfd.get(), &info, WEXITED | WNOHANG, &ru) == 0 &&
                info.si_pid != 0) {
                st = info.si_code == CLD_EXITED ? worker_status{0, info.si_status}
                                                : worker_status{info.si_status, 0};
                st.cpu_seconds = cpu_seconds_of(ru);
            }
            st.stopped_by = s.stops.killed_for;
            known = true;  // ECHILD (someone else reaped it): status unknown
        } else if (auto it = m_reports.find(s.pid); it != m_reports.end()) {
            st = from_wait_status(it->second.wait_status);
            st.cpu_seconds = static_cast<double>(it->second.cpu_us) * 1e-6;
            st.stopped_by = it->second.stop_signal;
            m_reports.erase(it);
            known = true;
        } else if (m_fork_server_gone || clock::now() >= s.status_until) {
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
    // A result written just before the death still counts: read the ring to
    // its end (take_messages stops after a batch; a dead worker's ring is finite).
    while (take_messages(i)) {
    }
    task_list failed;
    failure_list failures;
    std::unique_ptr<process_task> died_with;
    std::exception_ptr died_error;
    std::string break_reason;
    {
        std::lock_guard lock(m_mutex);
        const pid_t pid = s.pid;
        if (s.current) {
            // The running id is the worker's word: only the ids we know count.
            const std::uint64_t running = s.violated ? 0 : s.ch.running_id();
            if (s.violated) {
                died_with = std::move(s.current);
                died_error = std::make_exception_ptr(worker_died(pid, st.signal, st.exit_code,
                                                                 task_name(*died_with),
                                                                 violation_cause(s.violation)));
            } else if (running == s.current_id) {
                died_with = std::move(s.current);
                died_error = std::make_exception_ptr(worker_died(
                    pid, st.signal, st.exit_code, task_name(*died_with),
                    st.stopped_by != 0
                        ? stop_cause(st.stopped_by)
                        : sandboxing::death_cause(m_options.limits, st.signal, st.cpu_seconds)));
            } else if (running == s.last_id && !s.ready) {
                // The initializer died (counted below as a start failure).
                m_pending.push_front(std::move(s.current));
            } else if (running == s.last_id && s.current->restarts < max_restarts_per_task) {
                // It never started there: run it elsewhere.
                ++s.current->restarts;
                m_pending.push_front(std::move(s.current));
            } else if (running == s.last_id) {
                died_with = std::move(s.current);
                died_error = std::make_exception_ptr(worker_died(
                    pid, st.signal, st.exit_code,
                    task_name(*died_with) + " (its workers died " +
                        std::to_string(max_restarts_per_task + 1) + " times before starting it)",
                    st.stopped_by != 0 ? stop_cause(st.stopped_by) : std::string()));
            } else {
                died_with = std::move(s.current);
                died_error = std::make_exception_ptr(worker_died(
                    pid, st.signal, st.exit_code, task_name(*died_with),
                    violation_cause("it reported running a task id the pool never gave it")));
            }
        }
        trace::link::worker_died(pid, died_with ? &died_with->state->trace_ticket() : nullptr,
                                 s.dispatched_at, st.signal, st.exit_code, s.expected_exit);
        // A death before ready that is not charged to a task is the
        // initializer's (a violation while holding a task is the task's,
        // even if it garbled the ready message).
        // Nor is a death with the fork server: its workers die with it, their
        // status never reported (a new pool's later workers, not yet ready,
        // could otherwise make five in a row and break the pool).
        const bool with_fork_server = m_fork_server_gone && st.exit_code < 0 && st.signal == 0;
        // (A worker we killed for its stops is the worker's doing, not ours.)
        const bool start_failure =
            (!s.expected_exit || s.violated || st.stopped_by != 0) && !s.ready && !with_fork_server;
        s.live = false;
        s.dead = false;
        s.accepting = false;
        s.pidfd.reset();
        s.ch = channel();
        s.deadline = s.kill_at = s.status_until = s.hup_at = never;
        s.stops = {};  // a continue still pending dies with the worker
        std::erase(m_idle, i);

        if (died_with && m_options.on_worker_death == worker_death::break_pool) {
            try {
                std::rethrow_exception(died_error);
            } catch (const std::exception& e) {
                break_reason = std::string("a worker died: ") + e.what();
            }
            failed.push_back(std::move(died_with));
        }
        if (start_failure && !died_with && !m_broken) {
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
                trace::link::respawned(&*m_trace, i, s.pid, pid);
            } catch (const std::exception& e) {
                break_locked(std::string("could not start a worker process: ") + e.what(), failed);
            }
        }
        task_list dropped;
        dispatch_locked(dropped, failures);
        for (auto& t : dropped)
            failed.push_back(std::move(t));
    }
    if (died_with) failures.emplace_back(std::move(died_with), died_error);
    complete_failures(failures);
    fail_broken(failed);
}

void process_pool_core::impl::fail_broken(task_list& tasks) noexcept {
    if (tasks.empty()) return;  // (the reason is set before any task is failed)
    const std::string reason = m_broken_reason;
    for (auto& t : tasks) {
        if (!t->state->is_done()) {
            m_failed.fetch_add(1, std::memory_order_relaxed);
            t->state->set_exception(std::make_exception_ptr(
                broken_pool("process_pool: the pool is broken: " + reason)));
        }
    }
}

}  // namespace coexec::detail
