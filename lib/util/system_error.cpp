#include "util/system_error.hpp"

#include <cerrno>
#include <system_error>

namespace coexec::detail {

void throw_system_error(int err, const char* op) {
    throw std::system_error(err, std::system_category(), op);
}

void throw_errno(const char* op) {
    throw_system_error(errno, op);
}

}  // namespace coexec::detail
