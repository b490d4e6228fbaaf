// tests/mpi/other_program.cpp — a different program that also speaks coexec's
// rank protocol: ranks running it beside mpi_mismatch_client must be refused.
#include <cstdio>

#include "coexec/mpi_pool.hpp"

int main(int argc, char** argv) {
    coexec::mpi_environment mpi(argc, argv);
    if (mpi.is_worker()) return mpi.serve();
    std::puts("other_program: rank 0 is not expected to run this program");
    return 1;
}
