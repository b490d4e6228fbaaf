// lib/sandbox/seccomp_filter.hpp — sandbox::compute's seccomp allow-list.
//
// Installed by the worker after its own set-up (channel, initializer, rlimits)
// and before its first task: PR_SET_NO_NEW_PRIVS, then a libseccomp filter
// whose default action is ERRNO(EPERM), on every thread of the worker
// (TSYNC). The list, and the reason for each entry, is in seccomp_filter.cpp
// and docs/sandbox.md. x86_64 and aarch64 only: the list names system calls,
// and was checked on those two; elsewhere the pool refuses sandbox::compute.
#pragma once

#include <span>
#include <string>
#include <vector>

namespace coexec::detail::sandboxing {

/// In the parent, at pool construction: throws std::system_error(ENOTSUP)
/// unless this architecture is covered and the kernel has seccomp filters.
void check_compute_supported();

/// System call numbers of `names` on this architecture, for
/// process_pool_options::sandbox_allow. Throws std::invalid_argument naming
/// an unknown name. A name this architecture lacks (e.g. "poll" on aarch64)
/// gives a negative number, which the filter ignores.
std::vector<int> resolve_syscalls(const std::vector<std::string>& names);

/// In the worker: no_new_privs, then the filter (with `extra` allowed too).
/// Throws std::system_error naming the call that failed.
void install_compute_filter(std::span<const int> extra);

}  // namespace coexec::detail::sandboxing
