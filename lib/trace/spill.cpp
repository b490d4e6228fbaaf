// lib/trace/spill.cpp — see spill.hpp.
#include "trace/spill.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "util/system_error.hpp"

namespace coexec::detail::trace {
namespace {

constexpr std::size_t block_records = std::size_t{16} * 1024;  // 768 KiB per write or read

std::string directory_of(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

int open_unnamed(const std::string& dir, const std::string& prefix) {
    // No name at all where the file system allows it; else a named file
    // removed at once. Either way the space is freed when the file closes,
    // also if the program dies.
    int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
    std::string name = prefix + ".spill-XXXXXX";
    fd = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd >= 0) ::unlink(name.c_str());
    return fd;
}

}  // namespace

void spill::open(const std::string& output) {
    close();
    m_block.resize(block_records);
    // Beside the output, where its user put the trace; if that directory
    // takes no files (e.g. the output is /dev/stdout), in the temporary one.
    const std::string dir = directory_of(output);
    int fd = open_unnamed(dir, output);
    if (fd < 0) {
        const char* tmp = std::getenv("TMPDIR");
        const std::string tmpdir = tmp != nullptr && tmp[0] != '\0' ? tmp : "/tmp";
        fd = open_unnamed(tmpdir, tmpdir + "/coexec-trace");
    }
    if (fd < 0) throw_errno(("coexec::trace::start: a spill file in " + dir).c_str());
    if (!m_reader.open(fd)) {
        ::close(fd);
        throw_errno("coexec::trace::start: dup of the spill file");
    }
    m_fd = fd;
    m_failed = false;
    m_used = 0;
    m_written = 0;
    m_lost = 0;
    m_has_thread = false;
}

void spill::put(const record& r) noexcept {
    if (m_used == m_block.size()) flush();
    m_block[m_used++] = r;
}

void spill::add(std::uint32_t pid, std::uint32_t tid, const record* r, std::size_t n) noexcept {
    if (n == 0 || m_block.empty()) return;
    if (!m_has_thread || pid != m_pid || tid != m_tid) {
        record who;
        who.what = kind::spill_thread;
        who.a = pid;
        who.b = tid;
        put(who);
        m_has_thread = true;
        m_pid = pid;
        m_tid = tid;
    }
    while (n > 0) {
        if (m_used == m_block.size()) flush();
        const std::size_t k = std::min(n, m_block.size() - m_used);
        std::memcpy(static_cast<void*>(m_block.data() + m_used), r, k * sizeof(record));
        m_used += k;
        r += k;
        n -= k;
    }
}

void spill::flush() noexcept {
    const auto* p = reinterpret_cast<const char*>(m_block.data());
    std::size_t bytes = m_used * sizeof(record), done = 0;
    while (done < bytes && !m_failed) {
        const ssize_t n = ::write(m_fd, p + done, bytes - done);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
        } else if (n < 0 && errno != EINTR) {
            m_failed = true;  // disk full...: the rest of the session is lost
        }
    }
    // Whole records only: a partial one at the end is not read back.
    m_written += done / sizeof(record);
    m_lost += m_used - done / sizeof(record);
    if (done % sizeof(record) != 0) m_failed = true;
    m_used = 0;
}

bool spill_reader::open(int fd) noexcept {
    close();
    m_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (m_fd < 0) return false;
    try {
        m_read.resize(block_records);
    } catch (...) {
        close();
        return false;
    }
    return true;
}

void spill_reader::close() noexcept {
    if (m_fd >= 0) ::close(m_fd);
    m_fd = -1;
}

std::size_t spill_reader::read_block(std::uint64_t from, std::uint64_t to) noexcept {
    if (m_fd < 0 || m_read.empty()) return 0;
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(to - from, m_read.size()));
    auto* p = reinterpret_cast<char*>(m_read.data());
    std::size_t got = 0;
    const std::size_t bytes = want * sizeof(record);
    while (got < bytes) {
        const ssize_t n =
            ::pread(m_fd, p + got, bytes - got, static_cast<off_t>(from * sizeof(record) + got));
        if (n > 0) {
            got += static_cast<std::size_t>(n);
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    return got / sizeof(record);
}

void spill::close() noexcept {
    m_reader.close();
    if (m_fd >= 0) ::close(m_fd);
    m_fd = -1;
    m_used = 0;
}

}  // namespace coexec::detail::trace
