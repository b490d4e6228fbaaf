// samples/seeds/imap_chunksize.cpp — Pool.imap with chunksize: lazy, ordered, chunked.
//
// Seed 003 (guide "ProcessPoolExecutor and Pool"), "Pool with imap() for Lazy Evaluation":
//     def process_slowly(x):
//         time.sleep(0.2)
//         return x * 2
//     with multiprocessing.Pool(processes=3) as pool:
//         results = pool.imap(process_slowly, range(10), chunksize=2)
//         for result in results:
//             print(f"Got: {result}")
//     # Got: 0 / Got: 2 / ... / Got: 18    (no output shown in the seed; this is what it prints)
// Seed 001 (Q&A on behaviour differences), point 5: chunksize batches the
// iterable "into chunks ... which reduces the overhead of IPC".
//
// coexec: pool.map(f, inputs, {.chunksize = 2}) is imap: results<R> is lazy
// and single-pass, yields in input order, and sends each chunk of two inputs
// to a worker as one message. (`.ordered = false` would be imap_unordered.)
#include <chrono>
#include <cstdio>
#include <ranges>
#include <thread>

#include "coexec/process_pool.hpp"

namespace {

long process_slowly(long x) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return x * 2;
}

}  // namespace

int main() {
    coexec::process_pool pool{{.max_workers = 3}};
    auto results = pool.map(&process_slowly, std::views::iota(0L, 10L), {.chunksize = 2});
    for (long result : results) {
        std::printf("Got: %ld\n", result);
        std::fflush(stdout);  // show each result as it arrives, even through a pipe
    }
    return 0;
}
