// coexec/sync_wait.hpp — run an awaitable to completion from ordinary code.
//
// `sync_wait(t)` blocks the calling thread until `t` (a task, a future, or
// any awaitable) finishes, and returns its result or rethrows. While it
// waits, the calling thread runs a small event loop: coroutines started
// inside it that await coexec futures resume on this thread (sticky
// resumption), never on a process supervisor or a foreign worker. The loop
// also runs coexec::io: the first I/O operation awaited on it gives it an
// io_uring ring (or epoll set) of its own, and it sleeps there, so a task run
// by sync_wait can sleep, read and accept without a thread_pool.
#pragma once

#include <condition_variable>
#include <coroutine>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "coexec/detail/awaitable_traits.hpp"
#include "coexec/detail/work_item.hpp"

namespace coexec {
namespace detail {

struct run_loop_io;  // lib/io/run_loop_io.cpp: a loop's I/O reactor

/// A single-threaded queue of work items, run by the thread in sync_wait.
class run_loop final : public resumer {
  public:
    run_loop();
    ~run_loop();
    run_loop(const run_loop&) = delete;
    run_loop& operator=(const run_loop&) = delete;

    void post(work_item* item) noexcept override;
    /// Loop thread: gives the loop an I/O reactor (once). Throws
    /// std::system_error if neither io_uring nor epoll can be set up.
    bool attach_io_reactor() override;
    /// Runs posted items (and finished I/O) until finish() has been called.
    /// I/O still in flight then is cancelled and run to its end first.
    void run();
    /// Makes run() return once the queue is drained. Thread-safe.
    void finish() noexcept;

  private:
    /// run() once the loop has a reactor: it sleeps there, not on m_cv.
    void run_with_io();
    /// Under m_mutex: wakes the loop thread wherever it sleeps.
    void wake_locked() noexcept;

    std::mutex m_mutex;
    std::condition_variable m_cv;
    work_item* m_head = nullptr;
    work_item* m_tail = nullptr;
    bool m_finished = false;
    bool m_sleeps_in_reactor = false;   // guarded by m_mutex
    std::unique_ptr<run_loop_io> m_io;  // loop thread only; set once
};

template <class R>
class sync_wait_coro {
  public:
    struct promise_type {
        run_loop* loop = nullptr;
        std::exception_ptr exception;
        // A reference result is kept as a pointer (the referent outlives the wait).
        using stored = std::conditional_t<
            std::is_void_v<R>, char,
            std::conditional_t<std::is_reference_v<R>, std::remove_reference_t<R>*, R>>;
        std::optional<stored> value;

        sync_wait_coro get_return_object() noexcept {
            return sync_wait_coro(std::coroutine_handle<promise_type>::from_promise(*this));
        }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        auto final_suspend() const noexcept {
            struct notify {
                bool await_ready() const noexcept { return false; }
                void await_suspend(std::coroutine_handle<promise_type> h) const noexcept {
                    h.promise().loop->finish();
                }
                void await_resume() const noexcept {}
            };
            return notify{};
        }
        void unhandled_exception() noexcept { exception = std::current_exception(); }
        template <class U>
        void return_value(U&& v) {
            if constexpr (std::is_reference_v<R>) {
                value.emplace(std::addressof(v));
            } else {
                value.emplace(std::forward<U>(v));
            }
        }
    };

    explicit sync_wait_coro(std::coroutine_handle<promise_type> h) noexcept : m_handle(h) {}
    sync_wait_coro(sync_wait_coro&& o) noexcept : m_handle(std::exchange(o.m_handle, {})) {}
    ~sync_wait_coro() {
        if (m_handle) m_handle.destroy();
    }

    R run(run_loop& loop) {
        m_handle.promise().loop = &loop;
        m_handle.resume();
        loop.run();
        auto& p = m_handle.promise();
        if (p.exception) std::rethrow_exception(p.exception);
        if constexpr (std::is_reference_v<R>) {
            return static_cast<R>(**p.value);
        } else if constexpr (!std::is_void_v<R>) {
            return std::move(*p.value);
        }
    }

  private:
    std::coroutine_handle<promise_type> m_handle;
};

template <class A, class R = await_result_t<A>>
sync_wait_coro<R> make_sync_wait_coro(A&& awaitable) {
    if constexpr (std::is_void_v<R>) {
        co_await std::forward<A>(awaitable);
        co_return 0;
    } else {
        co_return co_await std::forward<A>(awaitable);
    }
}

}  // namespace detail

/// Blocks until `awaitable` completes; returns its result or rethrows.
/// Must not be called from a coroutine running on a thread_pool worker
/// whose completion it depends on (it would hold that worker).
template <class A>
auto sync_wait(A&& awaitable) -> detail::await_result_t<A> {
    using R = detail::await_result_t<A>;
    detail::run_loop loop;
    auto coro = detail::make_sync_wait_coro<A, R>(std::forward<A>(awaitable));
    detail::resumer_scope here(&loop);  // coroutines suspended in here come back to the loop
    return coro.run(loop);
}

}  // namespace coexec
