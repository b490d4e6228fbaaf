// bench/common/bench_report.hpp — timing helpers and the output protocol that
// bench/run_all.sh collects.
//
// Every benchmark executable prints a human-readable summary plus
// machine-readable lines, one per fact, fields separated by '|':
//
//   RESULT|<benchmark>|<coexec figure>|<unit>|<peer name>|<peer figure>|<ratio>
//       ratio is "how many times better coexec is": coexec/peer for rates,
//       peer/coexec for times, so > 1 always means coexec wins.
//   GOAL|<benchmark>|<coexec figure>|<op>|<target>|<unit>
//       a project goal (op is ">=" or "<="); the driver judges it.
//   NOTE|<text>
//       a footnote for the table (sample sizes, skipped peers, ...).
//
// None of these asserts a time: a benchmark reports, the reader judges.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace coexec_bench {

using clock = std::chrono::steady_clock;

inline double seconds_between(clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

/// Percentiles of a sample of durations in nanoseconds (sorted in place).
struct latency_summary {
    double p50_us = 0;
    double p99_us = 0;
    double mean_us = 0;
    double max_us = 0;
};

inline latency_summary summarize_ns(std::vector<double>& ns) {
    latency_summary s;
    if (ns.empty()) return s;
    std::sort(ns.begin(), ns.end());
    auto at = [&](double q) {
        auto i = static_cast<std::size_t>(q * static_cast<double>(ns.size() - 1) + 0.5);
        return ns[std::min(i, ns.size() - 1)] / 1000.0;
    };
    double sum = 0;
    for (double v : ns)
        sum += v;
    s.p50_us = at(0.50);
    s.p99_us = at(0.99);
    s.mean_us = sum / static_cast<double>(ns.size()) / 1000.0;
    s.max_us = ns.back() / 1000.0;
    return s;
}

/// The median of a few repetitions (the vector is sorted in place).
inline double median(std::vector<double>& v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    std::size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

enum class better { higher, lower };

/// One comparison row: coexec against one peer, measured in this run.
inline void report(std::string_view benchmark, double coexec, std::string_view unit,
                   std::string_view peer, double peer_figure, better direction) {
    double ratio = 0;
    if (coexec > 0 && peer_figure > 0)
        ratio = direction == better::higher ? coexec / peer_figure : peer_figure / coexec;
    std::printf("RESULT|%.*s|%.4g|%.*s|%.*s|%.4g|%.3g\n", int(benchmark.size()), benchmark.data(),
                coexec, int(unit.size()), unit.data(), int(peer.size()), peer.data(), peer_figure,
                ratio);
    std::fflush(stdout);
}

/// A project goal for this benchmark's coexec figure (judged by the driver).
inline void goal(std::string_view benchmark, double coexec, std::string_view op, double target,
                 std::string_view unit) {
    std::printf("GOAL|%.*s|%.4g|%.*s|%.4g|%.*s\n", int(benchmark.size()), benchmark.data(), coexec,
                int(op.size()), op.data(), target, int(unit.size()), unit.data());
    std::fflush(stdout);
}

inline void note(std::string_view text) {
    std::printf("NOTE|%.*s\n", int(text.size()), text.data());
    std::fflush(stdout);
}

}  // namespace coexec_bench
