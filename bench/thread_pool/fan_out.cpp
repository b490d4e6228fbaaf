// Fan-out: a coroutine running on a 2-worker pool starts 100k child tasks and
// awaits them all; children per second, from the parent's submission to its
// result.
//
//   coexec   the parent is a task<void> submitted to thread_pool{2}; it
//            submits 100k empty callables and `co_await when_all(futures)`.
//            Also shown: awaiting each future in turn, and children that are
//            coroutines themselves (task<void>).
//   asio     the parent is an asio::awaitable co_spawn'ed onto
//            asio::thread_pool(2); it co_spawns 100k empty asio::awaitable
//            children whose completion handlers count down, and awaits the
//            count reaching zero (use_awaitable).
//   std      a plain thread starts std::async(std::launch::async) children
//            and get()s each: no coroutine, one thread per child, so fewer.
#include <asio.hpp>
#include <coexec/future.hpp>
#include <coexec/task.hpp>
#include <coexec/thread_pool.hpp>
#include <coexec/when_all.hpp>

#include <atomic>
#include <cstdio>
#include <future>
#include <memory>
#include <mutex>
#include <vector>

#include "bench_report.hpp"

namespace {

using coexec_bench::clock;
using coexec_bench::median;
using coexec_bench::seconds_between;

constexpr std::size_t workers = 2;
constexpr int reps = 7;  // per variant, in one pool; the median is reported

// ---- coexec ----

enum class coexec_variant { when_all, await_each, coroutine_children };

coexec::task<void> coexec_parent(coexec::thread_pool* pool, std::size_t n, coexec_variant v) {
    std::vector<coexec::future<void>> children;
    children.reserve(n);
    if (v == coexec_variant::coroutine_children) {
        for (std::size_t i = 0; i < n; ++i)
            children.push_back(pool->submit([]() -> coexec::task<void> { co_return; }));
    } else {
        for (std::size_t i = 0; i < n; ++i)
            children.push_back(pool->submit([] {}));
    }
    if (v == coexec_variant::await_each) {
        for (auto& f : children)
            co_await f;
    } else {
        co_await coexec::when_all(children);
    }
}

double coexec_rate(std::size_t n, coexec_variant v) {
    coexec::thread_pool pool{{.max_workers = workers}};
    pool.submit(coexec_parent, &pool, std::size_t{1000}, v).get();  // warm-up
    std::vector<double> rates;
    for (int r = 0; r < reps; ++r) {
        auto t0 = clock::now();
        pool.submit(coexec_parent, &pool, n, v).get();
        auto t1 = clock::now();
        rates.push_back(static_cast<double>(n) / seconds_between(t0, t1));
    }
    return median(rates);
}

// ---- asio ----

/// Counts children down; one coroutine awaits zero. Thread-safe.
class countdown {
  public:
    explicit countdown(std::size_t n) : m_remaining(n) {}

    void arrive() {
        if (m_remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        std::unique_ptr<waiter> w;
        {
            std::lock_guard lock(m_mutex);
            w = std::move(m_waiter);
        }
        if (w) w->complete();
    }

    template <class Token>
    auto async_wait(Token&& token) {
        return asio::async_initiate<Token, void()>(
            [this](auto handler) {
                using handler_type = decltype(handler);
                std::unique_lock lock(m_mutex);
                if (m_remaining.load(std::memory_order_acquire) == 0) {
                    lock.unlock();
                    auto ex = asio::get_associated_executor(handler);
                    asio::dispatch(ex, std::move(handler));
                    return;
                }
                m_waiter = std::make_unique<holder<handler_type>>(std::move(handler));
            },
            token);
    }

  private:
    struct waiter {
        virtual ~waiter() = default;
        virtual void complete() = 0;
    };
    template <class H>
    struct holder final : waiter {
        explicit holder(H h) : handler(std::move(h)) {}
        void complete() override {
            auto ex = asio::get_associated_executor(handler);
            asio::dispatch(ex, std::move(handler));
        }
        H handler;
    };

    std::atomic<std::size_t> m_remaining;
    std::mutex m_mutex;
    std::unique_ptr<waiter> m_waiter;
};

asio::awaitable<void> asio_child() {
    co_return;
}

asio::awaitable<void> asio_parent(std::size_t n) {
    auto ex = co_await asio::this_coro::executor;
    auto done = std::make_shared<countdown>(n);
    for (std::size_t i = 0; i < n; ++i)
        asio::co_spawn(ex, asio_child(), [done](std::exception_ptr) { done->arrive(); });
    co_await done->async_wait(asio::use_awaitable);
}

double asio_rate(std::size_t n) {
    asio::thread_pool pool(workers);
    asio::co_spawn(pool, asio_parent(1000), asio::use_future).get();
    std::vector<double> rates;
    for (int r = 0; r < reps; ++r) {
        auto t0 = clock::now();
        asio::co_spawn(pool, asio_parent(n), asio::use_future).get();
        auto t1 = clock::now();
        rates.push_back(static_cast<double>(n) / seconds_between(t0, t1));
    }
    pool.join();
    return median(rates);
}

// ---- std::async ----

double std_async_rate(std::size_t n) {
    std::async(std::launch::async, [] {}).get();
    auto t0 = clock::now();
    std::vector<std::future<void>> children;
    children.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
        children.push_back(std::async(std::launch::async, [] {}));
    for (auto& f : children)
        f.get();
    auto t1 = clock::now();
    return static_cast<double>(n) / seconds_between(t0, t1);
}

}  // namespace

int main() {
    const std::size_t n = 100'000;
    const std::size_t n_async = 20'000;

    double when_all = coexec_rate(n, coexec_variant::when_all);
    double await_each = coexec_rate(n, coexec_variant::await_each);
    double coro_children = coexec_rate(n, coexec_variant::coroutine_children);
    double asio_cs = asio_rate(n);
    double std_async = std_async_rate(n_async);

    std::printf("fan-out: a coroutine starts %zu children and awaits all, %zu workers\n", n,
                workers);
    std::printf("  coexec submit + co_await when_all      %8.3f M children/s\n", when_all / 1e6);
    std::printf("  coexec submit + co_await each          %8.3f M children/s\n", await_each / 1e6);
    std::printf("  coexec task<void> children + when_all  %8.3f M children/s\n",
                coro_children / 1e6);
    std::printf("  asio co_spawn awaitable children       %8.3f M children/s  (coexec %.2fx)\n",
                asio_cs / 1e6, when_all / asio_cs);
    std::printf("  std::async children (%zu)           %8.3f M children/s  (coexec %.2fx)\n",
                n_async, std_async / 1e6, when_all / std_async);

    using coexec_bench::better;
    const char* name = "fan-out 100k children, when_all";
    coexec_bench::report(name, when_all / 1e6, "M children/s", "asio co_spawn awaitables",
                         asio_cs / 1e6, better::higher);
    coexec_bench::report(name, when_all / 1e6, "M children/s", "std::async (20k children)",
                         std_async / 1e6, better::higher);
    const char* coro = "fan-out 100k coroutine children, when_all";
    coexec_bench::report(coro, coro_children / 1e6, "M children/s", "asio co_spawn awaitables",
                         asio_cs / 1e6, better::higher);
    const char* each = "fan-out 100k children, co_await each";
    coexec_bench::report(each, await_each / 1e6, "M children/s", "asio co_spawn awaitables",
                         asio_cs / 1e6, better::higher);
    coexec_bench::goal(name, when_all / 1e6, ">=", 5, "M children/s");
    coexec_bench::note(
        "Fan-out: Asio children are co_spawn'ed awaitables counted down by their completion "
        "handlers; std::async runs 20k children from a plain thread (one thread each). "
        "coexec and Asio figures are the median of 7 repetitions in one pool.");
    return 0;
}
