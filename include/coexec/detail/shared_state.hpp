// detail/shared_state.hpp — the one atomic state machine behind future/promise.
//
// Status word transitions (the high bit flags blocked waiters, see below):
//
//   pending ──try_start──▶ running ──set_value/set_exception──▶ has_value | has_exception
//      │                      │
//      └──cancel──▶ cancelled ◀── set_cancelled (executor: worker killed, shutdown)
//
// Terminal states never change again. The value/exception is written before
// the terminal status is stored with release order, so any thread that reads
// a terminal status with acquire order sees the result.
//
// The same word holds the stop flags of tasks that have a stop token: the
// token's std::stop_source (one allocation) is made only when someone first
// asks for the token, and a stop requested before that is remembered here
// and applied when it is made. It also holds the lock of the task's stop
// listeners: io operations waiting on the task's stop without a stop_source.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <new>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "coexec/detail/intrusive_stack.hpp"
#include "coexec/detail/spin.hpp"
#include "coexec/detail/trace_hooks.hpp"
#include "coexec/detail/work_item.hpp"

namespace coexec::detail {

class shared_state_base;

/// A node waiting for a state to finish. `fn` is called exactly once, on the
/// thread that completes the state (or on the registering thread if the
/// state was already done when the node was offered).
struct continuation {
    continuation* next = nullptr;
    void (*fn)(continuation*) noexcept = nullptr;
};

/// A callback a running task's own machinery (its io operations) hangs on
/// the task without making its std::stop_source: intrusive, so registering
/// allocates nothing. `on_stop` runs at most once, on the thread requesting
/// the stop, under the task's listener lock: it must be short and must not
/// touch the task's listeners.
struct stop_listener {
    stop_listener* prev_listener = nullptr;
    stop_listener* next_listener = nullptr;
    void (*on_stop)(stop_listener*) noexcept = nullptr;
};

/// What `future::cancel()` and a blocking wait call for a task run
/// elsewhere. The process pool cancels a running task by killing its worker,
/// and lets a waiting caller read its workers' results itself.
class cancel_hook {
  public:
    /// Stop the running task of `state` and complete it cancelled. Returns
    /// true if it did (the state is then cancelled).
    virtual bool cancel_running(shared_state_base& state) noexcept = 0;
    /// A thread about to block on `state` spins first, as `policy` says, and
    /// may meanwhile do the executor's work that ends it: `eager` if this
    /// thread's recent waits were short (work it takes on is likely to end
    /// its wait soon). True if `state` is done. (Default: spin_until.)
    virtual bool spin_wait(const shared_state_base& state, spin_policy policy, bool eager) noexcept;

  protected:
    ~cancel_hook() = default;
};

enum class status : std::uint32_t {
    pending = 0,
    running = 1,
    completing = 2,  // a result is being written; terminal status follows
    has_value = 3,
    has_exception = 4,
    cancelled = 5,
};

class shared_state_base {
  public:
    shared_state_base() noexcept = default;
    shared_state_base(const shared_state_base&) = delete;
    shared_state_base& operator=(const shared_state_base&) = delete;

    // ---- reference counting (intrusive: one allocation per task) ----
    void add_ref() noexcept { m_refs.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept {
        // acq_rel: the last owner must see every write made through other owners.
        if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy();
    }

    // ---- queries ----
    status load_status(std::memory_order mo = std::memory_order_acquire) const noexcept {
        return static_cast<status>(m_status.load(mo) & status_mask);
    }
    bool is_done() const noexcept { return load_status() >= status::has_value; }
    /// True once request_stop() was called (whether or not a token exists).
    bool stop_requested() const noexcept {
        return (m_status.load(std::memory_order_acquire) & stop_requested_bit) != 0;
    }

    // ---- executor side ----
    /// pending → running. False if the task was cancelled: do not run it.
    bool try_start() noexcept;
    /// Completes with an exception (from pending or running). No-op if done.
    void set_exception(std::exception_ptr e) noexcept;
    /// Completes cancelled from pending or running. True if it took effect.
    bool set_cancelled() noexcept;
    /// Makes `stop_token()` stoppable. Call before the state is shared.
    void enable_stop() noexcept { m_status.fetch_or(stop_enabled_bit, std::memory_order_relaxed); }
    /// The task's token (no stop state unless enable_stop() was called): its
    /// stop state is made by the first call, from any thread, already
    /// signalled if a stop was requested before. Terminates if that
    /// allocation fails.
    std::stop_token stop_token() noexcept;
    /// Signals the token, now or, if it was never asked for, when it is,
    /// and calls the stop listeners.
    void request_stop() noexcept;
    /// Calls `l.on_stop` when a stop is requested (at once, here, if one
    /// was). False, and nothing registered, if the task has no stop (see
    /// enable_stop) or a cancel hook. A listener must be removed before it
    /// goes away.
    bool add_stop_listener(stop_listener& l) noexcept;
    /// Unregisters `l` (if it still is). After this returns, `l.on_stop` is
    /// not running and will not run.
    void remove_stop_listener(stop_listener& l) noexcept;
    /// Installs the hook `cancel()` uses on a running task. Before sharing.
    /// A task run elsewhere (a process) has a hook and no stop listeners.
    void set_cancel_hook(cancel_hook* hook) noexcept {
        m_hook = hook;
        m_status.fetch_or(hooked_bit, std::memory_order_relaxed);
    }

    // ---- consumer side ----
    /// cancel() of future: cancels a pending task; asks the hook for a
    /// running one; signals the stop token either way.
    bool cancel() noexcept;
    /// Registers `c`; false (and `c` not registered) if already done.
    bool add_continuation(continuation* c) noexcept;
    /// Blocks (spinning briefly first) until done.
    void wait() const noexcept;
    /// Blocks until done or `deadline`; returns is_done().
    bool wait_until(std::chrono::steady_clock::time_point deadline) const noexcept;
    /// Rethrows the exception, or throws cancelled_error, unless has_value.
    void throw_if_failed() const;
    std::exception_ptr exception_ptr() const noexcept;

    // ---- coexec::trace: the task's name, submit time and flow ----
    /// All zero unless the task was submitted while a trace recorded.
    const trace::task_ticket& trace_ticket() const noexcept {
        return m_trace != nullptr ? *m_trace : trace::no_ticket;
    }
    /// Stamps the ticket for a task named `name`, submitted now from this
    /// thread (trace::on_submit, only while recording). The ticket is made
    /// here: a task submitted while no trace records carries one word for it.
    void stamp_trace(std::uint32_t name) noexcept;

  protected:
    virtual ~shared_state_base() {
        if (m_trace != nullptr) drop_trace();
    }
    virtual void destroy() noexcept { delete this; }

    /// Claims the right to write a result: pending|running → completing.
    bool begin_completion() noexcept;
    /// completing → `final`, wakes blocked waiters, runs continuations.
    void finish_completion(status final) noexcept;
    /// After begin_completion(): stores `e` and finishes as has_exception.
    void finish_with_exception(std::exception_ptr e) noexcept {
        m_exception = std::move(e);
        finish_completion(status::has_exception);
    }

  private:
    static constexpr std::uint32_t waiters_bit = 0x8000'0000u;
    static constexpr std::uint32_t stop_requested_bit = 0x4000'0000u;
    static constexpr std::uint32_t stop_made_bit = 0x2000'0000u;    // m_stop holds the state
    static constexpr std::uint32_t stop_making_bit = 0x1000'0000u;  // one thread makes it now
    static constexpr std::uint32_t stop_enabled_bit = 0x0800'0000u;
    static constexpr std::uint32_t listeners_lock_bit = 0x0400'0000u;  // guards m_listeners
    static constexpr std::uint32_t hooked_bit = 0x0200'0000u;          // m_hook, not m_listeners
    static constexpr std::uint32_t status_mask = 0xffu;
    bool transition(status from_a, status from_b, status to) noexcept;
    void run_continuations() noexcept;
    bool block_until(const std::chrono::steady_clock::time_point* deadline) const noexcept;
    /// Takes / drops listeners_lock_bit; lock returns the status word it saw.
    std::uint32_t lock_listeners() noexcept;
    void unlock_listeners() noexcept;
    void drop_trace() noexcept;

    mutable std::atomic<std::uint32_t> m_status{0};
    std::atomic<std::uint32_t> m_refs{1};
    // Continuations registered so far; closed when completion takes them.
    intrusive_stack<continuation, &continuation::next> m_waiters;
    std::exception_ptr m_exception;
    std::stop_source m_stop{std::nostopstate};
    // A task is run here (io operations may listen for its stop) or by a
    // process (a cancel hook kills it), never both: one word for either,
    // told apart by hooked_bit (a word less in every job).
    union {
        stop_listener* m_listeners = nullptr;  // under listeners_lock_bit
        cancel_hook* m_hook;
    };
    // Its trace ticket, made at submit while a trace records (stamp_trace):
    // 24 bytes fewer in every job than a ticket kept inline (a thread_pool
    // coroutine job went 120 -> 104 bytes: a size class less).
    trace::task_ticket* m_trace = nullptr;
};

template <class T>
class shared_state : public shared_state_base {
    static_assert(!std::is_reference_v<T>,
                  "coexec: a future cannot hold a reference (a task<T&> can be co_awaited or "
                  "sync_waited, not submitted: return a value, a pointer or a "
                  "std::reference_wrapper)");

  public:
    using value_type = T;
    ~shared_state() override {
        if (load_status(std::memory_order_relaxed) == status::has_value) value_ptr()->~T();
    }

    /// Completes with a value (from pending or running). No-op if done.
    template <class... A>
    void set_value(A&&... args) noexcept(std::is_nothrow_constructible_v<T, A...>) {
        if (!begin_completion()) return;
        try {
            ::new (static_cast<void*>(m_storage)) T(std::forward<A>(args)...);
        } catch (...) {
            finish_with_exception(std::current_exception());
            return;
        }
        finish_completion(status::has_value);
    }

    /// The value; only valid once has_value is observed.
    T& value() noexcept { return *value_ptr(); }

  private:
    T* value_ptr() noexcept { return std::launder(reinterpret_cast<T*>(m_storage)); }
    alignas(T) unsigned char m_storage[sizeof(T)];
};

template <>
class shared_state<void> : public shared_state_base {
  public:
    using value_type = void;
    void set_value() noexcept {
        if (begin_completion()) finish_completion(status::has_value);
    }
};

}  // namespace coexec::detail
