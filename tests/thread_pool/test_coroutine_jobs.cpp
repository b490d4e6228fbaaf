// Submitted coroutines (task<U> jobs): the job drives its task itself (no
// driver frame) and a task's stop state is made only when its token is first
// asked for. These cases pin what must not change with that: cancellation
// reaching io started late, the frame ending before the future completes,
// the counters, and the lazily made stop state under races.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <system_error>
#include <thread>
#include <vector>

#include "coexec/detail/shared_state.hpp"
#include "coexec/errors.hpp"
#include "coexec/io.hpp"
#include "coexec/promise.hpp"
#include "coexec/task.hpp"
#include "coexec/thread_pool.hpp"
#include "helpers.hpp"

using namespace std::chrono_literals;
using coexec::task;
using coexec::thread_pool;
namespace io = coexec::io;

namespace {

/// A task state owned by the test (the executor side, without an executor).
struct test_state {
    coexec::detail::shared_state<int>* s = new coexec::detail::shared_state<int>();
    test_state() = default;
    test_state(const test_state&) = delete;
    test_state& operator=(const test_state&) = delete;
    ~test_state() { s->release(); }
    coexec::detail::shared_state<int>* operator->() const noexcept { return s; }
};

}  // namespace

TEST_CASE("a task without a stop token hands out a token that cannot stop",
          "[thread_pool][coroutine][stop]") {
    test_state s;
    s->request_stop();
    CHECK_FALSE(s->stop_token().stop_possible());
}

TEST_CASE("a stop requested before a task's token was made is seen by the token made later",
          "[thread_pool][coroutine][stop]") {
    test_state s;
    s->enable_stop();
    s->request_stop();
    std::stop_token t = s->stop_token();
    CHECK(t.stop_possible());
    CHECK(t.stop_requested());
}

TEST_CASE("a task's token made first is signalled by a later stop request, once made",
          "[thread_pool][coroutine][stop]") {
    test_state s;
    s->enable_stop();
    std::stop_token t = s->stop_token();
    int calls = 0;
    std::stop_callback cb(t, [&] { ++calls; });
    CHECK(s->stop_token() == t);  // the same stop state every time
    CHECK(calls == 0);
    s->set_value(1);  // completion keeps the stop flags
    CHECK(s->stop_token() == t);
    s->request_stop();
    CHECK(calls == 1);
    CHECK(s->value() == 1);
}

TEST_CASE("racing first requests for a task's token and a stop request agree on one stop state",
          "[thread_pool][coroutine][stop]") {
    for (int round = 0; round < 200; ++round) {
        test_state s;
        s->enable_stop();
        std::atomic<int> go{0};
        std::stop_token tokens[3];
        std::vector<std::thread> threads;
        for (auto& t : tokens) {
            threads.emplace_back([&go, &s, &t] {
                go.fetch_add(1);
                while (go.load() < 4)
                    std::this_thread::yield();
                t = s->stop_token();
            });
        }
        threads.emplace_back([&go, &s] {
            go.fetch_add(1);
            while (go.load() < 4)
                std::this_thread::yield();
            s->request_stop();
        });
        for (auto& t : threads)
            t.join();
        CHECK(tokens[0] == tokens[1]);
        CHECK(tokens[1] == tokens[2]);
        CHECK(tokens[0].stop_requested());
    }
}

TEST_CASE(
    "future::cancel of a coroutine job that never asked for its token cancels io it starts later",
    "[thread_pool][coroutine][stop][io]") {
    thread_pool pool{{.max_workers = 2}};
    coexec::promise<int> gate;
    std::atomic<bool> waiting{false};
    auto f = pool.submit([&]() -> task<int> {
        waiting = true;
        int v = co_await gate.get_future();  // suspended: no io yet, no token made
        co_await io::sleep_for(1h);          // asks for the token now: already signalled
        co_return v;
    });
    REQUIRE(coexec_test::eventually([&] { return waiting.load(); }));
    std::this_thread::sleep_for(10ms);
    CHECK_FALSE(f.cancel());  // running (suspended): only its token is signalled
    gate.set_value(1);
    int error = 0;
    try {
        f.get_for(30s);
    } catch (const std::system_error& e) {
        error = e.code().value();
    }
    CHECK(error == ECANCELED);
}

TEST_CASE("a coroutine job's frame is destroyed before its future completes",
          "[thread_pool][coroutine]") {
    thread_pool pool{{.max_workers = 2}};
    auto held = std::make_shared<int>(7);
    for (int i = 0; i < 100; ++i) {
        // The frame holds the only other owner (a parameter): gone once get() returns.
        auto f = pool.submit([](std::shared_ptr<int> p) -> task<int> { co_return *p; }, held);
        CHECK(f.get() == 7);
        CHECK(held.use_count() == 1);
    }
}

TEST_CASE("a coroutine job that returns an empty task fails with no_state",
          "[thread_pool][coroutine]") {
    thread_pool pool{{.max_workers = 1}};
    auto f = pool.submit([]() -> task<int> { return task<int>(); });
    CHECK_THROWS_AS(f.get(), coexec::no_state);
    CHECK(pool.stats().failed == 1);
}

TEST_CASE("stats count coroutine jobs that return, throw, or throw before their coroutine starts",
          "[thread_pool][coroutine]") {
    thread_pool pool{{.max_workers = 2}};
    coexec::promise<int> gate;
    auto ok = pool.submit([&]() -> task<int> { co_return co_await gate.get_future(); });
    auto thrown = pool.submit([]() -> task<int> {
        co_await std::suspend_never{};
        throw std::runtime_error("in the coroutine");
    });
    auto before = pool.submit([]() -> task<int> { throw std::runtime_error("before"); });
    CHECK_THROWS_AS(thrown.get(), std::runtime_error);
    CHECK_THROWS_AS(before.get(), std::runtime_error);
    CHECK(coexec_test::eventually([&] { return pool.stats().running == 1; }));
    gate.set_value(3);
    CHECK(ok.get() == 3);
    auto s = pool.stats();
    CHECK(s.submitted == 3);
    CHECK(s.completed == 1);
    CHECK(s.failed == 2);
    CHECK(s.running == 0);
    CHECK(s.queued == 0);
}

TEST_CASE("shutdown with cancel_futures stops a suspended coroutine job that takes a token",
          "[thread_pool][coroutine][stop]") {
    thread_pool pool{{.max_workers = 2}};
    coexec::promise<int> gate;
    std::atomic<bool> waiting{false}, stopped{false};
    auto f = pool.submit([&](std::stop_token st) -> task<bool> {
        std::stop_callback on_stop(st, [&] { stopped = true; });
        waiting = true;
        co_await gate.get_future();
        co_return st.stop_requested();
    });
    REQUIRE(coexec_test::eventually([&] { return waiting.load(); }));
    std::thread resumer([&] {
        // Lets the job end once stopped, so that shutdown can return.
        gate.set_value(coexec_test::eventually([&] { return stopped.load(); }) ? 1 : 0);
    });
    pool.shutdown(true, true);
    resumer.join();
    CHECK(f.get_for(30s));
}
