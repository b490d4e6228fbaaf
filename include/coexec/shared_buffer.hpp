// coexec/shared_buffer.hpp — a block of memory shared with process workers by handle.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

namespace coexec {

/// A memfd-backed block of bytes that crosses a process boundary as a file
/// descriptor, never as a copy: a process worker that receives one maps the
/// same pages, so its writes are seen by the sender and vice versa.
///
/// Copies are handles to the same memory (like std::shared_ptr); the mapping
/// is released when the last handle in a process goes away. A task can take
/// shared_buffers as arguments and return them as results.
///
/// @par Thread Safety
/// Copying, moving and destroying distinct handles is safe from any thread
/// (the reference count is atomic). The bytes themselves are not synchronized:
/// coordinate concurrent writers yourself, as with any shared memory. The
/// hand-off through a process_pool (submit, then get()) orders the writes
/// made before submitting and inside the task.
///
/// @par Serialization
/// Encoding one for a process worker adds a dup of its descriptor to the
/// message (see coexec/detail/codec/archive.hpp); it can only be encoded where the
/// transport passes descriptors (a process_pool), otherwise encoding throws
/// coexec::serialization_error.
class shared_buffer {
  public:
    /// An empty handle: valid() is false, size() is 0, data() is null. Does not allocate.
    shared_buffer() noexcept = default;

    /// Creates a zero-filled shared block of `size` bytes (size may be 0), a
    /// memfd sealed at that size (nobody it is shared with can resize it).
    /// Throws std::system_error naming the failing call ("memfd_create",
    /// "ftruncate", "fcntl(F_ADD_SEALS)", "mmap") when the OS refuses.
    explicit shared_buffer(std::size_t size);

    /// Takes ownership of `fd` (a memfd or any mappable file) and maps all of
    /// it shared. On failure throws std::system_error and closes `fd`. Only a
    /// memfd whose size is sealed (or can be: MFD_ALLOW_SEALING; sending
    /// seals it) can be sent to a process worker.
    static shared_buffer adopt_fd(int fd);

    /// The first byte, or null for an empty handle or a zero-sized block.
    std::byte* data() const noexcept { return m_state ? m_state->data : nullptr; }
    std::size_t size() const noexcept { return m_state ? m_state->size : 0; }
    std::span<std::byte> span() const noexcept { return {data(), size()}; }
    /// The descriptor backing the block (owned by the handles), or -1.
    int fd() const noexcept { return m_state ? m_state->fd : -1; }
    bool valid() const noexcept { return static_cast<bool>(m_state); }
    explicit operator bool() const noexcept { return valid(); }

    /// True when both handles refer to the same block (not byte equality).
    friend bool operator==(const shared_buffer& a, const shared_buffer& b) noexcept {
        return a.m_state == b.m_state;
    }

  private:
    // One per mapping; the destructor unmaps and closes.
    struct state {
        int fd = -1;
        std::byte* data = nullptr;
        std::size_t size = 0;
        state() = default;
        state(const state&) = delete;
        state& operator=(const state&) = delete;
        ~state();
    };

    explicit shared_buffer(std::shared_ptr<state> s) noexcept : m_state(std::move(s)) {}
    static std::shared_ptr<state> map_fd(int fd, std::size_t size, bool populate);

    std::shared_ptr<state> m_state;
};

}  // namespace coexec
