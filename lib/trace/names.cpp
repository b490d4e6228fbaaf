#include "trace/names.hpp"

#include <dlfcn.h>
#include <link.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "coexec/detail/trace_hooks.hpp"
#include "util/demangle.hpp"

namespace coexec::detail::trace {
namespace {

constexpr std::size_t chunk_bits = 10;
constexpr std::size_t chunk_size = std::size_t{1} << chunk_bits;
constexpr std::size_t max_chunks = 1024;  // 1 Mi names

struct entry {
    const char* text = nullptr;  // escaped, owned by the table forever
    std::uint32_t size = 0;
};

struct table {
    std::mutex mutex;
    std::unordered_map<std::string, std::uint32_t> by_text;
    std::unordered_map<const void*, std::uint32_t> by_address;  // literals and functions
    std::array<std::atomic<entry*>, max_chunks> chunks{};
    std::uint32_t next = 1;  // 0 is "no name"
};

constexpr std::uint32_t exhausted_id = 1;

std::uint32_t add_locked(table& t, std::string_view text);

table& names() {
    // Never destroyed: used during exit and by the signal-time flush.
    static table* t = [] {
        auto* made = new table();
        add_locked(*made, "(names exhausted)");  // exhausted_id
        return made;
    }();
    return *t;
}

// Under the table's mutex.
std::uint32_t add_locked(table& t, std::string_view text) {
    std::string key(text);
    if (auto it = t.by_text.find(key); it != t.by_text.end()) return it->second;
    const std::uint32_t id = t.next;
    const std::size_t c = id >> chunk_bits;
    if (c >= max_chunks) return exhausted_id;
    entry* chunk = t.chunks[c].load(std::memory_order_relaxed);
    if (chunk == nullptr) {
        chunk = new entry[chunk_size];
        t.chunks[c].store(chunk, std::memory_order_release);
    }
    std::string esc;
    append_json_escaped(esc, text);
    char* copy = new char[esc.size() + 1];
    std::memcpy(copy, esc.data(), esc.size() + 1);
    chunk[id & (chunk_size - 1)] = entry{copy, static_cast<std::uint32_t>(esc.size())};
    ++t.next;
    t.by_text.emplace(std::move(key), id);
    return id;
}

// One decoded UTF-8 sequence's length at `p`, or 0 if it is not valid.
std::size_t utf8_length(const unsigned char* p, std::size_t left) {
    const unsigned char c = p[0];
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (left < n) return 0;
    for (std::size_t k = 1; k < n; ++k) {
        if ((p[k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[k] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return n;
}

// Drops a trailing parameter list: "ns::f(int, long)" -> "ns::f". Lambdas'
// and templates' own parentheses inside the name are kept.
std::string without_parameters(std::string s) {
    if (s.empty() || s.back() != ')') return s;
    int depth = 0;
    for (std::size_t i = s.size(); i-- > 0;) {
        if (s[i] == ')') ++depth;
        if (s[i] == '(' && --depth == 0) {
            if (i == 0) return s;
            s.resize(i);
            return s;
        }
    }
    return s;
}

int main_module(dl_phdr_info* info, std::size_t, void* data) {
    *static_cast<std::uintptr_t*>(data) = info->dlpi_addr;
    return 1;  // the first entry is the program itself
}

}  // namespace

void append_json_escaped(std::string& out, std::string_view text) {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    for (std::size_t i = 0; i < n;) {
        const unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
            ++i;
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
            ++i;
        } else if (c < 0x80) {
            out += static_cast<char>(c);
            ++i;
        } else if (std::size_t len = utf8_length(p + i, n - i); len != 0) {
            out.append(text.data() + i, len);
            i += len;
        } else {
            out += "\\ufffd";
            ++i;
        }
    }
}

std::uint32_t intern(std::string_view text) noexcept {
    table& t = names();
    try {
        std::lock_guard lock(t.mutex);
        return add_locked(t, text);
    } catch (...) {  // out of memory: the event goes unnamed rather than lost
        return 0;
    }
}

std::uint32_t intern_literal(const char* text) noexcept {
    table& t = names();
    try {
        std::lock_guard lock(t.mutex);
        if (auto it = t.by_address.find(text); it != t.by_address.end()) return it->second;
        const std::uint32_t id = add_locked(t, text);
        t.by_address.emplace(text, id);
        return id;
    } catch (...) {
        return 0;
    }
}

std::string_view escaped(std::uint32_t id) noexcept {
    if (id == 0) return "?";
    const std::size_t c = id >> chunk_bits;
    if (c >= max_chunks) return "?";
    const entry* chunk = names().chunks[c].load(std::memory_order_acquire);
    if (chunk == nullptr) return "?";
    const entry& e = chunk[id & (chunk_size - 1)];
    if (e.text == nullptr) return "?";
    return {e.text, e.size};
}

std::string function_name(const void* address) {
    Dl_info info{};
    if (::dladdr(address, &info) != 0) {
        if (info.dli_sname != nullptr) return without_parameters(demangle(info.dli_sname));
        // Not exported (a function of the program itself, not linked with
        // -rdynamic): look in the module's own symbol table.
        std::uintptr_t program_base = 0;
        ::dl_iterate_phdr(&main_module, &program_base);
        const auto base = reinterpret_cast<std::uintptr_t>(info.dli_fbase);
        const auto at = reinterpret_cast<std::uintptr_t>(address);
        const bool is_program =
            base == program_base || (info.dli_fname != nullptr && info.dli_fname[0] == '\0');
        const std::string path =
            is_program || info.dli_fname == nullptr ? "/proc/self/exe" : info.dli_fname;
        std::string sym = elf_symbol(path, at - base, at);
        if (!sym.empty()) return without_parameters(demangle(sym.c_str()));
        const char* module =
            info.dli_fname != nullptr ? std::strrchr(info.dli_fname, '/') : nullptr;
        char buf[64];
        std::snprintf(buf, sizeof buf, "+0x%llx", static_cast<unsigned long long>(at - base));
        return std::string("function@") +
               (module != nullptr ? module + 1
                                  : (info.dli_fname != nullptr ? info.dli_fname : "?")) +
               buf;
    }
    char buf[48];
    std::snprintf(buf, sizeof buf, "function@%p", address);
    return buf;
}

// ---- the hooks' name functions (detail/trace_hooks.hpp) ----

std::uint32_t intern_type_name(const char* mangled) noexcept {
    try {
        return intern(demangle(mangled));
    } catch (...) {
        return 0;
    }
}

std::uint32_t intern_function_name(const void* fn) noexcept {
    // A small per-thread cache in front of the table's lock: a program
    // submits few distinct functions, many times each.
    struct slot {
        const void* fn;
        std::uint32_t id;
    };
    thread_local std::array<slot, 64> cache{};
    slot& s = cache[(reinterpret_cast<std::uintptr_t>(fn) >> 4) & 63];
    if (s.fn == fn && s.id != 0) return s.id;
    table& t = names();
    std::uint32_t id = 0;
    try {
        {
            std::lock_guard lock(t.mutex);
            if (auto it = t.by_address.find(fn); it != t.by_address.end()) id = it->second;
        }
        if (id == 0) {
            std::string n = function_name(fn);  // file access: outside the lock
            std::lock_guard lock(t.mutex);
            id = add_locked(t, n);
            t.by_address.emplace(fn, id);
        }
    } catch (...) {
        return 0;
    }
    s = slot{fn, id};
    return id;
}

}  // namespace coexec::detail::trace
