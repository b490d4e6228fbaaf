// tests/mpi/other_program.cpp — a different program that also speaks coexec's
// rank protocol: ranks running it beside mpi_mismatch_client must be refused.
// A refused rank's serve() returns 1; it exits 0 then so that mpiexec does not
// abort the job before rank 0 has printed its verdict.
#include <cstdio>

#include "coexec/mpi_pool.hpp"

int main(int argc, char** argv) {
    coexec::mpi_environment mpi(argc, argv);
    if (mpi.is_worker()) return mpi.serve() == 1 ? 0 : 2;
    std::puts("other_program: rank 0 is not expected to run this program");
    return 1;
}
