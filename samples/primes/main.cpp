// samples/primes — the seeds' prime counting, written once for any executor.
//
// Counts the primes below 2,000,000 split into 64 ranges, the work of the
// Python guide's ProcessPoolExecutor example, and runs the same generic code
// (primes.hpp) on several executors: switching strategy is a change of one
// type. samples/cluster runs the same code on MPI ranks.
//
//   primes [--below N] [--ranges K] [--workers W] [--trace out.json]
//
// --trace (or COEXEC_TRACE=out.json) records the run as a timeline for
// ui.perfetto.dev: every worker thread and process, a slice per range (docs/trace.md).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "coexec/coexec.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/trace.hpp"
#include "primes.hpp"

namespace {

using primes::run;
using primes::split;

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
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--trace") == 0 && !coexec::trace::recording())
            coexec::trace::start(argv[i + 1]);
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
    if (coexec::trace::recording()) {
        coexec::trace::stop();
        std::printf("trace written to %s (open it in ui.perfetto.dev)\n",
                    coexec::trace::path().c_str());
    }
    return 0;
}
