#include "trace/process_link.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "trace/clock.hpp"
#include "trace/names.hpp"
#include "trace/recorder.hpp"
#include "util/signal_name.hpp"

namespace coexec::detail::trace::link {
namespace {

// The one record a worker sends per task.
struct wire_span {
    std::uint32_t magic;
    std::uint32_t what;
    std::int64_t begin;
    std::int64_t end;
};
static_assert(sizeof(wire_span) == 24);
constexpr std::uint32_t wire_magic = 0x52545843;  // "CXTR"
constexpr std::uint32_t wire_task = 1;

std::int64_t ns(clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// Now, read as `dispatched` was (clock_gettime, not now(), which may be a
// few ns off: clock.hpp), and never before it: [dispatched, this] is never
// an empty interval.
std::int64_t now_after(clock::time_point dispatched) {
    return std::max(ns(dispatched), monotonic_now());
}

void describe_worker(const executor_track* pool, std::size_t slot, pid_t pid) {
    const std::string pool_name = pool != nullptr ? pool->text() : std::string("process_pool");
    record r;
    r.what = kind::worker_track;
    r.ts = now();
    r.track = static_cast<std::uint32_t>(pid);
    r.name = intern(pool_name + " worker " + std::to_string(slot));
    r.aux = intern("worker " + std::to_string(slot) + " (pid " + std::to_string(pid) + ")");
    // Below the parent process (sort index 0), pool by pool, slot by slot.
    r.c = (pool != nullptr ? pool->number() : 0) * 1000 + slot + 1;
    push(r);
}

void instant(pid_t pid, const char* what, const std::string& reason, std::uint32_t task) {
    record r;
    r.what = kind::instant;
    r.ts = now();
    r.track = static_cast<std::uint32_t>(pid);
    r.name = intern_literal(what);
    r.aux = intern(reason);
    r.c = task;
    push(r);
}

void task_span(pid_t pid, const task_ticket& t, std::int64_t begin, std::int64_t end,
               std::uint8_t flags) {
    record r = task_record(t, begin, end);
    if (r.name == 0) r.name = intern_literal("process_pool task");
    r.track = static_cast<std::uint32_t>(pid);
    r.flags = flags;
    push(r);
}

std::string death_reason(int signal, int exit_code) {
    if (signal != 0) {
        return "killed by signal " + std::to_string(signal) + " (" + signal_name(signal) + ")";
    }
    if (exit_code >= 0) return "exited with status " + std::to_string(exit_code);
    return "ended (status unknown)";
}

}  // namespace

void name_supervisor(const executor_track* pool) noexcept {
    if (pool == nullptr) return;
    try {
        name_this_thread((pool->text() + " supervisor").c_str());
    } catch (...) {
    }
}

void sync_worker(worker_state& w, proc::channel& ch, const executor_track* pool, std::size_t slot,
                 pid_t pid) {
    const bool recording = on();
    const std::uint64_t session = current_session().number;
    if (recording == w.told_on && (!recording || w.told_session == session)) return;
    const std::byte flag{static_cast<unsigned char>(recording ? 1 : 0)};
    ch.send(proc::msg_kind::trace_config, 0, std::span<const std::byte>(&flag, 1));
    w.told_on = recording;
    w.told_session = session;
    if (recording) {
        try {
            describe_worker(pool, slot, pid);
        } catch (...) {  // out of memory: the track goes unnamed
        }
    }
}

void worker_span(std::span<const std::byte> bytes, const task_ticket& t,
                 clock::time_point dispatched, pid_t pid) noexcept {
    if (!on() || bytes.size() != sizeof(wire_span)) return;
    wire_span s;
    std::memcpy(&s, bytes.data(), sizeof s);  // read the shared bytes once
    if (s.magic != wire_magic || s.what != wire_task) return;
    // Only inside [dispatch, now], whatever the worker wrote.
    const std::int64_t lo = ns(dispatched);
    const std::int64_t hi = now_after(dispatched);
    const std::int64_t begin = std::clamp(s.begin, lo, hi);
    const std::int64_t end = std::clamp(s.end, begin, hi);
    task_span(pid, t, begin, end, 0);
}

void worker_died(pid_t pid, const task_ticket* t, clock::time_point dispatched, int signal,
                 int exit_code, bool expected) noexcept {
    if (!on()) return;
    try {
        if (t != nullptr)
            task_span(pid, *t, ns(dispatched), now_after(dispatched), task_flag::died);
        if (!expected || t != nullptr) {
            instant(pid, "worker died", death_reason(signal, exit_code),
                    t != nullptr ? t->name : 0);
        }
    } catch (...) {
    }
}

void deadline_kill(pid_t pid, const task_ticket& t, clock::time_point dispatched) noexcept {
    if (!on()) return;
    try {
        task_span(pid, t, ns(dispatched), now_after(dispatched), task_flag::killed);
        instant(pid, "deadline kill", "the task ran past its deadline: SIGTERM, then SIGKILL",
                t.name);
    } catch (...) {
    }
}

void respawned(const executor_track* pool, std::size_t slot, pid_t pid, pid_t old_pid) noexcept {
    if (!on()) return;
    try {
        describe_worker(pool, slot, pid);
        instant(pid, "worker respawned", "replaces worker pid " + std::to_string(old_pid), 0);
    } catch (...) {
    }
}

void task_timer::configure(std::span<const std::byte> bytes) noexcept {
    m_on = bytes.size() == 1 && bytes[0] == std::byte{1};
}

// A worker reads clock_gettime itself, not now(): one pair per task is
// cheap next to the round trip, needs no calibration of its own in a fresh
// process, and reads nothing from /proc (which a sandbox may refuse).
void task_timer::begin() noexcept {
    m_begin = m_on ? monotonic_now() : 0;
}

void task_timer::ship(proc::channel& ch, std::uint64_t task_id) {
    if (m_begin == 0) return;
    const wire_span s{wire_magic, wire_task, m_begin, monotonic_now()};
    m_begin = 0;
    ch.send(proc::msg_kind::trace_span, task_id, std::as_bytes(std::span(&s, 1)));
}

}  // namespace coexec::detail::trace::link
