// coexec/detail/codec/code_address.hpp — naming a function to another process.
//
// A process worker runs the same program image as the caller, so a function
// is sent as its position inside the loaded module that holds it. Used for
// function-pointer tasks, the worker-side trampolines and the pool's
// initializer. Reentrant.
#pragma once

#include <cstdint>
#include <vector>

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

/// The loaded modules' segments, copied by a process about to fork for its
/// child. A child of fork in a multithreaded process must not call
/// dl_iterate_phdr: glibc's fork does not reset the loader lock it takes, so
/// if another thread was walking the modules at the fork (an encoder of this
/// process submitting a task, an unwinder, a profiler) the child would wait
/// for that lock forever. The child has exactly the modules its parent had at
/// the fork, so the copy stays true for its whole life.
class module_map {
  public:
    /// The modules of this process now (dl_iterate_phdr; allocates).
    static module_map of_this_process();

    /// From now on decode_code_address (module-index form) reads this map
    /// instead of walking the modules. For the single-threaded child of a
    /// fork; the map must outlive every later decode.
    void install() const noexcept;

    /// The address `offset` bytes past module `index`'s load address, or
    /// nullptr if there is no such module or that address is in none of its
    /// loaded segments.
    const void* resolve(std::uint64_t index, std::uint64_t offset) const noexcept;

  private:
    struct segment {
        std::uint64_t module;
        std::uintptr_t start;
        std::uintptr_t size;
    };
    std::vector<std::uintptr_t> m_bias;  // load address, by module index
    std::vector<segment> m_segments;     // PT_LOAD segments, in module order
};

/// What every task message starts with: the code address of its trampoline
/// (remote_invoke, remote_invoke_chunk: remote_call.hpp), which reads the rest
/// of the message and writes the outcome.
using trampoline_fn = void (*)(byte_reader& in, byte_writer& out);

/// Worker side: reads the trampoline a task message starts with (either
/// code-address form). Throws serialization_error.
trampoline_fn decode_trampoline(byte_reader& in);

}  // namespace coexec::detail
