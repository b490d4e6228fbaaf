// lib/process/worker_start.cpp — starting a process_pool's workers after
// the first: the constructor waits for one worker only, and the others are
// started here while the pool already runs tasks.
//
// With the fork server, a helper thread (m_starter, made once the constructor
// has worker 0) asks it for one worker at a time, from when worker 0 is ready,
// and hands each to the supervisor, which installs it between two looks at
// its workers' results. Measured on a later pool (start -> first
// result): the supervisor that forked worker 2 itself sat ~0.25 ms in the
// fork server's reply while worker 1's first result waited for it. Spawned
// and forked workers are still started by the supervisor thread itself:
// PR_SET_PDEATHSIG follows the thread that forks, and a helper thread ends
// before its workers would.
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "process/pool_impl.hpp"

namespace coexec::detail {

using namespace proc;

void process_pool_core::impl::prepare_starter() noexcept {
    if (m_method != launch_method::fork_server || m_fork_server_gone || m_slots.size() < 2) return;
    try {
        m_starter = std::thread([this] { run_starter(); });
    } catch (const std::system_error&) {
        // No thread to be had: start_remaining_workers starts them itself.
    }
}

void process_pool_core::impl::start_remaining_workers() {
    prepare_starter();
    if (m_starter.joinable()) {
        m_starter_go.store(true, std::memory_order_release);
        m_starter_go.notify_one();
        return;
    }
    start_workers_from(1);
}

void process_pool_core::impl::start_workers_from(std::size_t first) {
    for (std::size_t i = first; i < m_slots.size(); ++i) {
        if (m_slots[i].live) continue;  // started by run() (start_method::fork)
        std::string failure;
        channel_fds w;
        channel ch;
        launched l;
        try {
            ch = channel::create(ring_capacity, w);
            l = start_process(w);
        } catch (const std::exception& e) {
            failure = e.what();
        }
        if (!finish_start(i, ch, l, std::move(failure))) return;
    }
}

bool process_pool_core::impl::finish_start(std::size_t i, channel& ch, launched& l,
                                           std::string failure) {
    task_list failed;
    failure_list failures;
    {
        std::lock_guard lock(m_mutex);
        if (failure.empty() && !m_broken && !m_shutdown) {
            try {
                install_locked(i, ch, l);
            } catch (const std::exception& e) {
                failure = e.what();
            }
        }
        if (!failure.empty()) {
            break_locked("could not start a worker process: " + failure, failed);
        } else if (m_broken || m_shutdown) {
            // Broken or shut down (terminate_workers too) meanwhile: the
            // workers already there finish what was accepted.
            failure = "not wanted any more";
        } else {
            task_list dropped;
            dispatch_locked(dropped, failures);  // tasks queued while it started
            for (auto& t : dropped)
                failed.push_back(std::move(t));
        }
    }
    // Started but never installed (install_locked took the pidfd
    // otherwise): nobody else knows of it.
    if (!failure.empty()) {
        discard_unstarted(l);
        m_stop_starting.store(true, std::memory_order_relaxed);
    }
    complete_failures(failures);
    fail_broken(failed);
    return failure.empty();
}

void process_pool_core::impl::run_starter() noexcept {
    m_starter_go.wait(false, std::memory_order_acquire);
    if (m_options.initializer == nullptr) {
        // Not before worker 0 is up and has work beside it, its first
        // result back or a task waiting for a worker (or first_worker_grace
        // passed): on 2 cores, worker 1's fork and start took the CPU from
        // worker 0's and from its first task (a later pool's start -> first
        // result: 1.79 -> 1.21 ms with one worker instead of two, same run;
        // started at worker 0's `ready`, the spare's set-up and the fork
        // server's reply still delayed the first result by ~0.2 ms). With
        // an initializer, whose time is unknown, all workers start at once.
        std::unique_lock lock(m_mutex);
        m_starter_waiting = true;
        m_first_ready_cv.wait_for(lock, first_worker_grace, [this] {
            return (m_first_ready && (m_first_result || !m_pending.empty())) ||
                   m_stop_starting.load(std::memory_order_relaxed);
        });
        m_starter_waiting = false;
    }
    const std::size_t n = m_workers;  // m_slots.size(), fixed since the constructor
    for (std::size_t i = 1; i < n; ++i) {
        if (m_stop_starting.load(std::memory_order_relaxed)) return;
        started_worker sw;
        sw.slot = i;
        try {
            sw.ch = channel::create(ring_capacity, sw.worker_end);
            try {
                sw.l = m_fork_server->fork_worker(m_pool_id, sw.worker_end);
                sw.worker_end = channel_fds{};  // the worker has it: its hang-up is ours
            } catch (const std::system_error&) {
                if (m_fork_server->alive()) throw;
                // Gone: the supervisor starts this one and the rest (by spawn).
            }
        } catch (const std::exception& e) {
            sw.failure = e.what();
        }
        const bool last = !sw.failure.empty() || !sw.l.pidfd;
        try {
            std::lock_guard lock(m_mutex);
            m_started.push_back(std::move(sw));
            m_started_waiting.store(true, std::memory_order_release);
        } catch (const std::bad_alloc&) {
            discard_unstarted(sw.l);
            return;  // the pool runs on with the workers it has
        }
        wake();
        if (last) return;
    }
}

bool process_pool_core::impl::install_started() {
    std::vector<started_worker> got;
    {
        std::lock_guard lock(m_mutex);
        got.swap(m_started);
        m_started_waiting.store(false, std::memory_order_relaxed);
    }
    for (auto& sw : got) {
        const bool fallback = !sw.l.pidfd && sw.failure.empty();
        if (fallback) {
            try {
                sw.l = start_process(sw.worker_end);  // notices the fork server's death
            } catch (const std::exception& e) {
                sw.failure = e.what();
            }
        }
        if (!finish_start(sw.slot, sw.ch, sw.l, std::move(sw.failure))) break;
        if (fallback) start_workers_from(sw.slot + 1);
    }
    return !got.empty();
}

void process_pool_core::impl::stop_starter() noexcept {
    m_stop_starting.store(true, std::memory_order_relaxed);
    {
        std::lock_guard lock(m_mutex);  // the starter is waiting or will see the flag
    }
    m_first_ready_cv.notify_all();
    m_starter_go.store(true, std::memory_order_release);
    m_starter_go.notify_one();
    if (m_starter.joinable()) m_starter.join();
    std::vector<started_worker> left;
    {
        std::lock_guard lock(m_mutex);
        left.swap(m_started);
    }
    for (auto& sw : left)
        discard_unstarted(sw.l);
}

}  // namespace coexec::detail
