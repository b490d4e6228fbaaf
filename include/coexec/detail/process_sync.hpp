// detail/process_sync.hpp — process-shared mutex and condition variable on
// raw shared memory (lib/shm/process_sync.cpp; no OS types in public headers).
#pragma once

#include <chrono>
#include <cstddef>

namespace coexec::detail {

/// Bytes (and alignment, at most 16) a process-shared robust mutex needs.
std::size_t process_mutex_bytes() noexcept;
/// Initialises a process-shared, robust mutex at `where` (zeroed memory).
void process_mutex_init(void* where);
/// Locks; if the previous owner died holding it, takes it over (the data it
/// protected may be half-updated) and returns false, else true.
bool process_mutex_lock(void* m);
bool process_mutex_try_lock(void* m);
void process_mutex_unlock(void* m);

std::size_t process_cond_bytes() noexcept;
/// A process-shared condition variable timed on CLOCK_MONOTONIC (steady_clock).
void process_cond_init(void* where);
void process_cond_wait(void* cond, void* mutex);
/// False on timeout.
bool process_cond_wait_until(void* cond, void* mutex,
                             std::chrono::steady_clock::time_point deadline);
void process_cond_notify_all(void* cond);

/// Rounds `n` up to a multiple of 64 (a cache line; keeps every part aligned).
constexpr std::size_t align_up(std::size_t n) noexcept {
    return (n + 63) & ~std::size_t{63};
}

}  // namespace coexec::detail
