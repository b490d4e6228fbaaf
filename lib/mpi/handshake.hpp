// lib/mpi/handshake.hpp — the start-up check that every rank runs the same code.
//
// Functions cross ranks as (module build-id, offset), which only means the
// same function if every rank loaded the same files. So mpi_environment's
// constructor gathers each rank's identity on rank 0 — the modules loaded
// before MPI_Init (the program and the libraries it starts with; an MPI's
// plugins come later and may differ between hosts), its MPI thread level,
// host and pid — and rank 0 refuses the job, on every rank at once, with one
// sentence naming the first difference.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "coexec/detail/codec/module_identity.hpp"

namespace coexec::detail::mpi {

struct rank_identity {
    int thread_level = 0;  ///< as granted by MPI_Init_thread
    long pid = 0;
    std::string host;
    std::vector<module_id> modules;  ///< load order; the program first
};

std::vector<std::byte> encode_identity(const rank_identity& id);
/// Throws serialization_error if `bytes` is malformed.
rank_identity decode_identity(std::span<const std::byte> bytes);

/// Empty if rank `rank` (identity `other`) runs the same program and modules
/// as rank 0 (`rank0`); otherwise one sentence naming the first difference:
/// the program, a library with another build-id, one missing or one extra.
std::string describe_mismatch(const rank_identity& rank0, int rank, const rank_identity& other);

}  // namespace coexec::detail::mpi
