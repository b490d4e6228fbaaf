#include "process/launch.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include "coexec/detail/codec/code_address.hpp"
#include "coexec/detail/codec/exceptions.hpp"
#include "util/spin.hpp"

extern char** environ;

namespace coexec::detail::proc {

int pidfd_open(pid_t pid) noexcept {
    // Direct syscall: glibc 2.36's <sys/pidfd.h> lacks extern "C" for C++.
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int pidfd_send_signal(int pidfd, int sig) noexcept {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

namespace {

constexpr const char* worker_env = "COEXEC_PROCESS_WORKER";
constexpr int first_channel_fd = 3;  // a worker's channel is always on 3..6

// A worker spins this long for the next message before it sleeps: long enough
// to cover a caller that submits again right after its previous result.
constexpr std::chrono::microseconds worker_spin{100};

// Worker exit codes for failures of the worker loop itself (not of tasks).
constexpr int exit_init_failed = 3;
constexpr int exit_loop_error = 70;

using remote_fn = void (*)(byte_reader&, byte_writer&);
using initializer_fn = void (*)();

// ---------------------------------------------------------------------------
// In a freshly forked child: only async-signal-safe calls from here to exec.
// ---------------------------------------------------------------------------

void setup_worker_process(pid_t expected_parent, const channel_fds& fds) noexcept {
    const int in[4] = {fds.memfd, fds.to_worker_event, fds.to_parent_event, fds.socket};
    int tmp[4];
    // First out of the way (the sources may overlap 3..6), then into place.
    for (int i = 0; i < 4; ++i) {
        tmp[i] = ::fcntl(in[i], F_DUPFD, 10);
        if (tmp[i] < 0) ::_exit(121);
    }
    for (int i = 0; i < 4; ++i) {
        if (::dup2(tmp[i], first_channel_fd + i) < 0) ::_exit(121);  // dup2 clears FD_CLOEXEC
    }
    // Nothing else of the parent's: in particular not other workers' sockets,
    // whose hang-up must reach only their own worker.
    ::close_range(first_channel_fd + 4, ~0U, 0);

    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The parent may have died before the prctl: then we are orphaned already.
    if (::getppid() != expected_parent) ::_exit(0);
    ::setpgid(0, 0);  // deadline kills address the whole group

    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    for (int sig : {SIGTERM, SIGCHLD, SIGPIPE, SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL}) {
        ::sigaction(sig, &sa, nullptr);
    }
    sa.sa_handler = SIG_IGN;
    ::sigaction(SIGINT, &sa, nullptr);  // Ctrl-C is the parent's to handle
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

channel_fds fixed_channel_fds() noexcept {
    return {first_channel_fd, first_channel_fd + 1, first_channel_fd + 2, first_channel_fd + 3};
}

// ---------------------------------------------------------------------------
// The worker loop
// ---------------------------------------------------------------------------

// Spins (pause, then yield: see the supervisor's loop) until a message is
// waiting or the budget is spent.
bool spin_yield_until(const channel& ch, std::chrono::microseconds budget) {
    const auto deadline = std::chrono::steady_clock::now() + budget;
    for (;;) {
        for (int i = 0; i < 64; ++i) {
            if (ch.readable()) return true;
            cpu_relax();
        }
        if (std::chrono::steady_clock::now() >= deadline) return ch.readable();
        ::sched_yield();
    }
}

void encode_failure(std::vector<std::byte>& out, std::vector<int>& out_fds) {
    close_fds(out_fds);
    out_fds.clear();
    out.clear();
    byte_writer w(out, nullptr);
    w.put(1);  // the codec's status_exception, then the exception
    encode_exception(w, std::current_exception());
}

int worker_loop(const channel_fds& fds) {
    channel ch = channel::attach(fds);
    std::vector<std::byte> out;
    out.reserve(4096);
    std::vector<int> out_fds;
    message m;
    for (;;) {
        if (!ch.try_receive(m)) {
            if (spin_yield_until(ch, worker_spin)) continue;
            if (!ch.prepare_sleep()) continue;
            pollfd p[2] = {{ch.wake_fd(), POLLIN, 0}, {ch.socket_fd(), POLLRDHUP, 0}};
            const int r = ::poll(p, 2, -1);
            ch.end_sleep();
            if (r < 0 && errno != EINTR) return exit_loop_error;
            // The parent is gone (or closed the channel): nothing more will come.
            if ((p[1].revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0 && !ch.readable()) return 0;
            continue;
        }
        switch (m.kind) {
            case msg_kind::config: {
                out.clear();
                try {
                    byte_reader in(m.bytes);
                    const std::uint64_t init = in.get_u64();
                    if (init != 0) std::bit_cast<initializer_fn>(decode_code_address(init))();
                } catch (...) {
                    encode_failure(out, out_fds);
                    ch.send(msg_kind::init_failed, m.id, out);
                    return exit_init_failed;
                }
                ch.send(msg_kind::ready, m.id, {});
                break;
            }
            case msg_kind::task: {
                out.clear();
                out_fds.clear();
                try {
                    byte_reader in(m.bytes, m.fds);
                    byte_writer w(out, &out_fds);
                    auto fn = std::bit_cast<remote_fn>(decode_code_address(in.get_u64()));
                    ch.set_running_id(m.id);
                    fn(in, w);  // encodes the task's own exceptions itself
                } catch (...) {
                    encode_failure(out, out_fds);
                }
                // The arguments are decoded: free the message before the result
                // goes out, so the parent finds the arena free for the next task.
                ch.release(m);
                try {
                    ch.send(msg_kind::result, m.id, out, out_fds);
                } catch (...) {
                    close_fds(out_fds);
                    throw;
                }
                close_fds(out_fds);
                out_fds.clear();
                break;
            }
            case msg_kind::exit:
                ch.release(m);
                return 0;
            default:
                return exit_loop_error;
        }
        ch.release(m);
    }
}

// ---------------------------------------------------------------------------
// The zygote
// ---------------------------------------------------------------------------

enum : std::uint32_t { op_register = 1, op_unregister = 2, op_spawn = 3 };

struct request {
    std::uint32_t op;
    std::uint32_t pool_id;
};

struct reply_msg {
    std::int32_t err;
    std::int32_t pid;
    std::uint32_t pool_id;
    std::uint32_t reserved;
};

// Sends `bytes` plus up to 4 descriptors on a SEQPACKET socket.
ssize_t send_packet(int sock, const void* bytes, std::size_t len, const int* fds, std::size_t nfds,
                    int flags) noexcept {
    iovec iov{const_cast<void*>(bytes), len};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (nfds != 0) {
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t r;
    do {
        r = ::sendmsg(sock, &msg, flags | MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    return r;
}

// Receives one packet and up to 4 descriptors (CLOEXEC); returns the byte count.
ssize_t recv_packet(int sock, void* bytes, std::size_t len, int* fds, std::size_t& nfds) noexcept {
    iovec iov{bytes, len};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t r;
    do {
        r = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (r < 0 && errno == EINTR);
    nfds = 0;
    if (r < 0) return r;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const auto* p = reinterpret_cast<const int*>(CMSG_DATA(c));
        for (std::size_t i = 0; i < n; ++i) {
            if (nfds < 4) {
                fds[nfds++] = p[i];
            } else {
                ::close(p[i]);
            }
        }
    }
    return r;
}

[[noreturn]] void zygote_main(int ctrl_in, pid_t parent) noexcept {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(0);
    struct sigaction sa {};
    sa.sa_handler = SIG_IGN;
    ::sigaction(SIGINT, &sa, nullptr);
    // Keep only stdio and the control socket: the zygote lives as long as the
    // program and must not hold its pipes or sockets open.
    const int ctrl = 3;
    if (ctrl_in != ctrl) {
        if (::dup2(ctrl_in, ctrl) < 0) ::_exit(1);
    } else {
        ::fcntl(ctrl, F_SETFD, 0);
    }
    ::close_range(ctrl + 1, ~0U, 0);

    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    ::sigprocmask(SIG_BLOCK, &chld, nullptr);
    const int sfd = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) ::_exit(1);

    std::map<std::uint32_t, int> pools;       // pool id → report socket
    std::map<pid_t, std::uint32_t> children;  // worker pid → pool id
    std::uint32_t next_pool = 1;
    const pid_t self = ::getpid();

    for (;;) {
        pollfd p[2] = {{ctrl, POLLIN, 0}, {sfd, POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            ::_exit(1);
        }
        if ((p[1].revents & POLLIN) != 0) {
            signalfd_siginfo info;
            while (::read(sfd, &info, sizeof info) > 0) {
            }
            int status = 0;
            pid_t pid;
            while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
                auto it = children.find(pid);
                if (it == children.end()) continue;
                auto pool = pools.find(it->second);
                if (pool != pools.end()) {
                    death_report rep{pid, status};
                    // Never block on a pool: a full socket loses only this
                    // report; the pool then falls back to "status unknown".
                    send_packet(pool->second, &rep, sizeof rep, nullptr, 0, MSG_DONTWAIT);
                }
                children.erase(it);
            }
        }
        if ((p[0].revents & POLLIN) != 0) {
            request req{};
            int fds[4];
            std::size_t nfds = 0;
            const ssize_t r = recv_packet(ctrl, &req, sizeof req, fds, nfds);
            if (r == 0) ::_exit(0);  // the program closed the socket: it is exiting
            if (r < 0) ::_exit(1);
            reply_msg rep{0, -1, req.pool_id, 0};
            if (req.op == op_register && nfds == 1) {
                rep.pool_id = next_pool++;
                pools[rep.pool_id] = fds[0];
                nfds = 0;  // kept
                send_packet(ctrl, &rep, sizeof rep, nullptr, 0, 0);
            } else if (req.op == op_unregister) {
                auto it = pools.find(req.pool_id);
                if (it != pools.end()) {
                    ::close(it->second);
                    pools.erase(it);
                }
                send_packet(ctrl, &rep, sizeof rep, nullptr, 0, 0);
            } else if (req.op == op_spawn && nfds == 4) {
                const pid_t child = ::fork();
                if (child == 0) {
                    ::close(sfd);
                    setup_worker_process(self, {fds[0], fds[1], fds[2], fds[3]});
                    worker_main(fixed_channel_fds());
                }
                if (child < 0) {
                    rep.err = errno;
                    send_packet(ctrl, &rep, sizeof rep, nullptr, 0, 0);
                } else {
                    children[child] = req.pool_id;
                    rep.pid = child;
                    // Opened here, before we could reap it: the pidfd surely
                    // refers to this child and not to a recycled pid.
                    const int pidfd = pidfd_open(child);
                    if (pidfd < 0) {
                        rep.err = errno;
                        ::kill(child, SIGKILL);
                        send_packet(ctrl, &rep, sizeof rep, nullptr, 0, 0);
                    } else {
                        send_packet(ctrl, &rep, sizeof rep, &pidfd, 1, 0);
                        ::close(pidfd);
                    }
                }
            } else {
                rep.err = EINVAL;
                send_packet(ctrl, &rep, sizeof rep, nullptr, 0, 0);
            }
            for (std::size_t i = 0; i < nfds; ++i)
                ::close(fds[i]);
        } else if ((p[0].revents & (POLLHUP | POLLERR)) != 0) {
            ::_exit(0);
        }
    }
}

}  // namespace

[[noreturn]] void worker_main(const channel_fds& fds) noexcept {
    int code = exit_loop_error;
    try {
        code = worker_loop(fds);
    } catch (...) {
        code = exit_loop_error;
    }
    // _exit: the worker is a copy of the caller's image; its atexit handlers
    // and static destructors belong to the caller.
    std::fflush(nullptr);
    ::_exit(code);
}

bool single_threaded() noexcept {
    DIR* d = ::opendir("/proc/self/task");
    if (d == nullptr) return false;
    int n = 0;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
    return n == 1;
}

// ---------------------------------------------------------------------------
// zygote (parent side)
// ---------------------------------------------------------------------------

struct zygote::reply {
    reply_msg msg{};
};

zygote* zygote::ensure(bool may_start) {
    // Never destroyed: the zygote serves the program until it exits, and pools
    // in static storage may still use it during static destruction.
    static std::mutex mutex;
    static zygote* instance = nullptr;
    std::lock_guard lock(mutex);
    if (instance != nullptr && instance->alive()) return instance;
    if (!may_start || !single_threaded()) return nullptr;

    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) throw_errno("socketpair");
    unique_fd mine(sv[0]);
    unique_fd theirs(sv[1]);
    // Unflushed stdio output would otherwise be written again by every worker
    // when it flushes at exit.
    std::fflush(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork");
    if (pid == 0) zygote_main(theirs.get(), parent);
    auto* z =
        new zygote();  // an old dead one (if any) is intentionally leaked: pools may point at it
    z->m_ctrl = std::move(mine);
    z->m_pid = pid;
    instance = z;
    return z;
}

bool zygote::alive() const noexcept {
    std::lock_guard lock(m_mutex);
    return !m_dead;
}

zygote::reply zygote::transact(std::uint32_t op, std::uint32_t pool_id, const int* fds,
                               std::size_t nfds, unique_fd* received) {
    std::lock_guard lock(m_mutex);
    if (m_dead)
        throw std::system_error(EPIPE, std::generic_category(), "coexec fork server (gone)");
    request req{op, pool_id};
    if (send_packet(m_ctrl.get(), &req, sizeof req, fds, nfds, 0) < 0) {
        const int err = errno;
        m_dead = true;
        throw std::system_error(err, std::generic_category(), "sendmsg(coexec fork server)");
    }
    reply rep;
    int got[4];
    std::size_t ngot = 0;
    const ssize_t r = recv_packet(m_ctrl.get(), &rep.msg, sizeof rep.msg, got, ngot);
    if (r <= 0) {
        const int err = r < 0 ? errno : EPIPE;
        m_dead = true;
        for (std::size_t i = 0; i < ngot; ++i)
            ::close(got[i]);
        throw std::system_error(err, std::generic_category(), "recvmsg(coexec fork server)");
    }
    for (std::size_t i = 0; i < ngot; ++i) {
        if (i == 0 && received != nullptr) {
            received->reset(got[i]);
        } else {
            ::close(got[i]);
        }
    }
    return rep;
}

std::uint32_t zygote::register_pool(int report_fd) {
    reply rep = transact(op_register, 0, &report_fd, 1, nullptr);
    if (rep.msg.err != 0) {
        throw std::system_error(rep.msg.err, std::generic_category(),
                                "coexec fork server: register");
    }
    return rep.msg.pool_id;
}

void zygote::unregister_pool(std::uint32_t id) noexcept {
    try {
        transact(op_unregister, id, nullptr, 0, nullptr);
    } catch (...) {
        // The zygote is gone: nothing to unregister from.
    }
}

launched zygote::spawn(std::uint32_t pool_id, const channel_fds& w) {
    const int fds[4] = {w.memfd, w.to_worker_event, w.to_parent_event, w.socket};
    unique_fd pidfd;
    reply rep = transact(op_spawn, pool_id, fds, 4, &pidfd);
    if (rep.msg.err != 0) {
        throw std::system_error(rep.msg.err, std::generic_category(),
                                "fork (in the coexec fork server)");
    }
    if (!pidfd)
        throw std::system_error(EPROTO, std::generic_category(), "coexec fork server: no pidfd");
    launched l;
    l.pid = rep.msg.pid;
    l.pidfd = std::move(pidfd);
    l.direct_child = false;
    return l;
}

// ---------------------------------------------------------------------------
// fork / spawn from this process
// ---------------------------------------------------------------------------

launched launch_direct(launch_method method, const channel_fds& worker_end) {
    // Everything exec needs is built before fork: after fork, in a
    // multithreaded parent, the child may only make async-signal-safe calls.
    std::vector<std::string> env_storage;
    std::vector<char*> envp;
    char arg0[] = "coexec-worker";
    char* argv[] = {arg0, nullptr};
    if (method == launch_method::spawn) {
        for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
            if (std::strncmp(*e, "COEXEC_PROCESS_WORKER=", 22) != 0) env_storage.emplace_back(*e);
        }
        env_storage.emplace_back(std::string(worker_env) + "=1");
        for (auto& s : env_storage)
            envp.push_back(s.data());
        envp.push_back(nullptr);
    }
    if (method == launch_method::fork) std::fflush(nullptr);  // see zygote::ensure
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork");
    if (pid == 0) {
        setup_worker_process(parent, worker_end);
        if (method == launch_method::spawn) {
            ::execve("/proc/self/exe", argv, envp.data());
            ::_exit(127);
        }
        worker_main(fixed_channel_fds());
    }
    launched l;
    l.pid = pid;
    l.direct_child = true;
    l.pidfd.reset(pidfd_open(pid));
    if (!l.pidfd) {
        const int err = errno;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        throw std::system_error(err, std::generic_category(), "pidfd_open");
    }
    return l;
}

void run_spawned_worker_if_requested() noexcept {
    const char* v = std::getenv(worker_env);
    if (v == nullptr || std::strcmp(v, "1") != 0) return;
    ::unsetenv(worker_env);  // the task's own child processes are not workers
    for (int fd = first_channel_fd; fd < first_channel_fd + 4; ++fd)
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    worker_main(fixed_channel_fds());
}

}  // namespace coexec::detail::proc

namespace {
// Runs before main in a process started by launch_method::spawn. It lives in
// this translation unit because every process_pool links it (the pool calls
// launch_direct / zygote), so a static libcoexec never drops it.
const bool spawned_worker_check = (coexec::detail::proc::run_spawned_worker_if_requested(), true);
}  // namespace
