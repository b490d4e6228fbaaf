#include "process/fork_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <map>
#include <span>

#include "process/spare_warm_up.hpp"
#include "process/spare_workers.hpp"
#include "process/worker_loop.hpp"
#include "process/worker_stops.hpp"
#include "util/fd_passing.hpp"
#include "util/system_error.hpp"

namespace coexec::detail::proc {
namespace {

enum : std::uint32_t { op_register = 1, op_unregister = 2, op_fork_worker = 3 };

struct request {
    std::uint32_t op;
    std::uint32_t pool_id;
    std::uint32_t seq;  // echoed in the reply: a reply to anything else is discarded
};

struct reply_msg {
    std::int32_t err;
    std::int32_t pid;
    std::uint32_t pool_id;
    std::uint32_t seq;
};

// poll(2) on one descriptor until `deadline`, through EINTR: 1 (ready), 0
// (the deadline passed) or -1 with errno.
int poll_until(int fd, short events, std::chrono::steady_clock::time_point deadline) noexcept {
    for (;;) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{fd, events, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(std::max<long long>(left.count(), 0)));
        if (ready >= 0 || errno != EINTR) return ready;
    }
}

template <class T>
std::span<const std::byte> bytes_of(const T& v) noexcept {
    return std::as_bytes(std::span(&v, 1));
}
template <class T>
std::span<std::byte> writable_bytes_of(T& v) noexcept {
    return std::as_writable_bytes(std::span(&v, 1));
}

// Forks a worker on `w` (in the fork server). Its pid and pidfd, opened
// before the child could be reaped (so surely this child, not a recycled
// pid); no pidfd and errno if the OS refused (a child without one is killed).
launched fork_worker_child(channel_fds w, pid_t self, int sfd) noexcept {
    launched l;
    const pid_t child = ::fork();
    if (child == 0) {
        ::close(sfd);
        setup_worker_process(self, w, inherited_signals::reset_by_fork_server);
        worker_main(fixed_channel_fds());
    }
    if (child < 0) return l;
    l.pid = child;
    l.pidfd.reset(pidfd_open(child));
    if (!l.pidfd) {
        const int err = errno;
        ::kill(child, SIGKILL);
        errno = err;
    }
    return l;
}

// Schedules a continue for every child found stopped, or kills one stopped
// too often (see worker_stops.hpp); a pool worker's stop signal then goes in
// its record's killed_for, for its death report. A spare found stopped is
// killed (kill_stopped killed it already: killing it again is harmless, an
// unreaped child's pid is surely it).
void handle_stopped_children(const std::map<pid_t, std::uint32_t>& children,
                             std::map<pid_t, stop_record>& stops) noexcept {
    siginfo_t info{};
    // Each call takes one child's stop notice (no WNOWAIT): the loop ends.
    while (::waitid(P_ALL, 0, &info, WSTOPPED | WNOHANG) == 0 && info.si_pid != 0) {
        const pid_t pid = info.si_pid;
        const int sig = info.si_status;
        const bool stopped = info.si_code == CLD_STOPPED;
        info = {};
        if (!stopped) continue;
        const auto it = children.find(pid);
        bool kill = it == children.end() || it->second == 0;  // a spare
        if (!kill) {
            try {
                stop_record& r = stops[pid];
                const auto now = std::chrono::steady_clock::now();
                kill = stopped_too_often(r, now);
                if (kill) {
                    r.killed_for = sig;
                } else {
                    r.continue_at = now + continue_delay;
                }
            } catch (...) {
                kill = true;  // out of memory: killed, its report saying only how it died
            }
        }
        if (kill) {
            ::kill(pid, SIGKILL);
            ::kill(-pid, SIGKILL);  // its group: what its task started, as a deadline kill does
        }
    }
}

// Continues (with their groups) the stopped children whose continue_delay has
// passed. Returns the time until the next one is due; negative if none is.
std::chrono::microseconds continue_due_children(std::map<pid_t, stop_record>& stops) noexcept {
    using clock = std::chrono::steady_clock;
    auto next = std::chrono::microseconds(-1);
    if (stops.empty()) return next;
    const auto now = clock::now();
    for (auto& [pid, r] : stops) {
        if (r.continue_at == clock::time_point{}) continue;
        if (now >= r.continue_at) {
            r.continue_at = {};
            // An unreaped child: the pid, and its group's id, are surely its.
            ::kill(pid, SIGCONT);
            ::kill(-pid, SIGCONT);
            continue;
        }
        const auto left = std::chrono::ceil<std::chrono::microseconds>(r.continue_at - now);
        if (next.count() < 0 || left < next) next = left;
    }
    return next;
}

// The fork server's own process: single-threaded, forked from a
// single-threaded program, so it may fork workers at any time.
[[noreturn]] void fork_server_main(int ctrl_in, pid_t parent) noexcept {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(0);
    // None of the program's signal handlers (SIGINT ignored): the fork
    // server and its workers start clean.
    reset_signals();
    // Keep only stdio and the control socket: the fork server lives as long
    // as the program and must not hold its pipes or sockets open.
    const int ctrl = 3;
    if (ctrl_in != ctrl) {
        if (::dup2(ctrl_in, ctrl) < 0) ::_exit(1);
    } else {
        ::fcntl(ctrl, F_SETFD, 0);
    }
    replace_inherited_stdio();  // its children keep 0–2
    close_descriptors_from(ctrl + 1);

    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    ::sigprocmask(SIG_BLOCK, &chld, nullptr);
    const int sfd = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) ::_exit(1);

    std::map<std::uint32_t, unique_fd> pools;  // pool id → report socket
    std::map<pid_t, std::uint32_t> children;   // worker pid → pool id
    std::map<pid_t, stop_record> stops;        // worker pid → its recent stops
    const pid_t self = ::getpid();
    auto answer = [&](const reply_msg& rep, std::span<const int> fds = {}) {
        send_packet(ctrl, bytes_of(rep), fds);
    };
    spare_workers spares(self, children);

    for (;;) {
        pollfd p[2] = {{ctrl, POLLIN, 0}, {sfd, POLLIN, 0}};
        auto wait = spares.refill_due_in();
        if (const auto c = continue_due_children(stops);
            c.count() >= 0 && (wait.count() < 0 || c < wait))
            wait = c;
        timespec timeout{0, 0};
        timeout.tv_sec = wait.count() / 1'000'000;
        timeout.tv_nsec = wait.count() % 1'000'000 * 1'000;
        const int ready = ::ppoll(p, 2, wait.count() < 0 ? nullptr : &timeout, nullptr);
        if (ready < 0) {
            if (errno == EINTR) continue;
            ::_exit(1);
        }
        if (ready == 0) {
            // Only when nothing waits (a request goes first), and when due
            // (the wake may have been a continue's).
            if (spares.refill_due_in().count() == 0) spares.refill();
            continue;
        }
        if ((p[1].revents & POLLIN) != 0) {
            signalfd_siginfo info;
            while (::read(sfd, &info, sizeof info) > 0) {
            }
            int status = 0;
            pid_t pid;
            rusage ru{};
            while ((pid = ::wait4(-1, &status, WNOHANG, &ru)) > 0) {
                spares.reaped(pid);
                int stop_signal = 0;
                if (auto st = stops.find(pid); st != stops.end()) {
                    stop_signal = st->second.killed_for;
                    stops.erase(st);
                }
                auto it = children.find(pid);
                if (it == children.end()) continue;
                auto pool = pools.find(it->second);
                if (pool != pools.end()) {
                    const std::int64_t cpu_us =
                        (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1'000'000LL +
                        ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
                    death_report rep{pid, status, cpu_us, stop_signal, 0};
                    // Never block on a pool: a full socket loses only this
                    // report; the pool then falls back to "status unknown".
                    send_packet(pool->second.get(), bytes_of(rep), {}, MSG_DONTWAIT);
                }
                children.erase(it);
            }
            // A stop also raises SIGCHLD: a stopped spare is killed now,
            // not left until a request would pass it over.
            spares.kill_stopped();
            handle_stopped_children(children, stops);
        }
        if ((p[0].revents & POLLIN) != 0) {
            request req{};
            int received[4];
            std::size_t nfds = 0;
            const ssize_t r = recv_packet(ctrl, writable_bytes_of(req), received, nfds);
            if (r == 0) ::_exit(0);  // the program closed the socket: it is exiting
            if (r < 0 && errno != EMSGSIZE) ::_exit(1);
            unique_fd fds[4];  // closed at the end of the request unless kept
            for (std::size_t i = 0; i < nfds; ++i)
                fds[i].reset(received[i]);
            reply_msg rep{0, -1, req.pool_id, req.seq};
            if (r < 0) {
                // Its descriptors did not fit (none are kept; its bytes are
                // whole). A notice is never answered, even so: its sender
                // reads no reply, and one would answer the next request.
                if (req.op == op_fork_worker) {
                    rep.err = EMSGSIZE;
                    answer(rep);
                }
            } else if (req.op == op_register && nfds == 1) {
                try {
                    pools[req.pool_id] = std::move(fds[0]);  // no reply (see register_pool)
                } catch (...) {
                    // Out of memory: that pool gets no death reports, and
                    // falls back to "status unknown" for its workers.
                }
            } else if (req.op == op_unregister) {
                pools.erase(req.pool_id);  // no reply
            } else if (req.op == op_fork_worker && nfds == 3) {
                // A spare if one is ready, else a fork.
                const int worker_end[channel_fd_count] = {fds[0].get(), fds[1].get(), fds[2].get()};
                launched l = spares.hand_out(worker_end, req.pool_id);
                int err = 0;
                if (l.pid < 0) {
                    l = fork_worker_child(
                        channel_fds{std::move(fds[0]), std::move(fds[1]), std::move(fds[2])}, self,
                        sfd);
                    err = errno;
                    if (l.pid > 0) {
                        try {
                            children[l.pid] = req.pool_id;
                        } catch (...) {
                            ::kill(l.pid, SIGKILL);  // reaped, unknown, reported to no one
                            l.pidfd.reset();
                            err = ENOMEM;
                        }
                    }
                }
                if (l.pidfd) {
                    rep.pid = l.pid;
                    const int fd = l.pidfd.get();
                    answer(rep, {&fd, 1});
                } else {
                    rep.err = err;
                    answer(rep);
                }
            } else {
                rep.err = EINVAL;
                answer(rep);
            }
        } else if ((p[0].revents & (POLLHUP | POLLERR)) != 0) {
            ::_exit(0);
        }
    }
}

}  // namespace

// ---------------------------------------------------------------------------
// The program's side
// ---------------------------------------------------------------------------

struct fork_server::reply {
    reply_msg msg{};
};

fork_server* fork_server::ensure(bool may_start) {
    // Never destroyed: the fork server serves the program until it exits, and
    // pools in static storage may still use it during static destruction.
    static std::mutex mutex;
    static fork_server* instance = nullptr;
    std::lock_guard lock(mutex);
    // alive() also notices (and reaps) one that died since we last looked.
    if (instance != nullptr && instance->alive()) return instance;
    if (!may_start || !single_threaded()) return nullptr;

    reserve_stdio();  // the control socket must not land on 0–2 (see there)
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) throw_errno("socketpair");
    unique_fd mine(sv[0]);
    unique_fd theirs(sv[1]);
    // Unflushed stdio output would otherwise be written again by every worker
    // when it flushes at exit.
    std::fflush(nullptr);
    // Here, where the loader's tables are mapped already: ~3 µs, against
    // ~30 µs in the fork server (a fresh fork maps none of them), which would
    // spend them before it serves the first pool.
    find_spare_warm_up();
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork");
    if (pid == 0) fork_server_main(theirs.get(), parent);
    // Opened before anyone could reap it: surely this child, not a recycled pid.
    unique_fd pidfd(pidfd_open(pid));
    if (!pidfd) {
        const int err = errno;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        throw_system_error(err, "pidfd_open");
    }
    // An old dead one (if any, its process reaped and its descriptors
    // closed) is kept, reachable from the new one: pools may still point at
    // it, and it answers them that it is gone.
    auto* server = new fork_server();
    server->m_ctrl = std::move(mine);
    server->m_pid = pid;
    server->m_pidfd = std::move(pidfd);
    server->m_predecessor = instance;
    instance = server;
    return server;
}

bool fork_server::alive() noexcept {
    std::lock_guard lock(m_mutex);
    if (!m_dead) {
        pollfd p{m_pidfd.get(), POLLIN, 0};
        if (::poll(&p, 1, 0) == 1) mark_dead_locked();  // the pidfd is readable once it exits
    }
    return !m_dead;
}

void fork_server::notice_death() noexcept {
    std::lock_guard lock(m_mutex);
    if (!m_dead) mark_dead_locked();
}

void fork_server::mark_dead_locked() noexcept {
    m_dead = true;
    // Whatever state it is in (exiting, stopped, wedged), it serves no more:
    // kill it and reap it, so no zombie is left behind. SIGKILL ends even a
    // stopped process, so the wait is short.
    pidfd_send_signal(m_pidfd.get(), SIGKILL);
    siginfo_t info{};
    while (::waitid(P_PIDFD, static_cast<id_t>(m_pidfd.get()), &info, WEXITED) != 0 &&
           errno == EINTR) {
    }
    // ECHILD: the program reaped it itself (waitpid(-1), SIGCHLD ignored).
    // Nothing uses them once m_dead is set.
    m_ctrl.reset();
    m_pidfd.reset();
}

fork_server::reply fork_server::transact(std::uint32_t op, std::uint32_t pool_id,
                                         std::span<const int> fds, unique_fd* received) {
    std::lock_guard lock(m_mutex);
    if (m_dead) throw_system_error(EPIPE, "coexec fork server (gone)");
    // One request with a reply at a time: a reply that does not come (a
    // task may SIGSTOP its fork server) is a fork server that no longer
    // serves. Replies carry the request's sequence number, so a stray one
    // cannot answer this request in another's place.
    const std::uint32_t seq = ++m_seq;
    notify_locked(op, pool_id, fds, seq);
    const auto deadline = std::chrono::steady_clock::now() + reply_timeout;
    for (;;) {
        const int ready = poll_until(m_ctrl.get(), POLLIN, deadline);
        if (ready != 1) {
            mark_dead_locked();
            throw_system_error(ready == 0 ? ETIMEDOUT : errno, "coexec fork server: no reply");
        }
        reply rep;
        int got = -1;  // a reply carries at most one descriptor (a pidfd)
        std::size_t ngot = 0;
        const ssize_t r =
            recv_packet(m_ctrl.get(), writable_bytes_of(rep.msg), {&got, 1}, ngot, MSG_DONTWAIT);
        if (r <= 0) {
            const int err = r < 0 ? errno : EPIPE;
            mark_dead_locked();
            throw_system_error(err, "recvmsg(coexec fork server)");
        }
        unique_fd pidfd(ngot == 1 ? got : -1);
        if (rep.msg.seq != seq) continue;  // not ours: dropped, with its descriptor
        if (received != nullptr) *received = std::move(pidfd);
        return rep;
    }
}

std::uint32_t fork_server::register_pool(int report_fd) {
    std::lock_guard lock(m_mutex);
    const std::uint32_t id = m_next_pool_id++;
    notify_locked(op_register, id, {&report_fd, 1}, 0);
    return id;
}

void fork_server::unregister_pool(std::uint32_t id) noexcept {
    try {
        std::lock_guard lock(m_mutex);
        notify_locked(op_unregister, id, {}, 0);
    } catch (...) {
        // The fork server is gone: nothing to unregister from.
    }
}

void fork_server::notify_locked(std::uint32_t op, std::uint32_t pool_id, std::span<const int> fds,
                                std::uint32_t seq) {
    if (m_dead) throw_system_error(EPIPE, "coexec fork server (gone)");
    const request req{op, pool_id, seq};
    // Notices queue up unread while the fork server is busy or descheduled:
    // a full socket waits for room as a request waits for its reply, and a
    // fork server that makes none within reply_timeout no longer serves.
    const auto deadline = std::chrono::steady_clock::now() + reply_timeout;
    while (send_packet(m_ctrl.get(), bytes_of(req), fds, MSG_DONTWAIT) < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK) {
            const int ready = poll_until(m_ctrl.get(), POLLOUT, deadline);
            if (ready == 1) continue;
            err = ready == 0 ? ETIMEDOUT : errno;
        }
        mark_dead_locked();
        throw_system_error(err, "sendmsg(coexec fork server)");
    }
}

launched fork_server::fork_worker(std::uint32_t pool_id, const channel_fds& w) {
    const int fds[3] = {w.memfd.get(), w.wake.get(), w.socket.get()};
    unique_fd pidfd;
    reply rep = transact(op_fork_worker, pool_id, fds, &pidfd);
    if (rep.msg.err != 0) throw_system_error(rep.msg.err, "fork (in the coexec fork server)");
    if (!pidfd) throw_system_error(EPROTO, "coexec fork server: no pidfd");
    launched l;
    l.pid = rep.msg.pid;
    l.pidfd = std::move(pidfd);
    l.direct_child = false;
    return l;
}

}  // namespace coexec::detail::proc
