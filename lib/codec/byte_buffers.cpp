#include "coexec/detail/codec/byte_buffers.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

#include "coexec/errors.hpp"

namespace coexec::detail {

std::size_t byte_writer::add_fd(int fd) {
    if (m_fds == nullptr) {
        ::close(fd);
        throw serialization_error(
            "coexec: a shared_buffer can only be sent to a process worker (this encoder "
            "has no channel for file descriptors)");
    }
    try {
        m_fds->push_back(fd);
    } catch (...) {
        ::close(fd);
        throw;
    }
    return m_fds->size() - 1;
}

void advise_bulk_fill(void* p, std::size_t n) noexcept {
    if (n < bulk_fill_bytes) return;
    constexpr std::uintptr_t huge = std::uintptr_t{2} << 20;
    const auto begin = (reinterpret_cast<std::uintptr_t>(p) + huge - 1) & ~(huge - 1);
    const auto end = (reinterpret_cast<std::uintptr_t>(p) + n) & ~(huge - 1);
    // Advice only: EINVAL (no THP in this kernel) or a range malloc did not
    // map changes nothing but the speed, so the result is not checked.
    if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

void byte_writer::rollback(mark m) noexcept {
    m_bytes->resize(m.bytes);
    if (m_fds != nullptr && m_fds->size() > m.fds) {
        close_fds(std::span<const int>(*m_fds).subspan(m.fds));
        m_fds->resize(m.fds);
    }
}

int byte_reader::fd(std::size_t index) const {
    if (index >= m_fds.size()) {
        throw serialization_error("coexec: the message refers to file descriptor #" +
                                  std::to_string(index) + " but only " +
                                  std::to_string(m_fds.size()) + " arrived with it");
    }
    return m_fds[index];
}

void byte_reader::throw_truncated(std::size_t wanted) const {
    throw serialization_error("coexec: truncated input: needed " + std::to_string(wanted) +
                              " more bytes at offset " + std::to_string(m_pos) + " but only " +
                              std::to_string(remaining()) + " remain");
}

void close_fds(std::span<const int> fds) noexcept {
    for (int fd : fds) {
        if (fd >= 0) ::close(fd);
    }
}

}  // namespace coexec::detail
