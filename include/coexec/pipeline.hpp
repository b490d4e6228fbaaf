// coexec/pipeline.hpp — stages on different executors, with backpressure.
//
//   auto out = coexec::pipeline(paths)
//       .then(io_pool,  read_file, {.concurrency = 64})
//       .then(cpu_pool, compress,  {.concurrency = 8, .ordered = false})
//       .collect();                                  // or .for_each(fn), .stream(), co_await
//
// The seeds' advice for mixed work ("thread pool for fetch, process pool for
// heavy transform") as one bounded, observable object. Every stage runs
// concurrently: up to `concurrency` items are in flight on its executor, and
// at most `buffer` finished items wait for the next stage, so an upstream
// stage stops when downstream is full (backpressure) and memory stays flat on
// an endless input. The input range is read lazily on the consuming thread.
//
// Errors: `error_policy::fail_fast` (default) cancels everything in flight and
// rethrows the first failure to the consumer; `error_policy::collect` drops
// the failed item, records it (`pipeline_error`: input index, stage, exception)
// and goes on.
//
// Cancellation: `pipeline_stream::cancel()` or a stop_token in the options
// cancels every stage: queued work is cancelled, nothing more is read from
// the input, and the consumer gets cancelled_error.
//
// @par Thread safety
// One consumer. Stage functions run on their executors; the pipeline's own
// bookkeeping runs on the consuming thread only. Executors must outlive the
// pipeline run.
#pragma once

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "coexec/detail/event_signal.hpp"
#include "coexec/detail/invoke.hpp"
#include "coexec/detail/progress.hpp"
#include "coexec/errors.hpp"
#include "coexec/executor.hpp"
#include "coexec/future.hpp"
#include "coexec/results.hpp"
#include "coexec/task.hpp"

namespace coexec {

enum class error_policy {
    fail_fast,  ///< the first failure cancels the pipeline and is rethrown
    collect,    ///< failed items are dropped and recorded; the rest go on
};

/// Options of one `.then()` stage; documented in docs/api-pipelines.md.
struct stage_options {
    /// Items in flight on this stage's executor at once.
    std::size_t concurrency = 1;
    /// true: items leave this stage in input order; false: as they finish.
    bool ordered = true;
    /// Finished items held for the next stage before this one pauses; 0 = concurrency × chunksize.
    std::size_t buffer = 0;
    /// Items per task: raise it for tiny items (one task, one message to a
    /// process worker, per chunk). `concurrency` then counts chunks.
    std::size_t chunksize = 1;
    /// Per-stage progress: a callback, or `true` for a bar on stderr (when a terminal).
    std::variant<bool, std::function<void(const progress_info&)>> progress = false;
    /// Name used in progress bars and error reports; default "stage <n>".
    /// Copied when the stage is added. A view, not a std::string: GCC 12
    /// copies an aggregate made inside a `co_await` expression bitwise and
    /// destroys both copies (`co_await pipeline(in).then(pool, f, {...})`),
    /// which a string's inline buffer does not survive.
    std::string_view name = {};
};

/// Options of the whole pipeline.
struct pipeline_options {
    error_policy errors = error_policy::fail_fast;
    /// Requesting stop on it cancels the pipeline.
    std::stop_token stop = {};
};

/// A failed item under error_policy::collect.
struct pipeline_error {
    std::size_t input_index = 0;  ///< position of the item in the input
    std::size_t stage = 0;        ///< 0-based index of the stage that failed
    std::string stage_name;
    std::exception_ptr error;
};

/// What collect() returns: the values (a vector in all but name) and, under
/// error_policy::collect, the failed items.
template <class T>
struct pipeline_result {
    std::vector<T> values;
    std::vector<pipeline_error> errors;

    auto begin() { return values.begin(); }
    auto end() { return values.end(); }
    auto begin() const { return values.begin(); }
    auto end() const { return values.end(); }
    std::size_t size() const noexcept { return values.size(); }
    bool empty() const noexcept { return values.empty(); }
    T& operator[](std::size_t i) { return values[i]; }
    const T& operator[](std::size_t i) const { return values[i]; }
    T& front() { return values.front(); }
    const T& front() const { return values.front(); }
    T& back() { return values.back(); }
    const T& back() const { return values.back(); }

    /// The values, as `std::vector<T> v = pipeline(in).then(...).collect();`.
    operator std::vector<T>() const& { return values; }
    operator std::vector<T>() && { return std::move(values); }

    /// Compares the values (errors aside).
    friend bool operator==(const pipeline_result& r, const std::vector<T>& v)
        requires std::equality_comparable<T>
    {
        return r.values == v;
    }
};

namespace detail {

/// An item moving through the pipeline, tagged with its input position.
template <class T>
struct tagged {
    std::size_t index;
    T value;
};

/// Where a stage delivers its outputs (the next stage, or the consumer).
template <class T>
class pipeline_sink {
  public:
    virtual bool has_room() const = 0;
    virtual void push(tagged<T> item) = 0;

  protected:
    ~pipeline_sink() = default;
};

/// Shared by all stages of one run: the wake-up queue and the error state.
struct pipeline_context {
    std::shared_ptr<event_signal> events = std::make_shared<event_signal>();
    error_policy policy = error_policy::fail_fast;
    std::exception_ptr failure;  // fail_fast: the first failure (or cancelled_error)
    std::vector<pipeline_error> errors;
    std::optional<std::uint64_t> source_size;  // the input range's size, if it has one
    std::vector<std::uint64_t> dropped;        // [stage]: items that failed there (collect)

    /// How many items reach `stage`, when the input's size is known: those
    /// that did not fail upstream (a progress bar's total).
    std::optional<std::uint64_t> items_reaching(std::size_t stage) const {
        if (!source_size) return std::nullopt;
        std::uint64_t n = *source_size;
        for (std::size_t i = 0; i < stage && i < dropped.size(); ++i)
            n -= std::min(n, dropped[i]);
        return n;
    }
};

class pipeline_stage_base {
  public:
    virtual ~pipeline_stage_base() = default;
    /// Moves finished items downstream and starts new ones; true if anything moved.
    virtual bool pump() = 0;
    /// Nothing queued or in flight.
    virtual bool idle() const = 0;
    /// Cancels queued and in-flight work and drops buffered items.
    virtual void abort() noexcept = 0;
    /// The upstream will send nothing more.
    virtual void close_input() = 0;
};

template <class In, class Out, class Ex, class F>
class pipeline_stage final : public pipeline_stage_base, public pipeline_sink<In> {
  public:
    pipeline_stage(pipeline_context& ctx, std::size_t index, Ex& ex, F fn,
                   const stage_options& opts)
        : m_ctx(ctx),
          m_index(index),
          m_ex(ex),
          m_fn(std::move(fn)),
          m_concurrency(std::max<std::size_t>(1, opts.concurrency)),
          m_chunksize(std::max<std::size_t>(1, opts.chunksize)),
          m_ordered(opts.ordered),
          m_capacity(opts.buffer != 0 ? std::max(opts.buffer, m_chunksize)
                                      : m_concurrency * m_chunksize),
          m_name(opts.name.empty() ? "stage " + std::to_string(index) : std::string(opts.name)),
          m_trace_task_name(opts.name.empty() ? std::string_view() : std::string_view(m_name)),
          m_progress(opts.progress, m_name) {}

    void connect(pipeline_sink<Out>* next) noexcept { m_next = next; }

    bool has_room() const override { return m_inbox.size() < m_capacity; }
    void push(tagged<In> item) override { m_inbox.push_back(std::move(item)); }
    void close_input() override { m_input_closed = true; }

    bool idle() const override { return m_inbox.empty() && m_flight.empty(); }

    bool pump() override {
        bool moved = deliver();
        while (m_flight.size() < m_concurrency && !m_inbox.empty() && !m_ctx.failure) {
            start_chunk();
            moved = true;
        }
        if (m_input_closed && idle() && !m_reported_end) {
            m_reported_end = true;
            if (m_progress) m_progress.finish(progress_info{m_done, m_started, true, {}, 0});
        }
        return moved;
    }

    void abort() noexcept override {
        for (auto& e : m_flight) {
            e.fut.cancel();
            detail::trace::on_stage_end(m_name, e.trace_id);
        }
        m_flight.clear();
        m_inbox.clear();
    }

  private:
    struct entry {
        std::vector<std::size_t> indices;  // input positions of the chunk's items
        chunk_future<Out> fut;
        std::uint64_t trace_id = 0;  // its slice on the stage's trace track
    };

    // Takes what the inbox has, up to chunksize: a partial chunk goes at once
    // rather than waiting for upstream (latency over batching).
    void start_chunk() {
        std::vector<In> values;
        std::vector<std::size_t> indices;
        std::size_t n = std::min(m_chunksize, m_inbox.size());
        values.reserve(n);
        indices.reserve(n);
        for (std::size_t k = 0; k < n; ++k) {
            values.push_back(std::move(m_inbox.front().value));
            indices.push_back(m_inbox.front().index);
            m_inbox.pop_front();
        }
        m_started += n;
        try {
            trace::name_scope traced(m_trace_task_name);  // a named stage names its tasks
            // As map's chunks (results.hpp): items passed by map's rule, and a
            // stage function returning task<U> runs as one coroutine per chunk.
            chunk_future<Out> f = submit_chunk<Out>(m_ex, m_fn, std::move(values));
            auto events = m_ctx.events;
            detail::add_signal_callback(f,
                                        [events](const chunk_future<Out>&) { events->notify(); });
            m_flight.push_back(
                entry{std::move(indices), std::move(f), trace::on_stage_begin(m_name, n)});
        } catch (...) {  // the executor refused (shut down): the items fail here
            for (std::size_t i : indices)
                fail(i, std::current_exception());
            m_done += n;
        }
    }

    bool deliver() {
        bool moved = false;
        for (auto it = m_flight.begin(); it != m_flight.end();) {
            if (!it->fut.done()) {
                if (m_ordered) break;  // keep input order: wait for the oldest
                ++it;
                continue;
            }
            if (!m_next->has_room()) break;  // backpressure: downstream is full
            entry e = std::move(*it);
            it = m_flight.erase(it);
            moved = true;
            trace::on_stage_end(m_name, e.trace_id);
            m_done += e.indices.size();
            if (auto error = e.fut.exception()) {  // the whole chunk failed
                for (std::size_t i : e.indices)
                    fail(i, error);
            } else {
                std::vector<outcome<Out>> outcomes = std::move(e.fut).get();
                for (std::size_t k = 0; k < outcomes.size(); ++k) {
                    if (outcomes[k].has_value()) {
                        m_next->push(tagged<Out>{e.indices[k], std::move(outcomes[k].value())});
                    } else {
                        fail(e.indices[k], outcomes[k].exception());
                    }
                }
            }
            if (m_progress) report();
        }
        return moved;
    }

    void report() {
        const auto reaching = m_ctx.items_reaching(m_index);
        m_progress.update(progress_info{m_done,
                                        reaching.value_or(m_started),
                                        reaching.has_value() || (m_input_closed && m_inbox.empty()),
                                        {},
                                        0});
    }

    void fail(std::size_t input_index, std::exception_ptr error) {
        if (m_ctx.dropped.size() <= m_index) m_ctx.dropped.resize(m_index + 1);
        ++m_ctx.dropped[m_index];
        if (m_ctx.policy == error_policy::collect) {
            m_ctx.errors.push_back(pipeline_error{input_index, m_index, m_name, std::move(error)});
        } else if (!m_ctx.failure) {
            m_ctx.failure = std::move(error);
        }
    }

    pipeline_context& m_ctx;
    std::size_t m_index;
    Ex& m_ex;
    F m_fn;
    std::size_t m_concurrency;
    std::size_t m_chunksize;
    bool m_ordered;
    std::size_t m_capacity;
    std::string m_name;
    std::string_view m_trace_task_name;  // empty: tasks keep their function's name
    progress_reporter m_progress;
    pipeline_sink<Out>* m_next = nullptr;
    std::deque<tagged<In>> m_inbox;
    std::deque<entry> m_flight;
    std::uint64_t m_started = 0;
    std::uint64_t m_done = 0;
    bool m_input_closed = false;
    bool m_reported_end = false;
};

/// The consumer's end: finished outputs of the last stage.
template <class T>
class pipeline_outlet final : public pipeline_sink<T> {
  public:
    explicit pipeline_outlet(std::size_t capacity) : m_capacity(capacity) {}
    bool has_room() const override { return m_items.size() < m_capacity; }
    void push(tagged<T> item) override { m_items.push_back(std::move(item.value)); }
    std::optional<T> take() {
        if (m_items.empty()) return std::nullopt;
        T v = std::move(m_items.front());
        m_items.pop_front();
        return v;
    }

  private:
    std::size_t m_capacity;
    std::deque<T> m_items;
};

}  // namespace detail

/// A running pipeline, consumed one item at a time (blocking or awaiting).
template <class T>
class pipeline_stream {
  public:
    struct parts {
        std::unique_ptr<detail::pipeline_context> ctx;
        std::vector<std::unique_ptr<detail::pipeline_stage_base>> stages;
        std::unique_ptr<detail::pipeline_outlet<T>> outlet;
        std::function<bool(detail::pipeline_context&)>
            feed;  // pushes input into stage 0; false when exhausted
        std::stop_token stop;
    };

    explicit pipeline_stream(parts p) : m(std::move(p)) {
        // A stop request must wake a consumer blocked waiting for completions.
        if (m.stop.stop_possible()) {
            m_on_stop = std::make_unique<std::stop_callback<wake>>(m.stop, wake{m.ctx->events});
        }
    }
    pipeline_stream(pipeline_stream&& o) noexcept
        : m(std::move(o.m)),
          m_on_stop(std::move(o.m_on_stop)),
          m_input_done(o.m_input_done),
          m_finished(o.m_finished),
          m_cancel_requested(o.m_cancel_requested.load()) {}
    ~pipeline_stream() {
        if (m.ctx) abort_all();
    }

    /// Blocking: the next output, nullopt at the end. Rethrows the first
    /// failure under fail_fast; throws cancelled_error once cancelled.
    std::optional<T> next_blocking() {
        for (;;) {
            std::uint32_t seen = m.ctx->events->epoch();  // before step: no event is missed
            if (auto v = step()) return v;
            if (m_finished) return std::nullopt;
            m.ctx->events->wait(seen);
        }
    }

    /// For coroutines: `while (auto v = co_await stream.next())`.
    task<std::optional<T>> next() {
        for (;;) {
            std::uint32_t seen = m.ctx->events->epoch();
            if (auto v = step()) co_return v;
            if (m_finished) co_return std::nullopt;
            auto events = m.ctx->events;  // alive across the suspension
            co_await events->async_wait(seen);
        }
    }

    /// Cancels every stage: queued work is cancelled, no more input is read,
    /// and the consumer gets cancelled_error. May be called from any thread.
    void cancel() {
        m_cancel_requested.store(true, std::memory_order_release);
        m.ctx->events->notify();
    }

    /// Failed items so far (error_policy::collect).
    const std::vector<pipeline_error>& errors() const noexcept { return m.ctx->errors; }

  private:
    // Advances the pipeline without blocking; an output if one is ready.
    std::optional<T> step() {
        if (m_cancel_requested.load(std::memory_order_acquire) || m.stop.stop_requested()) {
            if (!m.ctx->failure) m.ctx->failure = std::make_exception_ptr(cancelled_error());
        }
        if (m.ctx->failure) {
            abort_all();
            std::rethrow_exception(m.ctx->failure);
        }
        for (bool moved = true; moved;) {
            moved = false;
            if (!m_input_done) {
                bool more = m.feed(*m.ctx);
                if (!more) {
                    m_input_done = true;
                    m.stages.front()->close_input();
                }
            }
            // Downstream first, so room opens up before upstream pushes.
            for (std::size_t k = m.stages.size(); k-- > 0;) {
                moved = m.stages[k]->pump() || moved;
                if (k > 0 && m_input_done && upstream_idle(k)) m.stages[k]->close_input();
            }
            if (m.ctx->failure) {
                abort_all();
                std::rethrow_exception(m.ctx->failure);
            }
            if (auto v = m.outlet->take()) return v;
        }
        if (m_input_done && upstream_idle(m.stages.size())) m_finished = true;
        return std::nullopt;
    }

    bool upstream_idle(std::size_t k) const {
        for (std::size_t i = 0; i < k; ++i) {
            if (!m.stages[i]->idle()) return false;
        }
        return true;
    }

    void abort_all() noexcept {
        for (auto& s : m.stages)
            s->abort();
        m_input_done = true;
        m_finished = true;
    }

    struct wake {
        std::shared_ptr<detail::event_signal> events;
        void operator()() const { events->notify(); }
    };

    parts m;
    std::unique_ptr<std::stop_callback<wake>> m_on_stop;
    bool m_input_done = false;
    bool m_finished = false;
    std::atomic<bool> m_cancel_requested{false};
};

namespace detail {

using pipeline_stages = std::vector<std::unique_ptr<pipeline_stage_base>>;
using pipeline_feed = std::function<bool(pipeline_context&)>;

/// Builds every stage so far (in order, appending to `stages`) and returns a
/// function that connects the last stage's output to the sink after it.
template <class T>
using pipeline_build = std::function<std::function<void(pipeline_sink<T>*)>(
    pipeline_context&, pipeline_stages&, pipeline_feed&)>;

/// Makes the function that pushes input items into the first stage.
template <class T>
using pipeline_source = std::function<pipeline_feed(pipeline_sink<T>*)>;

}  // namespace detail

/// Builder returned by pipeline() and then(); nothing runs until a terminal
/// call (`collect`, `for_each`, `stream`, or `co_await`).
template <class T>
class pipeline_builder {
  public:
    pipeline_builder(detail::pipeline_source<T> source, pipeline_options options)
        : m_source(std::move(source)), m_options(std::move(options)) {}

    /// Adds a stage running `fn(item)` on executor `ex` (which must outlive the run).
    template <class Ex, class F>
    auto then(Ex& ex, F fn) && {
        // An overload, not a default argument: GCC 12 copies a defaulted
        // argument made inside a co_await expression bitwise and destroys it
        // twice (`co_await pipeline(in).then(pool, f)` freed a string twice).
        return std::move(*this).then(ex, std::move(fn), stage_options{});
    }
    template <class Ex, class F>
    auto then(Ex& ex, F fn, stage_options options) && {
        using Out = typename detail::unwrap_task<detail::map_result_t<F, T>>::type;
        static_assert(!std::is_void_v<Out>,
                      "coexec::pipeline: a stage must return a value for the next stage");
        // The name is a view: kept here, since the stage is made at run time.
        std::string name(options.name);
        detail::pipeline_build<Out> build =
            [prev = std::move(m_build), source = m_source, &ex, fn = std::move(fn),
             options = std::move(options),
             name = std::move(name)](detail::pipeline_context& ctx, detail::pipeline_stages& stages,
                                     detail::pipeline_feed& feed) mutable {
                options.name = name;
                std::function<void(detail::pipeline_sink<T>*)> connect_prev;
                if (prev) connect_prev = prev(ctx, stages, feed);
                auto stage = std::make_unique<detail::pipeline_stage<T, Out, Ex, F>>(
                    ctx, stages.size(), ex, fn, options);
                auto* raw = stage.get();
                if (connect_prev) {
                    connect_prev(raw);
                } else {
                    feed = source(raw);
                }
                stages.push_back(std::move(stage));
                return std::function<void(detail::pipeline_sink<Out>*)>(
                    [raw](detail::pipeline_sink<Out>* next) { raw->connect(next); });
            };
        return pipeline_builder<Out>(m_source_for<Out>(), m_options, std::move(build));
    }
    /// stream(), collect() and for_each() on a builder kept in a variable:
    /// as on a temporary, and the builder is used up (a pipeline runs once,
    /// as its input range is read once; running it again throws).
    pipeline_stream<T> stream() & { return std::move(*this).stream(); }
    pipeline_result<T> collect() & { return std::move(*this).collect(); }
    template <class Fn>
    std::vector<pipeline_error> for_each(Fn&& fn) & {
        return std::move(*this).for_each(std::forward<Fn>(fn));
    }

    /// Starts the pipeline; outputs are taken one at a time from the stream.
    pipeline_stream<T> stream() && {
        if (!m_build)
            throw std::logic_error(
                "coexec::pipeline: no stage to run (add one with then(); a builder runs once)");
        auto build = std::exchange(m_build, nullptr);  // used up: a second run throws
        typename pipeline_stream<T>::parts p;
        p.ctx = std::make_unique<detail::pipeline_context>();
        p.ctx->policy = m_options.errors;
        p.stop = m_options.stop;
        auto connect_last = build(*p.ctx, p.stages, p.feed);
        p.outlet = std::make_unique<detail::pipeline_outlet<T>>(64);
        connect_last(p.outlet.get());
        return pipeline_stream<T>(std::move(p));
    }

    /// Runs to the end and returns every output (in the order they leave the
    /// last stage) plus, under error_policy::collect, the failed items.
    pipeline_result<T> collect() && {
        auto s = std::move(*this).stream();
        pipeline_result<T> out;
        while (auto v = s.next_blocking())
            out.values.push_back(std::move(*v));
        out.errors = s.errors();
        return out;
    }

    /// Runs to the end calling `fn(T)` on this thread for each output; returns
    /// the failed items (error_policy::collect).
    template <class Fn>
    std::vector<pipeline_error> for_each(Fn&& fn) && {
        auto s = std::move(*this).stream();
        while (auto v = s.next_blocking())
            fn(std::move(*v));
        return s.errors();
    }

    /// The coroutine form of collect(): `auto out = co_await pipeline(...).then(...);`
    task<pipeline_result<T>> collect_async() && {
        auto s = std::move(*this).stream();
        pipeline_result<T> out;
        while (auto v = co_await s.next())
            out.values.push_back(std::move(*v));
        out.errors = s.errors();
        co_return out;
    }

    auto operator co_await() && {
        struct awaiter {
            task<pipeline_result<T>> t;
            decltype(std::declval<task<pipeline_result<T>>>().operator co_await()) inner;
            explicit awaiter(task<pipeline_result<T>> task_)
                : t(std::move(task_)), inner(std::move(t).operator co_await()) {}
            bool await_ready() const noexcept { return inner.await_ready(); }
            auto await_suspend(std::coroutine_handle<> h) noexcept {
                return inner.await_suspend(h);
            }
            pipeline_result<T> await_resume() { return inner.await_resume(); }
        };
        return awaiter(std::move(*this).collect_async());
    }

  private:
    template <class>
    friend class pipeline_builder;

    pipeline_builder(detail::pipeline_source<T> source, pipeline_options options,
                     detail::pipeline_build<T> build)
        : m_source(std::move(source)), m_options(std::move(options)), m_build(std::move(build)) {}

    // Only the first stage reads the source; later builders carry none.
    template <class U>
    detail::pipeline_source<U> m_source_for() const {
        return {};
    }

    detail::pipeline_source<T> m_source;
    pipeline_options m_options;
    detail::pipeline_build<T> m_build;
};

/// Starts describing a pipeline over `inputs` (any input range; read lazily,
/// on the consuming thread, only as fast as the first stage has room).
template <class Range>
auto pipeline(Range&& inputs, pipeline_options options = {}) {
    using View = decltype(std::views::all(std::forward<Range>(inputs)));
    using T = std::ranges::range_value_t<View>;
    struct cursor {
        View view;
        std::ranges::iterator_t<View> it;
        std::size_t index = 0;
        explicit cursor(View v) : view(std::move(v)), it(std::ranges::begin(view)) {}
    };
    auto shared = std::make_shared<cursor>(std::views::all(std::forward<Range>(inputs)));
    detail::pipeline_source<T> source =
        [shared](detail::pipeline_sink<T>* first) -> detail::pipeline_feed {
        return [shared, first](detail::pipeline_context& ctx) {
            auto& c = *shared;
            if constexpr (std::ranges::sized_range<View>) {
                if (!ctx.source_size) ctx.source_size = std::ranges::size(c.view);
            }
            while (c.it != std::ranges::end(c.view) && first->has_room()) {
                first->push(detail::tagged<T>{c.index++, T(detail::take_element<View>(c.it))});
                ++c.it;
            }
            return c.it != std::ranges::end(c.view);
        };
    };
    return pipeline_builder<T>(std::move(source), std::move(options));
}

}  // namespace coexec
