// samples/server/files.hpp — reading a file confined to the served directory.
//
// The request names a path relative to --root. Checking the string alone is
// not enough (a symlink inside the root can point anywhere, and the tree can
// change between a check and the open), so the path is walked one component
// at a time with openat(…, O_NOFOLLOW) from a descriptor of the root:
//   - ".." anywhere, and absolute paths, are refused outright (403);
//   - a symbolic link at any step fails the open with ELOOP (403), so links
//     are never followed, even ones that would stay inside the root;
//   - only regular files are read (a FIFO would block a worker forever).
// What is left is a file that really lives under the root (hard links aside:
// do not serve a directory where untrusted users can create them).
#pragma once

#include <cstddef>
#include <string>

namespace server {

struct file_result {
    int status = 200;     ///< 200, or the HTTP status that explains the failure
    std::string detail;   ///< why it failed (for the response body)
    std::string content;  ///< the file's bytes when status == 200
};

/// Opens `relative` under the directory `root_fd` and reads it whole (at most
/// `max_bytes`, else 413). Blocking: run it on the thread_pool, which exists
/// for exactly this kind of call.
file_result read_confined_file(int root_fd, const std::string& relative, std::size_t max_bytes);

}  // namespace server
