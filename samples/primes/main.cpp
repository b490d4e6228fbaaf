// samples/primes — the seeds' prime counting, written once for any executor.
//
// Counts the primes below 2,000,000 split into 64 ranges, the work of the
// Python guide's ProcessPoolExecutor example, and runs the same generic code
// on several executors: switching strategy is a change of one type.
//
//   primes [--below N] [--ranges K] [--workers W]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "coexec/coexec.hpp"
#include "coexec/process_pool.hpp"

namespace {

bool is_prime(long n) {
    if (n < 2) return false;
    if (n % 2 == 0) return n == 2;
    for (long i = 3; i * i <= n; i += 2) {
        if (n % i == 0) return false;
    }
    return true;
}

// A plain function: it can be sent to any executor, including a process pool.
long count_primes_in_range(long start, long end) {
    long count = 0;
    for (long n = start; n < end; ++n)
        count += is_prime(n) ? 1 : 0;
    return count;
}

std::vector<std::pair<long, long>> split(long below, long parts) {
    std::vector<std::pair<long, long>> ranges;
    long step = (below + parts - 1) / parts;
    for (long start = 0; start < below; start += step)
        ranges.emplace_back(start, std::min(below, start + step));
    return ranges;
}

/// The whole program's logic, generic over the executor (Python's
/// `executor.map(count_primes_in_range, *zip(*ranges))`).
template <coexec::executor Executor>
long count_primes(Executor& executor, const std::vector<std::pair<long, long>>& ranges) {
    long total = 0;
    for (long n : executor.map(&count_primes_in_range, ranges, {.chunksize = 1}))
        total += n;
    return total;
}

template <coexec::executor Executor>
double run(const char* name, Executor& executor, const std::vector<std::pair<long, long>>& ranges) {
    auto start = std::chrono::steady_clock::now();
    long total = count_primes(executor, ranges);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%-16s workers=%-3zu Total primes found: %ld  in %.3f s\n", name,
                executor.max_workers(), total, seconds);
    return seconds;
}

long flag(int argc, char** argv, const char* name, long fallback) {
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::strcmp(argv[i], name) == 0) return std::atol(argv[i + 1]);
    }
    return fallback;
}

}  // namespace

int main(int argc, char** argv) {
    // The process pool's fork server, made while the program is single-threaded.
    coexec::process_pool::prepare();
    long below = flag(argc, argv, "--below", 2'000'000);
    long parts = flag(argc, argv, "--ranges", 64);
    auto workers = static_cast<std::size_t>(flag(argc, argv, "--workers", 0));
    auto ranges = split(below, parts);
    std::printf("Counting primes below %ld in %zu ranges\n", below, ranges.size());

    coexec::inline_executor serial;
    double t_serial = run("inline_executor", serial, ranges);

    // Threads: fine here because C++ has no GIL; for CPU work the process
    // pool adds crash isolation at the cost of copying arguments.
    coexec::thread_pool threads{
        {.max_workers = workers != 0 ? workers : std::thread::hardware_concurrency()}};
    double t_threads = run("thread_pool", threads, ranges);

    // Processes: crash-isolated workers; a range is one message to a worker.
    coexec::process_pool procs{{.max_workers = workers}};  // 0 = one per core
    double t_procs = run("process_pool", procs, ranges);

    std::printf("speed-up over serial: thread_pool %.2fx, process_pool %.2fx\n",
                t_serial / t_threads, t_serial / t_procs);
    return 0;
}
