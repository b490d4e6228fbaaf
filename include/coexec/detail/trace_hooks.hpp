// detail/trace_hooks.hpp — the event sites of coexec::trace (coexec/trace.hpp).
//
// Every site is `if (on()) ...`: one relaxed load of a global flag while no
// trace records, and nothing at all when the including code is compiled with
// COEXEC_TRACE_DISABLED (the benchmark's "compiled out" build). What a site
// records is built out of line (lib/trace/), so the templates here stay small.
//
// Timestamps are CLOCK_MONOTONIC nanoseconds (steady_clock on Linux): the
// same clock in every thread and every process of the machine, so a process
// worker's timestamps need no translation. now() reads it through the TSC
// where the CPU allows (lib/trace/clock.hpp): a third of clock_gettime's
// cost, within tens of ns of it, checked against it every millisecond.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <typeinfo>

namespace coexec::detail {
class shared_state_base;
}

namespace coexec::detail::trace {

/// True while a trace session records. Written only by start/stop (and the
/// fork handler, which turns it off in child processes).
extern std::atomic<bool> g_recording;

/// The one check every event site makes.
inline bool on() noexcept {
#if defined(COEXEC_TRACE_DISABLED)
    return false;
#else
    return g_recording.load(std::memory_order_relaxed);
#endif
}

/// What a submitted task carries for the trace, beside its shared state.
/// Stamped at submit while recording; a task submitted otherwise has none
/// (it reads as no_ticket, all zero).
struct task_ticket {
    std::uint64_t flow = 0;       ///< flow id (submit → start → resumed awaiter); 0: none
    std::int64_t submitted = 0;   ///< when it was submitted (ns)
    std::uint32_t name = 0;       ///< interned task name
    std::uint32_t submitter = 0;  ///< thread id of the submitting thread
};
inline constexpr task_ticket no_ticket{};

// ---- out of line (lib/trace/), called only while on() ----
std::uint32_t intern_type_name(const char* mangled) noexcept;
std::uint32_t intern_function_name(const void* fn) noexcept;
/// The name set by a live coexec::trace::name on this thread, or 0.
std::uint32_t name_override() noexcept;
std::int64_t now() noexcept;
/// Stamps `t` for a task named `name`, submitted now from this thread.
void stamp(task_ticket& t, std::uint32_t name) noexcept;
/// A task (or the first run of a coroutine task) ran on this thread from `start` to now.
void task_ran(const task_ticket& t, std::int64_t start) noexcept;
/// A coroutine that awaited the task `t` resumes now, on this thread.
void awaited(const task_ticket& t) noexcept;
/// A coroutine task resumes on this thread: copies its ticket, returns the start (0: untraced).
std::int64_t resume_begin(const shared_state_base* job, task_ticket& copy) noexcept;
void resume_end(const task_ticket& copy, std::int64_t start) noexcept;
/// Makes `name` this thread's task name until pop_name(returned value).
std::uint32_t push_name(std::string_view name) noexcept;
std::uint32_t push_name_id(std::uint32_t id) noexcept;
void pop_name(std::uint32_t previous) noexcept;
/// A chunk of `items` enters pipeline stage `stage`: an async slice on the
/// stage's track. Returns its id (for stage_chunk_end).
std::uint64_t stage_chunk_begin(std::string_view stage, std::size_t items) noexcept;
void stage_chunk_end(std::string_view stage, std::uint64_t id) noexcept;

/// The name of function-object type F (the demangled type), interned once.
template <class F>
std::uint32_t type_name() noexcept {
    static std::atomic<std::uint32_t> id{0};
    std::uint32_t v = id.load(std::memory_order_relaxed);
    if (v == 0) {
        v = intern_type_name(typeid(F).name());
        id.store(v, std::memory_order_relaxed);
    }
    return v;
}

/// A task's name: the innermost coexec::trace::name on this thread, else the
/// function's symbol (function pointers), else the callable's type.
template <class F>
std::uint32_t name_of(const F& f) noexcept {
    if (std::uint32_t o = name_override()) return o;
    using D = std::decay_t<F>;  // a function (reference) is named as its pointer
    if constexpr (std::is_pointer_v<D> && std::is_function_v<std::remove_pointer_t<D>>) {
        const D fn = f;
        return intern_function_name(std::bit_cast<const void*>(fn));
    } else {
        return type_name<D>();
    }
}

/// At submit: stamps the task's ticket if recording (State: a
/// shared_state_base, complete where this is instantiated).
template <class State, class F>
void on_submit(State& state, const F& f) noexcept {
    if (on()) state.stamp_trace(name_of(f));
}

/// The span of one run of a task on this thread: constructed before the
/// call, destroyed after it (the task itself may be gone by then, so it
/// works on a copy of the ticket).
class task_scope {
  public:
    template <class F>
    task_scope(const task_ticket& t, const F& f) noexcept {
        if (on()) {
            m_ticket = t;
            if (m_ticket.name == 0) m_ticket.name = name_of(f);  // submitted before recording
            m_start = now();
        }
    }
    task_scope(const task_scope&) = delete;
    task_scope& operator=(const task_scope&) = delete;
    ~task_scope() { finish(); }
    /// Records the span now: before the task's future completes, so that a
    /// thread woken by it and calling trace::stop() finds the span written.
    void finish() noexcept {
        if (m_start != 0) task_ran(m_ticket, m_start);
        m_start = 0;
    }

  private:
    task_ticket m_ticket;
    std::int64_t m_start = 0;
};

/// A coroutine task's later run on this thread (a resumption after an
/// await): recorded as a slice named after the task.
class resume_scope {
  public:
    explicit resume_scope(const shared_state_base* job) noexcept {
        if (job != nullptr && on()) m_start = resume_begin(job, m_ticket);
    }
    resume_scope(const resume_scope&) = delete;
    resume_scope& operator=(const resume_scope&) = delete;
    ~resume_scope() {
        if (m_start != 0) resume_end(m_ticket, m_start);
    }

  private:
    task_ticket m_ticket;
    std::int64_t m_start = 0;
};

/// Tag of name_scope's second constructor.
struct after_function_t {};
inline constexpr after_function_t after_function{};

/// Names the tasks submitted on this thread while it lives.
class name_scope {
  public:
    explicit name_scope(std::string_view name) noexcept {
        if (on() && !name.empty()) m_previous = push_name(name);
    }
    /// Names them after `f`, unless an outer scope named them already: map
    /// and pipeline chunks run `f` inside a wrapper whose type says nothing.
    template <class F>
    name_scope(const F& f, after_function_t) noexcept {
        if (on() && name_override() == 0) m_previous = push_name_id(name_of(f));
    }
    name_scope(const name_scope&) = delete;
    name_scope& operator=(const name_scope&) = delete;
    ~name_scope() {
        if (m_previous != none) pop_name(m_previous);
    }

  private:
    static constexpr std::uint32_t none = ~std::uint32_t{0};
    std::uint32_t m_previous = none;
};

/// A pipeline stage's chunk, as an async slice on the stage's track.
inline std::uint64_t on_stage_begin(std::string_view stage, std::size_t items) noexcept {
    return on() ? stage_chunk_begin(stage, items) : 0;
}
inline void on_stage_end(std::string_view stage, std::uint64_t id) noexcept {
    if (id != 0 && on()) stage_chunk_end(stage, id);
}

/// In an awaiter's await_resume: the end of the task's flow.
inline void on_awaited(const task_ticket& t) noexcept {
    if (on() && t.flow != 0) awaited(t);
}

}  // namespace coexec::detail::trace
