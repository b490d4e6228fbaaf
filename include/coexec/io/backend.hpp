// coexec/io/backend.hpp — which kernel interface runs coexec::io.
#pragma once

#include <string_view>

namespace coexec::io {

enum class backend_kind {
    io_uring,  // one io_uring ring per thread_pool worker
    epoll,     // epoll + timerfd + eventfd per worker (io_uring refused or forced)
};

/// The backend every thread_pool worker of this process uses. Chosen once per
/// process, at the first call (or the first pool's start): io_uring when
/// `io_uring_setup` works, epoll when it is refused (EPERM/ENOSYS: seccomp,
/// `kernel.io_uring_disabled`, an old kernel). The environment variable
/// `COEXEC_IO_BACKEND=epoll` forces epoll (`io_uring` forces nothing: it is
/// still only used if allowed). Thread-safe.
backend_kind backend();

/// "io_uring" or "epoll".
std::string_view backend_name(backend_kind kind) noexcept;
inline std::string_view backend_name() {
    return backend_name(backend());
}

}  // namespace coexec::io
