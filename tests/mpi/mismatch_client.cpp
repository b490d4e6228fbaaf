// tests/mpi/mismatch_client.cpp — rank 0 of a job the start-up check must refuse.
//
//   mpi_mismatch_client <text the refusal must contain>
//
// Run as rank 0 beside ranks that differ (another program, or this one with
// an extra library preloaded). Prints "refused as expected: <reason>" and
// exits 0 if mpi_environment refused the job with that text in its message;
// otherwise says what happened and exits 1. On worker ranks it serves:
// serve() returns 1 at once when the job is refused, which is what this job
// expects, so the rank exits 0 then — a non-zero exit would make mpiexec
// abort the job, killing rank 0 before its verdict reaches the pipe.
#include <cstdio>
#include <string>

#include "coexec/mpi_pool.hpp"

int main(int argc, char** argv) {
    const std::string expected = argc > 1 ? argv[1] : "";
    try {
        coexec::mpi_environment mpi(argc, argv);
        if (mpi.is_worker()) return mpi.serve() == 1 ? 0 : 2;
        std::printf("the job was not refused\n");
        return 1;
    } catch (const coexec::error& e) {
        const std::string what = e.what();
        if (what.find(expected) == std::string::npos) {
            std::printf("refused, but without \"%s\": %s\n", expected.c_str(), what.c_str());
            return 1;
        }
        std::printf("refused as expected: %s\n", what.c_str());
        std::fflush(stdout);
        return 0;
    }
}
