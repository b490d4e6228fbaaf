// coexec/detail/codec/code_address.hpp — naming a function to another process.
//
// A process worker runs the same program image as the caller, so a function
// is sent as its position inside the loaded module that holds it. Used for
// function-pointer tasks, the worker-side trampolines and the pool's
// initializer. Reentrant.
#pragma once

#include <cstdint>

namespace coexec::detail {

class byte_reader;
class byte_writer;

/// Encodes a code address as (module index in dl_iterate_phdr order) << 48 |
/// offset from the module's load address, so it means the same function in
/// another process running the same binary with the same startup libraries,
/// even under ASLR. Inside a code_address_scope(build_id) it produces the
/// build-id form instead (module_identity.hpp), which processes on other hosts
/// decode. Throws serialization_error if `fn` lies in no loaded module.
std::uint64_t encode_code_address(const void* fn);

/// The inverse of encode_code_address (either form) in this process. Throws
/// serialization_error if the module does not exist or the address falls
/// outside its loaded segments.
const void* decode_code_address(std::uint64_t encoded);

/// What every task message starts with: the code address of its trampoline
/// (remote_invoke, remote_invoke_chunk: remote_call.hpp), which reads the rest
/// of the message and writes the outcome.
using trampoline_fn = void (*)(byte_reader& in, byte_writer& out);

/// Worker side: reads the trampoline a task message starts with (either
/// code-address form). Throws serialization_error.
trampoline_fn decode_trampoline(byte_reader& in);

}  // namespace coexec::detail
