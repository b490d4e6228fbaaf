// map of a coroutine function (one returning task<U>) yields results<U> on
// every executor. On a thread_pool a chunk is one coroutine that awaits its
// elements in turn and holds no worker while they wait; on a process_pool
// each element's coroutine runs to its end in the worker.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <thread>
#include <type_traits>
#include <vector>

#include "coexec/inline_executor.hpp"
#include "coexec/io.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/promise.hpp"
#include "coexec/task.hpp"
#include "coexec/thread_pool.hpp"
#include "helpers.hpp"

using coexec::task;
using coexec::thread_pool;
using coexec_test::eventually;

TEST_CASE("map of a coroutine function yields its values, ordered or not", "[map][task]") {
    thread_pool pool{{.max_workers = 2}};
    std::vector<int> in(500);
    std::iota(in.begin(), in.end(), 0);
    auto triple = [](int x) -> task<int> {
        co_await coexec::io::sleep_for(std::chrono::milliseconds(0));  // resumes on either worker
        co_return 3 * x;
    };
    auto results = pool.map(triple, in, {.chunksize = 7});
    static_assert(std::is_same_v<decltype(results), coexec::results<int>>);
    auto out = results.to_vector();
    REQUIRE(out.size() == in.size());
    for (std::size_t i = 0; i < in.size(); ++i)
        CHECK(out[i] == 3 * in[i]);

    auto unordered = pool.map(triple, in, {.ordered = false}).to_vector();
    std::sort(unordered.begin(), unordered.end());
    CHECK(unordered == out);
}

TEST_CASE("map of a coroutine function holds no worker while its elements wait", "[map][task]") {
    // One worker, 8 chunks of one element each, every element waiting on a
    // future only the test completes: all 8 must be waiting at once, which
    // chunks that held the worker while they waited could never reach.
    constexpr int n = 8;
    thread_pool pool{{.max_workers = 1}};
    std::vector<coexec::promise<int>> gates(n);
    std::vector<coexec::future<int>> opened;
    for (auto& g : gates)
        opened.push_back(g.get_future());
    std::atomic<int> waiting{0};
    std::vector<int> in(n);
    std::iota(in.begin(), in.end(), 0);
    auto results = pool.map(
        [&](int x) -> task<int> {
            waiting.fetch_add(1);
            const int add = co_await opened[static_cast<std::size_t>(x)];
            co_return x + add;
        },
        in, {.chunksize = 1, .buffersize = n});
    std::vector<int> out;
    std::thread consumer([&] { out = results.to_vector(); });
    const bool all_waiting = eventually([&] { return waiting.load() == n; });
    for (auto& g : gates)
        g.set_value(100);
    consumer.join();
    CHECK(all_waiting);
    CHECK(out == std::vector<int>{100, 101, 102, 103, 104, 105, 106, 107});
}

TEST_CASE("shutdown(cancel_futures) ends a coroutine map whose elements wait on io",
          "[map][task][shutdown]") {
    // Each element sleeps for an hour: only the cancellation of the chunk's
    // job (its stop token, which its io uses) can end them; every element
    // then carries the cancellation.
    std::optional<coexec::results<int>> results;
    {
        thread_pool pool{{.max_workers = 2}};
        std::atomic<int> sleeping{0};
        results.emplace(pool.map(
            [&sleeping](int x) -> task<int> {
                sleeping.fetch_add(1);
                co_await coexec::io::sleep_for(std::chrono::hours(1));
                co_return x;
            },
            std::vector<int>{1, 2, 3, 4, 5, 6}, {.chunksize = 2}));
        // Nothing is submitted before the first pull: pull on another
        // thread, which blocks until the shutdown below.
        std::atomic<int> failed{0};
        std::thread consumer([&] {
            for (int i = 0; i < 6; ++i) {
                try {
                    results->next_blocking();
                } catch (...) {
                    failed.fetch_add(1);
                }
            }
        });
        // The first element of each of the 3 chunks (all within the
        // look-ahead) is asleep; the others would start after it.
        CHECK(eventually([&] { return sleeping.load() == 3; }));
        pool.shutdown(true, true);
        consumer.join();
        CHECK(failed.load() == 6);
    }
}

TEST_CASE("a coroutine element that throws rethrows where it is reached; the rest are kept",
          "[map][task]") {
    thread_pool pool{{.max_workers = 2}};
    auto results = pool.map(
        [](int x) -> task<int> {
            if (x == 2) throw std::invalid_argument("two");
            co_return x * 10;
        },
        std::vector<int>{1, 2, 3, 4}, {.chunksize = 4});
    CHECK(*results.next_blocking() == 10);
    CHECK_THROWS_AS(results.next_blocking(), std::invalid_argument);
    CHECK(*results.next_blocking() == 30);
    CHECK(*results.next_blocking() == 40);
    CHECK_FALSE(results.next_blocking().has_value());
}

TEST_CASE("a coroutine element function that takes a stop_token first gets its chunk's",
          "[map][task]") {
    thread_pool pool{{.max_workers = 2}};
    auto out = pool.map([](std::stop_token token,
                           int x) -> task<int> { co_return token.stop_possible() ? x : -1; },
                        std::vector<int>{5, 6})
                   .to_vector();
    CHECK(out == std::vector<int>{5, 6});
}

TEST_CASE("map of a coroutine function on inline_executor and process_pool", "[map][task]") {
    std::vector<int> in{1, 2, 3, 4, 5};
    coexec::inline_executor inline_ex;
    CHECK(inline_ex.map([](int x) -> task<int> { co_return x + 1; }, in).to_vector() ==
          std::vector<int>{2, 3, 4, 5, 6});

    coexec::process_pool pool{{.max_workers = 2}};
    auto out = pool.map(
                       [](int x) -> task<int> {
                           auto twice = [](int v) -> task<int> { co_return 2 * v; };
                           co_return co_await twice(x);
                       },
                       in, {.chunksize = 2})
                   .to_vector();
    CHECK(out == std::vector<int>{2, 4, 6, 8, 10});
}
