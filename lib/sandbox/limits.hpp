// lib/sandbox/limits.hpp — the rlimits of process_pool_options::limits.
//
// Set by the worker itself, after its initializer and before its first task
// (and before the seccomp filter, which refuses setrlimit):
// - memory → RLIMIT_AS. Chosen over RLIMIT_DATA because it counts every
//   mapping, shared ones included: a task cannot dodge it with
//   mmap(MAP_SHARED) or a mapped memfd, and malloc's brk and mmap both fail
//   with ENOMEM, so operator new throws std::bad_alloc in the task's own
//   code. The cost: reservations count too (8 MiB per thread stack, 64 MiB
//   per malloc arena of a new thread), which the docs tell users to leave
//   room for.
// - cpu_time → RLIMIT_CPU. The kernel counts a process's CPU time over its
//   whole life, while the option bounds one task; so the soft limit is set
//   at ceil(time used so far + cpu_time + headroom) seconds, the hard limit
//   one second above it (SIGKILL, which a task cannot catch or block), and
//   a worker whose remaining budget is below a full cpu_time exits after
//   its result (cpu_budget_spent), to be replaced. A runaway task thus dies by SIGXCPU after
//   between cpu_time and ceil(1.25 × cpu_time) seconds, or by SIGKILL one
//   second later if it blocked SIGXCPU; a worker serves tasks for at least
//   `headroom` seconds of CPU, less a 50 ms margin, before it is replaced.
// - open_files → RLIMIT_NOFILE = the worker's lowest free descriptor +
//   open_files, so the task gets open_files descriptors of its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "coexec/process_pool.hpp"

namespace coexec::detail::sandboxing {

/// The limits as they travel in the worker's config message.
struct limit_values {
    std::uint64_t memory = 0;       // bytes
    std::uint64_t cpu_seconds = 0;  // per task
    std::uint64_t open_files = 0;   // beyond the worker's own
};

/// CPU seconds above cpu_time the worker's soft limit leaves at least (a
/// quarter of cpu_time; rounding the limit up to whole seconds adds the
/// rest): the CPU time a worker can spend on tasks before it is replaced.
double cpu_headroom(std::uint64_t cpu_seconds) noexcept;

/// In the worker: sets the rlimits (and SIGXCPU's default action, which the
/// cpu limit relies on). Throws std::system_error naming the call.
void apply_limits(const limit_values& limits);

/// In the worker, after a task: true if it has less than a full cpu_time
/// (and a 50 ms margin) left before its soft limit; it then exits, and the
/// pool starts another. (The worker asks its own clock: the parent reading
/// the worker's clock and limits cost two system calls on every result's
/// critical path. And it asks only once the slack it last saw could be used
/// up, counting every CPU and a tick's rounding on each: see limits.cpp.)
bool cpu_budget_spent() noexcept;

/// In the parent, at a worker's death by `signal` after `cpu_seconds` of CPU
/// time (negative: unknown): the cause if a limit explains it, else empty.
std::string death_cause(const process_limits& limits, int signal, double cpu_seconds);

}  // namespace coexec::detail::sandboxing
