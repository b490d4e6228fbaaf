#include "process/spare_warm_up.hpp"

#include <link.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>

#include "process/worker_loop.hpp"

// Linux 5.14; older kernels answer EINVAL and the spare starts cold, as before.
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace coexec::detail::proc {
namespace {

using address = std::uintptr_t;

constexpr address page = 4096;
constexpr address read_window = address{4} << 20;  // at most, per read-only segment
constexpr address write_window = address{128} << 10;
constexpr std::size_t stack_bytes = std::size_t{64} << 10;
constexpr address step = address{256} << 10;  // faulted between two looks at the socket
constexpr int quiet_ms = 1;                   // unasked this long: warm up

struct warm_range {
    address begin = 0;
    address end = 0;
    bool write = false;
};

constexpr std::size_t max_ranges = 24;
// Written by the fork server before its first fork, read by its spares.
warm_range g_ranges[max_ranges];
std::size_t g_count = 0;

// Code each warmed object holds: the worker loop, the C library, the C++ runtime.
struct anchors {
    address at[3];
};

address page_down(address a) noexcept {
    return a & ~(page - 1);
}
address page_up(address a) noexcept {
    return (a + page - 1) & ~(page - 1);
}

void add(address begin, address end, bool write) noexcept {
    if (begin >= end || g_count == max_ranges) return;
    g_ranges[g_count++] = {begin, end, write};
}

int collect(dl_phdr_info* info, std::size_t, void* data) noexcept {
    const auto& a = *static_cast<const anchors*>(data);
    // The anchor inside this object, if any.
    address inside = 0;
    for (int h = 0; h < info->dlpi_phnum; ++h) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[h];
        if (ph.p_type != PT_LOAD) continue;
        const address lo = info->dlpi_addr + ph.p_vaddr;
        for (address x : a.at)
            if (x >= lo && x < lo + ph.p_memsz) inside = x;
    }
    if (inside == 0) return 0;
    // The start of the writable segment that relocation made read-only: a
    // write there is refused, and MADV_POPULATE_WRITE would stop at once.
    address relro_end = 0;
    for (int h = 0; h < info->dlpi_phnum; ++h) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[h];
        if (ph.p_type == PT_GNU_RELRO)
            relro_end = page_down(info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
    }
    for (int h = 0; h < info->dlpi_phnum; ++h) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[h];
        if (ph.p_type != PT_LOAD) continue;
        address lo = page_down(info->dlpi_addr + ph.p_vaddr);
        address hi = page_up(info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
        if ((ph.p_flags & PF_W) != 0) {
            if (relro_end > lo && relro_end <= hi) {
                add(lo, relro_end, false);
                lo = relro_end;
            }
            add(lo, std::min(hi, lo + write_window), true);
            continue;
        }
        if (hi - lo > read_window) {
            // A large program: the window around the worker's code, or the
            // start (headers, symbol tables) of a segment without it.
            const address mid = inside >= lo && inside < hi ? inside : lo + read_window / 2;
            lo = std::max(lo, page_down(mid - std::min(mid - lo, read_window / 2)));
            hi = std::min(hi, lo + read_window);
        }
        add(lo, hi, false);
    }
    return 0;
}

[[gnu::noinline]] void write_stack() noexcept {
    char bytes[stack_bytes];
    for (std::size_t i = 0; i < stack_bytes; i += page)
        bytes[i] = 0;
    asm volatile("" : : "r"(bytes) : "memory");  // the writes are the point: keep them
}

}  // namespace

void find_spare_warm_up() noexcept {
    g_count = 0;
    void (*terminate)() noexcept = &std::terminate;
    anchors a{{reinterpret_cast<address>(&worker_main), reinterpret_cast<address>(&::recvmsg),
               reinterpret_cast<address>(terminate)}};
    ::dl_iterate_phdr(collect, &a);
}

void warm_up_spare(int socket) noexcept {
    pollfd p{socket, POLLIN, 0};
    const auto asked = [&](int timeout_ms) noexcept {
        p.revents = 0;
        return ::poll(&p, 1, timeout_ms) != 0;  // a channel, a hang-up or an error: go on
    };
    if (asked(quiet_ms)) return;
    write_stack();
    for (std::size_t i = 0; i < g_count; ++i) {
        const warm_range& r = g_ranges[i];
        for (address at = r.begin; at < r.end; at += step) {
            if (asked(0)) return;
            ::madvise(reinterpret_cast<void*>(at), std::min(step, r.end - at),
                      r.write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
        }
    }
}

}  // namespace coexec::detail::proc
