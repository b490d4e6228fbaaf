#include "trace/rank_link.hpp"

#include <algorithm>
#include <limits>

#include "trace/names.hpp"
#include "trace/recorder.hpp"

namespace coexec::detail::trace::ranks {
namespace {

constexpr std::size_t max_host_bytes = 64;
constexpr std::size_t max_reason_bytes = 256;
constexpr std::uint64_t rank_sort_base = 1'000'000;  // after this host's pools' workers

std::int64_t ns(clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::int64_t saturating_sub(std::int64_t a, std::int64_t b) {
    std::int64_t r = 0;
    if (!__builtin_sub_overflow(a, b, &r)) return r;
    return b < 0 ? std::numeric_limits<std::int64_t>::max()
                 : std::numeric_limits<std::int64_t>::min();
}

std::string micros(std::int64_t v) {
    // "12.345 us": the bound is what matters, nanoseconds would be noise.
    const bool negative = v < 0;
    const std::uint64_t a =
        negative ? 0 - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
    std::string frac = std::to_string(a % 1000);
    frac.insert(0, 3 - frac.size(), '0');
    return (negative ? "-" : "") + std::to_string(a / 1000) + "." + frac + " us";
}

}  // namespace

clock_estimate estimate_offset(std::span<const clock_sample> samples) noexcept {
    clock_estimate best;
    std::int64_t best_rtt = std::numeric_limits<std::int64_t>::max();
    for (const clock_sample& s : samples) {
        std::int64_t rtt = 0;
        if (__builtin_sub_overflow(s.received, s.sent, &rtt) || rtt < 0 || rtt >= best_rtt)
            continue;
        best_rtt = rtt;
        // The midpoint without overflow: sent + rtt / 2.
        best.offset = saturating_sub(s.remote, s.sent + rtt / 2);
        best.error = (rtt + 1) / 2;
        best.known = true;
    }
    if (best.known && best.offset >= -best.error && best.offset <= best.error) best.offset = 0;
    return best;
}

std::int64_t to_local(std::int64_t x, const clock_estimate& c, std::int64_t lo,
                      std::int64_t hi) noexcept {
    if (hi < lo) hi = lo;
    return std::clamp(saturating_sub(x, c.offset), lo, hi);
}

void rank_track::identify(int rank, std::uint64_t pid, std::string_view host,
                          clock_estimate clock) {
    m_rank = rank;
    m_pid = pid;
    m_host.assign(host.substr(0, max_host_bytes));
    m_clock = clock;
    m_lanes.clear();
    m_described.clear();
}

void rank_track::describe(std::uint32_t lane, std::uint32_t worker, bool thread) {
    const std::uint64_t session = current_session().number;
    if (m_described.size() <= lane) m_described.resize(lane + 1, 0);
    if (m_described[lane] == session) return;
    m_described[lane] = session;
    const std::string who = "rank " + std::to_string(m_rank);
    std::string thread_name;
    if (lane == 0) {
        thread_name = "serve loop (pid " + std::to_string(m_pid) + ")";
    } else if (lane == max_remote_lanes - 1) {
        thread_name = "more workers";
    } else {
        thread_name = thread ? "thread " + std::to_string(worker)
                             : "worker (pid " + std::to_string(worker) + ")";
    }
    record r;
    r.what = kind::worker_track;
    r.ts = now();
    r.track = remote_track(static_cast<std::uint32_t>(m_rank), lane);
    r.name = intern(who + " (" + m_host + ")");
    r.aux = intern(thread_name);
    r.c = rank_sort_base + static_cast<std::uint64_t>(m_rank);
    push(r);
    if (lane != 0) return;
    // Once per session, on the serve loop's track: how its times were aligned.
    record i;
    i.what = kind::instant;
    i.ts = r.ts;
    i.track = r.track;
    i.name = intern_literal("clock offset");
    i.aux = intern(
        !m_clock.known
            ? std::string("unknown: the rank's times are only clamped into each task's round trip")
        : m_clock.offset == 0 ? "the same clock as rank 0 (within " + micros(m_clock.error) + ")"
                              : "rank clock - rank 0 clock = " + micros(m_clock.offset) + " +/- " +
                                    micros(m_clock.error) +
                                    " (Cristian's method; times clamped into each round trip)");
    push(i);
}

std::uint32_t rank_track::lane(std::uint32_t worker, bool thread) {
    describe(0, 0, false);  // the rank's own track first (and the clock estimate)
    if (worker == 0) return 0;
    const std::uint64_t key = (thread ? std::uint64_t{1} << 32 : 0) | worker;
    std::uint32_t lane = max_remote_lanes - 1;  // past the bound: one shared track
    if (auto it = m_lanes.find(key); it != m_lanes.end()) {
        lane = it->second;
    } else if (m_lanes.size() + 2 < max_remote_lanes) {
        lane = static_cast<std::uint32_t>(m_lanes.size() + 1);
        m_lanes.emplace(key, lane);
    }
    describe(lane, worker, thread);
    return lane;
}

std::int64_t rank_track::task(const task_ticket& t, clock::time_point sent, const remote_span& s,
                              std::uint8_t flags) noexcept {
    if (!on() || static_cast<std::uint32_t>(m_rank) >= max_remote_ranks) return 0;
    try {
        const std::int64_t lo = ns(sent);
        const std::int64_t hi = std::max(lo, now());
        const std::int64_t received = to_local(s.received, m_clock, lo, hi);
        const std::int64_t start =
            s.started != 0 ? to_local(s.started, m_clock, received, hi) : received;
        const std::int64_t end = to_local(s.finished, m_clock, start, hi);
        record r = task_record(t, start, end);
        if (r.name == 0) r.name = intern_literal("mpi_pool task");
        r.track = remote_track(static_cast<std::uint32_t>(m_rank), lane(s.worker, s.thread));
        // One reason it ended, at most (each is one "ended" argument).
        r.flags = (flags & task_flag::died) != 0 ? task_flag::died : flags & task_flag::killed;
        push(r);
        return end;
    } catch (...) {  // out of memory: the span is lost
        return 0;
    }
}

void rank_track::fault(const char* what, std::string_view reason, std::uint32_t task,
                       std::uint32_t worker, bool thread, std::int64_t at) noexcept {
    if (!on() || static_cast<std::uint32_t>(m_rank) >= max_remote_ranks) return;
    try {
        record r;
        r.what = kind::instant;
        r.ts = at != 0 ? at : now();
        r.track = remote_track(static_cast<std::uint32_t>(m_rank), lane(worker, thread));
        r.name = intern_literal(what);
        r.aux = intern(reason.substr(0, max_reason_bytes));
        r.c = task;
        push(r);
    } catch (...) {
    }
}

void name_progress_thread(const std::string& pool) noexcept {
    try {
        name_this_thread((pool + " progress").c_str());
    } catch (...) {
    }
}

}  // namespace coexec::detail::trace::ranks
