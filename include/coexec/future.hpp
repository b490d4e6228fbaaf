// coexec/future.hpp — a shared handle to the result of a task.
//
// future<T> is what every executor's submit() returns: Python's
// concurrent.futures.Future, shaped like std::shared_future and awaitable.
//
// @par Thread safety
// All members are const-safe to call from many threads at once on copies of
// the same future (the shared state is one atomic state machine). Assigning
// to one future object while another thread reads that same object is a race,
// as with any value type.
//
// @par A future without a state
// A default-constructed or moved-from future has no shared state (valid() is
// false). Using it is a mistake that throws coexec::no_state from every member
// except valid(), comparison, hashing, assignment and destruction: the blocking
// ones (get, get_for, wait, wait_for, wait_until, exception), the queries
// (done, running, cancelled, has_value, has_exception: answering false would
// turn `while (!f.done())` into a silent hang), cancel, add_done_callback, and
// `co_await f` / `co_await f.when_ready()` (thrown by the co_await expression,
// before suspending). std::shared_future leaves this undefined; coexec checks.
//
// @par Where `co_await f` resumes
// If the awaiting coroutine runs on a coexec executor (thread_pool worker,
// asio_executor, sync_wait loop), it resumes on that executor; otherwise on
// the thread that completed the future. No thread blocks while it waits.
// (detail::resume_item decides, for every awaiter in coexec.)
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdio>
#include <exception>
#include <functional>
#include <type_traits>
#include <utility>

#include "coexec/detail/shared_state.hpp"
#include "coexec/detail/work_item.hpp"
#include "coexec/errors.hpp"

namespace coexec {

template <class T>
class future;

namespace detail {

/// What awaiting a state yields: a copy of the value, the value moved out,
/// or nothing (only that it finished: future::when_ready()).
enum class await_mode { copy, move, ready };

/// Awaiter for a shared state: the continuation node lives in the awaiting
/// coroutine's frame, and so does the work item used to hop back to its
/// executor, so awaiting allocates nothing.
template <class T, await_mode Mode>
struct state_awaiter : continuation, resume_item {
    shared_state<T>* state;

    explicit state_awaiter(shared_state<T>* s) noexcept : state(s) {}

    bool await_ready() const noexcept { return state->is_done(); }

    bool await_suspend(std::coroutine_handle<> h) noexcept {
        suspend(h);
        fn = &on_done;
        return state->add_continuation(this);  // false: already done, resume now
    }

    decltype(auto) await_resume() const {
        trace::on_awaited(state->trace_ticket());  // the end of the task's flow
        if constexpr (Mode == await_mode::ready) {
            return;
        } else {
            state->throw_if_failed();
            if constexpr (std::is_void_v<T>) {
                return;
            } else if constexpr (Mode == await_mode::move) {
                return T(std::move(state->value()));
            } else {
                static_assert(std::is_copy_constructible_v<T>,
                              "co_await on a named future<T> copies its value, and T cannot be "
                              "copied: write co_await std::move(f), which moves the value out "
                              "(as std::move(f).get() does)");
                return T(state->value());
            }
        }
    }

    static void on_done(continuation* c) noexcept {
        static_cast<state_awaiter*>(c)->resume_home();  // sticky resumption
    }
};

/// Calls `fn(f)` once `f` is done, on whichever thread completes it (at once
/// if it is done). For the library's own callbacks, which only queue or
/// signal (they resume awaiters through resume_item::resume_home): unlike
/// add_done_callback, they may run on a process pool's supervisor thread.
template <class T, class F>
void add_signal_callback(const future<T>& f, F&& fn);

/// Reports an exception escaping a done-callback (Python logs and goes on).
void report_callback_exception(std::exception_ptr e) noexcept;

/// A done-callback's node (below future). `UserCode` callbacks never run on
/// a thread that has a user_code_sink() (a process pool's supervisor): they
/// are posted to that sink.
template <class T, class F, bool UserCode>
struct callback_node;

/// Throws coexec::no_state for `member` (e.g. "future::get") used without a state.
[[noreturn]] void throw_no_state(const char* member);

/// The shared state of `f` (null if it has none): for the library's waits,
/// which register continuations of their own (detail/multi_wait.hpp).
template <class T>
shared_state<T>* state_of(const future<T>& f) noexcept;

}  // namespace detail

template <class T>
class future {
  public:
    using value_type = T;

    /// An invalid future (valid() is false); every member but valid() throws no_state.
    future() noexcept = default;
    /// Shares `state` (adds a reference). Used by executors and promise.
    explicit future(detail::shared_state<T>* state) noexcept : m_state(state) {
        if (m_state) m_state->add_ref();
    }
    future(const future& o) noexcept : future(o.m_state) {}
    future(future&& o) noexcept : m_state(std::exchange(o.m_state, nullptr)) {}
    future& operator=(future o) noexcept {
        std::swap(m_state, o.m_state);
        return *this;
    }
    ~future() {
        if (m_state) m_state->release();
    }

    bool valid() const noexcept { return m_state != nullptr; }
    /// Finished: with a value, an exception, or cancelled.
    bool done() const { return state("future::done").is_done(); }
    /// A worker has started it and it has not finished.
    bool running() const {
        auto s = state("future::running").load_status();
        return s == detail::status::running || s == detail::status::completing;
    }
    bool cancelled() const {
        return state("future::cancelled").load_status() == detail::status::cancelled;
    }
    /// Finished with a value. Never blocks (false while not done), consumes nothing.
    bool has_value() const {
        return state("future::has_value").load_status() == detail::status::has_value;
    }
    /// Finished with an exception: the task's own, or the executor's (worker_died,
    /// broken_pool, ...). False for a cancelled future, which has cancelled().
    /// Never blocks. Once done(), exactly one of has_value(), has_exception()
    /// and cancelled() is true.
    bool has_exception() const {
        return state("future::has_exception").load_status() == detail::status::has_exception;
    }

    /// Cancels the task if it has not started; true if it is now cancelled.
    /// A running task's stop_token is signalled; on a process_pool its worker
    /// is killed and the future becomes cancelled (returns true).
    bool cancel() const { return state("future::cancel").cancel(); }

    /// Blocks until done (spins briefly, then sleeps in the kernel).
    void wait() const { state("future::wait").wait(); }
    /// Blocks until done or `timeout` passes; returns done().
    template <class Rep, class Period>
    bool wait_for(std::chrono::duration<Rep, Period> timeout) const {
        return state("future::wait_for")
            .wait_until(std::chrono::steady_clock::now() +
                        std::chrono::ceil<std::chrono::steady_clock::duration>(timeout));
    }
    template <class Clock, class Duration>
    bool wait_until(std::chrono::time_point<Clock, Duration> deadline) const {
        if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
            return state("future::wait_until")
                .wait_until(std::chrono::ceil<std::chrono::steady_clock::duration>(deadline));
        } else {
            return wait_for(deadline - Clock::now());
        }
    }

    /// Blocks; returns a copy of the value, or rethrows the task's exception,
    /// or throws cancelled_error.
    T get() const& {
        state("future::get").wait();
        return result_copy();
    }
    /// As get(), but moves the value out (for move-only T). Other copies of
    /// this future then see a moved-from value.
    T get() && {
        state("future::get").wait();
        return result_move();
    }
    /// As get(), but throws timeout_error if not done within `timeout`.
    template <class Rep, class Period>
    T get_for(std::chrono::duration<Rep, Period> timeout) const& {
        wait_or_throw_timeout(timeout);
        return result_copy();
    }
    template <class Rep, class Period>
    T get_for(std::chrono::duration<Rep, Period> timeout) && {
        wait_or_throw_timeout(timeout);
        return result_move();
    }

    /// Blocks; the exception (cancelled_error if cancelled), null for a value.
    std::exception_ptr exception() const {
        auto& s = state("future::exception");
        s.wait();
        return s.exception_ptr();
    }

    /// Calls `fn(const future<T>&)` once when done: on the completing thread
    /// (for a process_pool's futures, on the pool's completion thread, never
    /// its supervisor), or at once on this thread if already done. An
    /// exception escaping `fn` is reported on stderr and otherwise ignored
    /// (as Python does).
    template <class F>
        requires std::invocable<F&, const future<T>&>
    void add_done_callback(F&& fn) const {
        (void)state("future::add_done_callback");
        register_callback<true>(std::forward<F>(fn));
    }

    /// Awaits without blocking a thread; yields a copy of the value or rethrows.
    auto operator co_await() const& {
        return detail::state_awaiter<T, detail::await_mode::copy>(&state("future::co_await"));
    }
    /// Awaits and moves the value out (for move-only T).
    auto operator co_await() && {
        return detail::state_awaiter<T, detail::await_mode::move>(&state("future::co_await"));
    }
    /// `co_await f.when_ready()`: waits until done without taking the result
    /// and without throwing (cppcoro's shared_task::when_ready); then use
    /// has_value(), get(), exception(). Resumes like `co_await f`.
    auto when_ready() const {
        return detail::state_awaiter<T, detail::await_mode::ready>(&state("future::when_ready"));
    }

    friend bool operator==(const future& a, const future& b) noexcept {
        return a.m_state == b.m_state;
    }

  private:
    friend struct std::hash<future<T>>;

    detail::shared_state<T>& state(const char* member) const {
        if (m_state == nullptr) [[unlikely]]
            detail::throw_no_state(member);
        return *m_state;
    }

    template <class Rep, class Period>
    void wait_or_throw_timeout(std::chrono::duration<Rep, Period> timeout) const {
        if (!state("future::get_for")
                 .wait_until(std::chrono::steady_clock::now() +
                             std::chrono::ceil<std::chrono::steady_clock::duration>(timeout)))
            throw timeout_error("future::get_for: the task did not finish in time");
    }

    T result_copy() const {
        m_state->throw_if_failed();
        if constexpr (!std::is_void_v<T>) return m_state->value();
    }
    T result_move() const {
        m_state->throw_if_failed();
        if constexpr (!std::is_void_v<T>) return std::move(m_state->value());
    }

    template <bool UserCode, class F>
    void register_callback(F&& fn) const {
        using node = detail::callback_node<T, std::decay_t<F>, UserCode>;
        auto* n = new node(std::forward<F>(fn), *this);
        if (!m_state->add_continuation(n)) node::on_done(n);
    }
    template <class U, class F>
    friend void detail::add_signal_callback(const future<U>& f, F&& fn);
    template <class U>
    friend detail::shared_state<U>* detail::state_of(const future<U>& f) noexcept;

    detail::shared_state<T>* m_state = nullptr;
};

namespace detail {

/// A done-callback: a continuation of the state, and a work item for when
/// it must run on another thread than the one completing the state.
template <class T, class F, bool UserCode>
struct callback_node final : continuation, work_item {
    F f;
    future<T> self;

    template <class G>
    callback_node(G&& g, const future<T>& s) : f(std::forward<G>(g)), self(s) {
        continuation::fn = &on_done;
    }

    static void on_done(continuation* c) noexcept {
        auto* n = static_cast<callback_node*>(c);
        if constexpr (UserCode) {
            if (resumer* sink = user_code_sink()) {
                n->work_item::handler = &run_posted;
                sink->post(n);
                return;
            }
        }
        invoke(n);
    }
    static bool run_posted(work_item* w, const std::exception_ptr* drop) noexcept {
        if (drop != nullptr) return false;  // a done-callback always runs
        invoke(static_cast<callback_node*>(w));
        return true;
    }
    static void invoke(callback_node* n) noexcept {
        try {
            n->f(std::as_const(n->self));
        } catch (...) {
            report_callback_exception(std::current_exception());
        }
        delete n;
    }
};

template <class T, class F>
void add_signal_callback(const future<T>& f, F&& fn) {
    f.template register_callback<false>(std::forward<F>(fn));
}

template <class T>
shared_state<T>* state_of(const future<T>& f) noexcept {
    return f.m_state;
}

}  // namespace detail

/// A future that already holds `value` (Python's tests build these by hand).
template <class T, class... A>
future<T> make_ready_future(A&&... value) {
    auto* s = new detail::shared_state<T>();
    s->set_value(std::forward<A>(value)...);
    future<T> f(s);
    s->release();
    return f;
}

/// A future that already holds exception `e`.
template <class T>
future<T> make_exceptional_future(std::exception_ptr e) {
    auto* s = new detail::shared_state<T>();
    s->set_exception(std::move(e));
    future<T> f(s);
    s->release();
    return f;
}

}  // namespace coexec

template <class T>
struct std::hash<coexec::future<T>> {
    std::size_t operator()(const coexec::future<T>& f) const noexcept {
        return std::hash<const void*>{}(f.m_state);
    }
};
