// samples/cluster — samples/primes on MPI ranks: the same generic code
// (../primes/primes.hpp), given an mpi_pool instead of a process_pool.
//
// Against samples/primes, only main changes: three lines start MPI and send
// every rank but 0 to serve(), and the pool's type is mpi_pool.
//
//   mpirun -n 3 ./cluster [--below N] [--ranges K] [--slots S] [--threads]
//
// Rank 0 counts the primes once serially and once on the worker ranks (each
// runs S tasks at once, 0 = its cores; --threads for thread isolation), and
// prints both. See docs/scaling_out.md for launching across machines.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "coexec/inline_executor.hpp"
#include "coexec/mpi_pool.hpp"
#include "primes.hpp"

namespace {

long flag(int argc, char** argv, const char* name, long fallback) {
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::strcmp(argv[i], name) == 0) return std::atol(argv[i + 1]);
    }
    return fallback;
}

bool has(int argc, char** argv, const char* name) {
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], name) == 0) return true;
    }
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    coexec::mpi_environment mpi(argc, argv);  // MPI_Init_thread; MPI_Finalize at scope exit
    if (mpi.is_worker()) return mpi.serve();  // ranks != 0: run tasks until rank 0 is done

    long below = flag(argc, argv, "--below", 2'000'000);
    long parts = flag(argc, argv, "--ranges", 64);
    auto slots = static_cast<std::size_t>(flag(argc, argv, "--slots", 0));
    auto ranges = primes::split(below, parts);
    std::printf("Counting primes below %ld in %zu ranges on %d ranks\n", below, ranges.size(),
                mpi.size());

    coexec::inline_executor serial;
    double t_serial = primes::run("inline_executor", serial, ranges);

    // The process_pool line of samples/primes, with the type changed.
    coexec::mpi_pool pool{
        mpi,
        {.slots_per_rank = slots,
         .isolation = has(argc, argv, "--threads") ? coexec::mpi_isolation::thread
                                                   : coexec::mpi_isolation::process}};
    double t_pool = primes::run("mpi_pool", pool, ranges);

    std::printf("speed-up over serial: mpi_pool %.2fx\n", t_serial / t_pool);
    return 0;
}
