// detail/mpi_pool_core.hpp — what mpi_pool's templates need: the non-template
// core (lib/mpi/client.cpp) and the encoding of a task for another host.
//
// A task is the process_pool's: a process_task holding the trampoline's code
// address and the codec's encoding of the call, completed by the same
// complete_single / complete_chunk. Only the function names differ: every code
// address is written in the build-id form (detail/codec/module_identity.hpp), which
// a rank on another host decodes to its own copy of the function.
#pragma once

#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/detail/codec/module_identity.hpp"
#include "coexec/detail/codec/remote_call.hpp"
#include "coexec/detail/process_task.hpp"
#include "coexec/errors.hpp"
#include "coexec/executor.hpp"

namespace coexec {

class mpi_environment;
struct mpi_pool_options;

namespace detail {

/// The build-id-form address of a worker-side trampoline, computed once per type.
template <auto Fn>
std::uint64_t mpi_trampoline_address() {
    static const std::uint64_t address =
        encode_code_address_by_build_id(std::bit_cast<const void*>(Fn));
    return address;
}

/// Refuses a task whose encoding holds descriptors (a shared_buffer): memory
/// shared by descriptor cannot reach another host. Throws serialization_error.
void refuse_descriptors_for_mpi(process_task& task);

/// Encodes `write(w)` into `task` with build-id-form code addresses, behind
/// the trampoline `Trampoline`. Throws what the codec throws, and
/// serialization_error for a shared_buffer.
template <auto Trampoline, class Write>
void encode_mpi_task(process_task& task, Write&& write) {
    code_address_scope scope(code_address_form::build_id);
    byte_writer w(task.message, &task.fds);
    w.put_u64(mpi_trampoline_address<Trampoline>());
    std::forward<Write>(write)(w);
    refuse_descriptors_for_mpi(task);
}

/// The non-template part of mpi_pool, on rank 0 (lib/mpi/client.cpp).
class mpi_pool_core {
  public:
    mpi_pool_core(mpi_environment& env, const mpi_pool_options& options);
    ~mpi_pool_core();
    mpi_pool_core(const mpi_pool_core&) = delete;
    mpi_pool_core& operator=(const mpi_pool_core&) = delete;

    /// Queues `task` (its future is made). Throws executor_shutdown; the
    /// task's future is then completed by ~process_task.
    void submit(std::unique_ptr<process_task> task);
    void shutdown(bool wait, bool cancel_futures);
    void terminate_workers();
    executor_stats stats() const noexcept;
    std::size_t max_workers() const noexcept;

    struct impl;  ///< lib/mpi/client.cpp

  private:
    std::shared_ptr<impl> m_impl;
};

}  // namespace detail
}  // namespace coexec
