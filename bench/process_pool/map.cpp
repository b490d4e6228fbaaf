// 200k tiny tasks (x -> x*x) through map, 2 workers, tasks per second.
//
//   coexec   process_pool{2}.map(square, inputs) with automatic chunksize
//   python   ProcessPoolExecutor.map chunksize=1 (20k tasks: it does ~10k/s),
//            ProcessPoolExecutor.map chunksize=1000, multiprocessing.Pool.map
//            (its default chunksize)
#include <coexec/process_pool.hpp>

#include <cstdio>
#include <numeric>
#include <vector>

#include "bench_report.hpp"
#include "python_peer.hpp"

namespace {

long square(long x) {
    return x * x;
}

}  // namespace

int main() {
    coexec::process_pool::prepare();
    const long n = 200'000;
    std::vector<long> inputs(static_cast<std::size_t>(n));
    std::iota(inputs.begin(), inputs.end(), 0L);

    std::vector<double> rates;
    {
        coexec::process_pool pool{{.max_workers = 2}};
        pool.submit(&square, 1L).get();
        for (int r = 0; r < 5; ++r) {
            auto t0 = coexec_bench::clock::now();
            long count = 0;
            long last = 0;
            for (long v : pool.map(&square, inputs)) {
                last = v;
                ++count;
            }
            auto t1 = coexec_bench::clock::now();
            if (count != n || last != (n - 1) * (n - 1)) {
                std::fprintf(stderr, "map returned wrong results\n");
                return 1;
            }
            rates.push_back(static_cast<double>(n) / coexec_bench::seconds_between(t0, t1));
        }
    }
    double rate = coexec_bench::median(rates);
    std::printf("200k tiny tasks through map, 2 workers\n");
    std::printf("  coexec process_pool.map (auto chunksize) %12.0f tasks/s (median of 5)\n", rate);

    auto py = coexec_bench::run_python("process_pool_peers.py", "map --workers 2 --n 200000");
    if (!py) return 0;
    using coexec_bench::better;
    const char* name = "map 200k tiny tasks, process_pool";
    coexec_bench::report(name, rate / 1e6, "M tasks/s", "Python PPE.map chunksize=1 (20k tasks)",
                         (*py)["ppe_chunk1_per_s"] / 1e6, better::higher);
    coexec_bench::report(name, rate / 1e6, "M tasks/s", "Python PPE.map chunksize=1000",
                         (*py)["ppe_chunk1000_per_s"] / 1e6, better::higher);
    coexec_bench::report(name, rate / 1e6, "M tasks/s", "Python Pool.map (default chunksize)",
                         (*py)["pool_map_per_s"] / 1e6, better::higher);
    coexec_bench::note(
        "map: Python PPE.map with chunksize=1 runs 20k of the 200k tasks (one message per task is "
        "slow); its figure is the rate.");
    return 0;
}
