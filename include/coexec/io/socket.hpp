// coexec/io/socket.hpp — io::accept, io::connect, io::recv, io::send.
//
// Socket operations on descriptors the caller created (blocking or not; the
// backend never blocks a worker on them). The coroutine holds no thread while
// it waits and resumes on its thread_pool: usually on the worker it started
// on, or, when that worker is saturated, on an idle worker that took the
// completion from its queue.
//
//     int client = co_await io::accept(listener);
//     std::size_t n = co_await io::recv(client, buf);     // 0: the peer closed
//     n = co_await io::send(client, std::span(buf).first(n));   // may be partial
//
// send always adds MSG_NOSIGNAL: a closed peer is reported as EPIPE, never
// as a SIGPIPE that kills the process. Under the epoll fallback, accept
// switches the listening socket to O_NONBLOCK (so that a connection taken by
// another thread first cannot block a worker in accept4).
//
// @par Errors and cancellation
// std::system_error naming the operation ("io::connect: Connection
// refused"); cancellation (see timer.hpp for the token used) completes with
// std::errc::operation_canceled. Awaiting outside a thread_pool worker
// throws coexec::error.
#pragma once

#include <cstdint>
#include <cstring>
#include <stop_token>

#include "coexec/detail/io_op.hpp"
#include "coexec/io/buffer.hpp"
#include "coexec/io/file.hpp"

struct sockaddr;  // <sys/socket.h>; only lib/ includes OS headers

namespace coexec::io {

/// Accepts one connection on listening socket `fd`; yields the new socket
/// (SOCK_CLOEXEC). The peer's address is not returned: use getpeername.
inline fd_awaitable accept(int fd) {
    return detail::io_factory::make<fd_awaitable>(detail::io_opcode::accept, fd);
}
inline fd_awaitable accept(int fd, std::stop_token token) {
    return detail::io_factory::make<fd_awaitable>(detail::io_opcode::accept, fd, std::move(token));
}

/// Connects socket `fd` to `addr` (copied: it need not outlive the call).
class connect_awaitable : public void_awaitable {
  public:
    connect_awaitable(int fd, const ::sockaddr* addr, std::uint32_t addrlen) noexcept
        : void_awaitable(detail::io_opcode::connect, fd) {
        init(addr, addrlen);
    }
    connect_awaitable(int fd, const ::sockaddr* addr, std::uint32_t addrlen,
                      std::stop_token token) noexcept
        : void_awaitable(detail::io_opcode::connect, fd, std::move(token)) {
        init(addr, addrlen);
    }

    connect_awaitable(connect_awaitable&& o) noexcept : void_awaitable(std::move(o)) {
        std::memcpy(m_addr, o.m_addr, sizeof m_addr);
        m_op.buf = m_addr;  // the copy's own address, not the source's
    }

  private:
    void init(const ::sockaddr* addr, std::uint32_t addrlen) noexcept {
        if (addrlen > sizeof m_addr) addrlen = sizeof m_addr;  // EINVAL follows
        std::memcpy(m_addr, addr, addrlen);
        m_op.addrlen = addrlen;
        m_op.buf = m_addr;
    }

    // Sized and aligned for sockaddr_storage (which needs <sys/socket.h>).
    alignas(16) std::byte m_addr[128];
};
inline connect_awaitable connect(int fd, const ::sockaddr* addr, std::uint32_t addrlen) {
    return {fd, addr, addrlen};
}
inline connect_awaitable connect(int fd, const ::sockaddr* addr, std::uint32_t addrlen,
                                 std::stop_token token) {
    return {fd, addr, addrlen, std::move(token)};
}

/// Receives up to buffer.size bytes; 0 means the peer closed its side.
inline transfer_awaitable recv(int fd, mutable_buffer buffer, int flags = 0) {
    return detail::io_factory::make<transfer_awaitable>(detail::io_opcode::recv, fd, buffer.data,
                                                        buffer.size, -1, flags);
}
inline transfer_awaitable recv(int fd, mutable_buffer buffer, std::stop_token token) {
    return detail::io_factory::make<transfer_awaitable>(detail::io_opcode::recv, fd, buffer.data,
                                                        buffer.size, -1, 0, std::move(token));
}
inline transfer_awaitable recv(int fd, mutable_buffer buffer, int flags, std::stop_token token) {
    return detail::io_factory::make<transfer_awaitable>(detail::io_opcode::recv, fd, buffer.data,
                                                        buffer.size, -1, flags, std::move(token));
}

/// Sends up to buffer.size bytes; yields how many were sent (may be fewer).
inline transfer_awaitable send(int fd, const_buffer buffer, int flags = 0) {
    return detail::io_factory::make<transfer_awaitable>(
        detail::io_opcode::send, fd, const_cast<void*>(buffer.data), buffer.size, -1, flags);
}
inline transfer_awaitable send(int fd, const_buffer buffer, std::stop_token token) {
    return detail::io_factory::make<transfer_awaitable>(detail::io_opcode::send, fd,
                                                        const_cast<void*>(buffer.data), buffer.size,
                                                        -1, 0, std::move(token));
}
inline transfer_awaitable send(int fd, const_buffer buffer, int flags, std::stop_token token) {
    return detail::io_factory::make<transfer_awaitable>(detail::io_opcode::send, fd,
                                                        const_cast<void*>(buffer.data), buffer.size,
                                                        -1, flags, std::move(token));
}

}  // namespace coexec::io
