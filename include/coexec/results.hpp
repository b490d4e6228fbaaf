// coexec/results.hpp — the lazy, single-pass sequence `executor.map()` returns.
//
// Inputs are taken from the range lazily, on the consuming thread, in chunks
// of `chunksize`, with at most `buffersize` elements in flight, so an endless
// input works and memory stays flat. Each element is delivered in input order
// (`ordered = true`) or completion order. A failed element rethrows its
// exception when it is reached; the elements after it are still available
// (call next() again). The executor must outlive the results object.
//
// Each input is passed to the function whole if it takes it; otherwise a
// std::tuple, std::pair or std::array input is spread over its parameters
// (Python's starmap). A function whose first parameter is std::stop_token
// gets the token of the task running its chunk (on a process_pool an inert
// one: its tasks are stopped by killing the worker). The rule is the same on
// every executor (detail/invoke.hpp).
//
// @par Thread safety
// One consumer: a results object is not to be iterated from two threads.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <stop_token>
#include <type_traits>
#include <utility>
#include <vector>

#include "coexec/detail/completion_queue.hpp"
#include "coexec/detail/invoke.hpp"
#include "coexec/detail/outcome.hpp"
#include "coexec/detail/progress.hpp"
#include "coexec/detail/timer_service.hpp"
#include "coexec/errors.hpp"
#include "coexec/executor.hpp"
#include "coexec/future.hpp"
#include "coexec/task.hpp"

namespace coexec {

namespace detail {

/// What map yields for function `F` over inputs of type `Arg` (U for a
/// coroutine function returning task<U>).
template <class F, class Arg>
using map_result_t = typename unwrap_task<element_result_t<F, Arg>>::type;

template <class R>
using chunk_future = future<std::vector<outcome<R>>>;

/// Executors that run a chunk better than as one generic task (process_pool:
/// one message per chunk) specialize this with
/// `static chunk_future<R> submit(Ex&, const F&, std::vector<Arg>)`.
template <class Ex>
struct map_chunk_hook {};

/// Calls `f` on every element of a chunk (detail/invoke.hpp's rules), keeping
/// each element's outcome: one failure does not lose the others.
template <class R, class F, class Arg>
std::vector<outcome<R>> run_chunk(F& f, std::vector<Arg>& chunk, const std::stop_token& token) {
    std::vector<outcome<R>> out(chunk.size());
    for (std::size_t i = 0; i < chunk.size(); ++i) {
        capture_outcome(out[i], [&]() -> decltype(auto) {
            return invoke_element(f, token, std::move(chunk[i]));
        });
    }
    return out;
}

template <class V>
inline constexpr bool is_owning_view_v = false;
template <class R>
inline constexpr bool is_owning_view_v<std::ranges::owning_view<R>> = true;

/// The input element at `it`: moved out when the view owns the elements (the
/// range was passed as an rvalue, `map(f, std::move(v))`), else copied. So a
/// range of move-only elements can be mapped by handing it over.
template <class View, class It>
decltype(auto) take_element(const It& it) {
    if constexpr (is_owning_view_v<View>) {
        return std::ranges::iter_move(it);
    } else {
        return *it;
    }
}

/// Runs one chunk of a map as one task.
template <class R, class Ex, class F, class Arg>
chunk_future<R> submit_chunk(Ex& ex, const F& f, std::vector<Arg> chunk) {
    trace::name_scope traced(f, trace::after_function);  // the chunk's task is named after f
    if constexpr (requires { map_chunk_hook<Ex>::submit(ex, f, std::move(chunk)); }) {
        return map_chunk_hook<Ex>::submit(ex, f, std::move(chunk));
    } else if constexpr (is_task_v<element_result_t<F, Arg>>) {
        // A coroutine function: the chunk is one coroutine job awaiting the
        // elements in turn, holding no thread while they wait. Its stop token
        // is signalled by cancelling the chunk (and its io operations use it).
        // A lambda, not a function template: the job keeps the lambda, and
        // so `f` and the chunk, alive until the coroutine ends.
        return ex.submit([f, chunk = std::move(chunk)](
                             std::stop_token token) mutable -> task<std::vector<outcome<R>>> {
            std::vector<outcome<R>> out(chunk.size());
            for (std::size_t i = 0; i < chunk.size(); ++i) {
                try {
                    out[i].set_value(co_await invoke_element(f, token, std::move(chunk[i])));
                } catch (...) {
                    out[i].set_exception(std::current_exception());
                }
            }
            co_return out;
        });
    } else if constexpr (element_takes_stop_token_v<F&, Arg>) {
        // The chunk's task takes the token, so cancelling it reaches the elements.
        return ex.submit([f, chunk = std::move(chunk)](std::stop_token token) mutable {
            return run_chunk<R>(f, chunk, token);
        });
    } else {
        return ex.submit(
            [f, chunk = std::move(chunk)]() mutable { return run_chunk<R>(f, chunk, {}); });
    }
}

/// The type-erased engine behind results<R>.
template <class R>
class map_engine {
  public:
    explicit map_engine(map_options options, std::size_t workers)
        : m_options(std::move(options)),
          m_workers(std::max<std::size_t>(1, workers)),
          m_progress(m_options.progress, "map") {
        if (m_options.timeout.count() > 0)
            m_deadline = std::chrono::steady_clock::now() + m_options.timeout;
    }
    virtual ~map_engine() { cancel_timer(m_unordered_timer); }

    /// Blocking: the next element, nullopt at the end; rethrows a failed one.
    std::optional<R> next_blocking() {
        for (;;) {
            if (auto r = take_buffered()) return finish_element(std::move(r));
            top_up();
            if (m_in_flight_chunks == 0) return end();
            receive(wait_blocking());
        }
    }

    /// Awaitable version of next_blocking().
    task<std::optional<R>> next_async() {
        for (;;) {
            if (auto r = take_buffered()) co_return finish_element(std::move(r));
            top_up();
            if (m_in_flight_chunks == 0) co_return end();
            if (m_options.ordered) {
                if (m_deadline && !m_ordered.front().fut.done()) {
                    auto q = std::make_shared<completion_queue<bool>>();
                    m_ordered.front().fut.add_done_callback(
                        [q](const chunk_future<R>&) { q->push(true); });
                    timer_handle timer = arm_timer(q);
                    std::optional<bool> ready = co_await q->pop_or_expired();
                    cancel_timer(timer);
                    if (!ready) throw_timeout();
                }
                slot s = std::move(m_ordered.front());
                m_ordered.pop_front();
                co_await s.fut.when_ready();
                receive(std::move(s));
            } else if (m_deadline) {
                if (m_unordered_timer.id == 0) m_unordered_timer = arm_timer(m_unordered_ptr);
                std::optional<slot> s = co_await m_unordered.pop_or_expired();
                if (!s) throw_timeout();
                receive(std::move(*s));
            } else {
                receive(co_await m_unordered.pop());
            }
        }
    }

  protected:
    struct slot {
        chunk_future<R> fut;
        std::size_t size = 0;
    };
    /// Pulls up to `n` inputs and submits them as one chunk; nullopt at end.
    virtual std::optional<slot> launch(std::size_t n) = 0;
    /// The number of inputs, if the range knows it (for automatic chunksize).
    void set_known_size(std::optional<std::size_t> n) {
        m_known_size = n;
        std::size_t chunk = m_options.chunksize;
        if (chunk == 0) {
            // About 16 chunks per worker. (Python's Pool.map makes 4, to
            // pay its per-message cost rarely; here a message costs a few
            // microseconds, and with 4 the first chunk is waited for and the
            // last one runs alone for a quarter of a worker's share: 200k
            // tiny tasks on 2 workers ran x1.1-1.4 faster with 16, in 9
            // alternating pairs; 8 and 32 were as fast as 16.)
            constexpr std::size_t per_worker = 16;
            const std::size_t chunks = m_workers * per_worker;
            chunk = n ? std::max<std::size_t>(1, (*n + chunks - 1) / chunks) : 1;
        }
        m_chunksize = chunk;
        m_buffersize = m_options.buffersize != 0 ? std::max(m_options.buffersize, chunk)
                                                 : chunk * m_workers * 2;
    }

  private:
    std::optional<outcome<R>> take_buffered() {
        if (m_pos >= m_buffer.size()) return std::nullopt;
        return std::move(m_buffer[m_pos++]);
    }

    std::optional<R> finish_element(std::optional<outcome<R>> r) {
        ++m_consumed;
        report();
        return std::move(*r).get();  // rethrows a failed element; the rest stay queued
    }

    std::optional<R> end() {
        if (m_progress) m_progress.finish(progress_info{m_consumed, m_launched, true, {}, 0});
        return std::nullopt;
    }

    void report() {
        // The input's size when the range knows it (tqdm's total), else what was taken so far.
        if (m_progress) {
            m_progress.update(progress_info{m_consumed,
                                            m_known_size.value_or(m_launched),
                                            m_known_size.has_value() || m_exhausted,
                                            {},
                                            0});
        }
    }

    void top_up() {
        while (!m_exhausted && m_launched - m_consumed < m_buffersize) {
            std::optional<slot> s = launch(m_chunksize);
            if (!s) {
                m_exhausted = true;
                break;
            }
            m_launched += s->size;
            ++m_in_flight_chunks;
            if (m_options.ordered) {
                m_ordered.push_back(std::move(*s));
            } else {
                auto queue = m_unordered_ptr;
                std::size_t size = s->size;
                detail::add_signal_callback(s->fut, [queue, size](const chunk_future<R>& f) {
                    queue->push(slot{f, size});
                });
            }
        }
    }

    slot wait_blocking() {
        const std::chrono::steady_clock::time_point* deadline = m_deadline ? &*m_deadline : nullptr;
        if (m_options.ordered) {
            slot& s = m_ordered.front();
            if (deadline && !s.fut.wait_until(*deadline)) throw_timeout();
            if (!deadline) s.fut.wait();
            slot out = std::move(s);
            m_ordered.pop_front();
            return out;
        }
        auto s = m_unordered.pop_until(deadline);
        if (!s) throw_timeout();
        return std::move(*s);
    }

    // The map's deadline wakes a coroutine waiting on `q` (detail/timer_service.hpp).
    template <class Q>
    timer_handle arm_timer(const std::shared_ptr<Q>& q) {
        return schedule_timer(*m_deadline, [weak = std::weak_ptr<Q>(q)] {
            if (auto live = weak.lock()) live->expire();
        });
    }

    [[noreturn]] void throw_timeout() {
        throw timeout_error("map: the results were not ready before the map's timeout");
    }

    void receive(slot s) {
        --m_in_flight_chunks;
        if (auto e = s.fut.exception()) {
            // The whole chunk failed (a dead worker, cancellation): every element carries it.
            m_buffer.assign(s.size, outcome<R>{});
            for (auto& o : m_buffer)
                o.set_exception(e);
        } else {
            m_buffer = std::move(s.fut).get();
        }
        m_pos = 0;
    }

    map_options m_options;
    std::size_t m_workers;
    progress_reporter m_progress;
    std::optional<std::chrono::steady_clock::time_point> m_deadline;
    std::size_t m_chunksize = 1;
    std::size_t m_buffersize = 1;
    std::uint64_t m_launched = 0;
    std::optional<std::uint64_t> m_known_size;  // the input range's size, if it has one
    std::uint64_t m_consumed = 0;
    std::size_t m_in_flight_chunks = 0;
    bool m_exhausted = false;
    std::deque<slot> m_ordered;
    std::shared_ptr<completion_queue<slot>> m_unordered_ptr =
        std::make_shared<completion_queue<slot>>();
    completion_queue<slot>& m_unordered = *m_unordered_ptr;
    timer_handle m_unordered_timer;  // armed at the first awaited wait with a deadline
    std::vector<outcome<R>> m_buffer;
    std::size_t m_pos = 0;
};

template <class R, class Ex, class F, class View>
class map_engine_impl final : public map_engine<R> {
  public:
    using arg_type = std::ranges::range_value_t<View>;
    map_engine_impl(Ex& ex, F f, View view, map_options options)
        : map_engine<R>(std::move(options), ex.max_workers()),
          m_ex(ex),
          m_fn(std::move(f)),
          m_view(std::move(view)),
          m_it(std::ranges::begin(m_view)) {
        std::optional<std::size_t> n;
        if constexpr (std::ranges::sized_range<View>)
            n = static_cast<std::size_t>(std::ranges::size(m_view));
        this->set_known_size(n);
    }

  private:
    using slot = typename map_engine<R>::slot;
    std::optional<slot> launch(std::size_t n) override {
        std::vector<arg_type> chunk;
        chunk.reserve(n);
        for (; chunk.size() < n && m_it != std::ranges::end(m_view); ++m_it)
            chunk.emplace_back(take_element<View>(m_it));
        if (chunk.empty()) return std::nullopt;
        std::size_t size = chunk.size();
        return slot{submit_chunk<R>(m_ex, m_fn, std::move(chunk)), size};
    }

    Ex& m_ex;
    F m_fn;
    View m_view;
    std::ranges::iterator_t<View> m_it;
};

}  // namespace detail

template <class R>
class results {
  public:
    using value_type = R;

    explicit results(std::unique_ptr<detail::map_engine<R>> engine) : m_engine(std::move(engine)) {}

    /// Blocking, for ordinary code: the next element, or nullopt at the end.
    /// Rethrows a failed element's exception; call again for the rest.
    /// Throws timeout_error once the map's timeout has passed.
    std::optional<R> next_blocking() { return m_engine->next_blocking(); }

    /// For coroutines: `while (auto r = co_await results.next())`.
    task<std::optional<R>> next() { return m_engine->next_async(); }

    /// Blocks for every element; rethrows the first failure.
    std::vector<R> to_vector() {
        std::vector<R> out;
        while (auto r = next_blocking())
            out.push_back(std::move(*r));
        return out;
    }
    /// Awaits every element; rethrows the first failure.
    task<std::vector<R>> collect() {
        std::vector<R> out;
        while (auto r = co_await next())
            out.push_back(std::move(*r));
        co_return out;
    }

    class iterator {
      public:
        using iterator_category = std::input_iterator_tag;
        using value_type = R;
        using difference_type = std::ptrdiff_t;

        iterator() = default;
        explicit iterator(results* owner) : m_owner(owner) { advance(); }
        R& operator*() const { return *m_current; }
        R* operator->() const { return &*m_current; }
        iterator& operator++() {
            advance();
            return *this;
        }
        void operator++(int) { advance(); }
        friend bool operator==(const iterator& it, std::default_sentinel_t) {
            return !it.m_current;
        }

      private:
        void advance() {
            m_current.reset();
            m_current = m_owner->next_blocking();
        }
        results* m_owner = nullptr;
        mutable std::optional<R> m_current;
    };

    /// Single pass: begin() starts consuming (blocking per element).
    iterator begin() { return iterator(this); }
    std::default_sentinel_t end() const noexcept { return {}; }

  private:
    std::unique_ptr<detail::map_engine<R>> m_engine;
};

namespace detail {

/// Builds the results of `ex.map(f, inputs, options)` for any executor.
template <class Ex, class F, class Range>
auto make_results(Ex& ex, F&& f, Range&& inputs, map_options options) {
    auto view = std::views::all(std::forward<Range>(inputs));
    using View = decltype(view);
    using Arg = std::ranges::range_value_t<View>;
    using Fn = std::decay_t<F>;
    using R = map_result_t<Fn, Arg>;
    static_assert(!std::is_void_v<R>,
                  "coexec map: the function must return a value (use submit for void work)");
    return results<R>(std::make_unique<map_engine_impl<R, Ex, Fn, View>>(
        ex, std::forward<F>(f), std::move(view), std::move(options)));
}

}  // namespace detail
}  // namespace coexec
