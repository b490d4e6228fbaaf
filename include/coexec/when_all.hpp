// coexec/when_all.hpp — awaiting every one of many futures from a coroutine.
//
//   auto [a, b] = co_await when_all(f1, f2);        // tuple; void → std::monostate
//   std::vector<R> v = co_await when_all(vec);       // void for R = void
//   auto all = co_await when_all_settled(vec);       // every future, whatever its outcome
//
// when_all fails fast: it rethrows the first exception (cancelled_error for a
// cancelled future) as soon as it happens, without waiting for the rest.
// None of these holds a thread while waiting; the coroutine resumes on its
// own executor (sticky), as with `co_await future`. Futures may come from
// different executors. For the first future to finish, see when_any.hpp.
#pragma once

#include <cstddef>
#include <exception>
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

/// The value of a finished future (a copy: other handles may share it), or rethrows.
template <class T>
value_or_monostate_t<T> take_value(const future<T>& f) {
    if constexpr (std::is_void_v<T>) {
        f.get();
        return {};
    } else {
        return f.get();
    }
}

// A coroutine over a tuple (GCC 12 mishandles parameter packs in coroutines).
template <class... T>
task<std::tuple<value_or_monostate_t<T>...>> when_all_tuple(std::tuple<future<T>...> futures) {
    using all_futures = std::tuple<future<T>...>;
    std::size_t failed = co_await multi_wait<all_futures>(futures, wait_mode::all_or_failure);
    if (failed != multi_wait<all_futures>::npos) {
        std::apply(
            [failed](const auto&... f) {
                std::size_t i = 0;
                ((i++ == failed ? std::rethrow_exception(f.exception()) : void()), ...);
            },
            futures);
    }
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
    using all_futures = std::vector<future<R>>;
    all_futures all;
    for (const auto& e : futures)
        all.push_back(detail::as_future(e));
    std::size_t failed =
        co_await detail::multi_wait<all_futures>(all, detail::wait_mode::all_or_failure);
    if (failed != detail::multi_wait<all_futures>::npos)
        std::rethrow_exception(all[failed].exception());
    if constexpr (std::is_void_v<R>) {
        co_return;
    } else {
        std::vector<R> out;
        out.reserve(all.size());
        for (auto& f : all)
            out.push_back(f.get());
        co_return out;
    }
}

/// Waits for every future to finish, whatever the outcome; never throws
/// the futures' exceptions. Returns the futures, in the input order.
template <class Range>
auto when_all_settled(const Range& futures)
    -> task<std::vector<future<detail::range_future_value_t<Range>>>> {
    using R = detail::range_future_value_t<Range>;
    using all_futures = std::vector<future<R>>;
    all_futures all;
    for (const auto& e : futures)
        all.push_back(detail::as_future(e));
    co_await detail::multi_wait<all_futures>(all, detail::wait_mode::all);
    co_return all;
}

}  // namespace coexec
