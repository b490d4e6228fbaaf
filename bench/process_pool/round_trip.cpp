// One-at-a-time round trip through a process pool: submit a no-op, get() it,
// repeat; p50 and p99 over 20k trips after 2k warm-up, 2 workers.
//
//   coexec   process_pool{2}: submit(noop).get()
//            the same awaited (co_await) by a coroutine on a thread_pool
//            worker: the supervisor hands the resumption to that pool
//   python   ProcessPoolExecutor(2): submit(noop).result()   (10k trips)
//            multiprocessing.Pool(2): apply(noop)             (10k trips)
#include <coexec/future.hpp>
#include <coexec/process_pool.hpp>
#include <coexec/task.hpp>
#include <coexec/thread_pool.hpp>

#include <cstdio>
#include <vector>

#include "bench_report.hpp"
#include "python_peer.hpp"

namespace {

int noop() {
    return 1;
}

}  // namespace

int main() {
    coexec::process_pool::prepare();  // the fork server, while single-threaded
    const std::size_t warmup = 2'000;
    const std::size_t n = 20'000;

    std::vector<double> ns;
    std::vector<double> awaited;
    {
        coexec::process_pool pool{{.max_workers = 2}};
        for (std::size_t i = 0; i < warmup; ++i)
            pool.submit(&noop).get();
        ns.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            auto t0 = coexec_bench::clock::now();
            pool.submit(&noop).get();
            auto t1 = coexec_bench::clock::now();
            ns.push_back(static_cast<double>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
        }
        coexec::thread_pool threads{{.max_workers = 1}};
        awaited = threads
                      .submit([&]() -> coexec::task<std::vector<double>> {
                          std::vector<double> out;
                          out.reserve(n);
                          for (std::size_t i = 0; i < warmup + n; ++i) {
                              auto t0 = coexec_bench::clock::now();
                              co_await pool.submit(&noop);
                              auto t1 = coexec_bench::clock::now();
                              if (i >= warmup)
                                  out.push_back(static_cast<double>(
                                      std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0)
                                          .count()));
                          }
                          co_return out;
                      })
                      .get();
    }
    auto s = coexec_bench::summarize_ns(ns);
    auto a = coexec_bench::summarize_ns(awaited);
    std::printf("process pool one-at-a-time round trip, 2 workers\n");
    std::printf("  coexec process_pool submit+get     p50 %8.2f us  p99 %8.2f us  mean %8.2f us\n",
                s.p50_us, s.p99_us, s.mean_us);
    std::printf("  co_await from a thread_pool worker p50 %8.2f us  p99 %8.2f us  mean %8.2f us\n",
                a.p50_us, a.p99_us, a.mean_us);

    auto py = coexec_bench::run_python("process_pool_peers.py",
                                       "round_trip --workers 2 --n 10000 --warmup 500");
    if (!py) return 0;
    using coexec_bench::better;
    const char* p50 = "round trip p50, process_pool";
    const char* p99 = "round trip p99, process_pool";
    coexec_bench::report(p50, s.p50_us, "us", "Python ProcessPoolExecutor", (*py)["ppe_p50_us"],
                         better::lower);
    coexec_bench::report(p50, s.p50_us, "us", "Python multiprocessing.Pool.apply",
                         (*py)["pool_p50_us"], better::lower);
    coexec_bench::report(p99, s.p99_us, "us", "Python ProcessPoolExecutor", (*py)["ppe_p99_us"],
                         better::lower);
    coexec_bench::report(p99, s.p99_us, "us", "Python multiprocessing.Pool.apply",
                         (*py)["pool_p99_us"], better::lower);
    coexec_bench::note(
        "Process-pool round trips: coexec 20k after 2k warm-up; Python 10k after 500 "
        "(Python 3, default start method).");
    return 0;
}
