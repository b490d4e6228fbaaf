// lib/trace/names.hpp — the trace's string table.
//
// Events carry names as 32-bit ids into one process-wide table, so a record
// stays fixed-size and a name is escaped for JSON once, when it is interned.
// Interning takes a mutex; reading an entry does not (the writer thread, and
// the signal-time flush, must never wait for a thread that was interrupted
// while interning): entries live in chunks that are never moved or freed,
// and an id reaches a reader only through a record published with release
// order after the entry was written.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace coexec::detail::trace {

/// Interns `text` (any bytes; invalid UTF-8 is replaced) and returns its id,
/// never 0. Past the table's bound (1 Mi names) returns the id of "(names
/// exhausted)".
std::uint32_t intern(std::string_view text) noexcept;

/// Interns a string literal (or any string that outlives the program),
/// cached by address: cheaper than intern() when the same pointer recurs.
std::uint32_t intern_literal(const char* text) noexcept;

/// The JSON-escaped text of `id` (without quotes); "?" for an unknown id.
std::string_view escaped(std::uint32_t id) noexcept;

/// Appends `text` to `out` as the inside of a JSON string: quotes,
/// backslashes and control characters escaped, invalid UTF-8 replaced by U+FFFD.
void append_json_escaped(std::string& out, std::string_view text);

/// The name of the function at `address`: its symbol, demangled, without the
/// parameter list; "function@module+0xoffset" if it has no symbol.
std::string function_name(const void* address);

/// The symbol (mangled) of the function containing `offset` in the ELF file
/// at `path` (its .symtab, then .dynsym); empty if none. `offset` is the
/// address minus the module's load base, or the absolute address for a
/// non-PIE executable (`absolute`). Bounds-checked against the file.
std::string elf_symbol(const std::string& path, std::uint64_t offset, std::uint64_t absolute);

}  // namespace coexec::detail::trace
