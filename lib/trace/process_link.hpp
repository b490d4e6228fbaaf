// lib/trace/process_link.hpp — process_pool workers in the trace.
//
// A worker process times each task it runs (begin and end, CLOCK_MONOTONIC,
// which every process of the machine shares) and sends the two timestamps
// to the parent in a trace_span message just before the task's result. The
// parent draws the span on the worker's own track (pid = tid = the worker's
// pid), named after the task from the parent's own ticket. The worker learns
// whether to time tasks from a trace_config message the parent sends before
// a task whenever the trace state changed since it last told that worker,
// so a worker costs nothing while no trace records.
//
// Trust: the span's bytes come from a process that runs untrusted code. The
// parent copies them once, accepts exactly one well-formed record about the
// task it is running there, and clamps both timestamps into the interval
// from the task's dispatch to now: whatever a worker sends, the parent only
// ever draws one slice of its own task, on that worker's track, with a name
// the parent chose. A worker that dies keeps what it had sent; its current
// task is drawn from dispatch to the death, with a "worker died" instant.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <span>

#include "coexec/detail/trace_hooks.hpp"
#include "process/channel.hpp"
#include "trace/registry.hpp"

namespace coexec::detail::trace::link {

using clock = std::chrono::steady_clock;

/// Per worker slot, on the parent side: what the worker was last told.
struct worker_state {
    std::uint64_t told_session = 0;  // 0: told nothing (the worker does not time tasks)
    bool told_on = false;
};

// ---- the parent ----

/// Names the calling thread's track "<pool> supervisor" (in any later trace too).
void name_supervisor(const executor_track* pool) noexcept;

/// Before a task is sent to worker `pid` (slot `slot` of `pool`): tells it to
/// start or stop timing tasks if that changed, and names its track. Throws
/// what channel::send throws.
void sync_worker(worker_state& w, proc::channel& ch, const executor_track* pool, std::size_t slot,
                 pid_t pid);

/// A trace_span message from worker `pid`, running the task `t` dispatched
/// at `dispatched` (the caller checked the message is about that task).
void worker_span(std::span<const std::byte> bytes, const task_ticket& t,
                 clock::time_point dispatched, pid_t pid) noexcept;

/// Worker `pid` died; `t` is the task it was running (null if none), which
/// was dispatched at `dispatched`. `expected`: the pool asked for it.
void worker_died(pid_t pid, const task_ticket* t, clock::time_point dispatched, int signal,
                 int exit_code, bool expected) noexcept;

/// The task `t` on worker `pid` passed its deadline: the worker is being killed.
void deadline_kill(pid_t pid, const task_ticket& t, clock::time_point dispatched) noexcept;

/// A new worker `pid` (slot `slot` of `pool`) replaces `old_pid`.
void respawned(const executor_track* pool, std::size_t slot, pid_t pid, pid_t old_pid) noexcept;

// ---- the worker ----

/// The worker loop's side: times tasks while the parent asked for it.
class task_timer {
  public:
    /// A trace_config message (one byte: 1 = on).
    void configure(std::span<const std::byte> bytes) noexcept;
    /// Just before the task runs.
    void begin() noexcept;
    /// Just before its result is sent: sends the span (if timing). Throws
    /// what channel::send throws.
    void ship(proc::channel& ch, std::uint64_t task_id);

  private:
    bool m_on = false;
    std::int64_t m_begin = 0;
};

}  // namespace coexec::detail::trace::link
