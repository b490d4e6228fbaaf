// lib/mpi/environment.hpp — what rank 0's pool and a worker rank's serve loop
// share with mpi_environment.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <mutex>

#include "coexec/mpi_pool.hpp"

namespace coexec {

struct mpi_environment::impl {
    MPI_Comm comm = MPI_COMM_NULL;  ///< ours: a duplicate of MPI_COMM_WORLD
    int rank = 0;
    int size = 1;
    int thread_level = 0;   ///< as granted by MPI_Init_thread (or MPI_Query_thread)
    bool owns_mpi = false;  ///< we called MPI_Init, so we call MPI_Finalize
    bool refused = false;   ///< the start-up check failed; MPI is finalised already

    // Rank 0: one pool at a time drives the worker ranks.
    std::mutex pool_mutex;
    bool pool_open = false;
    std::uint64_t next_task_id = 0;  ///< task ids stay unique across successive pools
};

namespace detail::mpi {

/// A worker rank's serve loop (lib/mpi/server.cpp): runs until rank 0 says
/// exit. `any_thread_sends`: MPI granted MPI_THREAD_MULTIPLE, so results
/// leave from the threads that complete them.
int serve(MPI_Comm comm, bool any_thread_sends);

}  // namespace detail::mpi
}  // namespace coexec
