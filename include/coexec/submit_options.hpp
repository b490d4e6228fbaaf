// coexec/submit_options.hpp — per-task options of submit_with, the same on
// every pool (thread_pool, process_pool, mpi_pool), so switching the pool's
// type keeps the call.
#pragma once

#include <chrono>

namespace coexec {

/// Per-task options for submit_with.
struct submit_options {
    /// The task's deadline, from submission; 0 = the pool's task_timeout
    /// (none on thread_pool). Past it the future fails with
    /// deadline_exceeded: process_pool and mpi_pool kill the worker running
    /// it; thread_pool signals the task's stop token and drops its result (a
    /// thread cannot be killed).
    std::chrono::nanoseconds timeout{0};
};

}  // namespace coexec
