// detail/invoke.hpp — how coexec calls a user's function: the two rules, once.
//
// 1. The stop token. A callable whose first parameter is std::stop_token
//    (it can be called with one in front and cannot be called without) is
//    handed the task's token: `f(token, args...)`. Everything else is called
//    `f(args...)`.
// 2. Spreading a map element. `map` and `pipeline` call `f(element)` when f
//    accepts the element whole; otherwise a std::tuple, std::pair or
//    std::array element is spread over the parameters, `f(e0, e1, ...)`
//    (Python's starmap). Rule 1 applies on top of either form.
//
// thread_pool, inline_executor, asio_executor and the pipeline call through
// these; process_pool::map shapes the elements it sends by rule 2
// (detail::wire_element_t), so a map function behaves the same wherever it
// runs. Nothing here depends on the rest of coexec, so the codec's
// worker-side calls can use it too.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

namespace coexec::detail {

// ---- rule 1: the stop token ----

/// True if `F` wants a std::stop_token as its first argument.
template <class F, class... Args>
inline constexpr bool takes_stop_token_v =
    std::is_invocable_v<F, std::stop_token, Args...> && !std::is_invocable_v<F, Args...>;

/// True if `F` can be called with `Args` under rule 1.
template <class F, class... Args>
inline constexpr bool is_callable_v =
    std::is_invocable_v<F, Args...> || std::is_invocable_v<F, std::stop_token, Args...>;

/// Calls `f(args...)`, or `f(token, args...)` if f takes a stop_token first.
template <class F, class... Args>
decltype(auto) invoke_with_token(F&& f, const std::stop_token& token, Args&&... args) {
    if constexpr (takes_stop_token_v<F, Args...>) {
        return std::invoke(std::forward<F>(f), token, std::forward<Args>(args)...);
    } else {
        return std::invoke(std::forward<F>(f), std::forward<Args>(args)...);
    }
}

template <class F, class... Args>
struct call_result {
    using type = std::invoke_result_t<F, Args...>;
};
template <class F, class... Args>
    requires takes_stop_token_v<F, Args...>
struct call_result<F, Args...> {
    using type = std::invoke_result_t<F, std::stop_token, Args...>;
};

/// What calling `F(args...)` under rule 1 returns (the coroutine type for coroutines).
template <class F, class... Args>
using call_result_t = typename call_result<F, Args...>::type;

/// invoke_with_token over a tuple of stored arguments. A submitted call runs
/// once, so like std::thread and std::async the callable and the arguments
/// (decay-copied when submitted) are passed as rvalues: a move-only argument
/// works, a parameter of type `T&` does not (pass std::ref).
template <class F, class Tuple>
decltype(auto) call_with(F&& f, Tuple&& args, const std::stop_token& token) {
    return std::apply(
        [&](auto&&... a) -> decltype(auto) {
            return invoke_with_token(std::forward<F>(f), token, std::forward<decltype(a)>(a)...);
        },
        std::forward<Tuple>(args));
}

// ---- rule 2: spreading a map element ----

template <class T>
inline constexpr bool is_spreadable_v = false;
template <class... Ts>
inline constexpr bool is_spreadable_v<std::tuple<Ts...>> = true;
template <class A, class B>
inline constexpr bool is_spreadable_v<std::pair<A, B>> = true;
template <class T, std::size_t N>
inline constexpr bool is_spreadable_v<std::array<T, N>> = true;

/// True if map calls `F` with the elements of `E` rather than with `E` itself.
template <class F, class E>
inline constexpr bool spreads_element_v =
    is_spreadable_v<std::remove_cvref_t<E>> && !is_callable_v<F, E>;

/// Calls `f` with one map element under rules 1 and 2.
template <class F, class E>
decltype(auto) invoke_element(F&& f, const std::stop_token& token, E&& element) {
    if constexpr (spreads_element_v<F, E>) {
        return std::apply(
            [&](auto&&... a) -> decltype(auto) {
                return invoke_with_token(f, token, std::forward<decltype(a)>(a)...);
            },
            std::forward<E>(element));
    } else {
        return invoke_with_token(std::forward<F>(f), token, std::forward<E>(element));
    }
}

template <class F, class E, class = void>
struct spread_takes_stop_token : std::false_type {};
template <class F, class E>
struct spread_takes_stop_token<F, E, std::enable_if_t<spreads_element_v<F, E>>> {
    static constexpr bool value = []<std::size_t... I>(std::index_sequence<I...>) {
        return takes_stop_token_v<F, decltype(std::get<I>(std::declval<E>()))...>;
    }(std::make_index_sequence<std::tuple_size_v<std::remove_cvref_t<E>>>{});
};

/// True if `F` called with map element `E` wants the stop token (rules 1 and 2).
template <class F, class E>
inline constexpr bool element_takes_stop_token_v =
    spreads_element_v<F, E> ? spread_takes_stop_token<F, E>::value : takes_stop_token_v<F, E>;

/// What `F` returns for a map element of type `E`, decayed: the value a map
/// or pipeline stage yields. Each element is used once, so it is passed as an
/// rvalue (moved into a by-value parameter; a move-only element works).
template <class F, class E>
using element_result_t = std::decay_t<decltype(invoke_element(
    std::declval<F&>(), std::declval<const std::stop_token&>(), std::declval<E>()))>;

}  // namespace coexec::detail
