// coexec/detail/codec/module_identity.hpp — naming code by what it is, not where it is.
//
// A process worker is a fork or a re-exec of the caller, so the codec names a
// function by (module index in load order, offset) — see encode_code_address.
// Processes on other machines (MPI ranks) load the same files in an order of
// their own, and libraries (an MPI's plugins) may come and go, so there a
// function is named by its module's GNU build-id (NT_GNU_BUILD_ID, which the
// linker derives from the module's contents) and its offset in that module:
//
//   bit 63      1 (the build-id form; the module-index form leaves it 0)
//   bits 62..36 a 27-bit hash of the build-id (of the file name if it has none)
//   bits 35..0  the offset from the module's load address (64 GiB)
//
// decode_code_address accepts both forms, so a process worker forked on a
// remote rank runs a task whose addresses were encoded on rank 0.
//
// Thread safety: every function here may be called from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace coexec::detail {

/// A loaded module (the program or a shared library) as another process can recognise it.
struct module_id {
    std::string path;      ///< its file (the program's is read from /proc/self/exe)
    std::string build_id;  ///< NT_GNU_BUILD_ID in hex; empty if the module has none
};

/// The modules loaded now, in load order, without the vDSO (its build-id
/// belongs to the kernel, which may differ between hosts). Throws std::bad_alloc.
std::vector<module_id> loaded_modules();

/// How encode_code_address names a function on the current thread.
enum class code_address_form : std::uint8_t {
    module_index,  ///< position in load order: for workers forked or spawned from this image
    build_id,      ///< module build-id and offset: for processes elsewhere running the same files
};

/// The form encode_code_address uses on this thread (module_index unless a scope says otherwise).
code_address_form current_code_address_form() noexcept;

/// While alive, encode_code_address on this thread produces `form`.
class code_address_scope {
  public:
    explicit code_address_scope(code_address_form form) noexcept;
    ~code_address_scope();
    code_address_scope(const code_address_scope&) = delete;
    code_address_scope& operator=(const code_address_scope&) = delete;

  private:
    code_address_form m_previous;
};

/// Set in every build-id-form address.
inline constexpr std::uint64_t build_id_address_tag = std::uint64_t{1} << 63;

/// The build-id form of `fn`'s address. Throws serialization_error if `fn`
/// lies in no loaded module, or in one whose short hash another loaded
/// module shares (the name would be ambiguous).
std::uint64_t encode_code_address_by_build_id(const void* fn);

/// The address a build-id-form `encoded` names in this process. Throws
/// serialization_error if no loaded module has that build-id hash or the
/// offset falls outside the module's loaded segments.
const void* decode_code_address_by_build_id(std::uint64_t encoded);

}  // namespace coexec::detail
