// lib/trace/hooks.hpp — event sites of lib/ itself (the I/O reactor), beside
// the header-side ones in coexec/detail/trace_hooks.hpp. Call only while
// on() is true.
#pragma once

#include <cstdint>

#include "coexec/detail/trace_hooks.hpp"

namespace coexec::detail::trace {

/// An io operation `op` (its address is its id) went to the kernel / came
/// back. Drawn as an async slice on the track "<worker thread> <op name>".
void io_begin(const void* op, const char* op_name, int fd) noexcept;
void io_end(const void* op, const char* op_name, std::int64_t result) noexcept;

}  // namespace coexec::detail::trace
