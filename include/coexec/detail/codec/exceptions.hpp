// coexec/detail/codec/exceptions.hpp — exceptions across a process boundary.
//
// A task's exception is sent back as a tag, its what() and, for the types
// that have them, its details (error_code, paths, the coexec error fields);
// the caller re-creates the same type. Needs no serialization library: the
// worker loop uses it to report failures that happen outside any task.
// Reentrant.
#pragma once

#include <exception>
#include <string>

#include "coexec/detail/codec/byte_buffers.hpp"

namespace coexec::detail {

/// Encodes the exception in `e` (must not be null: throws serialization_error).
/// Standard and coexec exception types are recorded so that decode_exception
/// re-creates the same type with the same what(); any other type is recorded
/// by its demangled name and what() and comes back as remote_error.
void encode_exception(byte_writer& w, std::exception_ptr e);

/// Re-creates an exception written by encode_exception. Throws
/// serialization_error if the input is truncated or malformed.
std::exception_ptr decode_exception(byte_reader& r);

/// The demangled name of the exception currently being handled ("int" for
/// `throw 42`); must be called inside a catch block.
std::string current_exception_type_name();

/// How a user exception type registered with coexec::register_exception
/// crosses the boundary (coexec/register_exception.hpp fills it in).
/// `encode` writes the exception's what() and its members; `decode` reads
/// them back and re-creates the type. Both may throw (encode: the exception
/// then travels by the standard mapping instead).
struct exception_codec {
    const char* type_name;  // typeid(E).name(): the key, same in every process of the binary
    void (*encode)(byte_writer& w, const std::exception_ptr& e);
    std::exception_ptr (*decode)(byte_reader& r);
};

/// Adds `codec` to the process-wide registry (idempotent per type name).
/// Thread-safe, lock-free and async-signal-safe to read, so a forked worker
/// can use it whatever the parent was doing; entries are never removed.
void register_exception_codec(const exception_codec& codec);

}  // namespace coexec::detail
