// samples/primes/primes.hpp — the seeds' prime counting, written once for any
// executor: samples/primes runs it on one machine, samples/cluster on MPI ranks.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <utility>
#include <vector>

#include "coexec/executor.hpp"

namespace primes {

inline bool is_prime(long n) {
    if (n < 2) return false;
    if (n % 2 == 0) return n == 2;
    for (long i = 3; i * i <= n; i += 2) {
        if (n % i == 0) return false;
    }
    return true;
}

// A plain function: it can be sent to any executor, including a process pool
// or another machine (found there by its module's build-id and offset).
inline long count_primes_in_range(long start, long end) {
    long count = 0;
    for (long n = start; n < end; ++n)
        count += is_prime(n) ? 1 : 0;
    return count;
}

inline std::vector<std::pair<long, long>> split(long below, long parts) {
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

}  // namespace primes
