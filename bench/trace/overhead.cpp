// What coexec::trace costs: 1M empty thread_pool tasks and 200k of ~1 us
// each (submitted in batches of 10k, 2 workers) and 20k one-at-a-time
// process_pool round trips (2 workers), with tracing compiled out
// (bench_trace_overhead_none, the library built with COEXEC_TRACE_DISABLED,
// run as a child), compiled in but off, and on (recording to a file in
// /tmp), interleaved in the same run; per round, each mode's time over the
// compiled-out time, and the median of those ratios. Goals: off
// within 1% of compiled out, on within 10%.
//
// "On" times the traced run itself: while a session records, the writer
// thread only copies the threads' records into the session's spill file,
// and the JSON is made from it by a thread at idle priority (with CPU the
// workload leaves unused; its share of the run is printed) and, for the
// rest, by stop(). stop()'s time is printed apart, as a NOTE: it is paid
// once, after the traced work.
//
//   bench_trace_overhead [rounds=3] [scale=1]     scale divides the task counts
#include <coexec/future.hpp>
#include <coexec/process_pool.hpp>
#include <coexec/thread_pool.hpp>
#include <coexec/trace.hpp>

#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_report.hpp"

namespace {

int work(int x) {
    return x + 1;
}

int noop() {
    return 1;
}

// Iterations of spin() that take about a microsecond (calibrated by the
// parent, passed to the compiled-out child so both run the same work).
unsigned g_spin_iterations = 1;

int spin(int x) {
    unsigned v = static_cast<unsigned>(x);
    for (unsigned i = 0; i < g_spin_iterations; ++i)
        v = v * 1664525u + 1013904223u;  // a dependent chain: no vectorising it away
    return static_cast<int>(v);
}

[[maybe_unused]] unsigned calibrate_spin() {
    g_spin_iterations = 1u << 14;
    volatile int sink = 0;  // keeps the calls: unused results would let them go
    const auto t0 = coexec_bench::clock::now();
    for (int i = 0; i < 200; ++i)
        sink = sink + spin(i);
    const double ns = coexec_bench::seconds_between(t0, coexec_bench::clock::now()) * 1e9 / 200;
    const double per_us = static_cast<double>(g_spin_iterations) * 1000.0 / std::max(ns, 1.0);
    return static_cast<unsigned>(std::clamp(per_us, 1.0, 1e7));
}

struct times {
    double tp_ns = 0;     // per empty thread_pool task
    double tp1us_ns = 0;  // per thread_pool task of ~1 us of work
    double pp_us = 0;     // per process_pool round trip
};

template <int (*F)(int)>
double thread_pool_ns_per_task(std::size_t n) {
    const std::size_t batch = 10'000;
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<coexec::future<int>> fs;
    fs.reserve(batch);
    auto t0 = coexec_bench::clock::now();
    for (std::size_t done = 0; done < n; done += batch) {
        for (std::size_t i = 0; i < batch; ++i)
            fs.push_back(pool.submit(F, static_cast<int>(i)));
        for (auto& f : fs)
            f.wait();
        fs.clear();
    }
    auto t1 = coexec_bench::clock::now();
    return coexec_bench::seconds_between(t0, t1) * 1e9 / static_cast<double>(n);
}

double process_pool_us_per_trip(std::size_t n) {
    coexec::process_pool pool{{.max_workers = 2}};
    for (std::size_t i = 0; i < 1'000; ++i)
        pool.submit(&noop).get();
    auto t0 = coexec_bench::clock::now();
    for (std::size_t i = 0; i < n; ++i)
        pool.submit(&noop).get();
    auto t1 = coexec_bench::clock::now();
    return coexec_bench::seconds_between(t0, t1) * 1e6 / static_cast<double>(n);
}

times run_once(std::size_t scale) {
    times t;
    t.tp_ns = thread_pool_ns_per_task<&work>(1'000'000 / scale);
    t.tp1us_ns = thread_pool_ns_per_task<&spin>(200'000 / scale);
    t.pp_us = process_pool_us_per_trip(20'000 / scale);
    return t;
}

// CPU time (ms) of this process's threads named `name` (utime + stime from
// /proc; the clock ticks are assumed to be 100 Hz, as on every Linux build
// this runs on): the trace's background converter, before stop() ends it.
[[maybe_unused]] double thread_cpu_ms(const std::string& name) {
    double ms = 0;
    std::error_code ec;
    for (const auto& t : std::filesystem::directory_iterator("/proc/self/task", ec)) {
        std::ifstream comm(t.path() / "comm");
        std::string c;
        std::getline(comm, c);
        if (c != name) continue;
        std::ifstream stat(t.path() / "stat");
        std::string line;
        std::getline(stat, line);
        std::istringstream rest(line.substr(line.rfind(')') + 2));
        std::string field;
        unsigned long long utime = 0, stime = 0;
        for (int k = 3; k <= 15 && rest >> field; ++k) {
            if (k == 14) utime = std::stoull(field);
            if (k == 15) stime = std::stoull(field);
        }
        ms += static_cast<double>(utime + stime) * 10.0;
    }
    return ms;
}

}  // namespace

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
    const std::size_t scale = argc > 2 ? std::max(1, std::atoi(argv[2])) : 1;
    // glibc returns the top of the heap to the kernel when more than
    // M_TRIM_THRESHOLD (128 KiB) is free there, and raises that threshold
    // the first time a large mmap'd block is freed. Each 10k-task batch
    // frees ~1.5 MiB of jobs, so a process whose threshold was never raised
    // faults those pages in again every batch: 2.5x slower per task on this
    // VM. A trace session frees large buffers and raises it, which made
    // "off" and "on" (after the first session) look 2.5x faster than
    // "compiled out" (a fresh child). Both sides fix it here instead.
    ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
    ::mallopt(M_TOP_PAD, 16 << 20);
    coexec::process_pool::prepare();  // the fork server, while single-threaded
#if !defined(COEXEC_BENCH_TRACE_NONE)
    (void)rounds;
    g_spin_iterations = argc > 3 ? static_cast<unsigned>(std::atoi(argv[3])) : 1;
    (void)run_once(scale);  // the compiled-out child: a warm-up round, then one timed round
    times t = run_once(scale);
    std::printf("%.6g %.6g %.6g\n", t.tp_ns, t.tp1us_ns, t.pp_us);
    return 0;
#else
    g_spin_iterations = calibrate_spin();
    const std::string child = std::string(COEXEC_BENCH_TRACE_NONE) + " 1 " + std::to_string(scale) +
                              " " + std::to_string(g_spin_iterations);
    const std::string out = "/tmp/coexec_bench_trace_%p.json";
    std::uint64_t dropped = 0;
    std::vector<double> stop_ms, cv_share;
    // Per round, each mode against the compiled-out run of the same round:
    // this VM drifts between a fast and a slow regime (1.7x apart) over
    // seconds, so the ratio of the medians of each mode would mix regimes.
    constexpr int workloads = 3;
    const char* const names[workloads] = {"thread_pool, empty tasks", "thread_pool, ~1 us tasks",
                                          "process_pool round trip"};
    std::vector<double> ratio_off[workloads], ratio_on[workloads];
    (void)run_once(scale);  // warm-up (see the child)
    for (int r = 0; r < rounds; ++r) {
        FILE* p = ::popen(child.c_str(), "r");
        times none;
        if (p == nullptr ||
            std::fscanf(p, "%lf %lf %lf", &none.tp_ns, &none.tp1us_ns, &none.pp_us) != 3) {
            std::fprintf(stderr, "bench_trace_overhead: cannot run %s\n", child.c_str());
            return 1;
        }
        ::pclose(p);
        times off = run_once(scale);
        coexec::trace::start(out);
        const auto o0 = coexec_bench::clock::now();
        times on = run_once(scale);
        const double on_ms = coexec_bench::seconds_between(o0, coexec_bench::clock::now()) * 1e3;
        cv_share.push_back(thread_cpu_ms("coexec-trace-cv") / on_ms * 100);
        const auto s0 = coexec_bench::clock::now();
        coexec::trace::stop();
        stop_ms.push_back(coexec_bench::seconds_between(s0, coexec_bench::clock::now()) * 1e3);
        dropped += coexec::trace::dropped_events();
        std::remove(coexec::trace::path().c_str());
        const double n[workloads] = {none.tp_ns, none.tp1us_ns, none.pp_us};
        const double f[workloads] = {off.tp_ns, off.tp1us_ns, off.pp_us};
        const double o[workloads] = {on.tp_ns, on.tp1us_ns, on.pp_us};
        for (int w = 0; w < workloads; ++w) {
            ratio_off[w].push_back(f[w] / n[w]);
            ratio_on[w].push_back(o[w] / n[w]);
        }
        std::printf(
            "round %d: thread_pool ns/task none %.1f off %.1f on %.1f | 1 us tasks ns/task none "
            "%.1f off %.1f on %.1f | process_pool us/trip none %.2f off %.2f on %.2f\n",
            r + 1, none.tp_ns, off.tp_ns, on.tp_ns, none.tp1us_ns, off.tp1us_ns, on.tp1us_ns,
            none.pp_us, off.pp_us, on.pp_us);
        std::fflush(stdout);
    }
    std::printf(
        "coexec::trace overhead: per-round ratio to compiled out, median [range] of %d rounds "
        "(%zu empty and %zu ~1 us thread_pool tasks, %zu process_pool round trips per run; "
        "spin calibrated to %u iterations)\n",
        rounds, std::size_t{1'000'000} / scale, std::size_t{200'000} / scale,
        std::size_t{20'000} / scale, g_spin_iterations);
    auto lo = [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); };
    auto hi = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); };
    for (int w = 0; w < workloads; ++w) {
        std::printf("  %-26s off x%.3f [%.3f-%.3f]  on x%.3f [%.3f-%.3f]\n", names[w],
                    coexec_bench::median(ratio_off[w]), lo(ratio_off[w]), hi(ratio_off[w]),
                    coexec_bench::median(ratio_on[w]), lo(ratio_on[w]), hi(ratio_on[w]));
    }
    std::printf("  events dropped while on (full per-thread buffers): %llu\n",
                static_cast<unsigned long long>(dropped));
    std::printf("  stop() (the rest of the session's spill into JSON): %.0f ms\n",
                coexec_bench::median(stop_ms));
    std::printf(
        "  background converter (idle priority) CPU during the traced run: %.1f%% of "
        "its wall time (median)\n",
        coexec_bench::median(cv_share));
    for (int w = 0; w < workloads; ++w) {
        std::printf("GOAL|trace off vs compiled out, %s|%.2f|<=|1|%%\n", names[w],
                    (coexec_bench::median(ratio_off[w]) - 1) * 100);
        std::printf("GOAL|trace on vs compiled out, %s|%.2f|<=|10|%%\n", names[w],
                    (coexec_bench::median(ratio_on[w]) - 1) * 100);
    }
    std::printf(
        "NOTE|trace overhead: medians of %d interleaved rounds of the per-round ratio; compiled "
        "out = the library built with COEXEC_TRACE_DISABLED, run as a child process\n",
        rounds);
    std::printf(
        "NOTE|trace on: stop() made the JSON of each traced run in %.0f ms (median), "
        "after the timed work\n",
        coexec_bench::median(stop_ms));
    return 0;
#endif
}
