// tests/mpi/mpi_test_env.hpp — what the MPI tests share.
#pragma once

#include <catch2/catch.hpp>
#include <chrono>
#include <stdexcept>

#include "coexec/mpi_pool.hpp"

namespace coexec_test {

/// Rank 0's environment (made by mpi_test_main.cpp before Catch runs).
coexec::mpi_environment& mpi();

/// Waits up to `limit`: a bug shows as a failure, not a hang.
template <class T>
void require_done(const coexec::future<T>& f,
                  std::chrono::seconds limit = std::chrono::seconds(30)) {
    REQUIRE(f.wait_for(limit));
}

/// The exception a finished future holds, as type E; fails the test otherwise.
template <class E, class T>
E require_error(const coexec::future<T>& f) {
    require_done(f);
    try {
        f.get();
    } catch (const E& e) {
        return e;
    } catch (const std::exception& e) {
        FAIL("expected another exception type, got: " << e.what());
    }
    FAIL("expected an exception, got a value");
    throw std::logic_error("unreachable");
}

}  // namespace coexec_test

/// Defined in a shared library of its own (mpi_test_lib.cpp): a function
/// found on the other ranks by its library's build-id.
long mpi_test_lib_triple(long x);
