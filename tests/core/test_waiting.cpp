#include <catch2/catch.hpp>

#include <future>
#include <map>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "coexec/as_completed.hpp"
#include "coexec/promise.hpp"
#include "coexec/sync_wait.hpp"
#include "coexec/task.hpp"
#include "coexec/thread_pool.hpp"
#include "coexec/wait.hpp"
#include "coexec/when_all.hpp"
#include "coexec/when_any.hpp"
#include "helpers.hpp"

using namespace std::chrono_literals;
using coexec::future;
using coexec::promise;
using coexec::return_when;

namespace {
std::vector<promise<int>> make_promises(int n) {
    return std::vector<promise<int>>(static_cast<std::size_t>(n));
}
std::vector<future<int>> futures_of(std::vector<promise<int>>& ps) {
    std::vector<future<int>> fs;
    for (auto& p : ps)
        fs.push_back(p.get_future());
    return fs;
}
}  // namespace

TEST_CASE("as_completed yields futures in completion order", "[as_completed]") {
    auto ps = make_promises(3);
    auto fs = futures_of(ps);
    // The stream exists before any completes (one made later lists those
    // already finished in input order).
    auto stream = coexec::as_completed(fs);
    std::thread t([&] {
        ps[2].set_value(2);
        ps[0].set_value(0);
        ps[1].set_value(1);
    });
    std::vector<int> order;
    for (future<int> f : stream)
        order.push_back(f.get());
    t.join();
    CHECK(order == std::vector<int>{2, 0, 1});
}

TEST_CASE("as_completed yields a future given twice once, and finished ones first",
          "[as_completed]") {
    auto ps = make_promises(2);
    auto fs = futures_of(ps);
    ps[1].set_value(1);
    fs.push_back(fs[0]);
    auto stream = coexec::as_completed(fs);
    CHECK(stream.remaining() == 2);
    auto first = stream.next_blocking();
    REQUIRE(first);
    CHECK(first->get() == 1);
    ps[0].set_value(0);
    CHECK(stream.next_blocking()->get() == 0);
    CHECK_FALSE(stream.next_blocking());
}

TEST_CASE("as_completed throws timeout_error when futures are left at the timeout",
          "[as_completed]") {
    auto ps = make_promises(2);
    auto fs = futures_of(ps);
    ps[0].set_value(0);
    int seen = 0;
    auto iterate = [&] {
        for (future<int> f : coexec::as_completed(fs, 30ms))
            seen += 1 + f.get();
    };
    CHECK_THROWS_AS(iterate(), coexec::timeout_error);
    CHECK(seen == 1);
}

TEST_CASE("as_completed accepts a map keyed by futures and cancelled ones count as done",
          "[as_completed]") {
    auto ps = make_promises(2);
    std::map<int, int> dummy;
    std::unordered_map<future<int>, std::string> jobs;
    jobs.emplace(ps[0].get_future(), "a");
    jobs.emplace(ps[1].get_future(), "b");
    ps[0].get_future().cancel();
    ps[1].set_value(5);
    int n = 0;
    for (future<int> f : coexec::as_completed(jobs)) {
        CHECK(f.done());
        CHECK(jobs.count(f) == 1);
        ++n;
    }
    CHECK(n == 2);
}

TEST_CASE("as_completed streams inside a coroutine", "[as_completed][task]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<future<int>> fs;
    for (int i = 0; i < 50; ++i)
        fs.push_back(pool.submit([i] { return i; }));
    int sum = coexec::sync_wait([&]() -> coexec::task<int> {
        auto stream = coexec::as_completed(fs);
        int s = 0;
        while (auto f = co_await stream.next())
            s += f->get();
        co_return s;
    }());
    CHECK(sum == 49 * 50 / 2);
}

TEST_CASE("wait first_completed returns as soon as one is done", "[wait]") {
    auto ps = make_promises(3);
    auto fs = futures_of(ps);
    ps[1].set_value(1);
    auto r = coexec::wait(fs, return_when::first_completed);
    REQUIRE(r.done.size() == 1);
    CHECK(r.done[0].get() == 1);
    CHECK(r.not_done.size() == 2);
    // As with Python's sets: `fs[1] in r.done`.
    CHECK(r.done.count(fs[1]) == 1);
    CHECK(r.done.contains(fs[1]));
    CHECK_FALSE(r.done.contains(fs[0]));
    CHECK(r.not_done.contains(fs[0]));
    CHECK(r.not_done.count(fs[2]) == 1);
}

TEST_CASE("wait first_exception returns on a failure, not on a value", "[wait]") {
    auto ps = make_promises(3);
    auto fs = futures_of(ps);
    ps[0].set_value(0);
    std::thread t([&] {
        std::this_thread::sleep_for(20ms);
        ps[2].set_exception(std::make_exception_ptr(std::runtime_error("boom")));
    });
    auto r = coexec::wait(fs, return_when::first_exception);
    t.join();
    CHECK(r.done.size() == 2);
    CHECK(r.not_done.size() == 1);
}

TEST_CASE("wait first_exception with no failure waits for all", "[wait]") {
    auto ps = make_promises(2);
    auto fs = futures_of(ps);
    std::thread t([&] {
        ps[0].set_value(0);
        std::this_thread::sleep_for(10ms);
        ps[1].set_value(1);
    });
    auto r = coexec::wait(fs, return_when::first_exception);
    t.join();
    CHECK(r.done.size() == 2);
    CHECK(r.not_done.empty());
}

TEST_CASE("wait all_completed with a timeout returns the unfinished without throwing", "[wait]") {
    auto ps = make_promises(3);
    auto fs = futures_of(ps);
    ps[0].set_value(0);
    ps[1].get_future().cancel();
    auto r = coexec::wait(fs, return_when::all_completed, 30ms);
    CHECK(r.done.size() == 2);
    REQUIRE(r.not_done.size() == 1);
    CHECK(r.not_done[0] == fs[2]);
    auto short_form = coexec::wait(fs, 10ms);  // return_when defaults, as in Python
    CHECK(short_form.done.size() == 2);
    CHECK(short_form.not_done.size() == 1);
    // Braced lists, as Python's wait([f1, f2]) and as_completed([f1, f2]).
    auto listed = coexec::wait({fs[0], fs[2]}, 10ms);
    CHECK(listed.done.size() == 1);
    CHECK(coexec::wait({fs[0], fs[1]}).not_done.empty());
    CHECK(coexec::wait({fs[0], fs[2]}, return_when::first_completed).done.size() == 1);
    int seen = 0;
    for (auto f : coexec::as_completed({fs[0], fs[1]}))
        seen += f.done() ? 1 : 0;
    CHECK(seen == 2);
    CHECK_THROWS_AS(
        [&] {
            for (auto f : coexec::as_completed({fs[2]}, 10ms))
                (void)f;
        }(),
        coexec::timeout_error);
}

TEST_CASE("when_all gives a tuple of results from different executors", "[when_all]") {
    coexec::thread_pool a{{.max_workers = 1}}, b{{.max_workers = 1}};
    auto [x, y, z] = coexec::sync_wait(coexec::when_all(
        a.submit([] { return 1; }), b.submit([] { return std::string("two"); }), a.submit([] {})));
    CHECK(x == 1);
    CHECK(y == "two");
    (void)z;
}

TEST_CASE("when_all fails fast on the first exception", "[when_all]") {
    auto ps = make_promises(3);
    auto fs = futures_of(ps);
    ps[1].set_exception(std::make_exception_ptr(std::out_of_range("first")));
    // ps[0] and ps[2] never finish before when_all returns: it must not wait for them.
    CHECK_THROWS_AS(coexec::sync_wait(coexec::when_all(fs)), std::out_of_range);
    ps[0].set_value(0);
    ps[2].set_value(2);
}

TEST_CASE("when_all of a vector gives the values in input order", "[when_all]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<future<int>> fs;
    for (int i = 0; i < 100; ++i)
        fs.push_back(pool.submit([i] { return i * i; }));
    auto values = coexec::sync_wait(coexec::when_all(fs));
    REQUIRE(values.size() == 100);
    for (int i = 0; i < 100; ++i)
        CHECK(values[i] == i * i);
    std::vector<future<void>> voids{pool.submit([] {}), pool.submit([] {})};
    coexec::sync_wait(coexec::when_all(voids));
    std::vector<future<int>> none;
    CHECK(coexec::sync_wait(coexec::when_all(none)).empty());
}

TEST_CASE("when_all_settled waits for every outcome without throwing", "[when_all]") {
    auto ps = make_promises(3);
    auto fs = futures_of(ps);
    ps[0].set_exception(std::make_exception_ptr(std::runtime_error("x")));
    ps[1].get_future().cancel();
    std::thread t([&] {
        std::this_thread::sleep_for(10ms);
        ps[2].set_value(2);
    });
    auto settled = coexec::sync_wait(coexec::when_all_settled(fs));
    t.join();
    REQUIRE(settled.size() == 3);
    for (auto& f : settled)
        CHECK(f.done());
    CHECK(settled[2].get() == 2);
}

TEST_CASE("when_any gives the index and future of the first to finish", "[when_any]") {
    auto ps = make_promises(3);
    auto fs = futures_of(ps);
    std::thread t([&] {
        std::this_thread::sleep_for(10ms);
        ps[2].set_value(7);
    });
    auto [index, f] = coexec::sync_wait(coexec::when_any(fs));
    t.join();
    CHECK(index == 2);
    CHECK(f.get() == 7);
    ps[0].set_value(0);
    ps[1].set_value(1);
    std::vector<future<int>> none;
    CHECK_THROWS_AS(coexec::sync_wait(coexec::when_any(none)), std::invalid_argument);
}

TEST_CASE(
    "as_completed's coroutine stream throws timeout_error when futures are left at the timeout",
    "[as_completed][task]") {
    auto ps = make_promises(2);
    auto fs = futures_of(ps);
    ps[0].set_value(0);
    // Run the coroutine on its own thread so that, should the timeout be
    // ignored, the test fails after a bound instead of hanging.
    std::promise<std::pair<int, bool>> outcome;
    std::thread consumer([&] {
        int seen = 0;
        bool timed_out = false;
        try {
            coexec::sync_wait([&]() -> coexec::task<void> {
                auto stream = coexec::as_completed(fs, 30ms);
                while (auto f = co_await stream.next())
                    seen += 1 + f->get();
            }());
        } catch (const coexec::timeout_error&) {
            timed_out = true;
        }
        outcome.set_value({seen, timed_out});
    });
    auto result = outcome.get_future();
    const bool finished = result.wait_for(30s) == std::future_status::ready;
    ps[1].set_value(1);  // lets a stream that ignored its timeout end
    consumer.join();
    REQUIRE(finished);
    auto [seen, timed_out] = result.get();
    CHECK(timed_out);
    CHECK(seen == 1);
}

TEST_CASE("when_any of futures given one by one gives the index and future of the first",
          "[when_any]") {
    auto ps = make_promises(3);
    auto fs = futures_of(ps);
    coexec::thread_pool pool{{.max_workers = 1}};
    std::thread t([&] { ps[1].set_exception(std::make_exception_ptr(std::runtime_error("b"))); });
    auto [index, f] = coexec::sync_wait(coexec::when_any(fs[0], fs[1], fs[2]));
    t.join();
    CHECK(index == 1);
    CHECK(f == fs[1]);
    CHECK_THROWS_AS(f.get(), std::runtime_error);  // when_any itself did not throw
    // One future, and futures from an executor mixed with a promise's.
    ps[0].set_value(5);
    CHECK(coexec::sync_wait(coexec::when_any(fs[0])).first == 0);
    auto [i2, f2] = coexec::sync_wait(coexec::when_any(fs[2], pool.submit([] { return 9; })));
    CHECK(i2 == 1);
    CHECK(f2.get() == 9);
    ps[2].set_value(2);
}

TEST_CASE("when_any copies the futures at the call so the range may go away before the await",
          "[when_any]") {
    promise<int> p;
    auto t = coexec::when_any(std::vector<future<int>>{p.get_future()});
    p.set_value(3);
    auto [index, f] = coexec::sync_wait(std::move(t));
    CHECK(index == 0);
    CHECK(f.get() == 3);
}

TEST_CASE("when_all over 20k children registers while they finish on other workers",
          "[when_all][when_any]") {
    // The wait's nodes (one array per wait) are registered on states that
    // two workers complete at the same time; every value arrives in order.
    coexec::thread_pool pool{{.max_workers = 2}};
    for (int round = 0; round < 5; ++round) {
        auto sum = pool.submit([&pool]() -> coexec::task<long> {
            std::vector<future<int>> children;
            for (int i = 0; i < 20'000; ++i)
                children.push_back(pool.submit([i] { return i; }));
            auto values = co_await coexec::when_all(children);
            long s = 0;
            for (std::size_t i = 0; i < values.size(); ++i)
                s += values[i] == static_cast<int>(i) ? values[i] : -1'000'000;
            co_return s;
        });
        CHECK(sum.get_for(60s) == 20'000L * 19'999 / 2);
    }
}

TEST_CASE("futures that finish after when_any resumed, and after its futures are gone, are safe",
          "[when_any]") {
    // when_any resumes at the first; the other 999 complete later, after the
    // coroutine, its copies of the futures and the caller's vector are gone:
    // their nodes must still be there when they fire (ASan checks it), and
    // the wait must be freed once the last has fired (LeakSanitizer).
    auto ps = std::make_unique<std::vector<promise<int>>>(1000);
    {
        std::vector<future<int>> fs;
        for (auto& p : *ps)
            fs.push_back(p.get_future());
        std::thread first([&] { (*ps)[500].set_value(5); });
        auto [index, f] = coexec::sync_wait(coexec::when_any(fs));
        first.join();
        CHECK(index == 500);
        CHECK(f.get() == 5);
    }
    std::thread a([&] {
        for (std::size_t i = 0; i < 500; ++i)
            (*ps)[i].set_value(static_cast<int>(i));
    });
    ps->resize(501);  // the destroyed promises break theirs: those nodes fire too
    a.join();
    ps.reset();
}
