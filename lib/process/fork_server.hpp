// lib/process/fork_server.hpp — the process that forks every worker.
//
// start_method::fork_server (the default): a single-threaded process, forked
// once while the program is still single-threaded (process_pool::prepare, or
// the first pool), forks every worker of every pool. A worker forked from a
// multithreaded program could inherit a lock held by a thread that does not
// exist in it; one forked from the fork server cannot. The fork server also
// reaps its children and reports each (pid, wait status, CPU time) to the pool that
// owns it, since the pool is not their parent.
//
// Protocol: the program talks to it over one SOCK_SEQPACKET control socket.
// Registering a pool's report socket (under an id the program chose) and
// unregistering it are notices, with no reply: a pool's first fork request
// follows its registration at once (a round trip to the fork server is ~0.1
// ms on a 2-vCPU guest, a fifth of a pool's start). A fork request (a
// worker's three channel descriptors) is answered, one at a time, with the
// worker's pidfd and the request's sequence number (a reply with another
// is dropped: nothing stray can answer a request in another's place). The
// fork server keeps spare workers forked ahead (spare_workers.hpp), so a
// request is mostly answered without a fork. It exits when the control
// socket hangs up, and dies with the program (PR_SET_PDEATHSIG).
//
// A task can kill (or stop) the fork server: it is its workers' parent. The
// program notices through the fork server's pidfd, a hung-up socket or a
// reply that does not come, kills and reaps it (no zombie), and the next
// ensure() starts a new one if the program is single-threaded; otherwise
// pools fall back to start_method::spawn. Nothing throws for that reason.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <span>

#include "process/channel.hpp"
#include "process/launch.hpp"
#include "util/unique_fd.hpp"

namespace coexec::detail::proc {

/// The process-wide fork server, as the program sees it. All members are
/// thread-safe.
class fork_server {
  public:
    /// Starts the fork server if there is none (or it died) and the program
    /// is single-threaded. Returns the running one, or null (multithreaded,
    /// and none is running). Throws std::system_error if the OS refuses
    /// (socketpair, fork).
    static fork_server* ensure(bool may_start);

    /// Registers a pool: the fork server will report the deaths of that
    /// pool's workers as `death_report`s on `report_fd` (a SOCK_SEQPACKET
    /// end; the fork server keeps a duplicate). Returns the pool's id.
    /// Does not wait for the fork server. Throws std::system_error (it is
    /// gone).
    std::uint32_t register_pool(int report_fd);
    void unregister_pool(std::uint32_t id) noexcept;

    /// Has the fork server fork a worker on `worker_end`. Throws
    /// std::system_error.
    launched fork_worker(std::uint32_t pool_id, const channel_fds& worker_end);

    /// False once the fork server is gone (checks its pidfd; a dead one is
    /// reaped here).
    bool alive() noexcept;

    /// A pool saw the fork server hang up: kill and reap it.
    void notice_death() noexcept;

    /// How long a request may wait for its reply before the fork server is
    /// given up (a fork of a large program takes well under a second).
    static constexpr std::chrono::milliseconds reply_timeout{10'000};

  private:
    fork_server() = default;
    struct reply;
    reply transact(std::uint32_t op, std::uint32_t pool_id, std::span<const int> fds,
                   unique_fd* received);
    /// Sends one request (seq 0: a notice, never answered). Throws
    /// std::system_error, the fork server then marked dead.
    void notify_locked(std::uint32_t op, std::uint32_t pool_id, std::span<const int> fds,
                       std::uint32_t seq);
    void mark_dead_locked() noexcept;

    std::mutex m_mutex;
    unique_fd m_ctrl;
    unique_fd m_pidfd;
    pid_t m_pid = -1;
    bool m_dead = false;
    std::uint32_t m_next_pool_id = 1;
    std::uint32_t m_seq = 0;               // of the last request with a reply
    fork_server* m_predecessor = nullptr;  // the dead one this one replaced (never freed)
};

/// What the fork server sends on a pool's report socket when it reaps a worker.
struct death_report {
    std::int32_t pid;
    std::int32_t wait_status;  // as from waitpid
    std::int64_t cpu_us;       // its CPU time, user + system (limits.cpu_time's causes)
    std::int32_t stop_signal;  // nonzero: it was found stopped by this signal, and killed
    std::int32_t reserved;
};

}  // namespace coexec::detail::proc
