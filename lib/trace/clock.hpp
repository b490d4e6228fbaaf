// lib/trace/clock.hpp — the trace's clock: CLOCK_MONOTONIC nanoseconds, read
// for the price of a TSC read.
//
// A traced thread-pool task reads the clock three times (submit, start,
// end), and at ~28 ns a clock_gettime on a KVM guest (kvm-clock: a fenced
// rdtsc plus the pvclock scaling) those reads were most of what tracing
// cost an empty task. Where the TSC ticks at a constant rate on every core
// (x86-64 with constant_tsc and nonstop_tsc, rdtsc allowed, the kernel's
// clocksource tsc or kvm-clock), now() reads the TSC unfenced (~11 ns) and
// maps it to CLOCK_MONOTONIC through an anchor pair (ticks, ns) of its own
// thread, taken again with clock_gettime every window of ticks (at most
// 2^21, about a millisecond), at a rate measured across the process over
// seconds. Each new anchor checks the old one's prediction: off by more
// than 2 us (a TSC jump on a restored VM snapshot, a skewed core, a slewed
// clock), the rate is measured again from scratch, and after 8 such resets
// the process reads clock_gettime for good.
//
// So timestamps typically stay within tens of nanoseconds of
// clock_gettime, never go backwards on one thread, and agree with process
// workers, which read clock_gettime. Across threads two events closer than
// that error may be ordered either way. Elsewhere, and with
// COEXEC_TRACE_CLOCK=monotonic, now() is clock_gettime(CLOCK_MONOTONIC).
#pragma once

#include <cstdint>

namespace coexec::detail::trace {

/// clock_gettime(CLOCK_MONOTONIC) in nanoseconds.
std::int64_t monotonic_now() noexcept;

/// Whether now() reads the TSC (false: it is monotonic_now()).
bool clock_uses_tsc() noexcept;

/// How often the TSC mapping mispredicted clock_gettime and was measured
/// again (at 8 the process stops using the TSC).
std::uint32_t clock_resets() noexcept;

// now() itself is declared in coexec/detail/trace_hooks.hpp.

}  // namespace coexec::detail::trace
