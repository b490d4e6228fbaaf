#include "sandbox/limits.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>

#include "util/system_error.hpp"

namespace coexec::detail::sandboxing {
namespace {

// A spinning idle worker still burns a little CPU between the pool's check
// and its next task: keep this much more than a full cpu_time in reserve.
constexpr double spin_margin_seconds = 0.05;

// Reading the prof clock is a system call (a few µs on a 2-vCPU VM): read
// after every task, it cost a limited pool a third of `map`'s speed with
// chunksize 16. So after a read, cpu_budget_spent skips the next reads for
// as long as the budget's slack cannot be used up: the prof clock charges
// each CPU at most a whole tick per tick, so in `d` seconds of wall time the
// process gains at most cpus × (d + one tick) seconds of CPU time.
// max_tick_seconds is the longest tick Linux has (HZ=100).
constexpr double max_tick_seconds = 0.01;

// This worker's cpu limit, as apply_limits set it (read by cpu_budget_spent).
struct {
    double per_task = 0;             // seconds; 0: no cpu limit
    double soft = 0;                 // RLIMIT_CPU's soft limit, in seconds of the worker's life
    double cpus = 1;                 // configured CPUs: at most this many run its threads at once
    std::int64_t next_check_ns = 0;  // CLOCK_MONOTONIC; no read of the prof clock before it
} worker_cpu;

// CLOCK_MONOTONIC (from the vDSO, no system call) in ns, or -1.
std::int64_t monotonic_ns() noexcept {
    timespec ts{};
    if (::clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return -1;
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

double seconds_of(const timespec& ts) noexcept {
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// The CPU time RLIMIT_CPU is enforced against: the process's "prof" clock,
// user + system time as the scheduler tick charges it. Not
// CLOCK_PROCESS_CPUTIME_ID (the precise run time): on this project's 2-vCPU
// VM with other processes competing, prof ran 1.6 times faster (0.63 s for
// 0.40 s of run time), so budgets kept in run time let the kernel kill a
// worker in the middle of a task that had its full cpu_time left. The
// clock id is the kernel's MAKE_PROCESS_CPUCLOCK(0, CPUCLOCK_PROF); where it
// is refused, the precise clock.
double prof_seconds() noexcept {
    constexpr clockid_t self_prof = static_cast<clockid_t>(~clockid_t{0} * 8);  // (~0 << 3) | 0
    timespec ts{};
    if (::clock_gettime(self_prof, &ts) != 0 &&
        ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) {
        return -1;
    }
    return seconds_of(ts);
}

// Sets `resource` to {soft, hard}, each capped by the current hard limit: a
// process without CAP_SYS_RESOURCE cannot raise it, and a lower one set by
// whoever started the program is stricter than ours anyway.
void set_limit(int resource, rlim_t soft, rlim_t hard, const char* what) {
    rlimit cur{};
    if (::getrlimit(resource, &cur) != 0) throw_errno("getrlimit");
    rlimit r{std::min(soft, cur.rlim_max), std::min(hard, cur.rlim_max)};
    if (::setrlimit(resource, &r) != 0) throw_errno(what);
}

}  // namespace

double cpu_headroom(std::uint64_t cpu_seconds) noexcept {
    return static_cast<double>(cpu_seconds) / 4;
}

void apply_limits(const limit_values& l) {
    if (l.memory != 0) {
        const auto bytes = static_cast<rlim_t>(l.memory);
        set_limit(RLIMIT_AS, bytes, bytes, "setrlimit(RLIMIT_AS)");
    }
    if (l.cpu_seconds != 0) {
        // The worker must die of SIGXCPU even if the program ignored it.
        struct sigaction sa {};
        sa.sa_handler = SIG_DFL;
        ::sigaction(SIGXCPU, &sa, nullptr);
        // Relative to the time already used (a spawned worker's start-up,
        // the initializer): the first task gets the same budget as the rest.
        const double used = prof_seconds();
        if (used < 0) throw_errno("clock_gettime");
        const double budget = static_cast<double>(l.cpu_seconds) + cpu_headroom(l.cpu_seconds);
        const auto soft = static_cast<rlim_t>(std::ceil(used + budget));
        set_limit(RLIMIT_CPU, soft, soft + 1, "setrlimit(RLIMIT_CPU)");
        rlimit now{};
        if (::getrlimit(RLIMIT_CPU, &now) != 0) throw_errno("getrlimit");
        worker_cpu.per_task = static_cast<double>(l.cpu_seconds);
        worker_cpu.soft = static_cast<double>(now.rlim_cur);
        worker_cpu.cpus = static_cast<double>(std::max(::get_nprocs_conf(), 1));
        worker_cpu.next_check_ns = 0;  // the first task's end reads the clock
    }
    if (l.open_files != 0) {
        int lowest_free = 0;
        while (::fcntl(lowest_free, F_GETFD) != -1)
            ++lowest_free;
        const auto n = static_cast<rlim_t>(lowest_free) + static_cast<rlim_t>(l.open_files);
        set_limit(RLIMIT_NOFILE, n, n, "setrlimit(RLIMIT_NOFILE)");
    }
}

bool cpu_budget_spent() noexcept {
    if (worker_cpu.per_task <= 0) return false;
    const std::int64_t now = monotonic_ns();
    if (now >= 0 && now < worker_cpu.next_check_ns) return false;  // see max_tick_seconds
    const double used = prof_seconds();
    if (used < 0) return false;
    const double slack = worker_cpu.soft - (used + worker_cpu.per_task + spin_margin_seconds);
    if (slack <= 0) return true;
    // Wall time in which even every CPU running this process's threads
    // cannot spend the slack: cpus × (skip + tick) <= slack.
    const double skip = slack / worker_cpu.cpus - max_tick_seconds;
    worker_cpu.next_check_ns =
        now >= 0 && skip > 0 ? now + static_cast<std::int64_t>(skip * 1e9) : 0;
    return false;
}

std::string death_cause(const process_limits& limits, int signal, double cpu_seconds) {
    if (limits.cpu_time.count() <= 0) return {};
    const auto cpu = static_cast<std::uint64_t>(limits.cpu_time.count());
    // The hard limit sits at least cpu + headroom + 1 s of the worker's CPU
    // time: only a worker past it can have been killed by it.
    const double hard_floor = static_cast<double>(cpu + 1) + cpu_headroom(cpu) - 0.01;
    if (signal == SIGXCPU || (signal == SIGKILL && cpu_seconds >= hard_floor)) {
        return "the task exceeded the pool's cpu_time limit (" + std::to_string(cpu) +
               " s of CPU time per task, enforced with RLIMIT_CPU)";
    }
    return {};
}

}  // namespace coexec::detail::sandboxing
