// lib/util/eventfd.hpp — an eventfd as a wake-up signal.
//
// Every sleeper in the library that another thread or process must wake
// (a thread_pool worker in its reactor, a process worker, the process
// supervisor) sleeps on an eventfd: the waker adds 1, the sleeper's poll
// sees it readable and it drains the counter. Only the fact of a wake-up
// matters, never the count.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

#include "util/system_error.hpp"
#include "util/unique_fd.hpp"

namespace coexec::detail {

/// A new eventfd, counter 0, close-on-exec (plus `flags`, e.g. EFD_NONBLOCK).
/// Throws std::system_error naming "eventfd".
inline unique_fd make_eventfd(int flags = 0) {
    unique_fd fd(::eventfd(0, EFD_CLOEXEC | flags));
    if (!fd) throw_errno("eventfd");
    return fd;
}

/// Makes `fd` readable. Any thread or process. It can only fail if the
/// counter would overflow, and then the sleeper has a wake-up pending anyway.
inline void eventfd_signal(int fd) noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(fd, &one, sizeof one);
}

/// Resets the counter. Call only when `fd` is readable or non-blocking (a
/// blocking eventfd at 0 would block).
inline void eventfd_drain(int fd) noexcept {
    std::uint64_t count;
    [[maybe_unused]] const auto n = ::read(fd, &count, sizeof count);
}

}  // namespace coexec::detail
