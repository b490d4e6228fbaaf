// Empty-task throughput: 1M tasks, each with a future, on 2 workers.
//
//   coexec   thread_pool{2}: submit every task, then wait on every future
//   asio     asio::thread_pool(2): asio::post(pool, asio::use_future(fn)),
//            then wait on every std::future
//   std      std::async(std::launch::async): one thread per task, so far
//            fewer tasks; compared per task
//
// The pools are started (and warmed up) before the clock starts; the time
// covers submitting, running and waiting for every task.
#include <asio.hpp>
#include <coexec/future.hpp>
#include <coexec/thread_pool.hpp>

#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <vector>

#include "bench_report.hpp"

namespace {

using coexec_bench::clock;
using coexec_bench::median;
using coexec_bench::seconds_between;

constexpr std::size_t workers = 2;
constexpr int reps = 3;  // coexec and Asio: median of 3 batches in one pool

double coexec_rate(std::size_t n) {
    coexec::thread_pool pool{{.max_workers = workers}};
    pool.submit([] {}).wait();  // warm-up: threads are running
    std::vector<double> rates;
    for (int r = 0; r < reps; ++r) {
        std::vector<coexec::future<void>> futures;
        futures.reserve(n);
        auto t0 = clock::now();
        for (std::size_t i = 0; i < n; ++i)
            futures.push_back(pool.submit([] {}));
        for (auto& f : futures)
            f.wait();
        auto t1 = clock::now();
        rates.push_back(static_cast<double>(n) / seconds_between(t0, t1));
    }
    return median(rates);
}

double asio_rate(std::size_t n) {
    asio::thread_pool pool(workers);
    asio::post(pool, asio::use_future([] {})).wait();
    std::vector<double> rates;
    for (int r = 0; r < reps; ++r) {
        std::vector<std::future<void>> futures;
        futures.reserve(n);
        auto t0 = clock::now();
        for (std::size_t i = 0; i < n; ++i)
            futures.push_back(asio::post(pool, asio::use_future([] {})));
        for (auto& f : futures)
            f.wait();
        auto t1 = clock::now();
        rates.push_back(static_cast<double>(n) / seconds_between(t0, t1));
    }
    pool.join();
    return median(rates);
}

double std_async_rate(std::size_t n) {
    std::async(std::launch::async, [] {}).wait();
    std::vector<std::future<void>> futures;
    futures.reserve(n);
    auto t0 = clock::now();
    for (std::size_t i = 0; i < n; ++i)
        futures.push_back(std::async(std::launch::async, [] {}));
    for (auto& f : futures)
        f.wait();
    auto t1 = clock::now();
    return static_cast<double>(n) / seconds_between(t0, t1);
}

}  // namespace

int main() {
    const std::size_t n = 1'000'000;
    const std::size_t n_async = 20'000;  // one OS thread per task: 1M would take minutes

    double coexec = coexec_rate(n);
    double asio_uf = asio_rate(n);
    double std_async = std_async_rate(n_async);

    std::printf("empty-task throughput, %zu workers\n", workers);
    std::printf("  coexec thread_pool submit+wait  %9zu tasks  %8.3f M tasks/s\n", n, coexec / 1e6);
    std::printf("  asio post+use_future            %9zu tasks  %8.3f M tasks/s  (coexec %.2fx)\n",
                n, asio_uf / 1e6, coexec / asio_uf);
    std::printf("  std::async(launch::async)       %9zu tasks  %8.3f M tasks/s  (coexec %.2fx)\n",
                n_async, std_async / 1e6, coexec / std_async);

    const char* name = "empty tasks, 1M with futures, 2 workers";
    using coexec_bench::better;
    coexec_bench::report(name, coexec / 1e6, "M tasks/s", "asio::thread_pool post+use_future",
                         asio_uf / 1e6, better::higher);
    coexec_bench::report(name, coexec / 1e6, "M tasks/s", "std::async (20k tasks)", std_async / 1e6,
                         better::higher);
    coexec_bench::goal(name, coexec / asio_uf, ">=", 6, "x asio use_future");
    coexec_bench::note(
        "std::async starts one OS thread per task, so it runs 20k tasks instead of 1M; "
        "its figure is the per-task rate. coexec and Asio: median of 3 batches of 1M.");
    return 0;
}
