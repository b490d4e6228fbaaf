// The out-of-line parts of archive.hpp: the errors its checks throw, and the
// shared_buffer encoding (a descriptor index plus the size, never the bytes).
// Only memfds whose size is sealed cross: a receiver maps the whole block, and
// a block its sender could shrink would fault (SIGBUS) on access in the
// receiver.
#include "coexec/detail/codec/archive.hpp"

#include <fcntl.h>

#include <cerrno>
#include <string>
#include <system_error>

#include "coexec/errors.hpp"
#include "util/system_error.hpp"

namespace coexec::detail {
namespace {

constexpr int size_seals = F_SEAL_SHRINK | F_SEAL_GROW;

// F_GET_SEALS fails on anything but a memfd, without touching the file's
// file system (fstat or mmap of a FUSE file could block).
bool size_sealed(int fd) noexcept {
    const int seals = ::fcntl(fd, F_GET_SEALS);
    return seals >= 0 && (seals & size_seals) == size_seals;
}

}  // namespace

void binary_input_archive::throw_bad_count(std::uint64_t count, std::size_t min_bytes_each) const {
    throw serialization_error("coexec: malformed input: a container claims " +
                              std::to_string(count) + " elements of at least " +
                              std::to_string(min_bytes_each) + " bytes but only " +
                              std::to_string(m_reader.remaining()) + " bytes remain");
}

void throw_bad_bool(std::uint8_t byte) {
    throw serialization_error("coexec: malformed input: a bool encoded as " + std::to_string(byte) +
                              " (only 0 and 1 are bools)");
}

void save_shared_buffer(byte_writer& w, const shared_buffer& b) {
    if (!b.valid()) {
        // An empty handle travels as an empty handle: no descriptor.
        w.put(0);
        return;
    }
    if (w.fds() == nullptr) {
        throw serialization_error(
            "coexec: a shared_buffer can only be sent to a process worker (this encoder "
            "has no channel for file descriptors)");
    }
    // shared_buffer(n) makes sealed memfds; one from adopt_fd is sealed
    // here if it can be (a memfd made with MFD_ALLOW_SEALING).
    if (!size_sealed(b.fd()) && ::fcntl(b.fd(), F_ADD_SEALS, size_seals) != 0) {
        throw serialization_error(
            "coexec: only a memfd whose size can be sealed can cross a process boundary as a "
            "shared_buffer");
    }
    // A dup, so the message owns its descriptor independently of the handle's lifetime.
    const int fd = ::fcntl(b.fd(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) throw_errno("fcntl(F_DUPFD_CLOEXEC)");
    const std::size_t index = w.add_fd(fd);
    w.put(1);
    w.put_u64(index);
    w.put_u64(b.size());
}

shared_buffer load_shared_buffer(byte_reader& r) {
    const std::uint8_t present = r.get();
    if (present == 0) return {};
    if (present != 1) throw serialization_error("coexec: malformed shared_buffer encoding");
    const std::uint64_t index = r.get_u64();
    const std::uint64_t size = r.get_u64();
    const int received = r.fd(static_cast<std::size_t>(index));
    if (!size_sealed(received)) {
        throw serialization_error(
            "coexec: a received shared_buffer is not a memfd whose size is sealed");
    }
    // Borrowed descriptor: dup it, the receiver closes the ones it received.
    const int fd = ::fcntl(received, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) throw_errno("fcntl(F_DUPFD_CLOEXEC)");
    shared_buffer b = shared_buffer::adopt_fd(fd);
    if (b.size() != size) {
        throw serialization_error("coexec: a received shared_buffer has " +
                                  std::to_string(b.size()) + " bytes, the sender had " +
                                  std::to_string(size));
    }
    return b;
}

}  // namespace coexec::detail
