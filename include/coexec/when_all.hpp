// coexec/when_all.hpp — awaiting many futures from a coroutine.
//
//   auto [a, b] = co_await when_all(f1, f2);        // tuple; void → std::monostate
//   std::vector<R> v = co_await when_all(vec);       // void for R = void
//   auto all = co_await when_all_settled(vec);       // every future, whatever its outcome
//   auto [index, f] = co_await when_any(vec);        // the first to finish
//
// when_all fails fast: it rethrows the first exception (cancelled_error for a
// cancelled future) as soon as it happens, without waiting for the rest.
// None of these holds a thread while waiting; the coroutine resumes on its
// own executor (sticky), as with `co_await future`. Futures may come from
// different executors.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "coexec/detail/future_range.hpp"
#include "coexec/detail/multi_wait.hpp"
#include "coexec/future.hpp"
#include "coexec/task.hpp"

namespace coexec {

namespace detail {

template <class T>
using value_or_monostate_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
value_or_monostate_t<T> take_value(const future<T>& f) {
    f.state()->throw_if_failed();
    if constexpr (std::is_void_v<T>) {
        return {};
    } else {
        return f.state()->value();
    }
}

template <class R>
std::vector<shared_state_base*> states_of(const std::vector<future<R>>& futures) {
    std::vector<shared_state_base*> out;
    out.reserve(futures.size());
    for (const auto& f : futures)
        out.push_back(f.state());
    return out;
}

}  // namespace detail

namespace detail {

// A coroutine over a tuple (GCC 12 mishandles parameter packs in coroutines).
template <class... T>
task<std::tuple<value_or_monostate_t<T>...>> when_all_tuple(std::tuple<future<T>...> futures) {
    std::vector<shared_state_base*> states = std::apply(
        [](const auto&... f) { return std::vector<shared_state_base*>{f.state()...}; }, futures);
    std::size_t failed = co_await multi_wait(states, wait_mode::all_or_failure);
    if (failed != multi_wait::npos) states[failed]->throw_if_failed();
    co_return std::apply(
        [](const auto&... f) { return std::tuple<value_or_monostate_t<T>...>(take_value(f)...); },
        futures);
}

}  // namespace detail

/// The values of all futures, as a tuple; fails fast on the first exception.
template <class... T>
task<std::tuple<detail::value_or_monostate_t<T>...>> when_all(future<T>... futures) {
    return detail::when_all_tuple(std::tuple<future<T>...>(std::move(futures)...));
}

/// The values of a range of future<R> (a vector; nothing for R = void);
/// fails fast on the first exception.
template <class Range>
requires std::ranges::range<Range>
auto when_all(const Range& futures)
    -> task<std::conditional_t<std::is_void_v<detail::range_future_value_t<Range>>, void,
                               std::vector<detail::range_future_value_t<Range>>>> {
    using R = detail::range_future_value_t<Range>;
    std::vector<future<R>> all;
    for (const auto& e : futures)
        all.push_back(detail::as_future(e));
    std::size_t failed =
        co_await detail::multi_wait(detail::states_of(all), detail::wait_mode::all_or_failure);
    if (failed != detail::multi_wait::npos) all[failed].state()->throw_if_failed();
    if constexpr (std::is_void_v<R>) {
        for (auto& f : all)
            f.state()->throw_if_failed();
        co_return;
    } else {
        std::vector<R> out;
        out.reserve(all.size());
        for (auto& f : all)
            out.push_back(detail::take_value(f));
        co_return out;
    }
}

/// Waits for every future to finish, whatever the outcome; never throws
/// the futures' exceptions. Returns the futures, in the input order.
template <class Range>
auto when_all_settled(const Range& futures)
    -> task<std::vector<future<detail::range_future_value_t<Range>>>> {
    using R = detail::range_future_value_t<Range>;
    std::vector<future<R>> all;
    for (const auto& e : futures)
        all.push_back(detail::as_future(e));
    co_await detail::multi_wait(detail::states_of(all), detail::wait_mode::all);
    co_return all;
}

/// The index and future of the first future to finish (value, exception or
/// cancellation). Throws std::invalid_argument for an empty range.
template <class Range>
auto when_any(const Range& futures)
    -> task<std::pair<std::size_t, future<detail::range_future_value_t<Range>>>> {
    using R = detail::range_future_value_t<Range>;
    std::vector<future<R>> all;
    for (const auto& e : futures)
        all.push_back(detail::as_future(e));
    if (all.empty()) throw std::invalid_argument("when_any: no futures to wait for");
    std::size_t index = co_await detail::multi_wait(detail::states_of(all), detail::wait_mode::any);
    co_return std::pair<std::size_t, future<R>>(index, all[index]);
}

}  // namespace coexec
