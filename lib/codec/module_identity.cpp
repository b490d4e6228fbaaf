// lib/codec/module_identity.cpp — build-ids of the loaded modules, and code
// addresses named by them (see coexec/detail/module_identity.hpp).
//
// The table of loaded modules is built from dl_iterate_phdr and kept until
// the loader's add/remove counters (dlpi_adds, dlpi_subs) say a module came
// or went, so naming a function costs one short dl_iterate_phdr call and a
// scan, not a walk over every module's notes.
#include "coexec/detail/codec/module_identity.hpp"

#include <elf.h>
#include <link.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <mutex>
#include <string_view>
#include <utility>

#include "coexec/errors.hpp"

namespace coexec::detail {
namespace {

constexpr int hash_bits = 27;
constexpr int offset_bits = 36;
constexpr std::uint64_t hash_mask = (std::uint64_t{1} << hash_bits) - 1;
constexpr std::uint64_t offset_mask = (std::uint64_t{1} << offset_bits) - 1;

thread_local code_address_form t_form = code_address_form::module_index;

struct segment {
    std::uintptr_t start;
    std::uintptr_t end;
};

struct module_entry {
    std::uintptr_t base = 0;  // dlpi_addr: offsets are relative to it
    std::vector<segment> segments;
    std::uint32_t hash = 0;
    bool ambiguous = false;  // another module has the same hash
    module_id id;
};

std::string hex(const unsigned char* p, std::size_t n) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    s.reserve(2 * n);
    for (std::size_t i = 0; i < n; ++i) {
        s.push_back(digits[p[i] >> 4]);
        s.push_back(digits[p[i] & 15]);
    }
    return s;
}

// The NT_GNU_BUILD_ID note of a loaded module, in hex; empty if it has none.
// Notes are read from the PT_NOTE segments as mapped (they are part of the
// first PT_LOAD segment, so they are in memory).
std::string build_id_of(const dl_phdr_info* info) {
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_NOTE) continue;
        const auto* p = reinterpret_cast<const unsigned char*>(info->dlpi_addr + ph.p_vaddr);
        const std::size_t align = ph.p_align == 8 ? 8 : 4;
        auto up = [align](std::size_t n) { return (n + align - 1) & ~(align - 1); };
        std::size_t pos = 0;
        while (pos + sizeof(ElfW(Nhdr)) <= ph.p_memsz) {
            ElfW(Nhdr) note;
            std::memcpy(&note, p + pos, sizeof note);
            const std::size_t name_at = pos + sizeof note;
            const std::size_t desc_at = name_at + up(note.n_namesz);
            const std::size_t next = desc_at + up(note.n_descsz);
            if (next > ph.p_memsz || next <= pos) break;
            if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 &&
                std::memcmp(p + name_at, "GNU", 4) == 0 && note.n_descsz != 0) {
                return hex(p + desc_at, note.n_descsz);
            }
            pos = next;
        }
    }
    return {};
}

std::string program_path() {
    char buf[4096];
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("(the program)");
}

bool is_vdso(const dl_phdr_info* info) {
    const auto ehdr = static_cast<std::uintptr_t>(::getauxval(AT_SYSINFO_EHDR));
    if (ehdr != 0) {
        ElfW(Ehdr) h;
        std::memcpy(&h, reinterpret_cast<const void*>(ehdr), sizeof h);
        if (reinterpret_cast<std::uintptr_t>(info->dlpi_phdr) == ehdr + h.e_phoff) return true;
    }
    const std::string_view name = info->dlpi_name != nullptr ? info->dlpi_name : "";
    return name.starts_with("linux-vdso") || name.starts_with("linux-gate");
}

std::uint32_t short_hash(const module_id& m) {
    // FNV-1a over the build-id (or, lacking one, the file name), folded to 27 bits.
    std::string_view key = m.build_id;
    std::string fallback;
    if (key.empty()) {
        const auto slash = m.path.rfind('/');
        fallback = "name:" + m.path.substr(slash == std::string::npos ? 0 : slash + 1);
        key = fallback;
    }
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (char c : key) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ull;
    }
    return static_cast<std::uint32_t>((h ^ (h >> hash_bits) ^ (h >> (2 * hash_bits))) & hash_mask);
}

struct collect_state {
    std::vector<module_entry>* out;
    bool first = true;
};

int collect_module(dl_phdr_info* info, std::size_t, void* data) {
    auto* s = static_cast<collect_state*>(data);
    const bool first = std::exchange(s->first, false);
    if (is_vdso(info)) return 0;
    module_entry e;
    e.base = info->dlpi_addr;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_LOAD) continue;
        const std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
        e.segments.push_back({start, start + ph.p_memsz});
    }
    const char* name = info->dlpi_name;
    e.id.path = (first || name == nullptr || *name == '\0') ? program_path() : std::string(name);
    e.id.build_id = build_id_of(info);
    e.hash = short_hash(e.id);
    s->out->push_back(std::move(e));
    return 0;
}

std::vector<module_entry> scan_modules() {
    std::vector<module_entry> out;
    collect_state s{&out};
    ::dl_iterate_phdr(collect_module, &s);
    for (std::size_t i = 0; i < out.size(); ++i) {
        for (std::size_t j = i + 1; j < out.size(); ++j) {
            if (out[i].hash == out[j].hash && out[i].id.build_id != out[j].id.build_id) {
                out[i].ambiguous = out[j].ambiguous = true;
            }
        }
    }
    return out;
}

struct load_counters {
    unsigned long long adds = 0;
    unsigned long long subs = 0;
    bool known = false;
};

int read_counters(dl_phdr_info* info, std::size_t size, void* data) {
    auto* c = static_cast<load_counters*>(data);
    if (size >= offsetof(dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        c->adds = info->dlpi_adds;
        c->subs = info->dlpi_subs;
        c->known = true;
    }
    return 1;  // the counters are the same in every entry: one is enough
}

// The modules loaded now; rescanned only when the loader's counters moved.
class module_table {
  public:
    template <class F>
    auto with_modules(F&& f) {
        load_counters now;
        ::dl_iterate_phdr(read_counters, &now);
        std::lock_guard lock(m_mutex);
        if (!now.known || !m_valid || now.adds != m_counters.adds || now.subs != m_counters.subs) {
            m_modules = scan_modules();
            m_counters = now;
            m_valid = now.known;
        }
        return f(static_cast<const std::vector<module_entry>&>(m_modules));
    }

  private:
    std::mutex m_mutex;
    load_counters m_counters;
    bool m_valid = false;
    std::vector<module_entry> m_modules;
};

module_table& table() {
    static auto* t = new module_table();  // never destroyed: used by workers until _exit
    return *t;
}

bool contains(const module_entry& m, std::uintptr_t a) {
    for (const segment& s : m.segments) {
        if (a >= s.start && a < s.end) return true;
    }
    return false;
}

std::string hash_text(std::uint64_t h) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s = "0x0000000";
    for (int i = 8; i >= 2; --i, h >>= 4)
        s[static_cast<std::size_t>(i)] = digits[h & 15];
    return s;
}

}  // namespace

std::vector<module_id> loaded_modules() {
    return table().with_modules([](const std::vector<module_entry>& modules) {
        std::vector<module_id> out;
        out.reserve(modules.size());
        for (const auto& m : modules)
            out.push_back(m.id);
        return out;
    });
}

code_address_form current_code_address_form() noexcept {
    return t_form;
}

code_address_scope::code_address_scope(code_address_form form) noexcept : m_previous(t_form) {
    t_form = form;
}

code_address_scope::~code_address_scope() {
    t_form = m_previous;
}

std::uint64_t encode_code_address_by_build_id(const void* fn) {
    const auto a = reinterpret_cast<std::uintptr_t>(fn);
    return table().with_modules([a](const std::vector<module_entry>& modules) {
        for (const module_entry& m : modules) {
            if (!contains(m, a)) continue;
            if (m.ambiguous) {
                throw serialization_error(
                    "coexec: a function in " + m.id.path +
                    " cannot be named for another host: another loaded module has the same "
                    "short build-id hash");
            }
            const std::uint64_t offset = a - m.base;
            if (offset > offset_mask) break;
            return build_id_address_tag | (std::uint64_t{m.hash} << offset_bits) | offset;
        }
        throw serialization_error(
            "coexec: a function address lies in no loaded module, so it cannot be sent to "
            "another process");
    });
}

const void* decode_code_address_by_build_id(std::uint64_t encoded) {
    const auto hash = static_cast<std::uint32_t>((encoded >> offset_bits) & hash_mask);
    const std::uint64_t offset = encoded & offset_mask;
    return table().with_modules([&](const std::vector<module_entry>& modules) -> const void* {
        for (const module_entry& m : modules) {
            if (m.hash != hash || m.ambiguous) continue;
            const std::uintptr_t a = m.base + offset;
            if (!contains(m, a)) break;
            return reinterpret_cast<const void*>(a);
        }
        throw serialization_error(
            "coexec: a received function (module build-id hash " + hash_text(hash) + ", offset " +
            std::to_string(offset) +
            ") matches no code loaded in this process: it does not run the same program and "
            "libraries as the sender");
    });
}

}  // namespace coexec::detail
