// coexec/wait.hpp — block until some or all of many futures finish.
//
//   wait_result<R> r = wait(futures, return_when::first_completed, 5s);
//
// Python's concurrent.futures.wait: returns when the condition holds or the
// timeout passes (it never throws timeout_error), with the futures split into
// `done` and `not_done`. Cancelled futures count as done; `first_exception`
// fires on a future that finished with an exception (not on a cancelled one)
// and otherwise waits for all. Futures may come from different executors; a
// future given twice appears once.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "coexec/detail/future_range.hpp"
#include "coexec/future.hpp"

namespace coexec {

enum class return_when { first_completed, first_exception, all_completed };

/// One side of a wait_result: the futures in the order they were given (a
/// std::vector), with the lookups of Python's sets (`f in r.done`).
template <class R>
struct future_set : std::vector<future<R>> {
    using std::vector<future<R>>::vector;
    /// 1 if `f` (the same shared state) is here, else 0: a future is never here twice.
    std::size_t count(const future<R>& f) const {
        return static_cast<std::size_t>(std::find(this->begin(), this->end(), f) != this->end());
    }
    bool contains(const future<R>& f) const { return count(f) != 0; }
};

template <class R>
struct wait_result {
    future_set<R> done;
    future_set<R> not_done;
};

namespace detail {

template <class R>
wait_result<R> wait_impl(std::vector<future<R>> futures, return_when when,
                         std::optional<std::chrono::steady_clock::time_point> deadline) {
    struct tally {
        std::mutex mutex;
        std::condition_variable cv;
        std::size_t finished = 0;
        bool failed = false;
    };
    auto t = std::make_shared<tally>();
    for (auto& f : futures) {
        detail::add_signal_callback(f, [t](const future<R>& done) {
            bool failed = done.has_exception();  // not a cancellation
            std::lock_guard lock(t->mutex);
            ++t->finished;
            t->failed = t->failed || failed;
            t->cv.notify_all();  // under the lock: the waiter may return and drop the tally
        });
    }
    const std::size_t total = futures.size();
    auto satisfied = [&] {
        switch (when) {
            case return_when::first_completed:
                return total == 0 || t->finished > 0;
            case return_when::first_exception:
                return t->failed || t->finished == total;
            case return_when::all_completed:
                return t->finished == total;
        }
        return true;
    };
    {
        std::unique_lock lock(t->mutex);
        if (deadline) {
            t->cv.wait_until(lock, *deadline, satisfied);
        } else {
            t->cv.wait(lock, satisfied);
        }
    }
    wait_result<R> r;
    for (auto& f : futures)
        (f.done() ? r.done : r.not_done).push_back(std::move(f));
    return r;
}

}  // namespace detail

template <class Range>
auto wait(const Range& futures, return_when when = return_when::all_completed) {
    return detail::wait_impl(detail::unique_futures(futures), when, std::nullopt);
}

template <class Range, class Rep, class Period>
auto wait(const Range& futures, return_when when, std::chrono::duration<Rep, Period> timeout) {
    return detail::wait_impl(detail::unique_futures(futures), when,
                             std::chrono::steady_clock::now() +
                                 std::chrono::ceil<std::chrono::steady_clock::duration>(timeout));
}

/// `wait({f1, f2}, ...)`: a braced list of futures of one type.
template <class R>
auto wait(std::initializer_list<future<R>> futures, return_when when = return_when::all_completed) {
    return coexec::wait(std::vector<future<R>>(futures), when);
}
template <class R, class Rep, class Period>
auto wait(std::initializer_list<future<R>> futures, return_when when,
          std::chrono::duration<Rep, Period> timeout) {
    return coexec::wait(std::vector<future<R>>(futures), when, timeout);
}

/// wait(futures, 5s): all_completed with a timeout (Python's
/// `wait(fs, timeout=5)`, whose return_when defaults too).
template <class Range, class Rep, class Period>
auto wait(const Range& futures, std::chrono::duration<Rep, Period> timeout) {
    return coexec::wait(futures, return_when::all_completed, timeout);
}
template <class R, class Rep, class Period>
auto wait(std::initializer_list<future<R>> futures, std::chrono::duration<Rep, Period> timeout) {
    return coexec::wait(std::vector<future<R>>(futures), return_when::all_completed, timeout);
}

}  // namespace coexec
