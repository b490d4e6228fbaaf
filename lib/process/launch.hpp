// lib/process/launch.hpp — starting process workers safely, and their main loop.
//
// Three ways to start a worker (coexec::start_method):
// - fork_server: a single-threaded "zygote" process, forked once while the
//   program is still single-threaded, forks every worker. No worker is ever
//   forked from a multithreaded process, so no worker can inherit a lock held
//   by a thread that does not exist in it. The zygote reaps its children and
//   reports each (pid, wait status) to the pool that owns it.
// - fork: the supervisor thread forks the worker directly (the caller promises
//   the program is single-threaded apart from coexec).
// - spawn: fork, then only async-signal-safe calls, then execve(/proc/self/exe)
//   with COEXEC_PROCESS_WORKER set; a static initializer in libcoexec
//   (process_pool.cpp, always linked with process_pool) runs the worker loop
//   before main. Safe from any multithreaded state; used as the fallback when
//   fork_server is asked for but no zygote could be made.
//
// Every worker: PR_SET_PDEATHSIG(SIGKILL) (then checks getppid() to close the
// race with a parent that died first), SIGINT ignored, its own process group,
// descriptors 3..6 = its channel (everything else closed), and it exits when
// its channel's socket hangs up. The zygote likewise dies with the program.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <mutex>

#include "process/channel.hpp"

namespace coexec::detail::proc {

/// How the pool wants its workers started (mirrors coexec::start_method).
enum class launch_method { fork_server, fork, spawn };

/// A started worker process.
struct launched {
    pid_t pid = -1;
    unique_fd pidfd;
    bool direct_child = false;  // true: reap it ourselves (waitid on the pidfd)
};

/// The worker's main loop over descriptors 3..6 (or `fds`). Never returns.
[[noreturn]] void worker_main(const channel_fds& fds) noexcept;

/// pidfd_open(2) / pidfd_send_signal(2); -1 with errno on failure.
int pidfd_open(pid_t pid) noexcept;
int pidfd_send_signal(int pidfd, int sig) noexcept;

/// True if this process has exactly one thread (from /proc/self/task).
bool single_threaded() noexcept;

/// The process-wide fork server. All members are thread-safe.
class zygote {
  public:
    /// Starts the zygote if there is none and the program is single-threaded.
    /// Returns the running zygote, or null (multithreaded, or it died).
    /// Throws std::system_error if the OS refuses (socketpair, fork).
    static zygote* ensure(bool may_start);

    /// Registers a pool: the zygote will report the deaths of that pool's
    /// workers as `death_report`s on `report_fd` (a SOCK_SEQPACKET end).
    /// Returns the pool's id. Throws std::system_error.
    std::uint32_t register_pool(int report_fd);
    void unregister_pool(std::uint32_t id) noexcept;

    /// Forks a worker from the zygote. Throws std::system_error.
    launched spawn(std::uint32_t pool_id, const channel_fds& worker_end);

    /// False once the zygote is known to be gone.
    bool alive() const noexcept;

  private:
    zygote() = default;
    struct reply;
    reply transact(std::uint32_t op, std::uint32_t pool_id, const int* fds, std::size_t nfds,
                   unique_fd* received);

    mutable std::mutex m_mutex;
    unique_fd m_ctrl;
    pid_t m_pid = -1;
    bool m_dead = false;
};

/// What the zygote sends on a pool's report socket when it reaps a worker.
struct death_report {
    std::int32_t pid;
    std::int32_t wait_status;  // as from waitpid
};

/// Starts a worker directly from this process (fork or spawn). Call from a
/// thread that lives as long as the workers (PR_SET_PDEATHSIG follows the
/// thread that forked). Throws std::system_error.
launched launch_direct(launch_method method, const channel_fds& worker_end);

/// Called by libcoexec's static initializer: if this process was started as a
/// spawned worker, runs the worker loop and never returns.
void run_spawned_worker_if_requested() noexcept;

}  // namespace coexec::detail::proc
