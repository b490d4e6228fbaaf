// coexec/io/file.hpp — io::open, io::read, io::write, io::close.
//
// `std::size_t n = co_await io::read(fd, buffer, offset);` reads at `offset`
// (pread-like; the file position is untouched) without holding a thread.
// Without an offset, read/write use the file position (pipes, terminals,
// sockets). Like pread, a read may return fewer bytes than asked (end of
// file: 0) and a write may write fewer: the caller loops.
//
// @par Where it runs
// On the thread_pool worker running the coroutine: with io_uring as a ring
// submission; with the epoll fallback, pipes/sockets wait for readiness and
// regular files (which epoll cannot watch) are read synchronously on the
// worker, as libuv and Asio do without a helper thread pool.
//
// @par Errors and cancellation
// std::system_error naming the operation ("io::read: Bad file descriptor");
// cancellation (see timer.hpp for the token used) completes with
// std::errc::operation_canceled. Awaiting outside a thread_pool worker
// throws coexec::error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stop_token>
#include <string>

#include "coexec/detail/io_op.hpp"
#include "coexec/io/buffer.hpp"

namespace coexec::io {

/// An operation whose result is a byte count (read, write, recv, send).
class transfer_awaitable : public detail::io_awaitable_base<detail::io_fd_op> {
  public:
    /// Bytes transferred (0 for read/recv: end of file / peer closed).
    std::size_t await_resume() const { return static_cast<std::size_t>(checked_result()); }

  protected:
    friend struct detail::io_factory;
    transfer_awaitable(detail::io_opcode code, int fd, void* data, std::size_t size,
                       std::int64_t offset, int flags) noexcept
        : io_awaitable_base(code) {
        init(fd, data, size, offset, flags);
    }
    transfer_awaitable(detail::io_opcode code, int fd, void* data, std::size_t size,
                       std::int64_t offset, int flags, std::stop_token token) noexcept
        : io_awaitable_base(code, std::move(token)) {
        init(fd, data, size, offset, flags);
    }

  private:
    void init(int fd, void* data, std::size_t size, std::int64_t offset, int flags) noexcept {
        m_op.fd = fd;
        m_op.buf = data;
        m_op.len = size < detail::io_max_transfer ? size : detail::io_max_transfer;
        m_op.offset = offset;
        m_op.flags = flags;
    }
};

/// An operation whose result is a new file descriptor (open, accept).
class fd_awaitable : public detail::io_awaitable_base<detail::io_fd_op> {
  public:
    int await_resume() const { return static_cast<int>(checked_result()); }

  protected:
    friend struct detail::io_factory;
    fd_awaitable(detail::io_opcode code, int fd) noexcept : io_awaitable_base(code) {
        m_op.fd = fd;
    }
    fd_awaitable(detail::io_opcode code, int fd, std::stop_token token) noexcept
        : io_awaitable_base(code, std::move(token)) {
        m_op.fd = fd;
    }
};

/// An operation with no result but success (close, connect).
class void_awaitable : public detail::io_awaitable_base<detail::io_fd_op> {
  public:
    void await_resume() const { checked_result(); }

  protected:
    friend struct detail::io_factory;
    void_awaitable(detail::io_opcode code, int fd) noexcept : io_awaitable_base(code) {
        m_op.fd = fd;
    }
    void_awaitable(detail::io_opcode code, int fd, std::stop_token token) noexcept
        : io_awaitable_base(code, std::move(token)) {
        m_op.fd = fd;
    }
};

// ---- read / write at an offset ----
inline transfer_awaitable read(int fd, mutable_buffer buffer, std::uint64_t offset) {
    return detail::io_factory::make<transfer_awaitable>(
        detail::io_opcode::read, fd, buffer.data, buffer.size, detail::io_file_offset(offset), 0);
}
inline transfer_awaitable read(int fd, mutable_buffer buffer, std::uint64_t offset,
                               std::stop_token token) {
    return detail::io_factory::make<transfer_awaitable>(detail::io_opcode::read, fd, buffer.data,
                                                        buffer.size, detail::io_file_offset(offset),
                                                        0, std::move(token));
}
inline transfer_awaitable write(int fd, const_buffer buffer, std::uint64_t offset) {
    return detail::io_factory::make<transfer_awaitable>(detail::io_opcode::write, fd,
                                                        const_cast<void*>(buffer.data), buffer.size,
                                                        detail::io_file_offset(offset), 0);
}
inline transfer_awaitable write(int fd, const_buffer buffer, std::uint64_t offset,
                                std::stop_token token) {
    return detail::io_factory::make<transfer_awaitable>(
        detail::io_opcode::write, fd, const_cast<void*>(buffer.data), buffer.size,
        detail::io_file_offset(offset), 0, std::move(token));
}

// ---- read / write at the file position (pipes, sockets, terminals) ----
inline transfer_awaitable read(int fd, mutable_buffer buffer) {
    return detail::io_factory::make<transfer_awaitable>(detail::io_opcode::read, fd, buffer.data,
                                                        buffer.size, -1, 0);
}
inline transfer_awaitable read(int fd, mutable_buffer buffer, std::stop_token token) {
    return detail::io_factory::make<transfer_awaitable>(detail::io_opcode::read, fd, buffer.data,
                                                        buffer.size, -1, 0, std::move(token));
}
inline transfer_awaitable write(int fd, const_buffer buffer) {
    return detail::io_factory::make<transfer_awaitable>(
        detail::io_opcode::write, fd, const_cast<void*>(buffer.data), buffer.size, -1, 0);
}
inline transfer_awaitable write(int fd, const_buffer buffer, std::stop_token token) {
    return detail::io_factory::make<transfer_awaitable>(detail::io_opcode::write, fd,
                                                        const_cast<void*>(buffer.data), buffer.size,
                                                        -1, 0, std::move(token));
}

/// Opens `path` (openat relative to the working directory) with open(2)
/// `flags` (O_CLOEXEC is always added) and `mode`; yields the new fd.
class open_awaitable : public fd_awaitable {
  public:
    open_awaitable(std::string path, int flags, unsigned mode) noexcept
        : fd_awaitable(detail::io_opcode::open, -1), m_path(std::move(path)) {
        init(flags, mode);
    }
    open_awaitable(std::string path, int flags, unsigned mode, std::stop_token token) noexcept
        : fd_awaitable(detail::io_opcode::open, -1, std::move(token)), m_path(std::move(path)) {
        init(flags, mode);
    }

    open_awaitable(open_awaitable&& o) noexcept
        : fd_awaitable(std::move(o)), m_path(std::move(o.m_path)) {
        m_op.buf = m_path.data();  // the path moved (short strings live inside the object)
    }

  private:
    void init(int flags, unsigned mode) noexcept {
        m_op.buf = m_path.data();
        m_op.flags = flags;
        m_op.mode = mode;
    }
    std::string m_path;
};
inline open_awaitable open(std::string path, int flags, unsigned mode = 0644) {
    return {std::move(path), flags, mode};
}
inline open_awaitable open(std::string path, int flags, unsigned mode, std::stop_token token) {
    return {std::move(path), flags, mode, std::move(token)};
}

/// Closes `fd`. Never cancelled (not by tokens, nor by pool shutdown), so
/// cleanup after a cancellation does not leak descriptors. Operations still
/// pending on `fd` are not cancelled by it under io_uring: cancel them first.
inline void_awaitable close(int fd) {
    return detail::io_factory::make<void_awaitable>(detail::io_opcode::close, fd);
}

}  // namespace coexec::io
