// lib/trace/clock.cpp — now(): CLOCK_MONOTONIC through the TSC (clock.hpp).
#include "trace/clock.hpp"

#include <sys/prctl.h>
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

// The kernel reads time from the TSC: itself (tsc), or scaled by the
// hypervisor's pvclock (kvm-clock). A kvm-clock guest may have marked the
// raw TSC unstable (tsc=unstable, as on snapshot-restored VMs, where the
// TSC jumps), so the mapping is never trusted blindly: every new anchor
// checks the old one's prediction (reanchor), and a TSC that keeps
// disagreeing with clock_gettime is given up for the process.
bool kernel_clock_is_tsc_based() {
    std::ifstream f("/sys/devices/system/clocksource/clocksource0/current_clocksource");
    std::string source;
    f >> source;
    return source == "tsc" || source == "kvm-clock";
}

bool rdtsc_allowed() {
    int mode = 0;  // PR_TSC_SIGSEGV would make every rdtsc a SIGSEGV
    return ::prctl(PR_GET_TSC, &mode, 0, 0, 0) != 0 || mode == PR_TSC_ENABLE;
}

bool decide_tsc() noexcept {
    try {
        if (const char* v = std::getenv("COEXEC_TRACE_CLOCK"); v != nullptr) {
            if (std::string(v) == "monotonic") return false;
        }
        return rdtsc_allowed() && cpu_has_invariant_tsc() && kernel_clock_is_tsc_based();
    } catch (...) {
        return false;
    }
}

struct pair {
    std::uint64_t ticks;
    std::int64_t ns;
};

// Ticks between two rate bases (about 2 s at 2 GHz): the rate is measured
// over one to two of these, so its error is ~1e-7 of a window.
constexpr std::uint64_t rate_span = std::uint64_t{1} << 32;
// A rate measured over less than this is not used.
constexpr std::uint64_t min_rate_span = std::uint64_t{1} << 20;
constexpr std::uint64_t min_window = std::uint64_t{1} << 16;
constexpr std::uint64_t max_window = std::uint64_t{1} << 21;
// A pair read within this many ticks (~0.5 us; ~60 is usual) is exact
// enough to check the mapping with and to measure the rate from.
constexpr std::uint64_t tight_spread = 1024;
// How far a new anchor may differ from the old anchor's prediction before
// the rate is measured again from scratch, and how many such resets a
// process takes before it reads clock_gettime for good.
constexpr std::int64_t max_miss_ns = 2'000;
constexpr std::uint32_t max_resets = 8;

std::atomic<std::uint32_t> g_resets{0};
std::atomic<bool> g_abandoned{false};

// One clock_gettime bracketed by two TSC reads; the tightest of a few
// tries, so that a preemption in between does not skew the anchor.
// `spread`: the ticks between the two reads (the pair's uncertainty).
pair read_pair(std::uint64_t& spread) noexcept {
    pair best{0, 0};
    spread = ~std::uint64_t{0};
    for (int i = 0; i < 4; ++i) {
        const std::uint64_t t1 = __rdtsc();
        const std::int64_t ns = monotonic_now();
        const std::uint64_t t2 = __rdtsc();
        if (t2 - t1 < spread) {
            spread = t2 - t1;
            best = pair{t1 + (t2 - t1) / 2, ns};
        }
        if (spread < tight_spread) break;
    }
    return best;
}

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

// Folds anchor `p` into the rate and returns it. `reset`: the old rate
// mispredicted `p`; measure it again from `p`.
rate_reading update_rate(const pair& p, bool reset) noexcept {
    rate_state& r = rates();
    std::unique_lock lock(r.mutex, std::try_to_lock);
    if (!lock.owns_lock()) return {r.ns_per_tick.load(std::memory_order_relaxed), 0};
    // First, mispredicted, or the TSC went back while the time went on (a
    // restored VM snapshot): start over from this pair.
    if (reset || r.base.ticks == 0 || (p.ticks < r.base.ticks && p.ns > r.base.ns)) {
        r.base = r.next_base = p;
        r.ns_per_tick.store(0.0, std::memory_order_relaxed);
        return {};
    }
    // A pair read before another thread's newer one (it was preempted
    // before taking the lock): too old to move the bases with.
    if (p.ticks < r.next_base.ticks) return {r.ns_per_tick.load(std::memory_order_relaxed), 0};
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
    bool anchor_tight = false;  // the anchor's pair was read within tight_spread
};

thread_local thread_clock t_clock;

[[gnu::noinline]] std::int64_t reanchor(thread_clock& c) noexcept {
    std::uint64_t spread = 0;
    const pair p = read_pair(spread);
    // Check the mapping this thread used against clock_gettime, where both
    // pairs are tight and close enough for the rate's error not to count.
    bool reset = false;
    if (c.ns_per_tick > 0.0 && c.anchor_tight && spread < tight_spread &&
        p.ticks >= c.anchor_ticks && p.ticks - c.anchor_ticks <= 4 * max_window) {
        const auto predicted =
            c.anchor_ns + static_cast<std::int64_t>(static_cast<double>(p.ticks - c.anchor_ticks) *
                                                    c.ns_per_tick);
        const std::int64_t miss = predicted > p.ns ? predicted - p.ns : p.ns - predicted;
        if (miss > max_miss_ns) {
            reset = true;
            if (g_resets.fetch_add(1, std::memory_order_relaxed) + 1 >= max_resets)
                g_abandoned.store(true, std::memory_order_relaxed);
        }
    }
    const rate_reading rate =
        spread < tight_spread || reset
            ? update_rate(p, reset)
            : rate_reading{rates().ns_per_tick.load(std::memory_order_relaxed), 0};
    c.anchor_ticks = p.ticks;
    c.anchor_ns = p.ns;
    c.anchor_tight = spread < tight_spread;
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
    return tsc && !g_abandoned.load(std::memory_order_relaxed);
}

std::uint32_t clock_resets() noexcept {
    return g_resets.load(std::memory_order_relaxed);
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

std::uint32_t clock_resets() noexcept {
    return 0;
}

std::int64_t now() noexcept {
    return monotonic_now();
}

#endif

}  // namespace coexec::detail::trace
