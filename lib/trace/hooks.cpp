// lib/trace/hooks.cpp — what the event sites record (detail/trace_hooks.hpp,
// trace/hooks.hpp). Each builds one fixed-size record and pushes it into the
// calling thread's buffer; the writer makes JSON of it later.
#include <pthread.h>

#include <array>
#include <string>

#include "coexec/detail/shared_state.hpp"
#include "trace/hooks.hpp"
#include "trace/names.hpp"
#include "trace/recorder.hpp"

namespace coexec::detail::trace {

void stamp(task_ticket& t, std::uint32_t name) noexcept {
    t.flow = next_flow_id();
    t.submitted = now();
    t.name = name;
    t.submitter = this_tid();
}

void task_ran(const task_ticket& t, std::int64_t start) noexcept {
    push(task_record(t, start, now()));
}

void awaited(const task_ticket& t) noexcept {
    record r;
    r.what = kind::awaited;
    r.ts = now();
    r.b = t.flow;
    push(r);
}

std::int64_t resume_begin(const shared_state_base* job, task_ticket& copy) noexcept {
    copy = job->trace_ticket();
    return copy.name != 0 ? now() : 0;  // a job submitted before the trace began has no name
}

void resume_end(const task_ticket& copy, std::int64_t start) noexcept {
    record r;
    r.what = kind::resumed_run;
    r.ts = start;
    r.a = static_cast<std::uint64_t>(now());
    r.b = copy.flow;
    r.name = copy.name;
    push(r);
}

std::uint64_t stage_chunk_begin(std::string_view stage, std::size_t items) noexcept {
    record r;
    r.what = kind::async_begin;
    r.flags = static_cast<std::uint8_t>(async_cat::stage);
    r.ts = now();
    r.b = next_flow_id();  // unique in the process, like the async slice ids must be
    r.c = items;
    try {
        r.name = intern(std::string("stage: ").append(stage));
    } catch (...) {
        return 0;
    }
    return push(r) ? r.b : 0;
}

void stage_chunk_end(std::string_view stage, std::uint64_t id) noexcept {
    record r;
    r.what = kind::async_end;
    r.flags = static_cast<std::uint8_t>(async_cat::stage);
    r.ts = now();
    r.b = id;
    try {
        r.name = intern(std::string("stage: ").append(stage));
    } catch (...) {
        return;
    }
    push(r);
}

namespace {

// "<worker thread name> <op name>", per thread and operation: the io tracks
// of each worker (Perfetto groups a process's async slices by name).
std::uint32_t io_track_name(const char* op_name) noexcept {
    struct slot {
        const char* op;
        std::uint32_t id;
        std::uint64_t session;
    };
    thread_local std::array<slot, 16> cache{};
    const std::uint64_t session = current_session().number;
    for (slot& s : cache) {
        if (s.op == op_name && s.session == session) return s.id;
    }
    char thread[32] = {};
    if (::pthread_getname_np(::pthread_self(), thread, sizeof thread) != 0) thread[0] = '\0';
    std::uint32_t id = 0;
    try {
        id = intern(std::string(thread).append(thread[0] != '\0' ? " " : "").append(op_name));
    } catch (...) {
        return 0;
    }
    slot& victim = cache[reinterpret_cast<std::uintptr_t>(op_name) % cache.size()];
    victim = slot{op_name, id, session};
    return id;
}

}  // namespace

void io_begin(const void* op, const char* op_name, int fd) noexcept {
    record r;
    r.what = kind::async_begin;
    r.flags = static_cast<std::uint8_t>(async_cat::io);
    r.ts = now();
    r.b = reinterpret_cast<std::uintptr_t>(op);
    r.c = static_cast<std::uint64_t>(static_cast<std::int64_t>(fd));
    r.name = io_track_name(op_name);
    push(r);
}

void io_end(const void* op, const char* op_name, std::int64_t result) noexcept {
    record r;
    r.what = kind::async_end;
    r.flags = static_cast<std::uint8_t>(async_cat::io);
    r.ts = now();
    r.b = reinterpret_cast<std::uintptr_t>(op);
    r.c = static_cast<std::uint64_t>(result);
    r.name = io_track_name(op_name);
    push(r);
}

}  // namespace coexec::detail::trace
