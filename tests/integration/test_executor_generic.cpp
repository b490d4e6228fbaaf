// One body of code, written against coexec::executor, run on every executor:
// switching strategy is a change of one type (thread_pool for I/O-bound work,
// process_pool for CPU-bound work, inline_executor, an Asio executor). Each
// case is a template over the executor, as a user's generic code would be.
#include <catch2/catch.hpp>

#include <algorithm>
#include <asio/thread_pool.hpp>
#include <chrono>
#include <memory>
#include <numeric>
#include <set>
#include <stdexcept>
#include <vector>

#include "coexec/asio.hpp"
#include "coexec/coexec.hpp"

using namespace std::chrono_literals;

namespace {

constexpr auto bound = 60s;

int square(int x) {
    return x * x;
}
int fail_on_three(int x) {
    if (x == 3) throw std::invalid_argument("three");
    return x;
}

// What the tests need of each executor: how to make one (two workers where
// the executor has workers) and what keeps it running.
struct thread_pool_fixture {
    coexec::thread_pool ex{{.max_workers = 2}};
};
struct process_pool_fixture {
    coexec::process_pool ex{{.max_workers = 2}};
};
struct inline_fixture {
    coexec::inline_executor ex;
};
struct asio_fixture {
    asio::thread_pool threads{2};
    coexec::asio_executor<asio::thread_pool::executor_type> ex{threads.get_executor()};
    ~asio_fixture() {
        ex.shutdown();
        threads.join();
    }
};

template <coexec::executor E>
std::vector<int> squares_by_map(E& ex, const std::vector<int>& in, coexec::map_options options) {
    return ex.map(square, in, std::move(options)).to_vector();
}

template <coexec::executor E>
coexec::task<int> awaited_sum(E& ex) {
    int a = co_await ex.submit(square, 3);
    std::vector<coexec::future<int>> fs;
    for (int i = 1; i <= 4; ++i)
        fs.push_back(ex.submit(square, i));
    std::vector<int> all = co_await coexec::when_all(fs);
    co_return a + std::accumulate(all.begin(), all.end(), 0);
}

}  // namespace

TEMPLATE_TEST_CASE("the same generic code submits and maps on every executor", "[executor]",
                   thread_pool_fixture, process_pool_fixture, inline_fixture, asio_fixture) {
    TestType fixture;
    auto& ex = fixture.ex;
    REQUIRE(ex.submit(square, 7).get_for(bound) == 49);

    std::vector<int> in(200);
    std::iota(in.begin(), in.end(), 0);
    std::vector<int> expected;
    for (int x : in)
        expected.push_back(x * x);
    CHECK(squares_by_map(ex, in, {}) == expected);
    CHECK(squares_by_map(ex, in, {.chunksize = 7}) == expected);
    auto unordered = squares_by_map(ex, in, {.chunksize = 3, .ordered = false});
    std::sort(unordered.begin(), unordered.end());
    CHECK(unordered == expected);

    // A failed element rethrows where it is reached; those before it arrive.
    std::vector<int> with_failure{1, 2, 3, 4};
    auto results = ex.map(fail_on_three, with_failure, {.chunksize = 1});
    std::vector<int> seen;
    CHECK_THROWS_AS(
        [&] {
            for (int r : results)
                seen.push_back(r);
        }(),
        std::invalid_argument);
    CHECK(seen == std::vector<int>{1, 2});
}

TEMPLATE_TEST_CASE("the same generic code waits, streams and awaits on every executor",
                   "[executor]", thread_pool_fixture, process_pool_fixture, inline_fixture,
                   asio_fixture) {
    TestType fixture;
    auto& ex = fixture.ex;
    std::vector<coexec::future<int>> fs;
    for (int i = 0; i < 20; ++i)
        fs.push_back(ex.submit(square, i));
    std::multiset<int> streamed;
    for (coexec::future<int> f : coexec::as_completed(fs, bound))
        streamed.insert(f.get());
    CHECK(streamed.size() == 20);
    CHECK(streamed.count(361) == 1);

    auto r = coexec::wait(fs, coexec::return_when::all_completed);
    CHECK(r.done.size() == 20);
    CHECK(r.not_done.empty());

    auto failing = ex.submit(fail_on_three, 3);
    auto first_error = coexec::wait(std::vector{failing}, coexec::return_when::first_exception);
    REQUIRE(first_error.done.size() == 1);
    CHECK_THROWS_AS(first_error.done.front().get(), std::invalid_argument);

    CHECK(coexec::sync_wait(awaited_sum(ex)) == 9 + 1 + 4 + 9 + 16);
}

TEMPLATE_TEST_CASE("the same generic code counts and shuts down every executor", "[executor]",
                   thread_pool_fixture, process_pool_fixture, inline_fixture, asio_fixture) {
    TestType fixture;
    auto& ex = fixture.ex;
    CHECK(ex.max_workers() >= 1);
    REQUIRE(ex.submit(square, 2).get_for(bound) == 4);
    CHECK_THROWS_AS(ex.submit(fail_on_three, 3).get_for(bound), std::invalid_argument);
    // A coroutine function: on a thread pool it runs there; on a process
    // pool it runs to its end in the worker.
    CHECK(ex.submit([]() -> coexec::task<int> { co_return 5; }).get_for(bound) == 5);
    auto stats = ex.stats();
    CHECK(stats.submitted == 3);
    CHECK(stats.completed == 2);
    CHECK(stats.failed == 1);
    ex.shutdown();
    CHECK_THROWS_AS(ex.submit(square, 1), coexec::executor_shutdown);
}
