#include "mpi/link.hpp"

#include <climits>
#include <stdexcept>
#include <string>
#include <utility>

#include "coexec/errors.hpp"

namespace coexec::detail::mpi {

void check(int rc, const char* call) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(rc, text, &n) != MPI_SUCCESS) n = 0;
    throw std::runtime_error(std::string(call) + ": " +
                             std::string(text, static_cast<std::size_t>(n)));
}

link::~link() {
    try {
        flush();
    } catch (...) {
        // Destruction cannot report; MPI_Finalize will complain if anything is left.
    }
}

void link::send(int rank, int tag, std::vector<std::byte> bytes) {
    if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
        throw serialization_error("coexec::mpi_pool: a message of " + std::to_string(bytes.size()) +
                                  " bytes exceeds what one MPI message carries (2 GiB)");
    }
    std::lock_guard lock(m_mutex);
    m_buffers.push_back(std::move(bytes));
    m_requests.push_back(MPI_REQUEST_NULL);
    auto& b = m_buffers.back();
    const int rc = MPI_Isend(b.data(), static_cast<int>(b.size()), MPI_BYTE, rank, tag, m_comm,
                             &m_requests.back());
    if (rc != MPI_SUCCESS) {
        m_buffers.pop_back();
        m_requests.pop_back();
        check(rc, "MPI_Isend");
    }
}

void link::send_now(int rank, int tag, const std::vector<std::byte>& bytes) {
    check(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, rank, tag, m_comm),
          "MPI_Send");
}

bool link::try_receive(int source, incoming& out) {
    int flag = 0;
    MPI_Message msg;
    MPI_Status status;
    check(MPI_Improbe(source, MPI_ANY_TAG, m_comm, &flag, &msg, &status), "MPI_Improbe");
    if (flag == 0) return false;
    int count = 0;
    check(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count");
    out.source = status.MPI_SOURCE;
    out.tag = status.MPI_TAG;
    out.bytes.resize(static_cast<std::size_t>(count));
    check(MPI_Mrecv(out.bytes.data(), count, MPI_BYTE, &msg, MPI_STATUS_IGNORE), "MPI_Mrecv");
    return true;
}

bool link::progress() {
    std::lock_guard lock(m_mutex);
    if (m_requests.empty()) return false;
    m_done.resize(m_requests.size());
    int n = 0;
    check(MPI_Testsome(static_cast<int>(m_requests.size()), m_requests.data(), &n, m_done.data(),
                       MPI_STATUSES_IGNORE),
          "MPI_Testsome");
    if (n <= 0) return false;  // MPI_UNDEFINED: no active request
    // Completed requests are now MPI_REQUEST_NULL: drop them with their buffers.
    std::size_t keep = 0;
    for (std::size_t i = 0; i < m_requests.size(); ++i) {
        if (m_requests[i] == MPI_REQUEST_NULL) continue;
        if (keep != i) {
            m_requests[keep] = m_requests[i];
            m_buffers[keep] = std::move(m_buffers[i]);
        }
        ++keep;
    }
    m_requests.resize(keep);
    m_buffers.resize(keep);
    return true;
}

void link::flush() {
    std::lock_guard lock(m_mutex);
    if (m_requests.empty()) return;
    const int rc =
        MPI_Waitall(static_cast<int>(m_requests.size()), m_requests.data(), MPI_STATUSES_IGNORE);
    m_requests.clear();
    m_buffers.clear();
    check(rc, "MPI_Waitall");
}

}  // namespace coexec::detail::mpi
