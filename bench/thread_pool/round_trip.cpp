// One-at-a-time round trip: submit one empty task, get() its result, repeat.
// Each round trip is timed on its own; p50 and p99 over 100k of them, after
// a warm-up. This is the latency a caller sees when the pool is otherwise
// idle (workers spinning or asleep, whatever the pool chooses).
//
//   coexec   thread_pool{2}: submit(fn).get()
//   asio     asio::thread_pool(2): asio::post(pool, asio::use_future(fn)).get()
//   std      std::async(std::launch::async, fn).get() (a new thread each time)
#include <asio.hpp>
#include <coexec/future.hpp>
#include <coexec/thread_pool.hpp>

#include <cstdio>
#include <future>
#include <vector>

#include "bench_report.hpp"

namespace {

using coexec_bench::clock;

constexpr std::size_t workers = 2;

template <class RoundTrip>
coexec_bench::latency_summary measure(std::size_t warmup, std::size_t n, RoundTrip&& once) {
    for (std::size_t i = 0; i < warmup; ++i)
        once();
    std::vector<double> ns;
    ns.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        auto t0 = clock::now();
        once();
        auto t1 = clock::now();
        ns.push_back(static_cast<double>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
    }
    return coexec_bench::summarize_ns(ns);
}

void print(const char* who, std::size_t n, const coexec_bench::latency_summary& s) {
    std::printf("  %-34s %7zu trips  p50 %8.2f us  p99 %8.2f us  mean %8.2f us\n", who, n, s.p50_us,
                s.p99_us, s.mean_us);
}

}  // namespace

int main() {
    const std::size_t warmup = 10'000;
    const std::size_t n = 100'000;
    const std::size_t n_async = 20'000;  // a thread per call; fewer trips, same percentiles

    coexec_bench::latency_summary coexec;
    {
        coexec::thread_pool pool{{.max_workers = workers}};
        coexec = measure(warmup, n, [&] { pool.submit([] { return 1; }).get(); });
    }
    coexec_bench::latency_summary asio_uf;
    {
        asio::thread_pool pool(workers);
        asio_uf =
            measure(warmup, n, [&] { asio::post(pool, asio::use_future([] { return 1; })).get(); });
        pool.join();
    }
    auto std_async =
        measure(1'000, n_async, [] { std::async(std::launch::async, [] { return 1; }).get(); });

    std::printf("one-at-a-time round trip, %zu workers\n", workers);
    print("coexec thread_pool submit+get", n, coexec);
    print("asio post+use_future get", n, asio_uf);
    print("std::async get", n_async, std_async);

    using coexec_bench::better;
    const char* p50 = "round trip p50, thread_pool";
    const char* p99 = "round trip p99, thread_pool";
    coexec_bench::report(p50, coexec.p50_us, "us", "asio::thread_pool post+use_future",
                         asio_uf.p50_us, better::lower);
    coexec_bench::report(p50, coexec.p50_us, "us", "std::async", std_async.p50_us, better::lower);
    coexec_bench::report(p99, coexec.p99_us, "us", "asio::thread_pool post+use_future",
                         asio_uf.p99_us, better::lower);
    coexec_bench::report(p99, coexec.p99_us, "us", "std::async", std_async.p99_us, better::lower);
    coexec_bench::goal(p50, coexec.p50_us, "<=", 2, "us");
    coexec_bench::goal(p99, coexec.p99_us, "<=", 5, "us");
    coexec_bench::note(
        "Round trips: 100k timed after 10k warm-up (std::async: 20k after 1k, one thread "
        "per call).");
    return 0;
}
