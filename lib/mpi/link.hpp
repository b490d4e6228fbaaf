// lib/mpi/link.hpp — non-blocking point-to-point messages over one communicator.
//
// The only place that sends and receives the rank protocol's messages. The
// sends in flight are guarded by a mutex, so that with MPI_THREAD_MULTIPLE
// any thread may send (the thread completing a task sends its result); with
// less, mpi_pool makes all of one process's MPI calls from one thread.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <mutex>
#include <vector>

namespace coexec::detail::mpi {

struct incoming {
    int source = -1;
    int tag = -1;
    std::vector<std::byte> bytes;
};

class link {
  public:
    explicit link(MPI_Comm comm) noexcept : m_comm(comm) {}
    link(const link&) = delete;
    link& operator=(const link&) = delete;
    /// Completes the sends still in flight (MPI_Waitall).
    ~link();

    /// Starts sending `bytes`; the link owns them until the send completes.
    /// Throws serialization_error if they exceed what one MPI message can
    /// carry (INT_MAX bytes).
    void send(int rank, int tag, std::vector<std::byte> bytes);
    /// Sends and waits for the send to complete (for small control messages).
    void send_now(int rank, int tag, const std::vector<std::byte>& bytes);
    /// Takes a waiting message from `source` (or MPI_ANY_SOURCE), if any.
    bool try_receive(int source, incoming& out);
    /// Frees the buffers of completed sends; true if any completed.
    bool progress();
    bool sending() const {
        std::lock_guard lock(m_mutex);
        return !m_requests.empty();
    }
    /// Waits for every send in flight.
    void flush();

    MPI_Comm comm() const noexcept { return m_comm; }

  private:
    MPI_Comm m_comm;
    mutable std::mutex m_mutex;  // guards the three vectors below
    std::vector<MPI_Request> m_requests;
    std::vector<std::vector<std::byte>> m_buffers;  // m_buffers[i] belongs to m_requests[i]
    std::vector<int> m_done;                        // scratch for MPI_Testsome
};

/// Throws std::runtime_error naming `call` if an MPI call did not succeed
/// (with MPI_ERRORS_RETURN on the communicator; otherwise MPI aborts first).
void check(int rc, const char* call);

}  // namespace coexec::detail::mpi
