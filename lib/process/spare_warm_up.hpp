// lib/process/spare_warm_up.hpp — a spare faults in, while it waits, the
// pages a worker's first steps touch.
//
// A fork copies no page tables for file-backed mappings the parent never
// wrote (code, read-only data) and shares written pages copy-on-write. So
// a spare handed its channel took ~40 page faults between its channel and
// its first result: code it runs for the first time, symbol lookups of lazy
// binding, the first write to each data and stack page. On a 2-vCPU guest
// that is most of a spare's part of a pool's start. Taken while the spare
// waits, they are paid before any pool asks for it.
//
// Only a spare left unasked for 1 ms warms up, and it stops as soon as its
// channel comes: warming takes ~0.2–0.3 ms of a core, and spares forked
// between pools made back to back (the refills) would take it from the next
// pool's start. Measured (later pools, start -> first result, medians of
// 105 alternating): 5 ms apart, 0.60 ms cold, 0.45 ms warmed; back to back,
// warmed at once, 0.47 -> 0.66 ms, while after 1 ms of quiet 2-4 spares in
// 100 pools warm up.
//
// What is warmed: the read-only segments of the objects a worker runs in
// (the one holding coexec, the C library and the C++ runtime; in a segment
// larger than 4 MiB, the 4 MiB around the code the worker runs), the first
// 128 KiB of each of their writable segments, and 64 KiB of stack. All of
// it is shared or small: a worker's private memory grows by what it copies
// of the writable windows only.
#pragma once

namespace coexec::detail::proc {

/// In the program, just before it forks the fork server (whose spares read
/// the ranges): finds the ranges to warm (dl_iterate_phdr; allocates nothing).
void find_spare_warm_up() noexcept;

/// In a spare, before it waits for a channel on `socket`: once none came
/// for 1 ms, faults the ranges in (madvise) and writes its stack, until one
/// comes. Only system calls: async-signal-safe.
void warm_up_spare(int socket) noexcept;

}  // namespace coexec::detail::proc
