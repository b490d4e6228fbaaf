// bench/process_pool/placement.cpp — the process round trip under each
// placement of its three parties on two CPUs.
//
// A round trip passes through the calling thread, the worker process and
// the pool's supervisor thread. On a 2-CPU machine two of them share a CPU,
// and the scheduler chooses which: bench_process_pool_round_trip's runs fall
// in two phases (p50 ~5 or ~10-12 µs on a 2-vCPU guest). This bench pins the
// parties (sched_setaffinity on every thread of this process and of its
// child processes) to show which placement gives which figure, each against
// the scheduler's own choice ("free") in the same run. Linux only; it
// measures nothing on a machine that lets this process use fewer than 2 CPUs.
#include <coexec/process_pool.hpp>

#include <dirent.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_report.hpp"
#include "process_tree.hpp"

namespace {

int noop() {
    return 1;
}

/// The thread ids of process `pid`.
std::vector<pid_t> threads_of(pid_t pid) {
    std::vector<pid_t> ids;
    const std::string dir_path = "/proc/" + std::to_string(pid) + "/task";
    if (DIR* dir = ::opendir(dir_path.c_str())) {
        while (dirent* e = ::readdir(dir)) {
            if (const int id = std::atoi(e->d_name); id > 0) ids.push_back(id);
        }
        ::closedir(dir);
    }
    return ids;
}

/// The pool's processes below `root`: the fork server and the workers it
/// forked (or workers forked by `root` itself).
std::vector<int> pool_processes(int root) {
    std::vector<int> found = coexec_test::children_of(root);
    for (std::size_t i = 0, direct = found.size(); i < direct; ++i) {
        for (int grandchild : coexec_test::children_of(found[i]))
            found.push_back(grandchild);
    }
    return found;
}

void pin(pid_t tid, const cpu_set_t& cpus) {
    ::sched_setaffinity(tid, sizeof cpus, &cpus);
}

struct placement {
    const char* name;
    int caller;      // index into the two CPUs, or -1 for both
    int supervisor;  // every other thread of this process
    int worker;      // every thread of every child process
};

}  // namespace

int main() {
    coexec::process_pool::prepare();
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    ::sched_getaffinity(0, sizeof allowed, &allowed);
    std::vector<int> cpus;
    for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c) {
        if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
    }
    if (cpus.size() < 2) {
        std::printf("placement: fewer than 2 usable CPUs, nothing to place\n");
        return 0;
    }
    auto set_of = [&](int which) {
        cpu_set_t s;
        CPU_ZERO(&s);
        for (int i = 0; i < 2; ++i) {
            if (which < 0 || which == i) CPU_SET(cpus[static_cast<std::size_t>(i)], &s);
        }
        return s;
    };

    coexec::process_pool pool{{.max_workers = 1}};
    const pid_t self = ::getpid();
    const auto caller_tid = static_cast<pid_t>(::syscall(SYS_gettid));
    const std::vector<placement> placements = {
        {"free (the scheduler's choice)", -1, -1, -1},
        {"worker alone, caller with supervisor", 0, 0, 1},
        {"worker with supervisor, caller alone", 0, 1, 1},
        {"worker with caller, supervisor alone", 0, 1, 0},
        {"all three on one CPU", 0, 0, 0},
    };
    constexpr int rounds = 3;
    constexpr std::size_t warmup = 2'000;
    constexpr std::size_t n = 20'000;
    std::vector<std::vector<double>> p50(placements.size()), p99(placements.size());
    for (int round = 0; round < rounds; ++round) {
        for (std::size_t k = 0; k < placements.size(); ++k) {
            const placement& p = placements[k];
            pin(caller_tid, set_of(p.caller));
            for (pid_t t : threads_of(self)) {
                if (t != caller_tid) pin(t, set_of(p.supervisor));
            }
            for (int child : pool_processes(self)) {
                for (pid_t t : threads_of(child))
                    pin(t, set_of(p.worker));
            }
            for (std::size_t i = 0; i < warmup; ++i)
                pool.submit(&noop).get();
            std::vector<double> ns;
            ns.reserve(n);
            for (std::size_t i = 0; i < n; ++i) {
                const auto t0 = coexec_bench::clock::now();
                pool.submit(&noop).get();
                ns.push_back(
                    std::chrono::duration<double, std::nano>(coexec_bench::clock::now() - t0)
                        .count());
            }
            const auto s = coexec_bench::summarize_ns(ns);
            p50[k].push_back(s.p50_us);
            p99[k].push_back(s.p99_us);
        }
    }

    std::printf("process round trip by placement, 1 worker, CPUs %d and %d, median of %d rounds\n",
                cpus[0], cpus[1], rounds);
    std::string note =
        "Process round trip by placement (bench_process_pool_placement, 1 worker, "
        "each party pinned; p50 / p99 in us, median of 3 rounds):";
    for (std::size_t k = 0; k < placements.size(); ++k) {
        const double m50 = coexec_bench::median(p50[k]);
        const double m99 = coexec_bench::median(p99[k]);
        std::printf("  %-36s p50 %7.2f us  p99 %7.2f us\n", placements[k].name, m50, m99);
        char part[160];
        std::snprintf(part, sizeof part, "%s %s %.2f / %.2f", k == 0 ? "" : ";", placements[k].name,
                      m50, m99);
        note += part;
    }
    coexec_bench::note(note);
}
