// coexec/task.hpp — a lazy coroutine producing one T.
//
// task<T> starts when it is awaited (or submitted to an executor, or run by
// sync_wait), and resumes its awaiter by symmetric transfer when it finishes,
// so deep `co_await` chains do not grow the stack. A task is move-only and
// owns its coroutine frame.
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <type_traits>
#include <utility>

#include "coexec/detail/job_memory.hpp"

namespace coexec {

template <class T = void>
class task;

namespace detail {

/// Who finishes a task that no coroutine awaits: a submitted coroutine job
/// takes the outcome from the finished frame, destroys it and publishes the
/// outcome, with no coroutine frame of its own in between. `finish` runs at
/// the task's final suspension point, on the thread that ran it last.
struct task_driver {
    void (*finish)(task_driver* self, std::coroutine_handle<> frame) noexcept = nullptr;
};

class task_promise_base {
  public:
    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
            task_promise_base& p = h.promise();
            if ((p.m_next & driver_tag) != 0) {
                auto* driver = reinterpret_cast<task_driver*>(p.m_next & ~driver_tag);
                driver->finish(driver, h);  // destroys the frame: touch nothing after
                return std::noop_coroutine();
            }
            // Symmetric transfer: the awaiter resumes without a nested call.
            if (p.m_next == 0) return std::noop_coroutine();
            return std::coroutine_handle<>::from_address(reinterpret_cast<void*>(p.m_next));
        }
        void await_resume() const noexcept {}
    };

    // Frames come from the job allocator (detail/job_memory.hpp): like jobs,
    // a frame is often made on one worker and freed on another, and 100k
    // coroutines alive at once are common (sleepers, connections).
    static void* operator new(std::size_t n) { return job_memory::allocate(n); }
    static void operator delete(void* p, std::size_t n) noexcept { job_memory::deallocate(p, n); }

    std::suspend_always initial_suspend() const noexcept { return {}; }
    final_awaiter final_suspend() const noexcept { return {}; }
    void unhandled_exception() noexcept { m_exception = std::current_exception(); }
    void set_continuation(std::coroutine_handle<> c) noexcept {
        m_next = reinterpret_cast<std::uintptr_t>(c.address());
    }
    /// Instead of resuming an awaiter, the task ends by calling `d->finish`.
    void set_driver(task_driver* d) noexcept {
        m_next = reinterpret_cast<std::uintptr_t>(d) | driver_tag;
    }

  protected:
    void rethrow_if_failed() const {
        if (m_exception) std::rethrow_exception(m_exception);
    }

  private:
    // The awaiter's frame or the driver, in one word so that the driver costs
    // no frame any space: a coroutine frame starts with its resume and
    // destroy pointers, so its address (like a driver's) has the low bit clear.
    static constexpr std::uintptr_t driver_tag = 1;
    static_assert(alignof(task_driver) > driver_tag);
    std::uintptr_t m_next = 0;
    std::exception_ptr m_exception;
};

template <class T>
class task_promise final : public task_promise_base {
  public:
    task_promise() noexcept {}
    ~task_promise() {
        if (m_has_value) m_value.~T();
    }
    task<T> get_return_object() noexcept;

    template <class U = T>
        requires std::is_convertible_v<U&&, T>
    void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        ::new (static_cast<void*>(std::addressof(m_value))) T(std::forward<U>(v));
        m_has_value = true;
    }

    T take_result() {
        rethrow_if_failed();
        return std::move(m_value);
    }

  private:
    union {
        T m_value;
    };
    bool m_has_value = false;
};

/// task<T&>: the coroutine returns a reference, which is kept as a pointer
/// (cppcoro's task<T&>). The referent must outlive the awaiter's use of it.
template <class T>
class task_promise<T&> final : public task_promise_base {
  public:
    task<T&> get_return_object() noexcept;
    void return_value(T& v) noexcept { m_value = std::addressof(v); }
    T& take_result() {
        rethrow_if_failed();
        return *m_value;
    }

  private:
    T* m_value = nullptr;
};

template <>
class task_promise<void> final : public task_promise_base {
  public:
    task<void> get_return_object() noexcept;
    void return_void() const noexcept {}
    void take_result() const { rethrow_if_failed(); }
};

}  // namespace detail

template <class T>
class [[nodiscard]] task {
  public:
    using promise_type = detail::task_promise<T>;
    using value_type = T;

    task() noexcept = default;
    explicit task(std::coroutine_handle<promise_type> h) noexcept : m_handle(h) {}
    task(task&& o) noexcept : m_handle(std::exchange(o.m_handle, {})) {}
    task& operator=(task&& o) noexcept {
        if (this != &o) {
            if (m_handle) m_handle.destroy();
            m_handle = std::exchange(o.m_handle, {});
        }
        return *this;
    }
    task(const task&) = delete;
    task& operator=(const task&) = delete;
    ~task() {
        if (m_handle) m_handle.destroy();
    }

    /// True if this task owns a coroutine.
    bool valid() const noexcept { return static_cast<bool>(m_handle); }

    /// Starts the task and suspends the awaiter until it finishes; yields its
    /// result or rethrows its exception.
    auto operator co_await() && noexcept {
        struct awaiter {
            std::coroutine_handle<promise_type> coro;
            bool await_ready() const noexcept { return !coro || coro.done(); }
            std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
                coro.promise().set_continuation(awaiting);
                return coro;
            }
            T await_resume() { return coro.promise().take_result(); }
        };
        return awaiter{m_handle};
    }

    /// Releases ownership of the frame (for drivers that destroy it themselves).
    std::coroutine_handle<promise_type> release() noexcept { return std::exchange(m_handle, {}); }

  private:
    std::coroutine_handle<promise_type> m_handle;
};

template <class T>
task<T> detail::task_promise<T>::get_return_object() noexcept {
    return task<T>(std::coroutine_handle<task_promise>::from_promise(*this));
}
template <class T>
task<T&> detail::task_promise<T&>::get_return_object() noexcept {
    return task<T&>(std::coroutine_handle<task_promise>::from_promise(*this));
}
inline task<void> detail::task_promise<void>::get_return_object() noexcept {
    return task<void>(std::coroutine_handle<task_promise>::from_promise(*this));
}

/// True for coexec::task<U> (used to detect coroutine callables in submit).
template <class T>
inline constexpr bool is_task_v = false;
template <class U>
inline constexpr bool is_task_v<task<U>> = true;

namespace detail {
/// U for task<U>, else T: what running a callable that returns T produces.
template <class T>
struct unwrap_task {
    using type = T;
};
template <class U>
struct unwrap_task<task<U>> {
    using type = U;
};
}  // namespace detail

}  // namespace coexec
