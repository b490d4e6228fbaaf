// coexec/asio/asio_executor.hpp — an Asio executor seen as a coexec executor.
//
//   asio::io_context io;
//   coexec::asio_executor ex{io.get_executor()};
//   auto f = ex.submit(parse, request);        // runs inside io.run()
//
// Code written against coexec::executor (submit/map/shutdown/stats) runs on
// an io_context, a strand or an asio::thread_pool unchanged. Coroutines
// submitted here (callables returning task<U>) resume on the Asio executor
// after awaiting coexec futures (sticky resumption).
//
// @par Thread safety
// All members are thread-safe. The asio_executor must outlive the work it
// was given; shutdown(wait = true) blocks until that work is done, so it
// must not be called from the executor's own thread while work is pending.
#pragma once

#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <atomic>
#include <cstdint>
#include <exception>
#include <tuple>
#include <type_traits>
#include <utility>

#include "coexec/detail/invoke.hpp"
#include "coexec/detail/work_item.hpp"
#include "coexec/errors.hpp"
#include "coexec/executor.hpp"
#include "coexec/future.hpp"
#include "coexec/results.hpp"

namespace coexec {

template <class AsioExecutor>
class asio_executor final : private detail::resumer {
  public:
    explicit asio_executor(AsioExecutor ex) : m_ex(std::move(ex)) {}
    asio_executor(const asio_executor&) = delete;
    asio_executor& operator=(const asio_executor&) = delete;
    ~asio_executor() { shutdown(true); }

    const AsioExecutor& get_executor() const noexcept { return m_ex; }

    /// Posts `f(args...)` to the Asio executor; throws executor_shutdown after shutdown().
    template <class F, class... Args>
    auto submit(F&& f, Args&&... args)
        -> future<detail::submit_result_t<std::decay_t<F>&, std::decay_t<Args>&...>> {
        using R = detail::submit_result_t<std::decay_t<F>&, std::decay_t<Args>&...>;
        using call_type = detail::call_result_t<std::decay_t<F>&, std::decay_t<Args>&...>;
        if (m_shutdown.load(std::memory_order_acquire)) {
            throw executor_shutdown("asio_executor::submit: the executor has been shut down");
        }
        auto* state = new detail::shared_state<R>();
        future<R> result(state);
        m_submitted.fetch_add(1, std::memory_order_relaxed);
        m_outstanding.fetch_add(1, std::memory_order_acq_rel);
        ::asio::post(
            m_ex,
            [this, state, fn = std::decay_t<F>(std::forward<F>(f)),
             args = std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...)]() mutable {
                detail::resumer* previous = detail::exchange_current_resumer(this);
                if (!state->try_start()) {
                    finished(detail::status::cancelled);
                    state->release();
                } else if constexpr (is_task_v<call_type>) {
                    try {
                        detail::drive_task_into<R>(detail::call_with(fn, args, std::stop_token{}),
                                                   state,
                                                   hooks<R>{this, ::asio::make_work_guard(m_ex)});
                    } catch (...) {
                        count(detail::status::has_exception);
                        state->set_exception(std::current_exception());
                        state->release();
                        done_one();
                    }
                } else {
                    try {
                        if constexpr (std::is_void_v<R>) {
                            detail::call_with(fn, args, std::stop_token{});
                            count(detail::status::has_value);
                            state->set_value();
                        } else {
                            R value = detail::call_with(fn, args, std::stop_token{});
                            count(detail::status::has_value);
                            state->set_value(std::move(value));
                        }
                    } catch (...) {
                        count(detail::status::has_exception);
                        state->set_exception(std::current_exception());
                    }
                    state->release();
                    done_one();
                }
                detail::exchange_current_resumer(previous);
            });
        return result;
    }

    template <class F, class Range>
    auto map(F&& f, Range&& inputs, map_options options = {}) {
        return detail::make_results(*this, std::forward<F>(f), std::forward<Range>(inputs),
                                    std::move(options));
    }

    /// Stops accepting work; with `wait`, blocks until submitted work is done.
    /// (Asio has no queue coexec can cancel, so `cancel_futures` cancels
    /// nothing that is already posted: those tasks see their futures cancelled
    /// only if the caller cancelled them.)
    void shutdown(bool wait = true, bool /*cancel_futures*/ = false) {
        m_shutdown.store(true, std::memory_order_release);
        if (!wait) return;
        for (auto n = m_outstanding.load(std::memory_order_acquire); n != 0;
             n = m_outstanding.load(std::memory_order_acquire)) {
            m_outstanding.wait(n, std::memory_order_acquire);
        }
    }

    std::size_t max_workers() const noexcept { return 1; }

    executor_stats stats() const noexcept {
        executor_stats s;
        s.submitted = m_submitted.load(std::memory_order_relaxed);
        s.completed = m_completed.load(std::memory_order_relaxed);
        s.failed = m_failed.load(std::memory_order_relaxed);
        s.cancelled = m_cancelled.load(std::memory_order_relaxed);
        std::uint64_t finished = s.completed + s.failed + s.cancelled;
        s.queued = s.submitted > finished ? s.submitted - finished : 0;
        s.workers_alive = 1;
        return s;
    }

  private:
    // The guard keeps run() going while the coroutine is suspended on other
    // executors: its resumption is posted back here. (At class scope: GCC
    // rejects coroutine frames holding local types of lambda-instantiated templates.)
    template <class R>
    struct hooks {
        asio_executor* self;
        ::asio::executor_work_guard<AsioExecutor> work;
        void before(detail::status s) const noexcept { self->count(s); }
        void after(detail::shared_state<R>* st) const noexcept {
            st->release();
            self->done_one();
        }
    };

    void post(detail::work_item* item) noexcept override {
        ::asio::post(m_ex, [item] { item->run(item); });
    }
    void count(detail::status s) noexcept {
        switch (s) {
            case detail::status::has_value:
                m_completed.fetch_add(1, std::memory_order_relaxed);
                break;
            case detail::status::has_exception:
                m_failed.fetch_add(1, std::memory_order_relaxed);
                break;
            default:
                m_cancelled.fetch_add(1, std::memory_order_relaxed);
        }
    }
    void finished(detail::status s) noexcept {
        count(s);
        done_one();
    }
    void done_one() noexcept {
        if (m_outstanding.fetch_sub(1, std::memory_order_acq_rel) == 1) m_outstanding.notify_all();
    }

    AsioExecutor m_ex;
    std::atomic<bool> m_shutdown{false};
    std::atomic<std::uint64_t> m_outstanding{0};
    std::atomic<std::uint64_t> m_submitted{0};
    std::atomic<std::uint64_t> m_completed{0};
    std::atomic<std::uint64_t> m_failed{0};
    std::atomic<std::uint64_t> m_cancelled{0};
};

/// An io_context's executor (or any other) as a coexec executor; deduces the type.
template <class AsioExecutor>
asio_executor(AsioExecutor) -> asio_executor<AsioExecutor>;

}  // namespace coexec
