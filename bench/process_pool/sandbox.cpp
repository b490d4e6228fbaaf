// What sandbox::compute and limits cost. Three pools of 2 workers live side
// by side in one run:
//
//   plain       process_pool{2}
//   sandboxed   sandbox::compute (every system call of the worker goes
//               through the seccomp filter)
//   limited     sandbox::compute + limits {memory, cpu_time, open_files}
//               (cpu_time adds one clock read per task in the worker)
//
// Each round measures, for each pool in a rotating order, the one-at-a-time
// round trip (p50), map over 200k tiny inputs with the automatic chunksize
// (few large messages) and with chunksize 16 (many small ones, where a
// per-message cost would show). A round's figures are compared with the
// plain pool's in the same round, and the median of those ratios is the
// cost: drift of a shared machine then cancels out.
//
// And the cost per system call itself: a task times 200k getppid() calls on
// its own thread's CPU clock (immune to other load), in each pool.
//
// Goal: the sandbox costs at most 10%.
#include <coexec/process_pool.hpp>

#include <time.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "bench_report.hpp"

namespace {

long square(long x) {
    return x * x;
}

int noop() {
    return 1;
}

double thread_cpu_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// CPU nanoseconds per getppid() (a system call doing nearly nothing).
double ns_per_syscall(int n) {
    const double t0 = thread_cpu_ns();
    long sink = 0;
    for (int i = 0; i < n; ++i)
        sink += ::getppid();
    const double t1 = thread_cpu_ns();
    return sink == 0 ? -1 : (t1 - t0) / n;
}

constexpr int rounds = 25;
constexpr std::size_t trips_per_round = 1'000;
constexpr long map_inputs = 200'000;
constexpr std::size_t small_chunks = 16;

// p50 of one round of round trips, in microseconds.
double round_trip_p50(coexec::process_pool& pool) {
    std::vector<double> ns;
    ns.reserve(trips_per_round);
    for (std::size_t i = 0; i < trips_per_round; ++i) {
        auto t0 = coexec_bench::clock::now();
        pool.submit(&noop).get();
        auto t1 = coexec_bench::clock::now();
        ns.push_back(static_cast<double>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
    }
    return coexec_bench::summarize_ns(ns).p50_us;
}

// Seconds of one map over `inputs`; negative if the results are wrong.
double map_seconds(coexec::process_pool& pool, const std::vector<long>& inputs,
                   std::size_t chunksize) {
    coexec::map_options options;
    options.chunksize = chunksize;
    auto t0 = coexec_bench::clock::now();
    long count = 0;
    long last = 0;
    for (long v : pool.map(&square, inputs, options)) {
        last = v;
        ++count;
    }
    auto t1 = coexec_bench::clock::now();
    if (count != map_inputs || last != (map_inputs - 1) * (map_inputs - 1)) return -1;
    return coexec_bench::seconds_between(t0, t1);
}

// One measured quantity: its value per round, per pool (lower is better).
struct series {
    std::vector<std::vector<double>> values;  // [pool][round]
    explicit series(std::size_t pools) : values(pools) {}
    double median(std::size_t pool) { return coexec_bench::median(values[pool]); }
    // Median over rounds of (pool / plain), as a cost in percent.
    double cost_percent(std::size_t pool) const {
        std::vector<double> r;
        for (std::size_t k = 0; k < values[0].size(); ++k)
            r.push_back(values[pool][k] / values[0][k]);
        return (coexec_bench::median(r) - 1) * 100;
    }
};

}  // namespace

int main() {
    coexec::process_pool::prepare();
    std::vector<long> inputs(static_cast<std::size_t>(map_inputs));
    std::iota(inputs.begin(), inputs.end(), 0L);

    using namespace std::chrono_literals;
    const char* names[] = {"plain", "sandboxed", "limited"};
    const coexec::process_pool_options options[] = {
        {.max_workers = 2},
        {.max_workers = 2, .sandbox = coexec::sandbox::compute},
        {.max_workers = 2,
         .limits = {.memory = std::size_t{4} << 30, .cpu_time = 600s, .open_files = 256},
         .sandbox = coexec::sandbox::compute},
    };
    constexpr std::size_t n = std::size(names);
    series trip(n), map_auto(n), map_small(n), syscall_ns(n);
    {
        std::vector<std::unique_ptr<coexec::process_pool>> pools;
        for (const auto& o : options) {
            pools.push_back(std::make_unique<coexec::process_pool>(o));
            for (int i = 0; i < 500; ++i)  // warm-up
                pools.back()->submit(&noop).get();
        }
        for (int r = 0; r < rounds; ++r) {
            for (std::size_t k = 0; k < n; ++k) {
                // Rotate the order each round: no pool always runs first.
                const std::size_t i = (k + static_cast<std::size_t>(r)) % n;
                trip.values[i].push_back(round_trip_p50(*pools[i]));
                const double a = map_seconds(*pools[i], inputs, 0);
                const double b = map_seconds(*pools[i], inputs, small_chunks);
                if (a < 0 || b < 0) {
                    std::fprintf(stderr, "map returned wrong results\n");
                    return 1;
                }
                map_auto.values[i].push_back(a);
                map_small.values[i].push_back(b);
                syscall_ns.values[i].push_back(pools[i]->submit(ns_per_syscall, 200'000).get());
            }
        }
    }

    std::printf("sandbox::compute and limits: 2 workers, %d rounds alternating between the pools\n",
                rounds);
    std::printf("  %-10s %16s %18s %22s %14s\n", "", "round trip p50", "map (auto chunks)",
                "map (chunksize 16)", "getppid()");
    for (std::size_t i = 0; i < n; ++i) {
        std::printf("  %-10s %13.2f us %11.2f M/s %15.2f M/s %11.0f ns\n", names[i], trip.median(i),
                    map_inputs / map_auto.median(i) / 1e6, map_inputs / map_small.median(i) / 1e6,
                    syscall_ns.median(i));
    }
    using coexec_bench::better;
    const char* peer = "the same pool without sandbox or limits";
    for (std::size_t i = 1; i < n; ++i) {
        const double rt = trip.cost_percent(i);
        const double ma = map_auto.cost_percent(i);
        const double ms = map_small.cost_percent(i);
        const double sc = syscall_ns.median(i) - syscall_ns.median(0);
        std::printf(
            "  %-10s costs %+5.1f%% on the round trip, %+5.1f%% on map, %+5.1f%% on map "
            "chunksize 16, %+.0f ns per system call\n",
            names[i], rt, ma, ms, sc);
        const std::string name = names[i];
        const std::string rt_name = "round trip p50, process_pool " + name;
        const std::string ma_name = "map 200k tiny tasks, process_pool " + name;
        const std::string ms_name = "map 200k tiny tasks chunksize 16, process_pool " + name;
        coexec_bench::report(rt_name, trip.median(i), "us", peer, trip.median(0), better::lower);
        coexec_bench::report(ma_name, map_inputs / map_auto.median(i) / 1e6, "M tasks/s", peer,
                             map_inputs / map_auto.median(0) / 1e6, better::higher);
        coexec_bench::report(ms_name, map_inputs / map_small.median(i) / 1e6, "M tasks/s", peer,
                             map_inputs / map_small.median(0) / 1e6, better::higher);
        coexec_bench::goal(rt_name + ": cost", rt, "<=", 10, "%");
        coexec_bench::goal(ma_name + ": cost", ma, "<=", 10, "%");
        coexec_bench::goal(ms_name + ": cost", ms, "<=", 10, "%");
    }
    coexec_bench::note(
        "sandbox: cost = median over 25 rounds of (pool / plain pool in the same round); the "
        "rounds alternate between the three pools in one run. Per system call: CPU time of "
        "getppid() in a worker, on its thread's clock.");
    return 0;
}
