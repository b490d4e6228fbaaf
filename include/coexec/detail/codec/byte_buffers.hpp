// coexec/detail/codec/byte_buffers.hpp — the bytes and descriptors of one message.
//
// Everything the codec writes goes through a byte_writer and everything it
// reads through a byte_reader; neither knows about cereal, so code that only
// moves messages (the process worker loop, the channels) needs no more.
//
// File descriptors (shared_buffer) travel beside the bytes:
// - Writer side: encoding a shared_buffer appends a dup() of its descriptor to
//   the byte_writer's `fds` vector. Whoever holds that vector owns those
//   descriptors and must close them once sent (close_fds), also on failure.
// - Reader side: the descriptors in a byte_reader are borrowed. Decoding a
//   shared_buffer dup()s the one it refers to, so the receiver closes the
//   descriptors it received after decoding, whether decoding succeeded or not.
//
// Sizes are uint64, native byte order: both ends are the same binary on the
// same machine.
//
// Thread safety: a byte_writer/byte_reader is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace coexec::detail {

/// Appends bytes (and optionally file descriptors) to caller-owned vectors.
/// Allocation: grows `bytes`; throws std::bad_alloc like std::vector.
class byte_writer {
  public:
    /// `fds` may be null when the transport cannot pass descriptors; encoding
    /// a shared_buffer then throws serialization_error.
    explicit byte_writer(std::vector<std::byte>& bytes, std::vector<int>* fds = nullptr) noexcept
        : m_bytes(&bytes), m_fds(fds) {}

    void write(const void* data, std::size_t size) {
        if (size == 0) return;
        const std::size_t old = m_bytes->size();
        m_bytes->resize(old + size);
        std::memcpy(m_bytes->data() + old, data, size);
    }
    void put(std::uint8_t b) { m_bytes->push_back(static_cast<std::byte>(b)); }
    void put_u64(std::uint64_t v) { write(&v, sizeof v); }
    void put_string(std::string_view s) {
        put_u64(s.size());
        write(s.data(), s.size());
    }

    /// Takes ownership of `fd` (it goes into the fds vector) and returns its
    /// index there. Throws serialization_error (after closing fd) if this
    /// writer has no fds vector.
    std::size_t add_fd(int fd);

    std::vector<std::byte>& bytes() const noexcept { return *m_bytes; }
    std::vector<int>* fds() const noexcept { return m_fds; }
    std::size_t size() const noexcept { return m_bytes->size(); }

    /// A position to roll back to if encoding fails half-way.
    struct mark {
        std::size_t bytes;
        std::size_t fds;
    };
    mark position() const noexcept { return {m_bytes->size(), m_fds ? m_fds->size() : 0}; }
    /// Drops what was written after `m`, closing the descriptors added since.
    void rollback(mark m) noexcept;

  private:
    std::vector<std::byte>* m_bytes;
    std::vector<int>* m_fds;
};

/// Reads from a byte span; every read past the end throws serialization_error.
class byte_reader {
  public:
    explicit byte_reader(std::span<const std::byte> bytes, std::span<const int> fds = {}) noexcept
        : m_bytes(bytes), m_fds(fds) {}

    void read(void* out, std::size_t size) {
        if (size > remaining()) throw_truncated(size);
        if (size != 0) std::memcpy(out, m_bytes.data() + m_pos, size);
        m_pos += size;
    }
    std::uint8_t get() {
        std::uint8_t b;
        read(&b, 1);
        return b;
    }
    std::uint64_t get_u64() {
        std::uint64_t v;
        read(&v, sizeof v);
        return v;
    }
    /// The next `size` bytes in place (valid while the input is), skipped over.
    std::span<const std::byte> take(std::size_t size) {
        if (size > remaining()) throw_truncated(size);
        const std::span<const std::byte> out = m_bytes.subspan(m_pos, size);
        m_pos += size;
        return out;
    }
    std::string get_string() {
        const std::uint64_t n = get_u64();
        if (n > remaining()) throw_truncated(n);
        std::string s(reinterpret_cast<const char*>(m_bytes.data() + m_pos), n);
        m_pos += n;
        return s;
    }

    /// The index-th received descriptor (borrowed). Throws serialization_error if absent.
    int fd(std::size_t index) const;
    /// How many descriptors arrived with the bytes.
    std::size_t fd_count() const noexcept { return m_fds.size(); }

    /// The bytes not read yet, in place (valid while the input is); reads nothing.
    std::span<const std::byte> rest() const noexcept { return m_bytes.subspan(m_pos); }
    std::size_t remaining() const noexcept { return m_bytes.size() - m_pos; }
    std::size_t position() const noexcept { return m_pos; }
    bool at_end() const noexcept { return m_pos == m_bytes.size(); }

  private:
    [[noreturn]] void throw_truncated(std::size_t wanted) const;

    std::span<const std::byte> m_bytes;
    std::span<const int> m_fds;
    std::size_t m_pos = 0;
};

/// Decoded containers at least this large ask for transparent huge pages.
inline constexpr std::size_t bulk_fill_bytes = std::size_t{4} << 20;

/// Before the first write to `n` fresh bytes at `p` (a decoded container's
/// new storage): asks the kernel to back the range with transparent huge
/// pages where the system allows it (THP "madvise" mode), so filling 64 MiB
/// takes 32 page faults instead of 16,384 (on a VM each 4 KiB fault costs
/// microseconds: decoding a 64 MiB vector was two thirds page faults).
/// Only the 2 MiB-aligned interior is advised; does nothing below
/// bulk_fill_bytes or where the kernel refuses.
void advise_bulk_fill(void* p, std::size_t n) noexcept;

/// Closes every descriptor in `fds` (ignoring errors); for the owner of a
/// byte_writer's fds vector after sending, and for a receiver after decoding.
void close_fds(std::span<const int> fds) noexcept;

}  // namespace coexec::detail
