#include "process/spare_workers.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <span>
#include <utility>

#include "process/spare_warm_up.hpp"
#include "process/worker_loop.hpp"
#include "util/fd_passing.hpp"

namespace coexec::detail::proc {
namespace {

constexpr std::uint32_t no_pool = 0;  // pool ids start at 1
constexpr int spare_socket_fd = 3;

// The spare's life: wait for a channel, then be that channel's worker.
[[noreturn]] void spare_main(int socket, pid_t fork_server) noexcept {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != fork_server) ::_exit(0);
    if (socket != spare_socket_fd && ::dup2(socket, spare_socket_fd) < 0) ::_exit(121);
    close_descriptors_from(spare_socket_fd + 1);
    warm_up_spare(spare_socket_fd);  // while nobody asks for it (spare_warm_up.hpp)
    std::uint32_t tag = 0;
    int received[channel_fd_count];
    std::size_t nfds = 0;
    const ssize_t r =
        recv_packet(spare_socket_fd, std::as_writable_bytes(std::span(&tag, 1)), received, nfds);
    // Hung up: the fork server let it go (or is gone).
    if (r <= 0 || nfds != channel_fd_count) ::_exit(0);
    const channel_fds w{unique_fd(received[0]), unique_fd(received[1]), unique_fd(received[2])};
    setup_worker_process(fork_server, w, inherited_signals::reset_by_fork_server);
    worker_main(fixed_channel_fds());
}

// True if `pid` (an unreaped child: the pid is surely it) is stopped. By pid:
// P_PIDFD would need Linux 5.4.
bool is_stopped(pid_t pid) noexcept {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid), &info, WSTOPPED | WNOHANG | WNOWAIT) == 0 &&
           info.si_pid != 0;
}

// Tasks running or waiting for a CPU, all CPUs together (the fourth field of
// /proc/loadavg, "running/total"), or -1 if it cannot be read.
long runnable_tasks() noexcept {
    const int fd = ::open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char text[128];
    const ssize_t n = ::read(fd, text, sizeof text - 1);
    ::close(fd);
    if (n <= 0) return -1;
    text[n] = '\0';
    // "0.14 0.81 1.81 2/85 9444": the number after the third space.
    const char* at = text;
    for (int spaces = 0; spaces < 3; ++at) {
        if (*at == '\0') return -1;
        if (*at == ' ') ++spaces;
    }
    char* end = nullptr;
    const long running = std::strtol(at, &end, 10);
    return end != at && *end == '/' ? running : -1;
}

// The CPUs /proc/loadavg counts tasks on: all online ones (not only those
// this process may run on: load elsewhere would otherwise always look busy).
std::size_t online_cpu_count() noexcept {
    return static_cast<std::size_t>(std::max(::get_nprocs(), 1));
}

std::size_t wanted_count() noexcept {
    const char* v = std::getenv("COEXEC_SPARE_WORKERS");
    if (v == nullptr || *v == '\0') return 2;
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    if (*end != '\0' || n < 0) return 2;
    return static_cast<std::size_t>(std::min<long>(n, spare_workers::max_count));
}

}  // namespace

spare_workers::spare_workers(pid_t fork_server, std::map<pid_t, std::uint32_t>& children) noexcept
    : m_fork_server(fork_server),
      m_children(children),
      m_wanted(wanted_count()),
      m_cpus(online_cpu_count()),
      m_refill_at(std::chrono::steady_clock::now()) {}

launched spare_workers::hand_out(const int (&channel)[channel_fd_count],
                                 std::uint32_t pool_id) noexcept {
    m_refill_at = std::chrono::steady_clock::now() + refill_delay;
    m_postponed_since = {};  // a pool starts now: its time to put refills off begins
    while (m_ready > 0) {
        spare s = std::move(m_spares[--m_ready]);
        // A stopped spare would take its channel into its socket and never
        // run: the pool's first task would wait on it. (One stopped after
        // this check is a stopped worker, as any worker may be.)
        const bool stopped = is_stopped(s.pid);
        const std::uint32_t tag = pool_id;
        if (!stopped && send_packet(s.socket.get(), std::as_bytes(std::span(&tag, 1)), channel,
                                    MSG_DONTWAIT) > 0) {
            // Its entry exists (made when it was forked): no allocation.
            if (auto it = m_children.find(s.pid); it != m_children.end()) it->second = pool_id;
            launched l;
            l.pid = s.pid;
            l.pidfd = std::move(s.pidfd);
            return l;
        }
        // Stopped, or killed (its socket hung up): of no use. Killed in any
        // case, and reaped with the other children.
        ::kill(s.pid, SIGKILL);
    }
    return {};
}

void spare_workers::reaped(pid_t pid) noexcept {
    for (std::size_t i = 0; i < m_ready; ++i) {
        if (m_spares[i].pid == pid) {
            --m_ready;
            if (i != m_ready) std::swap(m_spares[i], m_spares[m_ready]);
            m_spares[m_ready] = spare{};
            // Not at once: a task killing spares in a loop would keep the
            // fork server forking.
            m_refill_at = std::chrono::steady_clock::now() + refill_delay;
            return;
        }
    }
}

void spare_workers::kill_stopped() noexcept {
    // Killed here, forgotten once reaped (reaped()).
    for (std::size_t i = 0; i < m_ready; ++i)
        if (is_stopped(m_spares[i].pid)) ::kill(m_spares[i].pid, SIGKILL);
}

std::chrono::microseconds spare_workers::refill_due_in() const noexcept {
    if (m_ready >= m_wanted) return std::chrono::microseconds(-1);
    const auto now = std::chrono::steady_clock::now();
    if (now >= m_refill_at) return std::chrono::microseconds(0);
    return std::chrono::ceil<std::chrono::microseconds>(m_refill_at - now);
}

void spare_workers::refill() noexcept {
    if (m_ready >= m_wanted) return;
    const auto now = std::chrono::steady_clock::now();
    if (m_postponed_since == std::chrono::steady_clock::time_point{}) m_postponed_since = now;
    // A spare is still ready for the next request, and there are as many
    // runnable tasks besides this one as CPUs (a pool's workers starting,
    // its supervisor, the caller): the fork would take a CPU from one of
    // them. Later, unless that has lasted refill_patience.
    const long runnable = m_ready > 0 ? runnable_tasks() : -1;
    if (runnable > 0 && static_cast<std::size_t>(runnable - 1) >= m_cpus &&
        now - m_postponed_since < refill_patience) {
        m_refill_at = now + refill_delay;
        return;
    }
    m_postponed_since = {};
    // The OS refused (fork, socketpair, pidfd_open, memory): try again later.
    if (!refill_one()) m_refill_at = std::chrono::steady_clock::now() + refill_delay * 20;
}

bool spare_workers::refill_one() noexcept {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return false;
    unique_fd mine(sv[0]);
    unique_fd theirs(sv[1]);
    const pid_t child = ::fork();
    if (child == 0) spare_main(theirs.get(), m_fork_server);
    if (child < 0) return false;
    try {
        m_children[child] = no_pool;  // reaped like any worker, reported to no pool
    } catch (...) {
        ::kill(child, SIGKILL);  // reaped, though unknown: wait4 takes any child
        return false;
    }
    unique_fd pidfd(pidfd_open(child));
    if (!pidfd) {
        ::kill(child, SIGKILL);
        return false;
    }
    spare& s = m_spares[m_ready++];
    s.pid = child;
    s.socket = std::move(mine);
    s.pidfd = std::move(pidfd);
    return true;
}

}  // namespace coexec::detail::proc
