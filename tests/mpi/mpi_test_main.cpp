// tests/mpi/mpi_test_main.cpp — Catch2 on rank 0, serve() on the other ranks.
//
// CTest runs each TEST_CASE as its own MPI job (tests/mpi/mpi_launch.sh:
// `mpirun --oversubscribe -n 3 <this program> "<test name>"`). Listing the
// tests (catch_discover_tests, at build time) needs no MPI at all.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <string_view>

#include "coexec/mpi_pool.hpp"
#include "mpi_test_env.hpp"

namespace {
coexec::mpi_environment* g_environment = nullptr;
}

coexec::mpi_environment& coexec_test::mpi() {
    return *g_environment;
}

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (std::string_view(argv[i]).starts_with("--list"))
            return Catch::Session().run(argc, argv);
    }
    coexec::mpi_environment environment(argc, argv);
    if (environment.is_worker()) return environment.serve();
    g_environment = &environment;
    return Catch::Session().run(argc, argv);
}
