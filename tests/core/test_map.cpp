#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <future>
#include <iterator>
#include <ranges>
#include <stdexcept>
#include <stop_token>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "coexec/inline_executor.hpp"
#include "coexec/sync_wait.hpp"
#include "coexec/thread_pool.hpp"
#include "helpers.hpp"
#include "process_tree.hpp"

using namespace std::chrono_literals;

TEST_CASE("map keeps input order by default", "[map]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<int> in(1000);
    for (int i = 0; i < 1000; ++i)
        in[i] = i;
    std::vector<int> out;
    for (int r : pool.map(
             [](int x) {
                 if (x % 7 == 0) std::this_thread::sleep_for(10us);
                 return x * 2;
             },
             in)) {
        out.push_back(r);
    }
    REQUIRE(out.size() == 1000);
    for (int i = 0; i < 1000; ++i)
        CHECK(out[i] == 2 * i);
}

TEST_CASE("unordered map yields every result once in completion order", "[map]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    // The first element waits for the other three (on the other worker), so
    // it finishes last whatever the timing.
    std::atomic<int> fast_done{0};
    std::vector<int> in{0, 1, 2, 3};
    auto results = pool.map(
        [&](int i) {
            if (i != 0) {
                fast_done.fetch_add(1);
            } else if (!coexec_test::eventually([&] { return fast_done.load() == 3; },
                                                std::chrono::seconds(30))) {
                return -1;
            }
            return i;
        },
        in, {.chunksize = 1, .ordered = false});
    auto out = results.to_vector();
    REQUIRE(out.size() == 4);
    CHECK(out.back() == 0);
    std::sort(out.begin(), out.end());
    CHECK(out == std::vector<int>{0, 1, 2, 3});
}

TEST_CASE("map applies tuples as argument lists", "[map]") {
    coexec::inline_executor ex;
    std::vector<std::pair<int, int>> ranges{{0, 10}, {10, 20}};
    auto sums = ex.map([](int a, int b) { return a + b; }, ranges).to_vector();
    CHECK(sums == std::vector<int>{10, 30});
}

TEST_CASE("map passes a tuple whole to a function that takes it and spreads it otherwise",
          "[map]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<std::tuple<int, int>> tuples{{1, 2}, {3, 4}};
    std::vector<std::array<int, 3>> arrays{{1, 2, 3}};
    auto whole = [](const std::tuple<int, int>& t) { return std::get<0>(t) * std::get<1>(t); };
    auto spread = [](int a, int b) { return a - b; };
    CHECK(pool.map(whole, tuples).to_vector() == std::vector<int>{2, 12});
    CHECK(pool.map(spread, tuples).to_vector() == std::vector<int>{-1, -1});
    CHECK(pool.map([](int a, int b, int c) { return a + b + c; }, arrays).to_vector() ==
          std::vector<int>{6});
}

TEST_CASE("map hands a stop_token to an element function that takes one first", "[map]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<std::pair<int, int>> in{{1, 2}, {3, 4}};
    auto out = pool.map([](std::stop_token token, int a,
                           int b) { return token.stop_possible() ? a + b : -1; },
                        in)
                   .to_vector();
    CHECK(out == std::vector<int>{3, 7});
}

TEST_CASE("a failing element rethrows where it is reached and the rest are kept", "[map]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<int> in{1, 2, 3, 4, 5};
    auto results = pool.map(
        [](int x) {
            if (x == 3) throw std::domain_error("three");
            return x;
        },
        in, {.chunksize = 2});
    CHECK(results.next_blocking() == 1);
    CHECK(results.next_blocking() == 2);
    CHECK_THROWS_AS(results.next_blocking(), std::domain_error);
    CHECK(results.next_blocking() == 4);
    CHECK(results.next_blocking() == 5);
    CHECK_FALSE(results.next_blocking());
}

TEST_CASE("map with chunksize sends chunks as single tasks", "[map]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<int> in(100, 1);
    auto total = pool.map([](int x) { return x; }, in, {.chunksize = 10}).to_vector();
    CHECK(total.size() == 100);
    CHECK(pool.stats().submitted == 10);
}

TEST_CASE("an endless input is consumed lazily with bounded look-ahead", "[map]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::atomic<long> pulled{0};
    auto endless = std::views::iota(0L) | std::views::transform([&](long i) {
                       pulled.fetch_add(1);
                       return i;
                   });
    auto results =
        pool.map([](long x) { return x % 3; }, endless, {.chunksize = 4, .buffersize = 64});
    long seen = 0, sum = 0;
    long rss_before = coexec_test::rss_kib();
    for (long r : results) {
        sum += r;
        if (++seen == 200'000) break;
        CHECK(pulled.load() - seen <= 64 + 4);
    }
    long rss_after = coexec_test::rss_kib();
    CHECK(seen == 200'000);
    CHECK(sum == 199'999);
    // Memory stays flat: 200k elements in flight would be megabytes of state.
    if (coexec_test::rss_is_meaningful) CHECK(rss_after - rss_before < 8 * 1024);
}

TEST_CASE("map's timeout throws timeout_error", "[map]") {
    coexec::thread_pool pool{{.max_workers = 1}};
    std::vector<int> in{200, 200};
    auto results = pool.map(
        [](int ms) {
            std::this_thread::sleep_for(std::chrono::milliseconds(ms));
            return ms;
        },
        in, {.timeout = 20ms});
    CHECK_THROWS_AS(results.next_blocking(), coexec::timeout_error);
}

TEST_CASE("map's timeout throws timeout_error from co_await next, ordered or not", "[map][task]") {
    for (bool ordered : {true, false}) {
        coexec::thread_pool pool{{.max_workers = 1}};
        coexec_test::gate g;
        // Should the timeout be ignored, the gate opens after a bound and the
        // element arrives as a value instead of the error: the test fails, no hang.
        std::promise<void> test_over;
        std::thread safety([&g, over = test_over.get_future()] {
            over.wait_for(30s);
            g.open();
        });
        std::vector<int> in{1, 2};
        auto results = pool.map(
            [&](int x) {
                g.wait();
                return x;
            },
            in, {.ordered = ordered, .timeout = 30ms});
        bool timed_out = false;
        try {
            coexec::sync_wait(results.next());
        } catch (const coexec::timeout_error&) {
            timed_out = true;
        }
        CHECK(timed_out);
        test_over.set_value();
        safety.join();
    }
}

TEST_CASE("map results can be collected inside a coroutine", "[map][task]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<int> in{1, 2, 3};
    auto out = coexec::sync_wait([&]() -> coexec::task<std::vector<int>> {
        auto results = pool.map([](int x) { return x + 1; }, in);
        co_return co_await results.collect();
    }());
    CHECK(out == std::vector<int>{2, 3, 4});
}

TEST_CASE("progress callbacks report every element", "[map]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<int> in(20, 1);
    std::vector<coexec::progress_info> seen;
    auto out = pool.map([](int x) { return x; }, in,
                        {.chunksize = 5,
                         .progress = [&](const coexec::progress_info& p) { seen.push_back(p); }})
                   .to_vector();
    REQUIRE(!seen.empty());
    CHECK(seen.back().done == 20);
    CHECK(seen.back().total == 20);
    CHECK(seen.back().input_exhausted);
}
