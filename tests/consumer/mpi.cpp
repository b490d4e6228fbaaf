// find_package(coexec COMPONENTS mpi): a task sent to the other rank of a
// two-rank job (run.cmake starts it with mpiexec -n 2).
#include <coexec/mpi_pool.hpp>
#include <cstdio>

int times_two(int x) {
    return 2 * x;
}

int main(int argc, char** argv) {
    coexec::mpi_environment mpi(argc, argv);
    if (mpi.is_worker()) return mpi.serve();
    coexec::mpi_pool pool{mpi};
    int v = pool.submit(times_two, 21).get();
    std::printf("consumer_mpi: %d\n", v);
    return v == 42 ? 0 : 1;
}
