#include "coexec/shared_buffer.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/system_error.hpp"
#include "util/unique_fd.hpp"

namespace coexec {

using detail::throw_errno;
using detail::unique_fd;

shared_buffer::state::~state() {
    if (data != nullptr) ::munmap(data, size);
    if (fd >= 0) ::close(fd);
}

std::shared_ptr<shared_buffer::state> shared_buffer::map_fd(int fd, std::size_t size,
                                                            bool populate) {
    // The state owns fd from here on, so every failure path below closes it.
    auto s = std::make_shared<state>();
    s->fd = fd;
    if (size == 0) return s;  // mmap refuses length 0; an empty block needs no mapping.
    const int flags = MAP_SHARED | (populate ? MAP_POPULATE : 0);
    void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (addr == MAP_FAILED) throw_errno("mmap");
    s->data = static_cast<std::byte*>(addr);
    s->size = size;
    return s;
}

shared_buffer::shared_buffer(std::size_t size) {
    // CLOEXEC: a worker started by exec (start_method::spawn) must only get the
    // descriptors that are sent to it explicitly.
    unique_fd fd(::memfd_create("coexec-shared-buffer", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) throw_errno("memfd_create");
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) throw_errno("ftruncate");
    // Its size never changes: a process given the buffer (a worker running
    // untrusted code) cannot shrink it under another's mapping, which would
    // fault (SIGBUS) on access. Receivers refuse buffers without these seals.
    if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
        throw_errno("fcntl(F_ADD_SEALS)");
    m_state = map_fd(fd.release(), size, false);
}

shared_buffer shared_buffer::adopt_fd(int fd) {
    unique_fd owned(fd);  // closed on failure, as documented
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw_errno("fstat");
    // A received buffer whose pages mostly exist (the sender filled it) is
    // mapped with MAP_POPULATE: one pass in the kernel instead of a page
    // fault per 4 KiB page on first touch (64 MiB: 16k faults, ~25 ms on
    // these VMs). A sparse one is left to fault in what it uses.
    const auto size = static_cast<std::size_t>(st.st_size);
    const bool mostly_present = static_cast<std::size_t>(st.st_blocks) * 512 >= size / 2;
    return shared_buffer(map_fd(owned.release(), size, mostly_present));
}

}  // namespace coexec
