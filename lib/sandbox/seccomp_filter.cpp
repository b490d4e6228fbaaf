#include "sandbox/seccomp_filter.hpp"

#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <type_traits>

#include "util/system_error.hpp"

namespace coexec::detail::sandboxing {
namespace {

#if defined(__x86_64__) || defined(__aarch64__)
constexpr bool arch_covered = true;
#else
constexpr bool arch_covered = false;
#endif

// ---------------------------------------------------------------------------
// The allow-list. Everything not here fails with EPERM. Each group says why
// a task (or the worker loop, glibc, libstdc++ under it) needs it; a call that
// only exists on one architecture is ignored by libseccomp on the other.
// Deliberately absent: seccomp (a second filter could only tighten, but no
// task needs one and the loader is kernel surface), setrlimit and a setting
// prlimit64 (as root they raise hard limits), and everything that names a
// path, a socket, another process or a new program.
// ---------------------------------------------------------------------------

// Allowed whatever the arguments.
constexpr int plain_allowed[] = {
    // Memory: glibc malloc grows with brk and mmap, returns with munmap, moves
    // with mremap; shared_buffer and the channel msync nothing but may.
    SCMP_SYS(brk),
    SCMP_SYS(munmap),
    SCMP_SYS(mremap),
    SCMP_SYS(msync),
    // Threads and their synchronisation: futexes (std::mutex, condition
    // variables, the channel's and shared_queue's waits, thread joins), the
    // per-thread registrations glibc makes in every new thread.
    SCMP_SYS(futex),
    SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq),
    SCMP_SYS(set_tid_address),
    SCMP_SYS(sched_yield),
    SCMP_SYS(membarrier),
    // Identity of this process and thread (no effect on anything else).
    SCMP_SYS(getpid),
    SCMP_SYS(gettid),
    SCMP_SYS(getppid),
    SCMP_SYS(getuid),
    SCMP_SYS(geteuid),
    SCMP_SYS(getgid),
    SCMP_SYS(getegid),
    SCMP_SYS(getresuid),
    SCMP_SYS(getresgid),
    // Ending: a thread, the worker.
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
    // Signals delivered to this process: glibc's signal machinery, abort(),
    // the kernel's restart of an interrupted call.
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(sigaltstack),
    SCMP_SYS(rt_sigsuspend),
    SCMP_SYS(rt_sigtimedwait),
    SCMP_SYS(rt_sigpending),
    SCMP_SYS(restart_syscall),
    // Time: clocks (mostly answered by the vDSO), sleeps, timers and timerfds
    // (they signal or wake only this process).
    SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_getres),
    SCMP_SYS(gettimeofday),
    SCMP_SYS(time),
    SCMP_SYS(nanosleep),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(timer_create),
    SCMP_SYS(timer_settime),
    SCMP_SYS(timer_gettime),
    SCMP_SYS(timer_getoverrun),
    SCMP_SYS(timer_delete),
    SCMP_SYS(timerfd_create),
    SCMP_SYS(timerfd_settime),
    SCMP_SYS(timerfd_gettime),
    SCMP_SYS(getitimer),
    SCMP_SYS(setitimer),
    SCMP_SYS(alarm),
    // Descriptors the worker already holds (no call here opens a path): its
    // channel (read/write on eventfds, sendmsg/recvmsg with descriptors on its
    // socket, poll for both), stdout/stderr, shared_buffer memfds, pipes and
    // eventfds the task makes for itself.
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),
    SCMP_SYS(preadv),
    SCMP_SYS(pwritev),
    SCMP_SYS(preadv2),
    SCMP_SYS(pwritev2),
    SCMP_SYS(lseek),
    SCMP_SYS(close),
    SCMP_SYS(close_range),
    SCMP_SYS(dup),
    SCMP_SYS(dup2),
    SCMP_SYS(dup3),
    SCMP_SYS(fstat),
    SCMP_SYS(ftruncate),
    SCMP_SYS(fallocate),
    SCMP_SYS(fsync),
    SCMP_SYS(fdatasync),
    SCMP_SYS(recvmsg),
    SCMP_SYS(sendmsg),
    SCMP_SYS(recvfrom),
    SCMP_SYS(sendto),
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    SCMP_SYS(select),
    SCMP_SYS(pselect6),
    SCMP_SYS(epoll_create),
    SCMP_SYS(epoll_create1),
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_pwait),
    SCMP_SYS(epoll_pwait2),
    SCMP_SYS(eventfd),
    SCMP_SYS(eventfd2),
    SCMP_SYS(pipe),
    SCMP_SYS(pipe2),
    // Shared memory: shared_buffer, shared_value, shared_queue and the
    // channel's arenas are memfds (anonymous: no path, no file system).
    SCMP_SYS(memfd_create),
    // Harmless facts: randomness, the kernel's name, memory and CPU usage.
    SCMP_SYS(getrandom),
    SCMP_SYS(uname),
    SCMP_SYS(sysinfo),
    SCMP_SYS(getrusage),
    SCMP_SYS(times),
    SCMP_SYS(getcpu),
    // x86_64: the thread pointer of this thread (glibc start-up, TLS).
    SCMP_SYS(arch_prctl),
    // x86_64: reading limits (glibc uses prlimit64, restricted below).
    SCMP_SYS(getrlimit),
};

// madvise: the advice malloc, thread exit and ordinary programs give. Not
// MADV_HWPOISON / SOFT_OFFLINE (root-only page poisoning, host-wide) nor
// MADV_MERGEABLE (KSM: page deduplication is a cross-process side channel).
constexpr int madvise_allowed[] = {
    MADV_NORMAL,
    MADV_RANDOM,
    MADV_SEQUENTIAL,
    MADV_WILLNEED,
    MADV_DONTNEED,
    MADV_FREE,
    MADV_REMOVE,
    MADV_DONTFORK,
    MADV_DOFORK,
    MADV_HUGEPAGE,
    MADV_NOHUGEPAGE,
    MADV_DONTDUMP,
    MADV_DODUMP,
    MADV_WIPEONFORK,
    MADV_KEEPONFORK,
    MADV_COLD,
    MADV_PAGEOUT,
    22 /* POPULATE_READ */,
    23 /* POPULATE_WRITE */,
};

// fcntl: descriptor flags, duplication, memfd seals. Not F_SETOWN/F_SETSIG
// (signals to another process), leases, notifications or locks.
constexpr int fcntl_allowed[] = {
    F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC, F_ADD_SEALS, F_GET_SEALS,
};

// ioctl: what stdio and isatty ask of stdout/stderr, and FIONREAD/FIONBIO on
// the task's own pipes. Never TIOCSTI (typing into the terminal) or anything
// that configures a device.
constexpr unsigned long ioctl_allowed[] = {TCGETS,  TIOCGWINSZ, FIONREAD,
                                           FIONBIO, FIOCLEX,    FIONCLEX};

// prctl: reading state and naming threads. Not PR_SET_SECCOMP, PR_SET_DUMPABLE
// (would let same-user processes trace us), PR_SET_PDEATHSIG (the worker must
// die with the program), PR_SET_MM, capabilities or PR_SET_PTRACER.
constexpr int prctl_allowed[] = {
    PR_GET_PDEATHSIG, PR_GET_DUMPABLE,     PR_SET_NAME,     PR_GET_NAME,
    PR_GET_SECCOMP,   PR_GET_NO_NEW_PRIVS, PR_CAPBSET_READ, 0x53564d41 /* PR_SET_VMA */,
};

// The clone flags of a new thread (glibc's pthread_create). A clone without
// them (fork, vfork, posix_spawn) or with a namespace flag is refused.
constexpr std::uint64_t thread_flags =
    CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
constexpr std::uint64_t refused_clone_flags = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS |
                                              CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                                              CLONE_NEWNET | CLONE_PTRACE | CLONE_UNTRACED;

// ---------------------------------------------------------------------------

struct filter_deleter {
    void operator()(void* ctx) const noexcept { seccomp_release(ctx); }
};
using filter = std::unique_ptr<void, filter_deleter>;

void check(int rc, const char* op) {
    if (rc < 0) throw_system_error(-rc, op);
}

// libseccomp's SCMP_A0..A5 macros are C compound literals, which ISO C++ lacks.
scmp_arg_cmp arg(unsigned index, scmp_compare op, std::uint64_t a, std::uint64_t b = 0) {
    return scmp_arg_cmp{index, op, a, b};
}

// Adds the built-in rules. A call the user allowed outright (sandbox_allow)
// gets none of its narrower ones: they would conflict, and are moot.
class rule_set {
  public:
    rule_set(const filter& f, std::span<const int> extra) noexcept : m_filter(f), m_extra(extra) {}

    void add(std::uint32_t action, int nr, std::initializer_list<scmp_arg_cmp> args = {}) {
        if (std::find(m_extra.begin(), m_extra.end(), nr) != m_extra.end()) return;
        check(seccomp_rule_add_array(m_filter.get(), action, nr, static_cast<unsigned>(args.size()),
                                     args.size() != 0 ? args.begin() : nullptr),
              "seccomp_rule_add");
    }
    void allow(int nr, std::initializer_list<scmp_arg_cmp> args = {}) {
        add(SCMP_ACT_ALLOW, nr, args);
    }
    // For on_sigsys (below) to answer.
    void trap(int nr, std::initializer_list<scmp_arg_cmp> args = {}) {
        add(SCMP_ACT_TRAP, nr, args);
    }

  private:
    const filter& m_filter;
    std::span<const int> m_extra;
};

// Calls whose allowed form a filter cannot tell from the refused one trap
// here (SECCOMP_RET_TRAP), and this handler answers them in the caller's
// registers:
// - newfstatat: glibc implements fstat(fd) as newfstatat(fd, "", buf,
//   AT_EMPTY_PATH) on both architectures, but with a path it stats any file.
//   The empty-path form becomes fstat(fd); anything else EPERM.
// - sched_setaffinity with a thread id: pthread_setaffinity_np(pthread_self())
//   passes the caller's own id. It becomes 0 (the calling thread); another
//   process's or thread's id gets EPERM. (sched_getaffinity is not trapped:
//   pthread_getattr_np asks it by thread id as every thread starts under
//   sanitizers and many runtimes, and a signal there can come before the
//   thread's runtime is ready to take one — ThreadSanitizer crashes.)
// The trap never runs the original call, so a task that replaces this handler
// gains nothing (and rt_sigaction refuses SIGSYS anyway). A thread that blocks
// SIGSYS and makes one of these calls is killed by the kernel.
void on_sigsys(int, siginfo_t* info, void* context) {
    auto* uc = static_cast<ucontext_t*>(context);
    const int saved_errno = errno;
#if defined(__x86_64__)
    greg_t* r = uc->uc_mcontext.gregs;
    const auto a0 = static_cast<long>(r[REG_RDI]);
    const auto a1 = static_cast<long>(r[REG_RSI]);
    const auto a2 = static_cast<long>(r[REG_RDX]);
    const auto a3 = static_cast<long>(r[REG_R10]);
    greg_t& ret = r[REG_RAX];
#elif defined(__aarch64__)
    auto* r = uc->uc_mcontext.regs;
    const auto a0 = static_cast<long>(r[0]);
    const auto a1 = static_cast<long>(r[1]);
    const auto a2 = static_cast<long>(r[2]);
    const auto a3 = static_cast<long>(r[3]);
    auto& ret = r[0];
#endif
#if defined(__x86_64__) || defined(__aarch64__)
    // The kernel's convention: the result, or -errno (never errno itself,
    // which belongs to the interrupted code).
    auto call = [](long nr, long x, long y, long z) {
        const long r = ::syscall(nr, x, y, z);
        return r == -1 ? -static_cast<long>(errno) : r;
    };
    long result = -EPERM;
    switch (info->si_syscall) {
        case SYS_newfstatat: {
            const auto* path = reinterpret_cast<const char*>(a1);
            if ((a3 & AT_EMPTY_PATH) != 0 && (path == nullptr || path[0] == '\0'))
                result = call(SYS_fstat, a0, a2, 0);
            break;
        }
        case SYS_sched_setaffinity:
            if (static_cast<pid_t>(a0) == ::gettid()) result = call(info->si_syscall, 0, a1, a2);
            break;
        default:
            break;
    }
    ret = static_cast<std::remove_reference_t<decltype(ret)>>(result);
#else
    (void)info;
    (void)uc;
#endif
    errno = saved_errno;
}

}  // namespace

void check_compute_supported() {
    if (!arch_covered) {
        throw_system_error(ENOTSUP,
                           "process_pool: sandbox::compute (its allow-list covers x86_64 and "
                           "aarch64 only)");
    }
    // EINVAL: a kernel built without seccomp filters.
    if (::prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0) {
        throw_system_error(ENOTSUP, "process_pool: sandbox::compute (the kernel has no seccomp)");
    }
}

std::vector<int> resolve_syscalls(const std::vector<std::string>& names) {
    std::vector<int> out;
    out.reserve(names.size());
    for (const auto& n : names) {
        const int nr = seccomp_syscall_resolve_name(n.c_str());
        if (nr == __NR_SCMP_ERROR) {
            throw std::invalid_argument("process_pool: sandbox_allow names no system call: \"" + n +
                                        "\"");
        }
        out.push_back(nr);
    }
    return out;
}

void install_compute_filter(std::span<const int> extra) {
    if (!arch_covered) throw_system_error(ENOTSUP, "sandbox::compute");
    filter f(seccomp_init(SCMP_ACT_ERRNO(EPERM)));
    if (!f) throw_system_error(ENOMEM, "seccomp_init");
    // Calls of another ABI (int 0x80, x32 on x86_64) are refused too.
    check(seccomp_attr_set(f.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(EPERM)),
          "seccomp_attr_set(BADARCH)");
    // The initializer may have started threads: filter them all, or fail.
    check(seccomp_attr_set(f.get(), SCMP_FLTATR_CTL_TSYNC, 1), "seccomp_attr_set(TSYNC)");
    // A binary tree instead of a linear scan of ~150 rules: fewer BPF
    // instructions per call on the worker's hot path.
    check(seccomp_attr_set(f.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2), "seccomp_attr_set(OPTIMIZE)");

    rule_set rules(f, extra);
    for (int nr : plain_allowed)
        rules.allow(nr);

    // Mappings: never executable. Data can be mapped and reprotected, but no
    // new code can appear (no JIT, no loading of code the task wrote).
    rules.allow(SCMP_SYS(mmap), {arg(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)});
    rules.allow(SCMP_SYS(mprotect), {arg(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)});
    for (int advice : madvise_allowed)
        rules.allow(SCMP_SYS(madvise), {arg(2, SCMP_CMP_EQ, static_cast<scmp_datum_t>(advice))});
    for (int cmd : fcntl_allowed)
        rules.allow(SCMP_SYS(fcntl), {arg(1, SCMP_CMP_EQ, static_cast<scmp_datum_t>(cmd))});
    for (unsigned long cmd : ioctl_allowed)
        rules.allow(SCMP_SYS(ioctl), {arg(1, SCMP_CMP_EQ, cmd)});
    for (int option : prctl_allowed)
        rules.allow(SCMP_SYS(prctl), {arg(0, SCMP_CMP_EQ, static_cast<scmp_datum_t>(option))});

    // Threads only: clone must carry the thread flags and no namespace or
    // tracing flag. clone3 passes its flags in memory, which a filter cannot
    // read: it answers ENOSYS, and glibc falls back to clone.
    rules.allow(SCMP_SYS(clone),
                {arg(0, SCMP_CMP_MASKED_EQ, thread_flags | refused_clone_flags, thread_flags)});
    rules.add(SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3));

    // Signals to this process only: kill(getpid()), and tgkill to threads of
    // this process (abort, raise, pthread_kill). Not kill(0)/kill(-1), tkill
    // (any thread id) or sigqueue to others.
    const auto self = static_cast<scmp_datum_t>(::getpid());
    rules.allow(SCMP_SYS(kill), {arg(0, SCMP_CMP_EQ, self)});
    rules.allow(SCMP_SYS(tgkill), {arg(0, SCMP_CMP_EQ, self)});
    // Handlers for any signal but SIGSYS, whose handler emulates fstat.
    rules.allow(SCMP_SYS(rt_sigaction), {arg(0, SCMP_CMP_NE, SIGSYS)});

    // Reading own limits (getrlimit is prlimit64(0, r, NULL, old) in glibc);
    // never setting them: as root, raising a hard limit is allowed.
    rules.allow(SCMP_SYS(prlimit64), {arg(0, SCMP_CMP_EQ, 0), arg(2, SCMP_CMP_EQ, 0)});
    // CPU affinity: reading anyone's (thread pools, OpenMP and TBB size
    // themselves with it, pthread_getattr_np asks by thread id; it reveals
    // which CPUs a process may use, and whether a pid exists), setting only
    // the calling thread's: 0 directly, its own thread id through on_sigsys.
    rules.allow(SCMP_SYS(sched_getaffinity));
    rules.allow(SCMP_SYS(sched_setaffinity), {arg(0, SCMP_CMP_EQ, 0)});
    rules.trap(SCMP_SYS(sched_setaffinity), {arg(0, SCMP_CMP_NE, 0)});
    // fstat's newfstatat: see on_sigsys.
    rules.trap(SCMP_SYS(newfstatat));

    for (int nr : extra) {
        if (nr >= 0) check(seccomp_rule_add(f.get(), SCMP_ACT_ALLOW, nr, 0), "seccomp_rule_add");
    }

    struct sigaction sa {};
    sa.sa_sigaction = &on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(SIGSYS, &sa, nullptr) != 0) throw_errno("sigaction(SIGSYS)");
    // libseccomp sets it too (SCMP_FLTATR_CTL_NNP); set here so that a
    // failure names the call. Without it, a filter needs CAP_SYS_ADMIN, and
    // an exec could gain privileges the filter never saw.
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw_errno("prctl(PR_SET_NO_NEW_PRIVS)");
    check(seccomp_load(f.get()), "seccomp_load");
}

}  // namespace coexec::detail::sandboxing
