#include <catch2/catch.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "coexec/future.hpp"
#include "coexec/promise.hpp"
#include "coexec/sync_wait.hpp"
#include "coexec/task.hpp"
#include "helpers.hpp"

using namespace std::chrono_literals;
using coexec::future;
using coexec::promise;

TEST_CASE("a promise's future goes from pending to done with the value", "[future]") {
    promise<int> p;
    future<int> f = p.get_future();
    REQUIRE(f.valid());
    CHECK_FALSE(f.done());
    CHECK_FALSE(f.running());
    CHECK(p.set_running());
    CHECK(f.running());
    p.set_value(42);
    CHECK(f.done());
    CHECK_FALSE(f.running());
    CHECK_FALSE(f.cancelled());
    CHECK(f.get() == 42);
    CHECK(f.exception() == nullptr);
}

TEST_CASE("a default future is not valid", "[future]") {
    future<int> f;
    CHECK_FALSE(f.valid());
}

TEST_CASE("get rethrows the task's exception with its type", "[future]") {
    promise<std::string> p;
    auto f = p.get_future();
    p.set_exception(std::make_exception_ptr(std::out_of_range("index 7")));
    CHECK_THROWS_AS(f.get(), std::out_of_range);
    CHECK_THROWS_WITH(f.get(), "index 7");
    CHECK(f.exception() != nullptr);
}

TEST_CASE("the first completion wins and later ones are ignored", "[future]") {
    promise<int> p;
    auto f = p.get_future();
    p.set_value(1);
    p.set_value(2);
    p.set_exception(std::make_exception_ptr(std::runtime_error("late")));
    CHECK(f.get() == 1);
}

TEST_CASE("a pending future can be cancelled and then never gets a value", "[future]") {
    promise<int> p;
    auto f = p.get_future();
    CHECK(f.cancel());
    CHECK(f.cancelled());
    CHECK(f.done());
    CHECK_FALSE(p.set_running());
    p.set_value(3);
    CHECK_THROWS_AS(f.get(), coexec::cancelled_error);
    CHECK(f.cancel());  // cancelling again reports it is cancelled
}

TEST_CASE("a running future without a cancel hook cannot be cancelled", "[future]") {
    promise<int> p;
    auto f = p.get_future();
    REQUIRE(p.set_running());
    CHECK_FALSE(f.cancel());
    CHECK_FALSE(f.cancelled());
    p.set_value(5);
    CHECK(f.get() == 5);
    CHECK_FALSE(f.cancel());  // done futures cannot be cancelled
}

TEST_CASE("has_value and has_exception tell a finished future's outcome without consuming it",
          "[future]") {
    promise<std::unique_ptr<int>> ok, failed, cancelled;
    auto v = ok.get_future(), e = failed.get_future(), c = cancelled.get_future();
    for (const auto& f : {v, e, c}) {  // not done: neither, and no blocking
        CHECK_FALSE(f.has_value());
        CHECK_FALSE(f.has_exception());
    }
    ok.set_value(std::make_unique<int>(7));
    failed.set_exception(std::make_exception_ptr(std::domain_error("d")));
    REQUIRE(c.cancel());
    CHECK(v.has_value());
    CHECK_FALSE(v.has_exception());
    CHECK(e.has_exception());
    CHECK_FALSE(e.has_value());
    CHECK(c.cancelled());
    CHECK_FALSE(c.has_value());
    CHECK_FALSE(c.has_exception());  // a cancellation is not the task's exception
    CHECK(v.has_value());            // asking twice consumed nothing: the value is still there
    CHECK(*std::move(v).get() == 7);
}

TEST_CASE("when_ready waits for a future without taking its result or throwing", "[future][task]") {
    promise<int> p;
    auto f = p.get_future();
    std::thread t([&] {
        std::this_thread::sleep_for(20ms);
        p.set_exception(std::make_exception_ptr(std::out_of_range("late")));
    });
    auto main_id = std::this_thread::get_id();
    auto resumed_on = coexec::sync_wait([&]() -> coexec::task<std::thread::id> {
        co_await f.when_ready();  // does not rethrow
        co_return std::this_thread::get_id();
    }());
    t.join();
    CHECK(resumed_on == main_id);  // resumes like co_await f (sticky)
    CHECK(f.has_exception());
    CHECK_THROWS_AS(f.get(), std::out_of_range);
}

TEST_CASE("get_for throws timeout_error when the value is late", "[future]") {
    promise<int> p;
    auto f = p.get_future();
    CHECK_THROWS_AS(f.get_for(20ms), coexec::timeout_error);
    CHECK_FALSE(f.wait_for(1ms));
    p.set_value(9);
    CHECK(f.wait_for(1ms));
    CHECK(f.get_for(1s) == 9);
}

TEST_CASE("a blocked get is woken by a value set on another thread", "[future]") {
    promise<int> p;
    auto f = p.get_future();
    std::thread t([&] {
        std::this_thread::sleep_for(30ms);
        p.set_value(11);
    });
    CHECK(f.get() == 11);
    t.join();
}

TEST_CASE("done callbacks run exactly once, before and after completion", "[future]") {
    promise<int> p;
    auto f = p.get_future();
    std::atomic<int> before{0}, after{0};
    int seen = 0;
    f.add_done_callback([&](const future<int>& g) {
        seen = g.get();
        before.fetch_add(1);
    });
    f.add_done_callback([&](const future<int>&) { before.fetch_add(1); });
    CHECK(before.load() == 0);
    p.set_value(4);
    CHECK(before.load() == 2);
    CHECK(seen == 4);
    f.add_done_callback([&](const future<int>&) { after.fetch_add(1); });
    CHECK(after.load() == 1);
    p.set_value(5);
    CHECK(before.load() == 2);
    CHECK(after.load() == 1);
}

TEST_CASE("a throwing done callback does not stop the others", "[future]") {
    promise<void> p;
    auto f = p.get_future();
    int ran = 0;
    f.add_done_callback([](const future<void>&) { throw std::runtime_error("callback failed"); });
    f.add_done_callback([&](const future<void>&) { ++ran; });
    p.set_value();
    CHECK(ran == 1);
    CHECK_NOTHROW(f.get());
}

TEST_CASE("a destroyed promise breaks its future instead of hanging it", "[future]") {
    future<int> f;
    {
        promise<int> p;
        f = p.get_future();
    }
    CHECK_THROWS_AS(f.get(), coexec::error);
}

TEST_CASE("futures compare and hash by their shared state", "[future]") {
    promise<int> p1, p2;
    auto a = p1.get_future(), b = p1.get_future(), c = p2.get_future();
    CHECK(a == b);
    CHECK_FALSE(a == c);
    std::unordered_set<future<int>> set{a, b, c};
    CHECK(set.size() == 2);
}

TEST_CASE("a move-only value can be moved out of the future", "[future]") {
    promise<std::unique_ptr<int>> p;
    auto f = p.get_future();
    p.set_value(std::make_unique<int>(8));
    std::unique_ptr<int> v = std::move(f).get();
    REQUIRE(v);
    CHECK(*v == 8);
}

TEST_CASE("values stored in futures are destroyed exactly once", "[future]") {
    using coexec_test::lifetime_counter;
    int before = lifetime_counter::alive.load();
    {
        promise<lifetime_counter> p;
        auto f = p.get_future();
        auto g = f;
        p.set_value(lifetime_counter(3));
        CHECK(f.get().value == 3);
    }
    CHECK(lifetime_counter::alive.load() == before);
}

coexec::task<int> leaf(int v) {
    co_return v;
}
coexec::task<int> chain(int depth) {
    if (depth == 0) co_return co_await leaf(1);
    co_return 1 + co_await chain(depth - 1);
}

TEST_CASE("tasks are lazy and chain by symmetric transfer without growing the stack", "[task]") {
    bool started = false;
    // The lambda object must outlive its coroutine (the frame refers to it).
    auto body = [&]() -> coexec::task<int> {
        started = true;
        co_return 3;
    };
    auto t = body();
    CHECK_FALSE(started);
    CHECK(coexec::sync_wait(std::move(t)) == 3);
    CHECK(started);
    // 100k nested awaits would overflow the stack without symmetric transfer.
    // Sanitizer instrumentation disables the tail call it relies on, so those
    // builds check the behaviour at a depth any stack holds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    constexpr int depth = 1'000;
#else
    constexpr int depth = 100'000;
#endif
    CHECK(coexec::sync_wait(chain(depth)) == depth + 1);
}

TEST_CASE("a task's exception reaches its awaiter", "[task]") {
    auto failing = []() -> coexec::task<void> {
        throw std::invalid_argument("bad");
        co_return;
    };
    CHECK_THROWS_AS(coexec::sync_wait(failing()), std::invalid_argument);
}

TEST_CASE("a task can return a reference, which co_await and sync_wait pass on", "[task]") {
    int x = 1;
    auto ref_to_x = [&]() -> coexec::task<int&> { co_return x; };
    int& r = coexec::sync_wait(ref_to_x());
    CHECK(&r == &x);
    auto outer = [&]() -> coexec::task<int> {
        int& y = co_await ref_to_x();
        y = 42;  // writes x
        co_return y + 1;
    };
    CHECK(coexec::sync_wait(outer()) == 43);
    CHECK(x == 42);
    const std::string s = "kept";
    auto cref = [&]() -> coexec::task<const std::string&> { co_return s; };
    CHECK(&coexec::sync_wait(cref()) == &s);
    // An exception still reaches the awaiter.
    auto fails = [&]() -> coexec::task<int&> {
        throw std::runtime_error("no referent");
        co_return x;
    };
    CHECK_THROWS_WITH(coexec::sync_wait(fails()), "no referent");
}

TEST_CASE("co_await on a future resumes when another thread completes it", "[future][task]") {
    promise<int> p;
    auto f = p.get_future();
    std::thread t([&] {
        std::this_thread::sleep_for(20ms);
        p.set_value(21);
    });
    auto main_id = std::this_thread::get_id();
    auto [v, resumed_on] =
        coexec::sync_wait([&]() -> coexec::task<std::pair<int, std::thread::id>> {
            int x = co_await f;
            co_return std::pair{x * 2, std::this_thread::get_id()};
        }());
    t.join();
    CHECK(v == 42);
    // sync_wait runs a loop on the calling thread: the coroutine comes back to it.
    CHECK(resumed_on == main_id);
}

TEST_CASE("every member of a default-constructed or moved-from future throws instead of crashing",
          "[future]") {
    future<int> empty;
    promise<int> p;
    future<int> source = p.get_future();
    future<int> moved_from = std::move(source);
    for (future<int>* f : {&empty, &source}) {
        CHECK_FALSE(f->valid());
        CHECK_THROWS_AS(f->get(), coexec::no_state);
        CHECK_THROWS_AS(std::move(*f).get(), coexec::no_state);
        CHECK_THROWS_AS(f->get_for(1ms), coexec::no_state);
        CHECK_THROWS_AS(f->wait(), coexec::no_state);
        CHECK_THROWS_AS(f->wait_for(1ms), coexec::no_state);
        CHECK_THROWS_AS(f->wait_until(std::chrono::steady_clock::now()), coexec::no_state);
        CHECK_THROWS_AS(f->exception(), coexec::no_state);
        CHECK_THROWS_AS(f->done(), coexec::no_state);
        CHECK_THROWS_AS(f->running(), coexec::no_state);
        CHECK_THROWS_AS(f->cancelled(), coexec::no_state);
        CHECK_THROWS_AS(f->has_value(), coexec::no_state);
        CHECK_THROWS_AS(f->has_exception(), coexec::no_state);
        CHECK_THROWS_AS(f->cancel(), coexec::no_state);
        CHECK_THROWS_AS(f->add_done_callback([](const future<int>&) {}), coexec::no_state);
        CHECK_THROWS_AS(coexec::sync_wait(*f), coexec::no_state);
        CHECK_THROWS_AS(coexec::sync_wait(std::move(*f)), coexec::no_state);
        CHECK_THROWS_AS(coexec::sync_wait(f->when_ready()), coexec::no_state);
    }
    CHECK_THROWS_WITH(empty.get(), Catch::Contains("future::get") &&
                                       Catch::Contains("no shared state") &&
                                       Catch::Contains("valid()"));
    p.set_value(1);
    CHECK(moved_from.get() == 1);
}

TEST_CASE("a moved-from promise throws no_state instead of crashing", "[future]") {
    promise<int> p;
    promise<int> q = std::move(p);
    CHECK_THROWS_AS(p.get_future(), coexec::no_state);
    CHECK_THROWS_AS(p.set_value(1), coexec::no_state);
    CHECK_THROWS_AS(p.set_exception(std::make_exception_ptr(std::runtime_error("x"))),
                    coexec::no_state);
    CHECK_THROWS_AS(p.set_running(), coexec::no_state);
    q.set_value(2);
    CHECK(q.get_future().get() == 2);
}
