// coexec/when_any.hpp — awaiting the first of many futures from a coroutine.
//
//   auto [index, f] = co_await when_any(vec);        // the first to finish
//   int v = f.get();                                  // it is done: no wait
//
// The first future to finish wins, whatever its outcome (value, exception or
// cancellation): when_any itself never throws the futures' exceptions; ask
// the returned future. The others keep running. Holds no thread while
// waiting; the coroutine resumes on its own executor (sticky), as with
// `co_await future`. Futures may come from different executors.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <utility>
#include <vector>

#include "coexec/detail/future_range.hpp"
#include "coexec/detail/multi_wait.hpp"
#include "coexec/future.hpp"
#include "coexec/task.hpp"

namespace coexec {

/// The index and future of the first future to finish (value, exception or
/// cancellation). Throws std::invalid_argument for an empty range.
template <class Range>
auto when_any(const Range& futures)
    -> task<std::pair<std::size_t, future<detail::range_future_value_t<Range>>>> {
    using R = detail::range_future_value_t<Range>;
    using all_futures = std::vector<future<R>>;
    all_futures all;
    for (const auto& e : futures)
        all.push_back(detail::as_future(e));
    if (all.empty()) throw std::invalid_argument("when_any: no futures to wait for");
    std::size_t index = co_await detail::multi_wait<all_futures>(all, detail::wait_mode::any);
    co_return std::pair<std::size_t, future<R>>(index, all[index]);
}

}  // namespace coexec
