// lib/sandbox/sandbox.hpp — what lib/process calls to limit and confine its
// workers (process_pool_options::limits, ::sandbox, ::sandbox_allow).
//
// The options travel to each worker in its config message (after the
// initializer's address): the parent appends them at every worker start
// (encode_worker_config), so every start method and every respawn gets them;
// the worker applies them after its initializer and before its first task
// (enter). See limits.hpp for the rlimits, seccomp_filter.hpp for the filter.
#pragma once

#include <string>

#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/process_pool.hpp"

namespace coexec::detail::sandboxing {

/// Parent, at pool construction: throws std::system_error (ENOTSUP) for
/// sandbox::compute where it cannot work, std::invalid_argument for an
/// unknown name in sandbox_allow.
void check_options(const process_pool_options& options);

/// Parent, at each worker start: appends the limits and the sandbox to the
/// worker's config message.
void encode_worker_config(byte_writer& w, const process_pool_options& options);

/// Worker, after its initializer: reads what encode_worker_config wrote (if
/// anything), sets the rlimits, then installs the sandbox. Throws (std::system_error naming
/// the call); the worker then reports a failed start.
void enter(byte_reader& config);

/// Worker, after sending a task's result: true if the worker should exit
/// now and be replaced (its cpu_time budget could not cover another task).
bool should_retire() noexcept;

}  // namespace coexec::detail::sandboxing
