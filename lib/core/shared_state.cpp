#include "coexec/detail/shared_state.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <thread>

#include "coexec/detail/job_memory.hpp"
#include "coexec/detail/spin.hpp"
#include "coexec/errors.hpp"

namespace coexec::detail {
namespace {

thread_local resumer* t_current_resumer = nullptr;
thread_local resumer* t_user_code_sink = nullptr;

void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                const std::chrono::steady_clock::time_point* deadline) noexcept {
    timespec ts{};
    const timespec* tsp = nullptr;
    if (deadline != nullptr) {
        // steady_clock is CLOCK_MONOTONIC, which FUTEX_WAIT_BITSET takes as an absolute time.
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline->time_since_epoch())
                      .count();
        if (ns < 0) ns = 0;
        ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
        ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
        tsp = &ts;
    }
    // EAGAIN (value changed), EINTR and ETIMEDOUT all just return to the caller's loop.
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_BITSET_PRIVATE,
              expected, tsp, nullptr, FUTEX_BITSET_MATCH_ANY);
}

void futex_wake_all(std::atomic<std::uint32_t>* word) noexcept {
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, INT32_MAX,
              nullptr, nullptr, 0);
}

}  // namespace

resumer* current_resumer() noexcept {
    return t_current_resumer;
}

resumer* exchange_current_resumer(resumer* r) noexcept {
    resumer* old = t_current_resumer;
    t_current_resumer = r;
    return old;
}

resumer* user_code_sink() noexcept {
    return t_user_code_sink;
}

resumer* exchange_user_code_sink(resumer* sink) noexcept {
    resumer* old = t_user_code_sink;
    t_user_code_sink = sink;
    return old;
}

bool shared_state_base::transition(status from_a, status from_b, status to) noexcept {
    std::uint32_t cur = m_status.load(std::memory_order_relaxed);
    for (;;) {
        auto s = static_cast<status>(cur & status_mask);
        if (s != from_a && s != from_b) return false;
        // acq_rel: the winner of a transition sees everything published by earlier ones.
        if (m_status.compare_exchange_weak(cur,
                                           (cur & ~status_mask) | static_cast<std::uint32_t>(to),
                                           std::memory_order_acq_rel, std::memory_order_relaxed)) {
            return true;
        }
    }
}

bool shared_state_base::try_start() noexcept {
    return transition(status::pending, status::pending, status::running);
}

bool shared_state_base::begin_completion() noexcept {
    return transition(status::pending, status::running, status::completing);
}

void shared_state_base::finish_completion(status final) noexcept {
    // release: the result written above is visible to whoever reads the terminal status.
    // The status is `completing` (ours): the xor turns it into `final` and
    // keeps the flags other threads may be setting meanwhile.
    std::uint32_t old = m_status.fetch_xor(
        static_cast<std::uint32_t>(status::completing) ^ static_cast<std::uint32_t>(final),
        std::memory_order_acq_rel);
    if ((old & waiters_bit) != 0) futex_wake_all(&m_status);
    run_continuations();
}

void shared_state_base::set_exception(std::exception_ptr e) noexcept {
    if (begin_completion()) finish_with_exception(std::move(e));
}

bool shared_state_base::set_cancelled() noexcept {
    if (!begin_completion()) return false;
    finish_completion(status::cancelled);
    request_stop();
    return true;
}

bool shared_state_base::cancel() noexcept {
    if (transition(status::pending, status::pending, status::completing)) {
        finish_completion(status::cancelled);
        request_stop();
        return true;
    }
    status s = load_status();
    if (s == status::running) {
        request_stop();
        if ((m_status.load(std::memory_order_relaxed) & hooked_bit) != 0 &&
            m_hook->cancel_running(*this)) {
            return true;
        }
        s = load_status();
    }
    return s == status::cancelled;
}

std::stop_token shared_state_base::stop_token() noexcept {
    std::uint32_t cur = m_status.load(std::memory_order_acquire);
    for (int round = 1;; ++round) {
        if ((cur & stop_made_bit) != 0) return m_stop.get_token();
        if ((cur & stop_enabled_bit) == 0) return {};
        if ((cur & stop_making_bit) != 0) {  // another thread makes it: one allocation
            wait_a_little(round);
            cur = m_status.load(std::memory_order_acquire);
            continue;
        }
        if (m_status.compare_exchange_weak(cur, cur | stop_making_bit, std::memory_order_acquire,
                                           std::memory_order_acquire)) {
            break;
        }
    }
    m_stop = std::stop_source();
    // making → made; release: a thread that sees `made` sees m_stop. A stop
    // requested before this saw no state to signal: signal it now.
    std::uint32_t old =
        m_status.fetch_xor(stop_making_bit | stop_made_bit, std::memory_order_acq_rel);
    if ((old & stop_requested_bit) != 0) m_stop.request_stop();
    return m_stop.get_token();
}

void shared_state_base::request_stop() noexcept {
    // Whoever sets `made` sees this flag and signals (above), or we see `made`.
    std::uint32_t old = m_status.fetch_or(stop_requested_bit, std::memory_order_acq_rel);
    if ((old & stop_requested_bit) != 0) return;  // the first request did it all
    if ((old & stop_made_bit) != 0) m_stop.request_stop();
    // No listener can have registered without a stop, or with a hook.
    if ((old & stop_enabled_bit) == 0 || (old & hooked_bit) != 0) return;
    // A listener registering from now on sees the flag under the lock (the
    // lock is taken in this same word, after the flag) and calls itself.
    lock_listeners();
    stop_listener* l = m_listeners;
    m_listeners = nullptr;
    while (l != nullptr) {
        stop_listener* next = l->next_listener;
        l->prev_listener = l->next_listener = nullptr;
        l->on_stop(l);  // under the lock: remove_stop_listener waits for it
        l = next;
    }
    unlock_listeners();
}

std::uint32_t shared_state_base::lock_listeners() noexcept {
    std::uint32_t cur = m_status.load(std::memory_order_relaxed);
    for (int round = 1;; ++round) {
        if ((cur & listeners_lock_bit) == 0 &&
            m_status.compare_exchange_weak(cur, cur | listeners_lock_bit, std::memory_order_acquire,
                                           std::memory_order_relaxed)) {
            return cur;
        }
        // Held for a few pointer writes and queueing a cancel request.
        wait_a_little(round);
        cur = m_status.load(std::memory_order_relaxed);
    }
}

void shared_state_base::unlock_listeners() noexcept {
    // fetch_and, not a store: other bits of the word change meanwhile.
    m_status.fetch_and(~listeners_lock_bit, std::memory_order_release);
}

bool shared_state_base::add_stop_listener(stop_listener& l) noexcept {
    const std::uint32_t cur = m_status.load(std::memory_order_relaxed);
    if ((cur & stop_enabled_bit) == 0 || (cur & hooked_bit) != 0) return false;
    std::uint32_t seen = lock_listeners();
    if ((seen & stop_requested_bit) != 0) {
        unlock_listeners();
        l.prev_listener = l.next_listener = nullptr;
        l.on_stop(&l);
        return true;
    }
    l.prev_listener = nullptr;
    l.next_listener = m_listeners;
    if (m_listeners != nullptr) m_listeners->prev_listener = &l;
    m_listeners = &l;
    unlock_listeners();
    return true;
}

void shared_state_base::remove_stop_listener(stop_listener& l) noexcept {
    lock_listeners();
    // Linked iff it is the head or has a predecessor (request_stop clears both).
    if (m_listeners == &l || l.prev_listener != nullptr) {
        (l.prev_listener != nullptr ? l.prev_listener->next_listener : m_listeners) =
            l.next_listener;
        if (l.next_listener != nullptr) l.next_listener->prev_listener = l.prev_listener;
        l.prev_listener = l.next_listener = nullptr;
    }
    unlock_listeners();
}

bool shared_state_base::add_continuation(continuation* c) noexcept {
    // Fails once run_continuations has closed the list: the state is done.
    return m_waiters.try_push(c);
}

void shared_state_base::run_continuations() noexcept {
    // Callbacks run in registration order.
    continuation* c = decltype(m_waiters)::reversed(m_waiters.close());
    while (c != nullptr) {
        continuation* next = c->next;  // fn may free the node
        c->fn(c);
        c = next;
    }
}

bool shared_state_base::block_until(
    const std::chrono::steady_clock::time_point* deadline) const noexcept {
    for (;;) {
        std::uint32_t cur = m_status.load(std::memory_order_acquire);
        if ((cur & status_mask) >= static_cast<std::uint32_t>(status::has_value)) return true;
        if (deadline != nullptr && std::chrono::steady_clock::now() >= *deadline) return false;
        if ((cur & waiters_bit) == 0) {
            if (!m_status.compare_exchange_weak(cur, cur | waiters_bit, std::memory_order_acq_rel,
                                                std::memory_order_acquire)) {
                continue;
            }
            cur |= waiters_bit;
        }
        futex_wait(&m_status, cur, deadline);
    }
}

namespace {

// How long this thread's recent waits lasted (a moving mean over ~4). A
// thread that waits for long tasks gains nothing from spinning first and, on
// a machine with as many busy workers as cores, takes that time from them.
thread_local std::int64_t t_recent_wait_ns = 0;
constexpr std::int64_t long_wait_ns = 1'000'000;
// Below this recent mean, a waiter on a task run elsewhere is eager to help
// its executor (cancel_hook::spin_wait); half the waiters' 50 µs spin.
constexpr std::int64_t eager_help_ns = 25'000;
// Whether this thread's waits are quick: ended within a few µs by a
// completer on another core, where a yield would only delay seeing the
// result (spin::future_wait_quick). Entered below 1.5 µs on average, left
// above 3 µs, so that a waiter does not flip between the two policies as
// each changes how long its waits take. Judged on its own moving mean, of
// waits capped at quick_cap_ns: one wait that met a sleeping worker (a
// futex wake, 30 µs) pushed the uncapped mean past 3 µs, and the yields
// that followed kept it between the two bounds, so a thread_pool caller
// stayed in the slow policy for good (round trip p99 1.3 -> 1.9-2.2 µs on
// 2 vCPUs). Capped, it takes four slow waits in a row to leave.
thread_local bool t_quick_waits = true;
thread_local std::int64_t t_handoff_ns = 0;
constexpr std::int64_t quick_enter_ns = 1'500;
constexpr std::int64_t quick_leave_ns = 3'000;
constexpr std::int64_t quick_cap_ns = 4'000;

std::int64_t steady_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace

void shared_state_base::wait() const noexcept {
    if (is_done()) return;
    const std::int64_t start = steady_ns();
    // Spin in bursts and yield between them: when there are fewer cores
    // than runnable parties (this waiter, a pool worker, a process pool's
    // supervisor), a pure spin starves the very thread that would complete
    // us. Yield often unless this thread's waits have been quick.
    if (t_handoff_ns > quick_leave_ns) {
        t_quick_waits = false;
    } else if (t_handoff_ns < quick_enter_ns) {
        t_quick_waits = true;
    }
    const spin_policy policy = t_quick_waits ? spin::future_wait_quick : spin::future_wait;
    // A task run elsewhere (hooked) spins through its hook, which may do the
    // work that ends it on this thread (see process_pool's help_wait),
    // eagerly while this thread's waits are short. Not only then: a waiter
    // that stopped helping after one slow wait (a preemption) left a
    // process pool's supervisor asleep, each result then waited for its
    // wake-up and this thread's for the futex (~0.2 ms a round trip on a
    // 2-vCPU guest), which kept its waits long, and it never helped again
    // (seen: 100 round trips of 150-320 µs in a row, p99 34 µs instead of 10).
    const bool hooked = (m_status.load(std::memory_order_relaxed) & hooked_bit) != 0;
    const bool done = t_recent_wait_ns < long_wait_ns &&
                      (hooked ? m_hook->spin_wait(*this, policy, t_recent_wait_ns < eager_help_ns)
                              : spin_until([this] { return is_done(); }, policy));
    if (!done) block_until(nullptr);
    const std::int64_t took = steady_ns() - start;
    t_recent_wait_ns += (took - t_recent_wait_ns) / 4;
    t_handoff_ns += (std::min(took, quick_cap_ns) - t_handoff_ns) / 4;
}

bool cancel_hook::spin_wait(const shared_state_base& state, spin_policy policy, bool) noexcept {
    return spin_until([&state] { return state.is_done(); }, policy);
}

bool shared_state_base::wait_until(std::chrono::steady_clock::time_point deadline) const noexcept {
    if (is_done()) return true;
    return block_until(&deadline);
}

void shared_state_base::throw_if_failed() const {
    switch (load_status()) {
        case status::has_exception:
            std::rethrow_exception(m_exception);
        case status::cancelled:
            throw cancelled_error();
        default:
            return;
    }
}

// The ticket comes from the job allocator (a 24-byte class, cached per
// thread): tracing pays a cached block per task, not a malloc.
void shared_state_base::stamp_trace(std::uint32_t name) noexcept {
    if (m_trace == nullptr) {
        try {
            m_trace = ::new (job_memory::allocate(sizeof(trace::task_ticket))) trace::task_ticket{};
        } catch (const std::bad_alloc&) {
            return;  // untraced: the trace shows the task unnamed, as one submitted before it
        }
    }
    trace::stamp(*m_trace, name);
}

void shared_state_base::drop_trace() noexcept {
    static_assert(std::is_trivially_destructible_v<trace::task_ticket>);
    job_memory::deallocate(m_trace, sizeof(trace::task_ticket));
    m_trace = nullptr;
}

std::exception_ptr shared_state_base::exception_ptr() const noexcept {
    switch (load_status()) {
        case status::has_exception:
            return m_exception;
        case status::cancelled:
            return std::make_exception_ptr(cancelled_error());
        default:
            return nullptr;
    }
}

}  // namespace coexec::detail
