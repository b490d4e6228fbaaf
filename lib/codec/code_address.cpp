#include "coexec/detail/codec/code_address.hpp"

#include <link.h>

#include <bit>
#include <cstddef>
#include <new>
#include <string>

#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/detail/codec/module_identity.hpp"
#include "coexec/errors.hpp"

namespace coexec::detail {

namespace {

constexpr int module_shift = 48;
constexpr std::uint64_t offset_mask = (std::uint64_t{1} << module_shift) - 1;

struct module_search {
    std::uintptr_t address;      // in: the address to find (encode) or the result (decode)
    std::uint64_t module_index;  // in (decode) / out (encode)
    std::uint64_t offset;        // in (decode) / out (encode)
    bool decode;
    bool found = false;
    std::uint64_t counter = 0;
};

bool in_loaded_segment(const dl_phdr_info* info, std::uintptr_t address) {
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_LOAD) continue;
        const std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
        if (address >= start && address - start < ph.p_memsz) return true;
    }
    return false;
}

int visit_module(dl_phdr_info* info, std::size_t, void* data) {
    auto* s = static_cast<module_search*>(data);
    const std::uint64_t index = s->counter++;
    if (s->decode) {
        if (index != s->module_index) return 0;
        s->address = static_cast<std::uintptr_t>(info->dlpi_addr + s->offset);
        s->found = in_loaded_segment(info, s->address);
        return 1;
    }
    if (!in_loaded_segment(info, s->address)) return 0;
    s->module_index = index;
    // Relative to the load bias: the same in every process running this binary
    // (for a non-PIE executable the bias is 0 and the offset is the address).
    s->offset = s->address - info->dlpi_addr;
    s->found = true;
    return 1;
}

// Set only in the single-threaded child of a fork (module_map::install).
const module_map* g_installed_map = nullptr;

}  // namespace

module_map module_map::of_this_process() {
    struct builder {
        module_map* map;
        bool failed = false;
    };
    module_map m;
    builder b{&m};
    ::dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* data) -> int {
            auto* b = static_cast<builder*>(data);
            try {
                const std::uint64_t index = b->map->m_bias.size();
                b->map->m_bias.push_back(static_cast<std::uintptr_t>(info->dlpi_addr));
                for (int i = 0; i < info->dlpi_phnum; ++i) {
                    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
                    if (ph.p_type != PT_LOAD) continue;
                    b->map->m_segments.push_back(
                        {index, static_cast<std::uintptr_t>(info->dlpi_addr + ph.p_vaddr),
                         static_cast<std::uintptr_t>(ph.p_memsz)});
                }
                return 0;
            } catch (...) {
                // No exception may cross the C library's frames.
                b->failed = true;
                return 1;
            }
        },
        &b);
    if (b.failed) throw std::bad_alloc();
    return m;
}

void module_map::install() const noexcept {
    g_installed_map = this;
}

const void* module_map::resolve(std::uint64_t index, std::uint64_t offset) const noexcept {
    if (index >= m_bias.size()) return nullptr;
    const std::uintptr_t address = m_bias[index] + static_cast<std::uintptr_t>(offset);
    for (const segment& s : m_segments) {
        if (s.module == index && address >= s.start && address - s.start < s.size)
            return reinterpret_cast<const void*>(address);
    }
    return nullptr;
}

std::uint64_t encode_code_address(const void* fn) {
    // For other hosts (mpi_pool) a function is named by its module's build-id.
    if (current_code_address_form() == code_address_form::build_id) {
        return encode_code_address_by_build_id(fn);
    }
    module_search s{};
    s.address = reinterpret_cast<std::uintptr_t>(fn);
    s.decode = false;
    ::dl_iterate_phdr(visit_module, &s);
    // Module indices stop below 0x8000: bit 63 marks the build-id form.
    if (!s.found || s.module_index > 0x7fff || s.offset > offset_mask) {
        throw serialization_error(
            "coexec: a function address lies in no loaded module, so it cannot be sent to "
            "another process");
    }
    return (s.module_index << module_shift) | s.offset;
}

const void* decode_code_address(std::uint64_t encoded) {
    if ((encoded & build_id_address_tag) != 0) return decode_code_address_by_build_id(encoded);
    module_search s{};
    s.module_index = encoded >> module_shift;
    s.offset = encoded & offset_mask;
    s.decode = true;
    if (g_installed_map != nullptr) {
        const void* fn = g_installed_map->resolve(s.module_index, s.offset);
        s.found = fn != nullptr;
        s.address = reinterpret_cast<std::uintptr_t>(fn);
    } else {
        ::dl_iterate_phdr(visit_module, &s);
    }
    if (!s.found) {
        throw serialization_error(
            "coexec: a received function address (module " + std::to_string(s.module_index) +
            ", offset " + std::to_string(s.offset) +
            ") matches no code in this process: the worker does not run the same binary and "
            "libraries as the caller");
    }
    return reinterpret_cast<const void*>(s.address);
}

trampoline_fn decode_trampoline(byte_reader& in) {
    return std::bit_cast<trampoline_fn>(decode_code_address(in.get_u64()));
}

}  // namespace coexec::detail
