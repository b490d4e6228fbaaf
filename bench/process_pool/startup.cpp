// Pool start -> first result: construct a 2-worker pool, submit a no-op, get().
//
//   coexec   the first pool of the program (it also makes the fork server),
//            then the median of 5 later pools (the fork server exists)
//   python   ProcessPoolExecutor(2) (default start method), median of 5
#include <coexec/process_pool.hpp>

#include <cstdio>
#include <vector>

#include "bench_report.hpp"
#include "python_peer.hpp"

namespace {

int noop() {
    return 1;
}

double start_to_first_result_ms() {
    auto t0 = coexec_bench::clock::now();
    coexec::process_pool pool{{.max_workers = 2}};
    pool.submit(&noop).get();
    return coexec_bench::seconds_between(t0, coexec_bench::clock::now()) * 1e3;
    // the pool's shutdown is not timed (Python's `with` exit is not either)
}

}  // namespace

int main() {
    // No prepare(): the first pool makes the fork server itself (the program
    // is single-threaded here), so its time includes that.
    double first = start_to_first_result_ms();
    std::vector<double> later;
    for (int r = 0; r < 5; ++r)
        later.push_back(start_to_first_result_ms());
    double warm = coexec_bench::median(later);
    std::printf("pool start -> first result, 2 workers\n");
    std::printf("  coexec first pool (makes the fork server)  %8.2f ms\n", first);
    std::printf("  coexec later pools (median of 5)           %8.2f ms\n", warm);

    coexec_bench::goal("pool start -> first result, later pools", warm, "<=", 0.4, "ms");

    auto py = coexec_bench::run_python("process_pool_peers.py", "startup --workers 2 --reps 5");
    if (!py) return 0;
    using coexec_bench::better;
    coexec_bench::report("pool start -> first result, first pool", first, "ms",
                         "Python PPE(2), median of 5", (*py)["ppe_ms"], better::lower);
    coexec_bench::report("pool start -> first result, later pools", warm, "ms",
                         "Python PPE(2), median of 5", (*py)["ppe_ms"], better::lower);
    return 0;
}
