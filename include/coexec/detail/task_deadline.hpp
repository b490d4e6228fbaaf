// detail/task_deadline.hpp — a deadline on a task run by a thread of this
// process (thread_pool::submit_with). A thread cannot be killed, so at the
// deadline the future fails with deadline_exceeded and the task's stop token
// is signalled; the task runs on until it returns, and its result is dropped.
// (process_pool kills the worker instead: lib/process/supervisor.cpp.)
#pragma once

#include <chrono>

#include "coexec/detail/shared_state.hpp"

namespace coexec::detail {

/// Unless `state` is done by `deadline`, completes it with deadline_exceeded
/// and requests its stop. Holds a reference to `state` until the deadline
/// passes or the state is done, whichever comes first (a task that ends in
/// time drops its timer). Throws std::bad_alloc, or std::system_error if the
/// timer thread cannot start (detail/timer_service.hpp); nothing is armed then.
void fail_at_deadline(shared_state_base& state, std::chrono::steady_clock::time_point deadline);

/// now + timeout, or time_point::max() if that would overflow.
std::chrono::steady_clock::time_point deadline_after(std::chrono::nanoseconds timeout) noexcept;

}  // namespace coexec::detail
