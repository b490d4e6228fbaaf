// samples/server/files.cpp — see files.hpp.
#include "files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

namespace server {
namespace {

// Closes a descriptor on every return path.
class unique_fd {
  public:
    explicit unique_fd(int fd = -1) noexcept : m_fd(fd) {}
    unique_fd(unique_fd&& o) noexcept : m_fd(std::exchange(o.m_fd, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        std::swap(m_fd, o.m_fd);
        return *this;
    }
    ~unique_fd() {
        if (m_fd >= 0) ::close(m_fd);
    }
    int get() const noexcept { return m_fd; }

  private:
    int m_fd;
};

file_result failure(int status, std::string detail) {
    return file_result{status, std::move(detail), {}};
}

// errno of a failed openat(at, name) → the answer a client should see.
file_result open_failure(int err, int at, const std::string& name, const std::string& relative) {
    // A link to a directory opened with O_DIRECTORY | O_NOFOLLOW fails with
    // ENOTDIR, not ELOOP: look at what is there before calling it missing.
    struct stat st {};
    if (err == ENOTDIR && ::fstatat(at, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(st.st_mode)) {
        err = ELOOP;
    }
    switch (err) {
        case ENOENT:
        case ENOTDIR:
            return failure(404, "no such file: " + relative);
        case ELOOP:
            return failure(403, "symbolic links are not followed: " + relative);
        case EACCES:
        case EPERM:
            return failure(403, "permission denied: " + relative);
        default:
            return failure(500, std::string("open: ") + std::strerror(err));
    }
}

}  // namespace

file_result read_confined_file(int root_fd, const std::string& relative, std::size_t max_bytes) {
    if (relative.empty()) return failure(400, "empty path");
    if (relative.find('\0') != std::string::npos) return failure(400, "NUL byte in path");
    if (relative.front() == '/') return failure(403, "absolute paths are not served");

    // Split into components; "" (from "a//b") and "." change nothing.
    std::vector<std::string_view> parts;
    std::string_view rest = relative;
    while (!rest.empty()) {
        auto slash = rest.find('/');
        std::string_view part = rest.substr(0, slash);
        rest.remove_prefix(slash == std::string_view::npos ? rest.size() : slash + 1);
        if (part.empty() || part == ".") continue;
        if (part == "..") return failure(403, "'..' is not allowed in paths");
        parts.push_back(part);
    }
    if (parts.empty()) return failure(403, "not a regular file: " + relative);

    // Walk the directories without following links (O_NOFOLLOW makes a link
    // in the last position of each openat fail with ELOOP).
    unique_fd dir;
    int at = root_fd;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        std::string name(parts[i]);
        unique_fd next(::openat(at, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (next.get() < 0) return open_failure(errno, at, name, relative);
        dir = std::move(next);
        at = dir.get();
    }
    std::string leaf(parts.back());
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
    unique_fd file(::openat(at, leaf.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (file.get() < 0) return open_failure(errno, at, leaf, relative);

    struct stat st {};
    if (::fstat(file.get(), &st) != 0)
        return failure(500, std::string("fstat: ") + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return failure(403, "not a regular file: " + relative);
    if (static_cast<std::size_t>(st.st_size) > max_bytes) {
        return failure(413, "the file exceeds " + std::to_string(max_bytes) + " bytes");
    }

    file_result result;
    result.content.resize(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    while (done < result.content.size()) {
        ssize_t n = ::pread(file.get(), result.content.data() + done, result.content.size() - done,
                            static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return failure(500, std::string("read: ") + std::strerror(errno));
        if (n == 0) break;  // the file shrank meanwhile: serve what is there
        done += static_cast<std::size_t>(n);
    }
    result.content.resize(done);
    return result;
}

}  // namespace server
