// samples/seeds/pool_map.cpp — multiprocessing.Pool's map, apply and apply_async.
//
// Seed 002 (Q&A "Process + Queue vs Pool"), "The Pool class":
//     def cube(x):
//         return x**3
//     pool = mp.Pool(processes=4)
//     results = pool.map(cube, range(1,7))                          # [1, 8, 27, 64, 125, 216]
//     results = [pool.apply(cube, args=(x,)) for x in range(1,7)]   # [1, 8, 27, 64, 125, 216]
//     # "there is also Pool.apply_async and Pool.map_async" (no code in the seed)
// Seed 003 (guide "ProcessPoolExecutor and Pool"), "The Classic multiprocessing.Pool"
// and "Pool with map()":
//     ranges = [(i, i + 10000) for i in range(0, 50000, 10000)]
//     with multiprocessing.Pool(processes=4) as pool:
//         results = pool.map(count_primes, ranges)
//     print(f"Total primes: {sum(results)}")                        # Total primes: 5133
//     with multiprocessing.Pool(processes=4) as pool:
//         results = pool.map(square, [1, 2, 3, 4, 5, 6, 7, 8])       # [1, 4, 9, 16, 25, 36, 49,
//         64]
//
// coexec: Pool(processes=4) is process_pool{{.max_workers = 4}};
//   pool.map(f, xs)          -> pool.map(f, xs).to_vector()   (input order, chunked like Pool.map)
//   pool.apply(f, args=(x,)) -> pool.submit(f, x).get()       (blocks, like apply)
//   pool.apply_async(f, (x,))-> pool.submit(f, x), later .get() (a future<R>, like AsyncResult)
// The seed text prints none of the three totals for the guide's Pool: it is 5133 (π(50000)).
#include <cstdio>
#include <ranges>
#include <utility>
#include <vector>

#include "coexec/future.hpp"
#include "coexec/process_pool.hpp"
#include "py_print.hpp"

namespace {

long cube(long x) {
    return x * x * x;
}

long square(long x) {
    return x * x;
}

bool is_prime(long n) {
    if (n < 2) return false;
    for (long i = 2; i * i <= n; ++i) {
        if (n % i == 0) return false;
    }
    return true;
}

// Python's count_primes(args) unpacks `start, end = args`; a pair input is
// applied as two arguments, so the C++ function takes them directly.
long count_primes(long start, long end) {
    long count = 0;
    for (long n = start; n < end; ++n)
        count += is_prime(n) ? 1 : 0;
    return count;
}

}  // namespace

int main() {
    coexec::process_pool pool{{.max_workers = 4}};  // mp.Pool(processes=4)

    // results = pool.map(cube, range(1,7))
    std::vector<long> results = pool.map(&cube, std::views::iota(1L, 7L)).to_vector();
    seeds::print(results);

    // results = [pool.apply(cube, args=(x,)) for x in range(1,7)]
    results.clear();
    for (long x = 1; x < 7; ++x)
        results.push_back(pool.submit(&cube, x).get());
    seeds::print(results);

    // async_results = [pool.apply_async(cube, (x,)) for x in range(1,7)]
    // results = [r.get() for r in async_results]
    std::vector<coexec::future<long>> async_results;
    for (long x = 1; x < 7; ++x)
        async_results.push_back(pool.submit(&cube, x));
    results.clear();
    for (const auto& r : async_results)
        results.push_back(r.get());
    seeds::print(results);

    // results = pool.map(count_primes, ranges); print(f"Total primes: {sum(results)}")
    std::vector<std::pair<long, long>> ranges;
    for (long i = 0; i < 50000; i += 10000)
        ranges.emplace_back(i, i + 10000);
    long total = 0;
    for (long n : pool.map(&count_primes, ranges))
        total += n;
    std::printf("Total primes: %ld\n", total);

    // numbers = [1, 2, 3, 4, 5, 6, 7, 8]; results = pool.map(square, numbers)
    std::vector<long> numbers{1, 2, 3, 4, 5, 6, 7, 8};
    seeds::print(pool.map(&square, numbers).to_vector());
    return 0;
}
