#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "coexec/pipeline.hpp"
#include "coexec/sync_wait.hpp"
#include "coexec/thread_pool.hpp"
#include "process_tree.hpp"

using namespace std::chrono_literals;

namespace {
int slow_double(int x) {
    // Later items finish first, so unordered stages reorder.
    std::this_thread::sleep_for(std::chrono::microseconds(200 * (10 - x % 10)));
    return 2 * x;
}
std::string to_text(int x) {
    return std::to_string(x);
}
}  // namespace

TEST_CASE("an ordered pipeline keeps input order across two pools", "[pipeline]") {
    coexec::thread_pool io{{.max_workers = 4}}, cpu{{.max_workers = 2}};
    std::vector<int> in(100);
    for (int i = 0; i < 100; ++i)
        in[i] = i;
    auto out = coexec::pipeline(in)
                   .then(io, slow_double, {.concurrency = 8})
                   .then(cpu, to_text, {.concurrency = 2})
                   .collect();
    REQUIRE(out.size() == 100);
    for (int i = 0; i < 100; ++i)
        CHECK(out[i] == std::to_string(2 * i));
    CHECK(out.errors.empty());
}

TEST_CASE("an unordered stage yields every item once in completion order", "[pipeline]") {
    coexec::thread_pool pool{{.max_workers = 4}};
    std::vector<int> in(40);
    for (int i = 0; i < 40; ++i)
        in[i] = i;
    // Item 0 is held until the consumer has received every other item, so it
    // must come out last (counting finished calls is not enough: an item's
    // result may still be on its way when its function has returned).
    std::atomic<int> received{0};
    std::vector<int> values;
    auto errors = coexec::pipeline(in)
                      .then(pool,
                            [&](int x) {
                                if (x == 0) {
                                    while (received.load() < 39)
                                        std::this_thread::sleep_for(100us);
                                }
                                return 2 * x;
                            },
                            {.concurrency = 8, .ordered = false})
                      .for_each([&](int v) {
                          values.push_back(v);
                          received.fetch_add(1);
                      });
    REQUIRE(errors.empty());
    std::vector<int> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    REQUIRE(sorted.size() == 40);
    for (int i = 0; i < 40; ++i)
        CHECK(sorted[i] == 2 * i);
    CHECK(values.back() == 0);  // completion order, not input order
}

TEST_CASE("fail_fast rethrows the first failure and cancels the rest", "[pipeline]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::atomic<int> ran{0};
    std::vector<int> in(1000);
    for (int i = 0; i < 1000; ++i)
        in[i] = i;
    auto run = [&] {
        return coexec::pipeline(in)
            .then(pool,
                  [&](int x) {
                      ran.fetch_add(1);
                      if (x == 5) throw std::invalid_argument("bad item 5");
                      return x;
                  },
                  {.concurrency = 4})
            .collect();
    };
    CHECK_THROWS_AS(run(), std::invalid_argument);
    pool.shutdown();
    CHECK(ran.load() < 100);  // input stopped being read soon after the failure
}

TEST_CASE("error_policy collect drops failed items and reports them", "[pipeline]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<int> in{1, 2, 3, 4, 5, 6};
    auto out = coexec::pipeline(in, {.errors = coexec::error_policy::collect})
                   .then(pool,
                         [](int x) {
                             if (x % 3 == 0) throw std::runtime_error("multiple of three");
                             return x;
                         },
                         {.concurrency = 2, .name = "check"})
                   .then(pool, [](int x) { return x * 10; }, {.concurrency = 2})
                   .collect();
    CHECK(out.values == std::vector<int>{10, 20, 40, 50});
    REQUIRE(out.errors.size() == 2);
    std::set<std::size_t> failed{out.errors[0].input_index, out.errors[1].input_index};
    CHECK(failed == std::set<std::size_t>{2, 5});
    CHECK(out.errors[0].stage == 0);
    CHECK(out.errors[0].stage_name == "check");
    CHECK_THROWS_AS(std::rethrow_exception(out.errors[0].error), std::runtime_error);
}

TEST_CASE("cancelling mid-stream ends every future and stops the input", "[pipeline]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::atomic<long> pulled{0};
    auto endless = std::views::iota(0) | std::views::transform([&](int i) {
                       pulled.fetch_add(1);
                       return i;
                   });
    auto stream = coexec::pipeline(endless)
                      .then(pool,
                            [](int x) {
                                std::this_thread::sleep_for(100us);
                                return x;
                            },
                            {.concurrency = 4})
                      .stream();
    for (int i = 0; i < 50; ++i)
        CHECK(stream.next_blocking() == i);
    stream.cancel();
    CHECK_THROWS_AS(stream.next_blocking(), coexec::cancelled_error);
    long after_cancel = pulled.load();
    pool.shutdown();  // every started task ends; nothing hangs
    CHECK(pulled.load() == after_cancel);
    CHECK(pool.stats().queued == 0);
}

TEST_CASE("a stop_token cancels a pipeline blocked on slow work", "[pipeline]") {
    coexec::thread_pool pool{{.max_workers = 1}};
    std::stop_source stop;
    // 3 s of work, stopped after 50 ms: a stalled canceller still comes first.
    std::vector<int> in(100, 1);
    std::thread canceller([&] {
        std::this_thread::sleep_for(50ms);
        stop.request_stop();
    });
    auto run = [&] {
        return coexec::pipeline(in, {.stop = stop.get_token()})
            .then(pool,
                  [](int x) {
                      std::this_thread::sleep_for(30ms);
                      return x;
                  })
            .collect();
    };
    CHECK_THROWS_AS(run(), coexec::cancelled_error);
    canceller.join();
}

TEST_CASE("backpressure bounds memory on a ten-million-item input", "[pipeline][stress]") {
    coexec::thread_pool io{{.max_workers = 2}}, cpu{{.max_workers = 2}};
    constexpr long n = 10'000'000;
    auto input = std::views::iota(0L, n);
    long rss_before = coexec_test::rss_kib();
    long peak = rss_before;
    long count = 0, sum = 0;
    auto stream = coexec::pipeline(input)
                      .then(io, [](long x) { return x % 7; }, {.concurrency = 8, .chunksize = 1024})
                      .then(cpu, [](long x) { return x + 1; },
                            {.concurrency = 4, .ordered = false, .chunksize = 1024})
                      .stream();
    while (auto v = stream.next_blocking()) {
        sum += *v;
        if ((++count & 0xFFFFF) == 0) peak = std::max(peak, coexec_test::rss_kib());
    }
    CHECK(count == n);
    CHECK(sum == n / 7 * 28 + (n % 7) * ((n % 7) + 1) / 2);
    // Ten million items in flight would take hundreds of MiB; bounded buffers keep it flat.
    if (coexec_test::rss_is_meaningful) CHECK(peak - rss_before < 16 * 1024);
}

TEST_CASE("a coroutine stage awaits without holding a worker", "[pipeline][task]") {
    coexec::thread_pool io{{.max_workers = 1}}, cpu{{.max_workers = 1}};
    std::vector<int> in(20);
    for (int i = 0; i < 20; ++i)
        in[i] = i;
    // Each item awaits work on another pool: with one worker, a blocking
    // stage at concurrency 4 would serialise; a coroutine stage does not block.
    auto fetch = [&cpu](int x) -> coexec::task<int> {
        co_return co_await cpu.submit([x] { return x * 3; });
    };
    auto out = coexec::pipeline(in).then(io, fetch, {.concurrency = 4}).collect();
    REQUIRE(out.size() == 20);
    for (int i = 0; i < 20; ++i)
        CHECK(out[i] == 3 * i);
}

TEST_CASE("a coroutine stage spreads a pair over its parameters as map does", "[pipeline][task]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<std::pair<int, int>> in{{1, 2}, {3, 4}};
    auto add = [](int a, int b) -> coexec::task<int> { co_return a + b; };
    auto out = coexec::pipeline(in).then(pool, add).collect();
    CHECK(out.values == std::vector<int>{3, 7});
}

TEST_CASE("a pipeline can be awaited in a coroutine and reports progress", "[pipeline][task]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<int> in{1, 2, 3};
    std::vector<coexec::progress_info> seen;
    auto out = coexec::sync_wait([&]() -> coexec::task<coexec::pipeline_result<int>> {
        // Built in its own statement: GCC 12 mis-destroys temporaries with
        // non-trivial members inside a co_await expression.
        auto p = coexec::pipeline(in).then(
            pool, [](int x) { return x + 1; },
            {.concurrency = 2,
             .progress = [&](const coexec::progress_info& info) { seen.push_back(info); }});
        co_return co_await std::move(p);
    }());
    CHECK(out.values == std::vector<int>{2, 3, 4});
    REQUIRE_FALSE(seen.empty());
    CHECK(seen.back().done == 3);
    CHECK(seen.back().input_exhausted);
}

TEST_CASE("a pipeline built inside the co_await expression itself runs", "[pipeline][task]") {
    // With stage_options as a defaulted argument of then(), GCC 12 copied the
    // default made inside the co_await expression bitwise and freed its
    // string twice (ASan: free of an address in the coroutine frame).
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<int> in{1, 2, 3};
    auto [direct, async] = coexec::sync_wait(
        [&]()
            -> coexec::task<std::pair<coexec::pipeline_result<int>, coexec::pipeline_result<int>>> {
            auto a = co_await coexec::pipeline(in).then(pool, [](int x) { return x * 2; });
            auto b = co_await coexec::pipeline(in)
                         .then(pool, [](int x) { return x + 1; })
                         .then(pool, [](int x) { return x * 10; })
                         .collect_async();
            co_return std::pair{std::move(a), std::move(b)};
        }());
    CHECK(direct.values == std::vector<int>{2, 4, 6});
    CHECK(async.values == std::vector<int>{20, 30, 40});
}

TEST_CASE("braced stage options with a name inside the co_await expression itself",
          "[pipeline][task]") {
    // GCC 12 copies an aggregate made inside a co_await expression bitwise
    // and destroys both copies: a std::string name was freed twice.
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<int> in{1, 2, 3};
    auto out = coexec::sync_wait([&]() -> coexec::task<coexec::pipeline_result<int>> {
        co_return co_await coexec::pipeline(in).then(pool, [](int x) { return x * 3; },
                                                     {.concurrency = 2, .name = "triple"});
    }());
    CHECK(out == std::vector<int>{3, 6, 9});
}

TEST_CASE("a stage name made from a temporary string outlives it, and a kept builder runs",
          "[pipeline]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<int> in{1, 2, 3};
    const std::string prefix = "a name longer than a string's inline buffer, number ";
    auto failing = coexec::pipeline(in, {.errors = coexec::error_policy::collect})
                       .then(pool,
                             [](int x) -> int {
                                 if (x == 2) throw std::runtime_error("bad");
                                 return x;
                             },
                             {.name = prefix + std::to_string(7)});  // the temporary dies here
    auto r = failing.collect();                                      // a kept builder runs, once
    CHECK_THROWS_AS(failing.collect(), std::logic_error);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].stage_name == prefix + "7");
    CHECK(r.size() == 2);
    CHECK_FALSE(r.empty());
    // The values as a plain vector.
    std::vector<int> values =
        coexec::pipeline(in).then(pool, [](int x) { return x + 1; }).collect();
    CHECK(values == std::vector<int>{2, 3, 4});
}
