// lib/trace/recorder.hpp — per-thread event buffers and the trace session.
//
// Each thread that records owns one thread_buffer: a single-producer
// single-consumer ring of fixed-size records. The owner appends (never
// blocks: a full ring drops the record and counts it); the writer thread
// (writer.cpp) is the only consumer. Buffers are never freed: a thread that
// exits abandons its buffer, the writer drains it and marks it free, and the
// next thread that starts recording takes it over. So memory is bounded by
// the most threads recording at once times the buffer size, and the writer
// and the signal-time flush walk the list without a lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "coexec/detail/trace_hooks.hpp"
#include "coexec/trace.hpp"

namespace coexec::detail::trace {

/// What a record is; the writer turns each into one or more JSON events (json.cpp).
enum class kind : std::uint8_t {
    /// A task's run: ts..a; b = flow, c = submitted, aux = submitter tid;
    /// flags: see task_flag. With a track, it ran in that worker process.
    task = 1,
    /// A coroutine task's later run: ts..a, b = flow.
    resumed_run,
    /// A coroutine that awaited task `b` (the flow) resumed at ts.
    awaited,
    /// An async slice begins (ph b): b = id, c = argument; flags: category.
    async_begin,
    /// An async slice ends (ph e): b = id, c = argument (a result).
    async_end,
    /// An instant event (ph i): aux = the reason's name id, c = a number
    /// (a pid, a count), flags: instant_flag.
    instant,
    /// An executor's counters (ph C): a = queued, b = in flight, c = workers alive.
    counter,
    /// Names the worker process `track`: name = process name, aux = thread name.
    worker_track,
    // Made by the writer, only in the spill (spill.hpp), never in a buffer:
    /// The recording thread's track name is `name`.
    thread_name,
    /// The thread's full buffer dropped `c` events, noticed at ts.
    dropped,
    /// The records after it are thread b's of process a.
    spill_thread,
};

/// flags of kind::task.
namespace task_flag {
inline constexpr std::uint8_t coroutine = 1;  // the first run of a coroutine task
inline constexpr std::uint8_t died = 2;       // its worker died during it
inline constexpr std::uint8_t killed = 4;     // stopped by its deadline or a cancel
}  // namespace task_flag

/// Categories of async slices (flags of async_begin/async_end).
enum class async_cat : std::uint8_t { io = 1, stage = 2 };

struct record {
    std::int64_t ts = 0;
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    std::uint64_t c = 0;
    std::uint32_t name = 0;
    std::uint32_t aux = 0;
    std::uint32_t track = 0;  // 0: the recording thread; else a worker's pid, or a remote_track
    kind what = kind::task;
    std::uint8_t flags = 0;
    std::uint16_t reserved = 0;
};
static_assert(sizeof(record) == 48, "the documented bound counts 48-byte events");

/// The span of task `t` from `begin` to `end`, with its flow, submit time,
/// name and submitter; on the recording thread's track unless the caller
/// sets `track`.
inline record task_record(const task_ticket& t, std::int64_t begin, std::int64_t end) noexcept {
    record r;
    r.what = kind::task;
    r.ts = begin;
    r.a = static_cast<std::uint64_t>(end);
    r.b = t.flow;
    r.c = static_cast<std::uint64_t>(t.submitted);
    r.name = t.name;
    r.aux = t.submitter;
    return r;
}

/// Tracks of processes on other hosts (mpi_pool's worker ranks), whose pids
/// may collide with this host's: ids that no Linux pid reaches (pid_max is
/// at most 2^22). Track (tid) 2^31 | rank << 12 | lane, in the file's process
/// 2^30 | rank. Ranks from 2^19 up, and lanes from 2^12 up, are not drawn.
inline constexpr std::uint32_t remote_track_bit = std::uint32_t{1} << 31;
inline constexpr std::uint32_t remote_process_bit = std::uint32_t{1} << 30;
inline constexpr std::uint32_t max_remote_ranks = std::uint32_t{1} << 19;
inline constexpr std::uint32_t max_remote_lanes = std::uint32_t{1} << 12;

constexpr std::uint32_t remote_track(std::uint32_t rank, std::uint32_t lane) noexcept {
    return remote_track_bit | (rank % max_remote_ranks) << 12 | (lane % max_remote_lanes);
}

/// The process (pid) in the file of a record's `track` (non-zero).
constexpr std::uint32_t track_process(std::uint32_t track) noexcept {
    if ((track & remote_track_bit) == 0) return track;  // a local worker process: pid = tid
    return remote_process_bit | ((track >> 12) % max_remote_ranks);
}

struct thread_buffer {
    // claiming: a thread is filling in the identity below; the writer skips it.
    enum state_value : int { free = 0, owned = 1, abandoned = 2, claiming = 3 };

    // ---- owner (producer) side ----
    alignas(64) std::atomic<std::uint64_t> tail{0};
    std::uint64_t cached_head = 0;
    std::atomic<std::uint64_t> dropped{0};  // written by the owner only

    // ---- writer (consumer) side ----
    alignas(64) std::atomic<std::uint64_t> head{0};
    std::uint64_t dropped_reported = 0;  // writer only
    std::uint64_t dropped_baseline = 0;  // at the session's start
    std::uint64_t meta_session = 0;      // writer only: session its thread name was written for
    std::uint32_t meta_name = 0;         // writer only: the name it wrote

    // ---- identity (set when claimed, before `state` turns owned) ----
    std::atomic<int> state{claiming};
    std::uint32_t pid = 0;
    std::uint32_t tid = 0;
    std::atomic<std::uint32_t> thread_name{0};  // interned; may be renamed by its owner
    std::uint32_t index = 0;                    // position in the list, for flow ids
    std::size_t capacity = 0;                   // a power of two
    record* slots = nullptr;
    thread_buffer* next = nullptr;  // the list of all buffers (immutable once linked)
};

/// Pushes `r` into this thread's buffer (claiming one first if needed).
/// False if dropped (buffer full) or the thread has no buffer (out of memory).
bool push(const record& r) noexcept;

/// This thread's id (gettid), cached.
std::uint32_t this_tid() noexcept;

/// A flow id unique in this process: the buffer's index and a per-thread count.
std::uint64_t next_flow_id() noexcept;

/// Names this thread's track in traces, now and in later sessions (the OS
/// name is left alone). Cheap: call it whether or not a trace records.
void name_this_thread(const char* name) noexcept;

/// The head of the list of every buffer ever made (walk through `next`).
thread_buffer* all_buffers() noexcept;

/// The session now (or last) recording: its number, options and start time.
struct session_info {
    std::uint64_t number = 0;
    std::int64_t origin = 0;  // ns: timestamps are written relative to it
    std::size_t capacity = 0;
    coexec::trace::options opts;
};
const session_info& current_session() noexcept;

/// Marks `b` free once its abandoned owner's records are all drained (writer only).
void recycle(thread_buffer& b) noexcept;
/// Drops counted by the buffers recycled since the session started.
std::uint64_t retired_dropped() noexcept;

}  // namespace coexec::detail::trace
