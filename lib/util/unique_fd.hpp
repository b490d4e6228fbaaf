// lib/util/unique_fd.hpp — an owned file descriptor.
#pragma once

#include <unistd.h>

#include <utility>

namespace coexec::detail {

/// Owns one descriptor and closes it on destruction (or reset). -1 is empty.
/// Not thread-safe (a value type, like std::unique_ptr).
class unique_fd {
  public:
    unique_fd() noexcept = default;
    explicit unique_fd(int fd) noexcept : m_fd(fd) {}
    unique_fd(unique_fd&& o) noexcept : m_fd(std::exchange(o.m_fd, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        reset(std::exchange(o.m_fd, -1));
        return *this;
    }
    ~unique_fd() { reset(); }

    int get() const noexcept { return m_fd; }
    /// Gives the descriptor up without closing it.
    int release() noexcept { return std::exchange(m_fd, -1); }
    /// Closes the current descriptor (if any) and owns `fd`.
    void reset(int fd = -1) noexcept {
        if (m_fd >= 0) ::close(m_fd);
        m_fd = fd;
    }
    explicit operator bool() const noexcept { return m_fd >= 0; }

  private:
    int m_fd = -1;
};

}  // namespace coexec::detail
