#include "process/launch.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "process/worker_loop.hpp"
#include "util/system_error.hpp"

extern char** environ;

namespace coexec::detail::proc {

int pidfd_open(pid_t pid) noexcept {
    // Direct syscall: glibc 2.36's <sys/pidfd.h> lacks extern "C" for C++.
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int pidfd_send_signal(int pidfd, int sig) noexcept {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
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

namespace {

constexpr const char* worker_env = "COEXEC_PROCESS_WORKER";
constexpr int first_channel_fd = 3;  // a worker's channel is always on 3..6

}  // namespace

// ---------------------------------------------------------------------------
// In a freshly forked child: only async-signal-safe calls from here to exec.
// ---------------------------------------------------------------------------

void setup_worker_process(pid_t expected_parent, const channel_fds& fds) noexcept {
    const int in[4] = {fds.memfd.get(), fds.to_worker_event.get(), fds.to_parent_event.get(),
                       fds.socket.get()};
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
    channel_fds fds;
    fds.memfd.reset(first_channel_fd);
    fds.to_worker_event.reset(first_channel_fd + 1);
    fds.to_parent_event.reset(first_channel_fd + 2);
    fds.socket.reset(first_channel_fd + 3);
    return fds;
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
    // Unflushed stdio output would otherwise be written again by the worker
    // when it flushes at exit.
    if (method == launch_method::fork) std::fflush(nullptr);
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
        throw_system_error(err, "pidfd_open");
    }
    return l;
}

void warn_spawn_fallback(const char* reason) noexcept {
    // Spawn works, but silently: it is ~3x slower to start a worker, and each
    // worker starts from a fresh image of the program (its state as of main
    // is not there), which a user who forgot prepare() does not expect.
    static std::atomic<bool> warned{false};
    const char* quiet = std::getenv("COEXEC_NO_SPAWN_WARNING");
    if (quiet != nullptr && *quiet != '\0' && std::strcmp(quiet, "0") != 0) return;
    if (warned.exchange(true, std::memory_order_relaxed)) return;
    std::fprintf(stderr,
                 "coexec: warning: process_pool starts its workers with start_method::spawn "
                 "instead of the fork server: %s. Each worker re-executes the program, which "
                 "starts workers about 3x slower and gives them a fresh program image. To fix "
                 "it, call coexec::process_pool::prepare() first thing in main, before any "
                 "thread is started; to choose spawn, pass .start = "
                 "coexec::start_method::spawn; to silence this warning, set "
                 "COEXEC_NO_SPAWN_WARNING=1.\n",
                 reason);
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
// launch_direct), so a static libcoexec never drops it.
const bool spawned_worker_check = (coexec::detail::proc::run_spawned_worker_if_requested(), true);
}  // namespace
