// samples/seeds/fetch_transform.cpp — fetch on a thread pool, transform on a process pool.
//
// Seed 004 (article "ProcessPoolExecutor vs ThreadPoolExecutor"), "Practical decision matrix":
//     "Use threads when waiting dominates; use processes when pure Python
//      computation dominates. If workload mixes I/O and CPU, split stages:
//      thread pool for fetch, process pool for heavy transform."
// The article has no code for it; in Python the advice reads:
//     with ThreadPoolExecutor(max_workers=8) as io, ProcessPoolExecutor(max_workers=2) as cpu:
//         pages = io.map(fetch, urls)                  # waiting dominates
//         for stats in cpu.map(transform, pages):      # computation dominates
//             print(f"{stats.url}: {stats.numbers} numbers, {stats.primes} primes")
//     print(f"Total primes found: {total}")
//
// coexec: one coexec::pipeline with two stages. fetch is a coroutine on the
// thread_pool (co_await io::sleep_for stands in for the network wait and holds
// no thread); transform is a plain function on the process_pool, parsing the
// page and counting its primes. The stages overlap, with bounded buffers
// between them (backpressure), and items leave in input order. Eight pages of
// 10000 numbers each: the primes below 80000.
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "coexec/io.hpp"
#include "coexec/pipeline.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/task.hpp"
#include "coexec/thread_pool.hpp"

namespace {

struct page {
    std::string url;
    std::string body;

    template <class Ar>
    void serialize(Ar& ar) {
        ar(url, body);
    }
};

struct page_stats {
    std::string url;
    long numbers = 0;
    long primes = 0;

    template <class Ar>
    void serialize(Ar& ar) {
        ar(url, numbers, primes);
    }
};

constexpr long numbers_per_page = 10000;

// I/O-bound: most of the time is spent waiting (a simulated 100 ms round trip).
coexec::task<page> fetch(long n) {
    co_await coexec::io::sleep_for(std::chrono::milliseconds(100));
    page p{"https://example.com/numbers/" + std::to_string(n), {}};
    for (long i = n * numbers_per_page; i < (n + 1) * numbers_per_page; ++i)
        p.body += std::to_string(i) + '\n';
    co_return p;
}

bool is_prime(long n) {
    if (n < 2) return false;
    for (long i = 2; i * i <= n; ++i) {
        if (n % i == 0) return false;
    }
    return true;
}

// CPU-bound: parse the page and count the primes in it.
page_stats transform(page p) {
    page_stats stats{p.url};
    std::istringstream in(p.body);
    for (long x = 0; in >> x;) {
        ++stats.numbers;
        stats.primes += is_prime(x) ? 1 : 0;
    }
    return stats;
}

}  // namespace

int main() {
    coexec::process_pool cpu{{.max_workers = 2}};  // first: forked while single-threaded
    coexec::thread_pool io{{.max_workers = 8}};

    std::vector<long> urls{0, 1, 2, 3, 4, 5, 6, 7};
    long total = 0;
    coexec::pipeline(urls)
        .then(io, &fetch, {.concurrency = 8, .name = "fetch"})
        .then(cpu, &transform, {.concurrency = 2, .name = "transform"})
        .for_each([&total](const page_stats& stats) {
            std::printf("%s: %ld numbers, %ld primes\n", stats.url.c_str(), stats.numbers,
                        stats.primes);
            total += stats.primes;
        });
    std::printf("Total primes found: %ld\n", total);
    return 0;
}
