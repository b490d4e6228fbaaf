// lib/util/demangle.hpp — a mangled C++ name as people read it.
//
// Used where the library names code to a person: remote_error's type name
// (lib/codec), worker_died's task and the trace's slice names (lib/trace).
#pragma once

#include <string>

namespace coexec::detail {

/// The demangled form of `mangled` (a typeid name or a symbol); itself if it
/// does not demangle. Throws std::bad_alloc only.
std::string demangle(const char* mangled);

}  // namespace coexec::detail
