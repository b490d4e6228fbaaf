// lib/process/launch.hpp — starting process workers safely.
//
// Three ways to start a worker (coexec::start_method):
// - fork_server: a single-threaded helper process, the fork server
//   (fork_server.hpp), forked once while the program is still
//   single-threaded, forks every worker. No worker is ever forked from a
//   multithreaded process, so no worker can inherit a lock held by a thread
//   that does not exist in it.
// - fork: the supervisor thread forks the worker directly (the caller promises
//   the program is single-threaded apart from coexec).
// - spawn: fork, then only async-signal-safe calls, then execve(/proc/self/exe)
//   with COEXEC_PROCESS_WORKER set; a static initializer in libcoexec
//   (launch.cpp, linked by every process_pool) runs the worker loop before
//   main. Safe from any multithreaded state; used as the fallback when
//   fork_server is asked for but no fork server could be made.
//
// Every worker: PR_SET_PDEATHSIG(SIGKILL) (then checks getppid() to close the
// race with a parent that died first), every signal's disposition reset to
// the default but SIGINT ignored, an empty signal mask, its own process
// group, descriptors 3..5 = its channel (everything else closed, with
// close_range or, where the kernel lacks it, by listing /proc/self/fd), and
// it exits when its channel's socket hangs up (worker_loop.hpp). The fork
// server likewise dies with the program and starts from the same clean state.
#pragma once

#include <sys/types.h>

#include "process/channel.hpp"
#include "util/unique_fd.hpp"

namespace coexec::detail::proc {

/// How the pool wants its workers started (mirrors coexec::start_method).
enum class launch_method { fork_server, fork, spawn };

/// A started worker process.
struct launched {
    pid_t pid = -1;
    unique_fd pidfd;
    bool direct_child = false;  // true: reap it ourselves (waitid on the pidfd)
};

/// Starts a worker directly from this process (launch_method::fork or
/// ::spawn). Call from a thread that lives as long as the workers
/// (PR_SET_PDEATHSIG follows the thread that forked). Throws std::system_error.
launched launch_direct(launch_method method, const channel_fds& worker_end);

/// Tells the user once per process, on stderr, that a pool that asked for a
/// fork server starts its workers with spawn instead, `reason` saying why,
/// and how to fix or silence it (COEXEC_NO_SPAWN_WARNING=1). Thread-safe.
void warn_spawn_fallback(const char* reason) noexcept;

/// Called by libcoexec's static initializer: if this process was started as a
/// spawned worker, runs the worker loop and never returns.
void run_spawned_worker_if_requested() noexcept;

/// pidfd_open(2) / pidfd_send_signal(2); -1 with errno on failure.
int pidfd_open(pid_t pid) noexcept;
int pidfd_send_signal(int pidfd, int sig) noexcept;

/// True if this process has no thread but the caller (from /proc/self/task),
/// not counting threads already exiting (a just-joined thread is still listed
/// for a moment).
bool single_threaded() noexcept;

// ---- the child's side of a launch (also used by the fork server) ----

/// What a freshly forked child inherited of signal handling: the program's
/// (reset every disposition), or the fork server's, reset once when it
/// started (only the mask is emptied: ~63 sigaction calls, 19 µs a worker).
enum class inherited_signals { program, reset_by_fork_server };

/// A worker's channel is always on descriptors 3..5 (memfd, wake, socket).
inline constexpr int first_channel_fd = 3;
inline constexpr int channel_fd_count = 3;

/// In a freshly forked child: moves `fds` to 3..5 and closes every other
/// descriptor, ties the child's life to `expected_parent`, resets signals.
/// Only async-signal-safe calls; exits the child if it cannot.
void setup_worker_process(pid_t expected_parent, const channel_fds& fds,
                          inherited_signals signals) noexcept;

/// The channel as setup_worker_process left it (descriptors 3..5).
channel_fds fixed_channel_fds() noexcept;

/// Closes every descriptor >= `first`: close_range, or (kernels before 5.9,
/// or `use_close_range` false, for the tests) each one listed in
/// /proc/self/fd, or without /proc each one below RLIMIT_NOFILE.
/// Async-signal-safe.
void close_descriptors_from(int first, bool use_close_range = true) noexcept;

/// Opens /dev/null on whichever of descriptors 0–2 is closed. Every worker
/// keeps 0–2 (they are the program's stdio): with stdin closed, the next
/// descriptor coexec made (a fork server's control socket, a channel) would
/// land on 0 and reach every worker, where a task could read or write it.
/// Called before a pool or the fork server makes its descriptors (see also
/// replace_inherited_stdio, on the child's side).
void reserve_stdio() noexcept;

/// In a fresh child (a worker, the fork server): any of descriptors 0–2 that
/// is close-on-exec is one of the parent's own (coexec's, or a library's),
/// not stdio: it gets /dev/null over it (closed if there is no /dev/null),
/// as exec would have closed it. Catches what reserve_stdio cannot: a
/// descriptor made on a free 0–2 before any pool. Async-signal-safe.
void replace_inherited_stdio() noexcept;

/// Resets every signal's disposition to the default (SIGINT: ignored) and
/// empties the signal mask. Async-signal-safe.
void reset_signals() noexcept;

/// Empties the signal mask. Async-signal-safe.
void unblock_signals() noexcept;

}  // namespace coexec::detail::proc
