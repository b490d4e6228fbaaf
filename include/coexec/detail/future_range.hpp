// detail/future_range.hpp — accepting "many futures" in the forms users hold them.
#pragma once

#include <ranges>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include "coexec/future.hpp"

namespace coexec::detail {

template <class T>
struct future_of {};
template <class R>
struct future_of<future<R>> {
    using type = R;
};
template <class R, class V>
struct future_of<std::pair<const future<R>, V>> {  // a map keyed by futures (Python's idiom)
    using type = R;
};

/// The future of a range element: the element, or a map entry's key.
template <class R>
const future<R>& as_future(const future<R>& f) noexcept {
    return f;
}
template <class R, class V>
const future<R>& as_future(const std::pair<const future<R>, V>& entry) noexcept {
    return entry.first;
}

/// The R of a range of future<R> (or of a map from future<R>).
template <class Range>
using range_future_value_t =
    typename future_of<std::remove_cv_t<std::ranges::range_value_t<Range>>>::type;

/// Copies the futures of `range`, each once (a future given twice counts once).
template <class Range>
std::vector<future<range_future_value_t<Range>>> unique_futures(const Range& range) {
    using R = range_future_value_t<Range>;
    std::vector<future<R>> out;
    std::unordered_set<future<R>> seen;  // futures compare and hash by identity
    for (const auto& e : range) {
        const future<R>& f = as_future(e);
        if (seen.insert(f).second) out.push_back(f);
    }
    return out;
}

}  // namespace coexec::detail
