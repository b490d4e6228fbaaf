#include "process/launch.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "coexec/detail/codec/code_address.hpp"
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

namespace {

/// Whether thread `tid` of this process is on its way out: gone, or with
/// PF_EXITING in its flags. A thread that has just been joined can still be
/// listed in /proc/self/task for a moment (its joiner is woken from inside
/// its exit, before the kernel drops it), most often on a loaded machine.
bool thread_exiting(const char* tid) noexcept {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/task/%s/stat", tid);
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return true;
    char buf[1024];
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return true;
    buf[n] = '\0';
    // The name in parentheses may hold anything: fields count from the last ')'.
    // After it: state ppid pgrp session tty_nr tpgid flags.
    const char* p = std::strrchr(buf, ')');
    unsigned long flags = 0;
    if (p == nullptr || std::sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) != 1)
        return false;
    constexpr unsigned long pf_exiting = 0x4;  // include/linux/sched.h
    return (flags & pf_exiting) != 0;
}

}  // namespace

bool single_threaded() noexcept {
    DIR* d = ::opendir("/proc/self/task");
    if (d == nullptr) return false;
    const long self = static_cast<long>(::gettid());
    bool alone = true;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.' || std::strtol(e->d_name, nullptr, 10) == self) continue;
        if (!thread_exiting(e->d_name)) {
            alone = false;
            break;
        }
    }
    ::closedir(d);
    return alone;
}

namespace {

constexpr const char* worker_env = "COEXEC_PROCESS_WORKER";

// getdents64's record (glibc declares no wrapper we could call async-signal-safely).
struct linux_dirent64 {
    std::uint64_t d_ino;
    std::int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[1];
};

// A descriptor number from a /proc/self/fd entry name, or -1.
int parse_fd(const char* name) noexcept {
    if (*name == '\0') return -1;
    int v = 0;
    for (; *name != '\0'; ++name) {
        if (*name < '0' || *name > '9' || v > 100'000'000) return -1;
        v = v * 10 + (*name - '0');
    }
    return v;
}

// Closes what /proc/self/fd lists at or above `first`; false without /proc.
bool close_listed_from(int first) noexcept {
    const int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return false;
    alignas(linux_dirent64) char buf[4096];
    // The listing is by descriptor number, so closing while reading skips
    // nothing; a second pass confirms (and catches a failed close).
    for (int pass = 0; pass < 3; ++pass) {
        bool closed_any = false;
        if (::lseek(dir, 0, SEEK_SET) != 0) break;
        for (;;) {
            const long n = ::syscall(SYS_getdents64, dir, buf, sizeof buf);
            if (n <= 0) break;
            for (long off = 0; off < n;) {
                const auto* d = reinterpret_cast<const linux_dirent64*>(buf + off);
                off += d->d_reclen;
                const int fd = parse_fd(d->d_name);
                if (fd >= first && fd != dir) {
                    ::close(fd);
                    closed_any = true;
                }
            }
        }
        if (!closed_any) break;
    }
    ::close(dir);
    return true;
}

}  // namespace

void close_descriptors_from(int first, bool use_close_range) noexcept {
    if (use_close_range && ::close_range(static_cast<unsigned>(first), ~0U, 0) == 0) return;
    if (close_listed_from(first)) return;
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) {
        lim.rlim_cur = 1u << 20;
    }
    const int last = static_cast<int>(std::min<rlim_t>(lim.rlim_cur, 1u << 20));
    for (int fd = first; fd < last; ++fd)
        ::close(fd);
}

void reset_signals() noexcept {
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        // glibc refuses its own two real-time signals (EINVAL): they stay as they are.
        ::sigaction(sig, &sa, nullptr);
    }
    sa.sa_handler = SIG_IGN;
    ::sigaction(SIGINT, &sa, nullptr);  // Ctrl-C is the parent's to handle
    unblock_signals();
}

void unblock_signals() noexcept {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

// ---------------------------------------------------------------------------
// In a freshly forked child: only async-signal-safe calls from here to exec.
// ---------------------------------------------------------------------------

void setup_worker_process(pid_t expected_parent, const channel_fds& fds,
                          inherited_signals signals) noexcept {
    const int in[channel_fd_count] = {fds.memfd.get(), fds.wake.get(), fds.socket.get()};
    int tmp[channel_fd_count];
    // First out of the way (the sources may overlap 3..5), then into place.
    for (int i = 0; i < channel_fd_count; ++i) {
        tmp[i] = ::fcntl(in[i], F_DUPFD, 10);
        if (tmp[i] < 0) ::_exit(121);
    }
    replace_inherited_stdio();  // the channel is out of 0–2 now, if it was there
    for (int i = 0; i < channel_fd_count; ++i) {
        if (::dup2(tmp[i], first_channel_fd + i) < 0) ::_exit(121);  // dup2 clears FD_CLOEXEC
    }
    // Nothing else of the parent's: in particular not other workers' sockets,
    // whose hang-up must reach only their own worker.
    close_descriptors_from(first_channel_fd + channel_fd_count);

    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The parent may have died before the prctl: then we are orphaned already.
    if (::getppid() != expected_parent) ::_exit(0);
    ::setpgid(0, 0);  // deadline kills address the whole group
    // Nothing of the program's signal handling: its handlers would run the
    // program's code in the worker, and an ignored signal stays ignored
    // across exec. (The fork server holds no handler: it reset them all when
    // it started, and its children keep only its SIGCHLD block to undo.)
    if (signals == inherited_signals::program) {
        reset_signals();
    } else {
        unblock_signals();
    }
}

void reserve_stdio() noexcept {
    // Three fcntl calls when all are open (the usual case); else each open
    // takes the lowest free descriptor, so it fills the holes in order.
    for (int fd = 0; fd <= 2; ++fd) {
        if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
        const int null = ::open("/dev/null", O_RDWR);
        if (null < 0) return;
        if (null > 2) {
            ::close(null);  // another thread took the hole meanwhile
            return;
        }
    }
}

void replace_inherited_stdio() noexcept {
    for (int fd = 0; fd <= 2; ++fd) {
        const int flags = ::fcntl(fd, F_GETFD);
        if (flags < 0 || (flags & FD_CLOEXEC) == 0) continue;
        const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null < 0) {
            ::close(fd);
        } else {
            ::dup2(null, fd);  // dup2 clears FD_CLOEXEC: stdio again
            ::close(null);
        }
    }
}

channel_fds fixed_channel_fds() noexcept {
    channel_fds fds;
    fds.memfd.reset(first_channel_fd);
    fds.wake.reset(first_channel_fd + 1);
    fds.socket.reset(first_channel_fd + 2);
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
    // A forked worker names functions by this copy of the module list, not
    // by walking the modules under a loader lock another thread may hold
    // at the fork (code_address.hpp).
    module_map modules;
    if (method == launch_method::fork) {
        modules = module_map::of_this_process();
        // Unflushed stdio output would otherwise be written again by the
        // worker when it flushes at exit.
        std::fflush(nullptr);
    }
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork");
    if (pid == 0) {
        setup_worker_process(parent, worker_end, inherited_signals::program);
        if (method == launch_method::spawn) {
            ::execve("/proc/self/exe", argv, envp.data());
            ::_exit(127);
        }
        modules.install();
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
    for (int fd = first_channel_fd; fd < first_channel_fd + channel_fd_count; ++fd)
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
