// thread_pool::submit_with: a per-task deadline where the worker cannot be
// killed. The future fails at the deadline, the task's stop token is
// signalled, and the task's own result is dropped whenever it comes.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stop_token>
#include <thread>

#include "coexec/io.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/task.hpp"
#include "coexec/thread_pool.hpp"
#include "helpers.hpp"

using namespace std::chrono_literals;
using coexec::thread_pool;

namespace {

int square(int x) {
    return x * x;
}

// Written against any pool, as code that switches the pool's type would be.
template <class Pool>
int square_within(Pool& pool, int x) {
    return pool.submit_with({.timeout = 30s}, square, x).get();
}

}  // namespace

TEST_CASE("submit_with's timeout fails a thread_pool task's future and signals its stop token",
          "[thread_pool][deadline]") {
    thread_pool pool{{.max_workers = 1}};
    std::atomic<bool> saw_stop{false};
    std::atomic<bool> returned{false};
    auto f = pool.submit_with({.timeout = 50ms}, [&](std::stop_token st) {
        while (!st.stop_requested())
            std::this_thread::sleep_for(1ms);
        saw_stop = true;
        std::this_thread::sleep_for(20ms);  // its result comes after the deadline's
        returned = true;
        return 7;
    });
    REQUIRE(f.wait_for(30s));
    CHECK_THROWS_AS(f.get(), coexec::deadline_exceeded);
    REQUIRE(coexec_test::eventually([&] { return returned.load(); }));
    CHECK(saw_stop.load());
    CHECK_THROWS_AS(f.get(), coexec::deadline_exceeded);  // the late value was dropped
    CHECK(pool.submit(square, 3).get() == 9);             // the worker goes on
}

TEST_CASE("a thread_pool task still queued at its deadline never runs", "[thread_pool][deadline]") {
    thread_pool pool{{.max_workers = 1}};
    std::atomic<bool> release{false};
    auto blocker = pool.submit([&] {
        while (!release.load())
            std::this_thread::sleep_for(1ms);
        return 1;
    });
    std::atomic<bool> ran{false};
    auto queued = pool.submit_with({.timeout = 20ms}, [&] {
        ran = true;
        return 2;
    });
    REQUIRE(queued.wait_for(30s));
    CHECK_THROWS_AS(queued.get(), coexec::deadline_exceeded);
    release = true;
    CHECK(blocker.get() == 1);
    CHECK(pool.submit(square, 4).get() == 16);  // runs after the dropped task's turn
    CHECK_FALSE(ran.load());
}

TEST_CASE("a thread_pool task done before its deadline keeps its value and drops its timer",
          "[thread_pool][deadline]") {
    thread_pool pool{{.max_workers = 2}};
    auto token = std::make_shared<int>(5);
    {
        auto f = pool.submit_with(
            {.timeout = 1h}, [](std::shared_ptr<int> p) { return *p; }, token);
        CHECK(f.get() == 5);
    }
    // The task's state (holding a copy of `token`) is freed with its future,
    // not kept by a timer for an hour.
    CHECK(coexec_test::eventually([&] { return token.use_count() == 1; }));
    // A timeout of 0 (or less) is no deadline, as on process_pool.
    CHECK(pool.submit_with({.timeout = 0ns}, square, 6).get() == 36);
    CHECK(pool.submit_with({.timeout = -1s}, square, 7).get() == 49);
    CHECK(pool.submit_with({.timeout = std::chrono::nanoseconds::max()}, square, 8).get() == 64);
}

TEST_CASE("a coroutine past its deadline has its io sleep cancelled", "[thread_pool][deadline]") {
    thread_pool pool{{.max_workers = 1}};
    std::atomic<bool> woke_early{false};
    const auto begin = std::chrono::steady_clock::now();
    auto f = pool.submit_with({.timeout = 50ms}, [&]() -> coexec::task<int> {
        try {
            co_await coexec::io::sleep_for(60s);
        } catch (...) {
            woke_early = true;  // the stop cancels the sleep
            throw;
        }
        co_return 1;
    });
    REQUIRE(f.wait_for(30s));
    CHECK_THROWS_AS(f.get(), coexec::deadline_exceeded);
    REQUIRE(coexec_test::eventually([&] { return woke_early.load(); }));
    CHECK(std::chrono::steady_clock::now() - begin < 30s);
}

TEST_CASE("submit_with is the same call on thread_pool and process_pool",
          "[thread_pool][deadline]") {
    thread_pool threads{{.max_workers = 1}};
    coexec::process_pool processes{{.max_workers = 1}};
    CHECK(square_within(threads, 9) == 81);
    CHECK(square_within(processes, 9) == 81);
}

TEST_CASE("a deadline's done-callback that waits on another deadline does not hold it",
          "[thread_pool][deadline]") {
    // Deadlines fire on one timer thread for the whole process; the user
    // code they release runs elsewhere, so this callback, blocked on `b`,
    // does not keep b's deadline from firing.
    thread_pool pool{{.max_workers = 2}};
    auto until_stopped = [](std::stop_token st) {
        while (!st.stop_requested())
            std::this_thread::sleep_for(1ms);
        return 1;
    };
    // (a's deadline leaves time to register the callback below: one
    // registered on a done future runs at once, here, testing nothing.)
    auto a = pool.submit_with({.timeout = 300ms}, until_stopped);
    auto b = pool.submit_with({.timeout = 600ms}, until_stopped);
    std::atomic<int> seen{0};
    a.add_done_callback([&](const coexec::future<int>&) { seen = b.wait_for(30s) ? 1 : 2; });
    REQUIRE(coexec_test::eventually([&] { return seen.load() != 0; }, 60s));
    CHECK(seen.load() == 1);
    CHECK_THROWS_AS(b.get(), coexec::deadline_exceeded);
}

TEST_CASE("a deadline's done-callback that waits for its own task to end gets it",
          "[thread_pool][deadline]") {
    // The stop that ends the task must not wait behind this callback.
    thread_pool pool{{.max_workers = 1}};
    std::atomic<bool> ended{false};
    auto a = pool.submit_with({.timeout = 300ms}, [&](std::stop_token st) {
        while (!st.stop_requested())
            std::this_thread::sleep_for(1ms);
        ended = true;
        return 1;
    });
    std::atomic<int> seen{0};
    a.add_done_callback([&](const coexec::future<int>&) {
        seen = coexec_test::eventually([&] { return ended.load(); }, 30s) ? 1 : 2;
    });
    REQUIRE(coexec_test::eventually([&] { return seen.load() != 0; }, 60s));
    CHECK(seen.load() == 1);
}
