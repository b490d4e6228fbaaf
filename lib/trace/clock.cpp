// lib/trace/clock.cpp — now(): CLOCK_MONOTONIC through the TSC (clock.hpp).
#include "trace/clock.hpp"

#include <time.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>

#include "coexec/detail/trace_hooks.hpp"

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace coexec::detail::trace {

std::int64_t monotonic_now() noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

#if defined(__x86_64__)

namespace {

bool cpu_has_invariant_tsc() {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
        if (line.rfind("flags", 0) != 0) continue;
        std::istringstream words(line);
        bool constant = false, nonstop = false;
        for (std::string w; words >> w;) {
            constant = constant || w == "constant_tsc";
            nonstop = nonstop || w == "nonstop_tsc";
        }
        return constant && nonstop;
    }
    return false;
}

// The kernel trusts the TSC itself (tsc), or through the hypervisor's
// stable pvclock (kvm-clock): it already turned away a TSC that differs
// between cores or stops in sleep states.
bool kernel_clock_is_tsc_based() {
    std::ifstream f("/sys/devices/system/clocksource/clocksource0/current_clocksource");
    std::string source;
    f >> source;
    return source == "tsc" || source == "kvm-clock";
}

bool decide_tsc() noexcept {
    try {
        if (const char* v = std::getenv("COEXEC_TRACE_CLOCK"); v != nullptr) {
            if (std::string(v) == "monotonic") return false;
        }
        return cpu_has_invariant_tsc() && kernel_clock_is_tsc_based();
    } catch (...) {
        return false;
    }
}

struct pair {
    std::uint64_t ticks;
    std::int64_t ns;
};

// One clock_gettime bracketed by two TSC reads; the tightest of a few
// tries, so that a preemption in between does not skew the anchor.
pair read_pair() noexcept {
    pair best{0, 0};
    std::uint64_t best_spread = ~std::uint64_t{0};
    for (int i = 0; i < 4; ++i) {
        const std::uint64_t t1 = __rdtsc();
        const std::int64_t ns = monotonic_now();
        const std::uint64_t t2 = __rdtsc();
        if (t2 - t1 < best_spread) {
            best_spread = t2 - t1;
            best = pair{t1 + (t2 - t1) / 2, ns};
        }
        if (best_spread < 4096) break;
    }
    return best;
}

// Ticks between two rate bases (about 2 s at 2 GHz): the rate is measured
// over one to two of these, so its error is ~1e-7 of a window.
constexpr std::uint64_t rate_span = std::uint64_t{1} << 32;
// A rate measured over less than this is not used.
constexpr std::uint64_t min_rate_span = std::uint64_t{1} << 20;
constexpr std::uint64_t min_window = std::uint64_t{1} << 16;
constexpr std::uint64_t max_window = std::uint64_t{1} << 21;

// The process-wide rate, nanoseconds per tick, measured from `base` (the
// first anchor, later one taken at least rate_span ticks before the latest).
struct rate_state {
    std::mutex mutex;
    pair base{0, 0};
    pair next_base{0, 0};
    std::atomic<double> ns_per_tick{0.0};
};

rate_state& rates() {
    static rate_state* r = new rate_state;  // never destroyed: used by exiting threads
    return *r;
}

struct rate_reading {
    double ns_per_tick = 0.0;  // 0: none yet
    std::uint64_t span = 0;    // ticks it was measured over (0: not known this time)
};

// Folds anchor `p` into the rate and returns it.
rate_reading update_rate(const pair& p) noexcept {
    rate_state& r = rates();
    std::unique_lock lock(r.mutex, std::try_to_lock);
    if (!lock.owns_lock()) return {r.ns_per_tick.load(std::memory_order_relaxed), 0};
    if (r.base.ticks == 0 || p.ticks < r.base.ticks) {  // first, or the TSC was reset
        r.base = r.next_base = p;
        r.ns_per_tick.store(0.0, std::memory_order_relaxed);
        return {};
    }
    const std::uint64_t span = p.ticks - r.base.ticks;
    if (span >= min_rate_span) {
        r.ns_per_tick.store(static_cast<double>(p.ns - r.base.ns) / static_cast<double>(span),
                            std::memory_order_relaxed);
    }
    // Move the base forward now and then, so the rate follows a slow change
    // (NTP slewing CLOCK_MONOTONIC) yet is always measured over a long span.
    if (p.ticks - r.next_base.ticks >= rate_span) {
        r.base = r.next_base;
        r.next_base = p;
    }
    return {r.ns_per_tick.load(std::memory_order_relaxed), span};
}

struct thread_clock {
    std::uint64_t anchor_ticks = 0;
    std::int64_t anchor_ns = 0;
    std::uint64_t window = 0;  // 0: no anchor yet
    double ns_per_tick = 0.0;
    std::int64_t last = 0;
};

thread_local thread_clock t_clock;

[[gnu::noinline]] std::int64_t reanchor(thread_clock& c) noexcept {
    const pair p = read_pair();
    const rate_reading rate = update_rate(p);
    c.anchor_ticks = p.ticks;
    c.anchor_ns = p.ns;
    c.ns_per_tick = rate.ns_per_tick;
    if (rate.ns_per_tick > 0.0) {
        // The rate's error shrinks as its span grows: a window of 1/64 of
        // the span keeps the error it adds to ~1 ns.
        std::uint64_t w = rate.span != 0 ? rate.span / 64 : min_window;
        if (w < min_window) w = min_window;
        if (w > max_window) w = max_window;
        c.window = w;
    } else {
        c.window = 1;  // read clock_gettime again next time, until there is a rate
    }
    if (p.ns > c.last) c.last = p.ns;
    return c.last;
}

}  // namespace

bool clock_uses_tsc() noexcept {
    static const bool tsc = decide_tsc();
    return tsc;
}

std::int64_t now() noexcept {
    if (!clock_uses_tsc()) return monotonic_now();
    thread_clock& c = t_clock;
    const std::uint64_t ticks = __rdtsc();
    const std::uint64_t elapsed = ticks - c.anchor_ticks;
    if (elapsed >= c.window) [[unlikely]]
        return reanchor(c);
    std::int64_t v =
        c.anchor_ns + static_cast<std::int64_t>(static_cast<double>(elapsed) * c.ns_per_tick);
    if (v < c.last)
        v = c.last;  // never backwards on a thread (a new anchor may land a few ns early)
    c.last = v;
    return v;
}

#else  // not x86-64: the vDSO's clock_gettime is what there is

bool clock_uses_tsc() noexcept {
    return false;
}

std::int64_t now() noexcept {
    return monotonic_now();
}

#endif

}  // namespace coexec::detail::trace
