// lib/util/system_error.hpp — OS failures as std::system_error.
//
// One convention for the whole library: an errno value (from errno, a
// pthread return code or a negated liburing result) is reported as
// std::system_error in std::system_category(), as Asio does, with what()
// naming the failed call ("memfd_create: Too many open files"). Compare
// codes with std::errc (e.code() == std::errc::broken_pipe), which works
// whatever the category.
#pragma once

namespace coexec::detail {

/// Throws std::system_error(err, std::system_category(), op).
[[noreturn]] void throw_system_error(int err, const char* op);

/// Throws std::system_error for the current errno, naming `op`.
[[noreturn]] void throw_errno(const char* op);

}  // namespace coexec::detail
