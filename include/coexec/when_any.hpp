// coexec/when_any.hpp — awaiting the first of many futures from a coroutine.
//
//   auto [index, f] = co_await when_any(vec);        // the first to finish
//   auto [index, f] = co_await when_any(f1, f2, f3);  // the same, futures of one type
//   int v = f.get();                                  // it is done: no wait
//
// The first future to finish wins, whatever its outcome (value, exception or
// cancellation): when_any itself never throws the futures' exceptions; ask
// the returned future. The others keep running. Holds no thread while
// waiting; the coroutine resumes on its own executor (sticky), as with
// `co_await future`. Futures may come from different executors.
#pragma once

#include <concepts>
#include <cstddef>
#include <ranges>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "coexec/detail/future_range.hpp"
#include "coexec/detail/multi_wait.hpp"
#include "coexec/future.hpp"
#include "coexec/task.hpp"

namespace coexec {

namespace detail {

template <class R>
task<std::pair<std::size_t, future<R>>> when_any_of(std::vector<future<R>> all) {
    if (all.empty()) throw std::invalid_argument("when_any: no futures to wait for");
    std::size_t index = co_await multi_wait<std::vector<future<R>>>(all, wait_mode::any);
    co_return std::pair<std::size_t, future<R>>(index, std::move(all[index]));
}

}  // namespace detail

/// The index and future of the first future to finish (value, exception or
/// cancellation). The futures are copied at the call, so the range need not
/// outlive the returned task. Awaiting it throws std::invalid_argument for an
/// empty range.
template <class Range>
    requires std::ranges::range<const Range&>
auto when_any(const Range& futures)
    -> task<std::pair<std::size_t, future<detail::range_future_value_t<Range>>>> {
    using R = detail::range_future_value_t<Range>;
    std::vector<future<R>> all;
    for (const auto& e : futures)
        all.push_back(detail::as_future(e));
    return detail::when_any_of(std::move(all));
}

/// The same for futures given one by one, of one type:
/// `auto [index, f] = co_await when_any(f1, f2, f3);` (index 0 is `f1`).
template <class R, class... More>
    requires(std::same_as<std::remove_cvref_t<More>, future<R>> && ...)
task<std::pair<std::size_t, future<R>>> when_any(const future<R>& first, const More&... more) {
    return detail::when_any_of(std::vector<future<R>>{first, more...});
}

}  // namespace coexec
