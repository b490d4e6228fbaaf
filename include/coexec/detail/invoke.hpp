// detail/invoke.hpp — calling a submitted callable and storing its outcome.
#pragma once

#include <exception>
#include <functional>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

#include "coexec/detail/shared_state.hpp"
#include "coexec/task.hpp"

namespace coexec::detail {

/// True if `F` wants a std::stop_token as its first argument.
template <class F, class... Args>
inline constexpr bool takes_stop_token_v =
    std::is_invocable_v<F, std::stop_token, Args...> && !std::is_invocable_v<F, Args...>;

template <class F, class... Args>
struct call_result {
    using type = std::invoke_result_t<F, Args...>;
};
template <class F, class... Args>
requires takes_stop_token_v<F, Args...>
struct call_result<F, Args...> {
    using type = std::invoke_result_t<F, std::stop_token, Args...>;
};

/// What calling `F(args...)` returns (the coroutine type for coroutines).
template <class F, class... Args>
using call_result_t = typename call_result<F, Args...>::type;

template <class T>
struct unwrap_task {
    using type = T;
};
template <class U>
struct unwrap_task<task<U>> {
    using type = U;
};

/// The value type of the future `submit(f, args...)` returns.
template <class F, class... Args>
using submit_result_t = typename unwrap_task<call_result_t<F, Args...>>::type;

/// Calls `f(args...)`, or `f(token, args...)` if f takes a stop_token first.
template <class F, class Tuple>
decltype(auto) call_with(F& f, Tuple& args, const std::stop_token& token) {
    return std::apply(
        [&](auto&... a) -> decltype(auto) {
            if constexpr (takes_stop_token_v<F&, decltype(a)...>) {
                return std::invoke(f, token, a...);
            } else {
                return std::invoke(f, a...);
            }
        },
        args);
}

/// A fire-and-forget coroutine used to run a submitted task<U> to completion
/// on the worker that picked it up; `on_done` runs after the state is set.
struct detached_coro {
    struct promise_type {
        detached_coro get_return_object() noexcept { return {}; }
        std::suspend_never initial_suspend() const noexcept { return {}; }
        std::suspend_never final_suspend() const noexcept { return {}; }
        void return_void() const noexcept {}
        void unhandled_exception() const noexcept { std::terminate(); }
    };
};

/// Awaits `t` and stores its outcome in `state`. `hooks.before(status)` runs
/// just before the outcome is published (so counters are exact by the time a
/// waiter wakes), `hooks.after(state)` just after.
// GCC 12 names coroutine frames with external linkage and then warns
// (-Wsubobject-linkage) when a frame holds a type from an anonymous namespace
// or a lambda, which is every user's case. The warning is about the frame
// type's name only; silence it here rather than in every user's build.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsubobject-linkage"
#endif
template <class U, class Hooks>
detached_coro drive_task_into(task<U> t, shared_state<U>* state, Hooks hooks) {
    try {
        if constexpr (std::is_void_v<U>) {
            co_await std::move(t);
            hooks.before(status::has_value);
            state->set_value();
        } else {
            U value = co_await std::move(t);
            hooks.before(status::has_value);
            state->set_value(std::move(value));
        }
    } catch (...) {
        hooks.before(status::has_exception);
        state->set_exception(std::current_exception());
    }
    hooks.after(state);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace coexec::detail
