// lib/trace/symbols.cpp — the name of a function that dladdr cannot name.
//
// dladdr only sees the dynamic symbol table, and a program's own functions
// are not in it unless it was linked with -rdynamic. Its .symtab section (in
// every unstripped build) names them, so the trace reads it: once per
// distinct function submitted, with every offset and size checked against
// the file.
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "trace/names.hpp"
#include "util/unique_fd.hpp"

namespace coexec::detail::trace {
namespace {

class mapped_file {
  public:
    explicit mapped_file(const std::string& path) {
        unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) return;
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0 || st.st_size <= 0) return;
        void* p = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE,
                         fd.get(), 0);
        if (p == MAP_FAILED) return;
        m_data = static_cast<const unsigned char*>(p);
        m_size = static_cast<std::size_t>(st.st_size);
    }
    mapped_file(const mapped_file&) = delete;
    mapped_file& operator=(const mapped_file&) = delete;
    ~mapped_file() {
        if (m_data != nullptr) ::munmap(const_cast<unsigned char*>(m_data), m_size);
    }

    /// A pointer to `count` objects of T at `offset`, or null if they do not fit.
    template <class T>
    const T* at(std::uint64_t offset, std::uint64_t count = 1) const {
        if (m_data == nullptr || offset > m_size || count > (m_size - offset) / sizeof(T)) {
            return nullptr;
        }
        return reinterpret_cast<const T*>(m_data + offset);
    }
    std::size_t size() const noexcept { return m_size; }

  private:
    const unsigned char* m_data = nullptr;
    std::size_t m_size = 0;
};

// The symbol of `table` (a SHT_SYMTAB or SHT_DYNSYM section) containing `addr`.
std::string find_in(const mapped_file& f, const Elf64_Shdr* sections, std::uint16_t count,
                    const Elf64_Shdr& table, std::uint64_t addr) {
    if (table.sh_entsize != sizeof(Elf64_Sym) || table.sh_link >= count) return {};
    const Elf64_Shdr& strtab = sections[table.sh_link];
    const auto* syms = f.at<Elf64_Sym>(table.sh_offset, table.sh_size / sizeof(Elf64_Sym));
    const char* strings = f.at<char>(strtab.sh_offset, strtab.sh_size);
    if (syms == nullptr || strings == nullptr || strtab.sh_size == 0) return {};
    const std::uint64_t n = table.sh_size / sizeof(Elf64_Sym);
    for (std::uint64_t i = 0; i < n; ++i) {
        const Elf64_Sym& s = syms[i];
        if (ELF64_ST_TYPE(s.st_info) != STT_FUNC || s.st_value == 0) continue;
        const std::uint64_t size = s.st_size != 0 ? s.st_size : 1;
        if (addr < s.st_value || addr - s.st_value >= size) continue;
        if (s.st_name >= strtab.sh_size) return {};
        const char* name = strings + s.st_name;
        const std::size_t len = ::strnlen(name, strtab.sh_size - s.st_name);
        if (len == strtab.sh_size - s.st_name) return {};  // not terminated inside the table
        return std::string(name, len);
    }
    return {};
}

}  // namespace

std::string elf_symbol(const std::string& path, std::uint64_t offset, std::uint64_t absolute) {
    mapped_file f(path);
    const auto* eh = f.at<Elf64_Ehdr>(0);
    if (eh == nullptr || std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shentsize != sizeof(Elf64_Shdr)) {
        return {};
    }
    const auto* sections = f.at<Elf64_Shdr>(eh->e_shoff, eh->e_shnum);
    if (sections == nullptr) return {};
    // A non-PIE executable's symbols hold absolute addresses.
    const std::uint64_t addr = eh->e_type == ET_EXEC ? absolute : offset;
    for (std::uint32_t want : {SHT_SYMTAB, SHT_DYNSYM}) {
        for (std::uint16_t i = 0; i < eh->e_shnum; ++i) {
            if (sections[i].sh_type != want) continue;
            std::string s = find_in(f, sections, eh->e_shnum, sections[i], addr);
            if (!s.empty()) return s;
        }
    }
    return {};
}

}  // namespace coexec::detail::trace
