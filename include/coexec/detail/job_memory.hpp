// detail/job_memory.hpp — where thread_pool jobs get their memory.
//
// A job (future state + callable + queue node, 100-200 bytes) is allocated by
// the submitting thread and freed by whichever thread drops the last
// reference, often another one. Through glibc's malloc a burst of 100k jobs
// is allocated fresh, freed back across threads (each free taking the
// allocating arena's lock), and the top of the heap handed back to the
// kernel, so the next burst faults its pages in again. Here freed jobs stay
// in a small per-thread cache by size; a cache that overflows passes a batch
// to a shared list, where a thread whose cache is empty takes a batch from.
// The shared list keeps at most a bounded amount (see lib/core/job_memory.cpp);
// beyond it, and at thread exit beyond it, blocks go back to malloc.
#pragma once

#include <cstddef>

namespace coexec::detail::job_memory {

/// `n` bytes for a job (aligned as operator new). Throws std::bad_alloc.
void* allocate(std::size_t n);
/// Returns what allocate(n) gave, with the same `n`.
void deallocate(void* p, std::size_t n) noexcept;

/// For tests: how many regions fresh blocks have been carved from so far in
/// this process (0 where the allocator is bypassed or the cache is off).
std::size_t mapped_regions() noexcept;

}  // namespace coexec::detail::job_memory
