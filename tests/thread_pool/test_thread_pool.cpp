#include <pthread.h>
#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include "coexec/inline_executor.hpp"
#include "coexec/io.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/promise.hpp"
#include "coexec/sync_wait.hpp"
#include "coexec/thread_pool.hpp"
#include "helpers.hpp"

using namespace std::chrono_literals;
using coexec::future;
using coexec::thread_pool;

TEST_CASE("the default thread pool has min(32, cores + 4) workers", "[thread_pool]") {
    thread_pool pool;
    auto cores = std::max(1u, std::thread::hardware_concurrency());
    CHECK(pool.max_workers() == std::min<std::size_t>(32, cores + 4));
}

TEST_CASE("submit runs a callable with its arguments on a worker", "[thread_pool]") {
    thread_pool pool{{.max_workers = 2}};
    auto caller = std::this_thread::get_id();
    auto f = pool.submit([](int a, std::string b) { return b + std::to_string(a); }, 7,
                         std::string("x"));
    auto where = pool.submit([] { return std::this_thread::get_id(); });
    CHECK(f.get() == "x7");
    CHECK(where.get() != caller);
}

TEST_CASE("exceptions of several types reach the caller as the same type", "[thread_pool]") {
    thread_pool pool{{.max_workers = 2}};
    auto a = pool.submit([]() -> int { throw std::invalid_argument("a"); });
    auto b = pool.submit([] { throw std::out_of_range("b"); });
    auto c = pool.submit([]() -> double {
        throw std::system_error(std::make_error_code(std::errc::io_error), "c");
    });
    auto d = pool.submit([] { throw 42; });
    CHECK_THROWS_AS(a.get(), std::invalid_argument);
    CHECK_THROWS_AS(b.get(), std::out_of_range);
    CHECK_THROWS_AS(c.get(), std::system_error);
    CHECK_THROWS_AS(d.get(), int);
    CHECK(pool.stats().failed == 4);
}

TEST_CASE("a queued task can be cancelled and never runs", "[thread_pool][cancel]") {
    thread_pool pool{{.max_workers = 1}};
    coexec_test::gate g;
    auto blocker = pool.submit([&] { g.wait(); });
    std::atomic<bool> ran{false};
    auto queued = pool.submit([&] { ran = true; });
    REQUIRE(coexec_test::eventually([&] { return blocker.running(); }));
    CHECK(queued.cancel());
    CHECK(queued.cancelled());
    g.open();
    blocker.get();
    pool.shutdown();
    CHECK_FALSE(ran.load());
    CHECK_THROWS_AS(queued.get(), coexec::cancelled_error);
    CHECK(pool.stats().cancelled == 1);
}

TEST_CASE("cancel of a running task signals its stop token and returns false",
          "[thread_pool][cancel]") {
    thread_pool pool{{.max_workers = 1}};
    std::atomic<bool> started{false};
    auto f = pool.submit([&](std::stop_token st) {
        started = true;
        while (!st.stop_requested())
            std::this_thread::sleep_for(1ms);
        return std::string("stopped");
    });
    REQUIRE(coexec_test::eventually([&] { return started.load(); }));
    CHECK(f.running());
    CHECK_FALSE(f.cancel());
    CHECK(f.get() == "stopped");
}

namespace {
// Written against the concept, as generic code would be.
template <coexec::executor E>
void stop_now(E& e) {
    e.terminate_workers();
}
}  // namespace

TEST_CASE(
    "shutdown with cancel_futures, or terminate_workers, cancels queued work and signals "
    "running work",
    "[thread_pool][shutdown]") {
    for (bool terminate : {false, true}) {
        thread_pool pool{{.max_workers = 1}};
        std::atomic<bool> started{false};
        auto running = pool.submit([&](std::stop_token st) {
            started = true;
            while (!st.stop_requested())
                std::this_thread::sleep_for(1ms);
            return 1;
        });
        REQUIRE(coexec_test::eventually([&] { return started.load(); }));
        std::vector<future<int>> queued;
        for (int i = 0; i < 100; ++i)
            queued.push_back(pool.submit([i] { return i; }));
        if (terminate) {
            stop_now(pool);  // returns at once, as shutdown(false, true)
        } else {
            pool.shutdown(/*wait=*/false, /*cancel_futures=*/true);
        }
        for (auto& f : queued)
            CHECK(f.cancelled());
        CHECK(running.get() == 1);  // a thread is not killed: it saw its stop token
        CHECK_THROWS_AS(pool.submit([] {}), coexec::executor_shutdown);
    }

    coexec::inline_executor ex;
    stop_now(ex);
    CHECK_THROWS_AS(ex.submit([] {}), coexec::executor_shutdown);
}

TEST_CASE("shutdown(wait) finishes all queued work before returning", "[thread_pool][shutdown]") {
    thread_pool pool{{.max_workers = 2}};
    std::atomic<int> done{0};
    std::vector<future<void>> fs;
    for (int i = 0; i < 1000; ++i)
        fs.push_back(pool.submit([&] { done.fetch_add(1); }));
    pool.shutdown(true);
    CHECK(done.load() == 1000);
    for (auto& f : fs)
        CHECK(f.done());
    CHECK(pool.stats().workers_alive == 0);
    CHECK_THROWS_AS(pool.submit([] { return 1; }), coexec::executor_shutdown);
}

TEST_CASE("destroying a pool with work still queued runs it all", "[thread_pool][shutdown]") {
    std::atomic<int> done{0};
    std::vector<future<int>> fs;
    {
        thread_pool pool{{.max_workers = 2}};
        for (int i = 0; i < 500; ++i) {
            fs.push_back(pool.submit([&, i] {
                std::this_thread::sleep_for(10us);
                done.fetch_add(1);
                return i;
            }));
        }
    }
    CHECK(done.load() == 500);
    for (int i = 0; i < 500; ++i)
        CHECK(fs[i].get() == i);
}

TEST_CASE("the initializer runs once on every worker and names are set", "[thread_pool]") {
    std::mutex m;
    std::set<std::thread::id> initialized;
    std::vector<std::string> names;
    {
        thread_pool pool{{.max_workers = 3, .thread_name_prefix = "iox", .initializer = [&] {
                              char buf[16] = {};
                              pthread_getname_np(pthread_self(), buf, sizeof buf);
                              std::lock_guard lock(m);
                              initialized.insert(std::this_thread::get_id());
                              names.emplace_back(buf);
                          }}};
        pool.submit([] {}).get();
    }
    CHECK(initialized.size() == 3);
    std::set<std::string> unique(names.begin(), names.end());
    CHECK(unique == std::set<std::string>{"iox-0", "iox-1", "iox-2"});
}

TEST_CASE("a failing initializer breaks the pool instead of hanging its futures", "[thread_pool]") {
    thread_pool pool{
        {.max_workers = 1, .initializer = [] { throw std::runtime_error("no config"); }}};
    future<int> f;
    try {
        f = pool.submit([] { return 1; });
    } catch (const coexec::broken_pool&) {
        SUCCEED("the pool was already known to be broken");
        return;
    }
    CHECK_THROWS_AS(f.get(), coexec::broken_pool);
}

TEST_CASE("a coroutine submitted to the pool holds no worker while it awaits",
          "[thread_pool][task]") {
    thread_pool pool{{.max_workers = 1}};
    coexec::promise<int> p;
    auto pf = p.get_future();
    auto f = pool.submit([pf]() -> coexec::task<int> { co_return co_await pf + 1; });
    // The only worker is free: a plain task still runs while the coroutine waits.
    CHECK(pool.submit([] { return 5; }).get() == 5);
    CHECK_FALSE(f.done());
    p.set_value(41);
    CHECK(f.get() == 42);
}

TEST_CASE("co_await on a future resumes on the awaiting coroutine's own pool",
          "[thread_pool][task]") {
    thread_pool io{{.max_workers = 2, .thread_name_prefix = "io"}};
    thread_pool other{{.max_workers = 2, .thread_name_prefix = "other"}};
    auto f = io.submit([&]() -> coexec::task<bool> {
        bool before = io.running_in_this_thread();
        int v = co_await other.submit([] { return 3; });
        bool after = io.running_in_this_thread();
        co_return before&& after&& v == 3;
    });
    CHECK(f.get());
}

TEST_CASE("co_await from a plain thread resumes on the completing thread", "[thread_pool][task]") {
    thread_pool pool{{.max_workers = 1}};
    coexec::promise<int> p;
    std::thread::id resumed_on;
    std::atomic<bool> finished{false};
    // A detached coroutine started on this (non-executor) thread.
    auto body = [&]() -> coexec::task<void> {
        co_await p.get_future();
        resumed_on = std::this_thread::get_id();
        finished = true;
    };
    auto t = body();
    auto runner = [](coexec::task<void> t) -> coexec::detail::detached_coro {
        co_await std::move(t);
    };
    runner(std::move(t));
    std::thread completer([&] { p.set_value(1); });
    auto completer_id = completer.get_id();
    completer.join();
    REQUIRE(finished.load());
    CHECK(resumed_on == completer_id);
}

TEST_CASE("schedule moves a coroutine onto the pool", "[thread_pool][task]") {
    thread_pool pool{{.max_workers = 2}};
    bool on_pool = coexec::sync_wait([&]() -> coexec::task<bool> {
        co_await pool.schedule();
        co_return pool.running_in_this_thread();
    }());
    CHECK(on_pool);
}

TEST_CASE("stats count submitted, completed, failed and workers", "[thread_pool]") {
    thread_pool pool{{.max_workers = 2}};
    for (int i = 0; i < 10; ++i)
        pool.submit([] {}).get();
    pool.submit([] { throw std::runtime_error("x"); }).wait();
    auto s = pool.stats();
    CHECK(s.submitted == 11);
    CHECK(s.completed == 10);
    CHECK(s.failed == 1);
    CHECK(s.workers_alive == 2);
    CHECK(s.queued == 0);
}

TEST_CASE("thread_pool's stats count a value, a throw and a task cancelled before it started",
          "[thread_pool][stats]") {
    thread_pool pool{{.max_workers = 1}};
    coexec_test::gate g;
    auto value = pool.submit([&] {
        g.wait();
        return 1;
    });
    auto thrown = pool.submit([]() -> int { throw std::runtime_error("x"); });
    auto cancelled = pool.submit([] { return 3; });
    REQUIRE(coexec_test::eventually([&] { return value.running(); }));
    CHECK(coexec_test::job_counts_of(pool.stats()) == coexec_test::job_counts{3, 0, 0, 0, 2, 1});
    REQUIRE(cancelled.cancel());
    g.open();
    pool.shutdown();  // waits: every job has been taken
    CHECK(value.get() == 1);
    CHECK(thrown.has_exception());
    CHECK(coexec_test::job_counts_of(pool.stats()) == coexec_test::after_value_throw_cancelled);
}

TEST_CASE("one million tasks with a future each all complete", "[thread_pool][stress]") {
    thread_pool pool{{.max_workers = 2}};
    constexpr int n = 1'000'000;
    std::vector<future<int>> fs;
    fs.reserve(n);
    for (int i = 0; i < n; ++i)
        fs.push_back(pool.submit([i] { return i & 7; }));
    long sum = 0;
    for (auto& f : fs)
        sum += f.get();
    CHECK(sum == static_cast<long>(n / 8) * 28);
    CHECK(pool.stats().completed == n);
}

TEST_CASE("tasks submitted from workers are stolen by idle workers", "[thread_pool][stress]") {
    thread_pool pool{{.max_workers = 2}};
    std::mutex m;
    std::set<std::thread::id> ran_on;
    auto parent = pool.submit([&]() -> coexec::task<int> {
        std::vector<future<int>> kids;
        for (int i = 0; i < 2000; ++i) {
            kids.push_back(pool.submit([&] {
                {
                    std::lock_guard lock(m);
                    ran_on.insert(std::this_thread::get_id());
                }
                // Holds its worker until the other worker has run a kid too,
                // which it can only have stolen: no timing makes this pass.
                const bool both = coexec_test::eventually(
                    [&] {
                        std::lock_guard lock(m);
                        return ran_on.size() == 2;
                    },
                    std::chrono::seconds(30));
                return both ? 1 : 0;
            }));
        }
        int total = 0;
        for (auto& k : kids)
            total += co_await k;
        co_return total;
    });
    CHECK(parent.get() == 2000);
    CHECK(ran_on.size() == 2);
}

TEST_CASE("inline_executor runs tasks on the calling thread", "[inline_executor]") {
    coexec::inline_executor ex;
    auto id = std::this_thread::get_id();
    auto f = ex.submit([] { return std::this_thread::get_id(); });
    CHECK(f.done());
    CHECK(f.get() == id);
    CHECK_THROWS_AS(ex.submit([] { throw std::logic_error("l"); }).get(), std::logic_error);
    ex.shutdown();
    CHECK_THROWS_AS(ex.submit([] {}), coexec::executor_shutdown);
}

TEST_CASE("inline_executor's stats count a value and a throw as the pools do",
          "[inline_executor][stats]") {
    // A task runs inside submit() here, so none can be cancelled before it
    // starts: cancelling a finished one is refused and counts nothing.
    coexec::inline_executor ex;
    coexec_test::job_counts inside{};
    auto value = ex.submit([&] {
        inside = coexec_test::job_counts_of(ex.stats());
        return 1;
    });
    auto thrown = ex.submit([]() -> int { throw std::runtime_error("x"); });
    CHECK(inside == coexec_test::job_counts{1, 0, 0, 0, 0, 1});  // running while it runs
    CHECK_FALSE(value.cancel());
    CHECK(value.has_value());
    CHECK(thrown.has_exception());
    CHECK(coexec_test::job_counts_of(ex.stats()) == coexec_test::job_counts{2, 1, 1, 0, 0, 0});
}

TEST_CASE("inline_executor hands a stop_token to a callable that takes one",
          "[inline_executor][cancel]") {
    coexec::inline_executor ex;
    auto f =
        ex.submit([](std::stop_token token, int x) { return token.stop_possible() ? x : -1; }, 4);
    CHECK(f.get() == 4);
}

TEST_CASE("thread_pool_options is declared by thread_pool.hpp with the fields in API order",
          "[thread_pool]") {
    coexec::thread_pool_options options{
        .max_workers = 3, .thread_name_prefix = "api", .initializer = [] {}};
    thread_pool pool{std::move(options)};
    CHECK(pool.max_workers() == 3);
}

// The io awaitables are made by the coexec::io functions only: their
// constructors' detail parameters (opcode, name) are not public.
static_assert(!std::is_constructible_v<coexec::io::transfer_awaitable, coexec::detail::io_opcode,
                                       const char*, int, void*, std::size_t, std::int64_t, int>);
static_assert(!std::is_constructible_v<coexec::io::sleep_awaitable, const char*,
                                       std::chrono::steady_clock::time_point>);

static_assert(coexec::executor<coexec::thread_pool>);
static_assert(coexec::executor<coexec::inline_executor>);
static_assert(coexec::executor<coexec::process_pool>);
