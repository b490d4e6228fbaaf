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

namespace {

/// A stop listener that counts its calls (what an io op hangs on its job).
struct counting_listener : coexec::detail::stop_listener {
    std::atomic<int> calls{0};
    counting_listener() {
        on_stop = [](coexec::detail::stop_listener* l) noexcept {
            static_cast<counting_listener*>(l)->calls.fetch_add(1);
        };
    }
};

}  // namespace

TEST_CASE("a task's stop listeners are each called once by a stop, unless removed first",
          "[thread_pool][coroutine][stop]") {
    test_state s;
    counting_listener a, b, c, late;
    CHECK_FALSE(s->add_stop_listener(a));  // no stop enabled: nothing to listen to
    s->enable_stop();
    REQUIRE(s->add_stop_listener(a));
    REQUIRE(s->add_stop_listener(b));
    REQUIRE(s->add_stop_listener(c));
    s->remove_stop_listener(b);
    s->remove_stop_listener(b);  // twice: harmless
    CHECK(a.calls == 0);
    s->request_stop();
    s->request_stop();  // a second request calls nobody again
    CHECK(a.calls == 1);
    CHECK(b.calls == 0);
    CHECK(c.calls == 1);
    s->remove_stop_listener(a);           // already taken by the stop: harmless
    REQUIRE(s->add_stop_listener(late));  // after the stop: called at once, here
    CHECK(late.calls == 1);
    s->remove_stop_listener(late);
    // The token, made after the listeners, is signalled as well.
    CHECK(s->stop_token().stop_requested());
}

TEST_CASE(
    "a stop racing listeners being added and removed calls each at most once, never after "
    "its removal",
    "[thread_pool][coroutine][stop]") {
    for (int round = 0; round < 300; ++round) {
        test_state s;
        s->enable_stop();
        constexpr int per_thread = 40;
        std::atomic<int> go{0};
        std::atomic<bool> bad{false};
        std::vector<std::thread> threads;
        for (int t = 0; t < 2; ++t) {
            threads.emplace_back([&] {
                go.fetch_add(1);
                while (go.load() < 3)
                    std::this_thread::yield();
                auto ls = std::make_unique<counting_listener[]>(per_thread);
                for (int i = 0; i < per_thread; ++i) {
                    if (!s->add_stop_listener(ls[i])) bad = true;  // (no Catch macros here)
                    if (i % 2 == 0) {
                        s->remove_stop_listener(ls[i]);
                        int seen = ls[i].calls.load();
                        std::this_thread::yield();
                        if (ls[i].calls.load() != seen) bad = true;  // called after removal
                    }
                }
                for (int i = 0; i < per_thread; ++i) {
                    s->remove_stop_listener(ls[i]);
                    if (ls[i].calls.load() > 1) bad = true;
                }
            });
        }
        threads.emplace_back([&] {
            go.fetch_add(1);
            while (go.load() < 3)
                std::this_thread::yield();
            s->request_stop();
        });
        for (auto& t : threads)
            t.join();
        CHECK_FALSE(bad.load());
        counting_listener after;
        REQUIRE(s->add_stop_listener(after));
        CHECK(after.calls == 1);
        s->remove_stop_listener(after);
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

// A coroutine job is counted as in flight only once its first run suspends
// (detail/job.hpp), and its end may be counted before that start, by the
// worker that resumed it. Whatever the order, shutdown(wait) returns only
// after every job has ended, and does return.
TEST_CASE("shutdown waits for coroutine jobs that end in their first run, after a hop, or later",
          "[thread_pool][coroutine][concurrency]") {
    for (int round = 0; round < 8; ++round) {
        thread_pool pool{{.max_workers = 2}};
        constexpr int per_kind = 1500;
        std::vector<coexec::promise<int>> gates(per_kind);
        std::vector<coexec::future<int>> futures;
        futures.reserve(4 * per_kind);
        for (int i = 0; i < per_kind; ++i) {
            futures.push_back(pool.submit([]() -> task<int> { co_return 1; }));
            // Posted to the starting worker's queue: the other one may steal
            // it and end the job before its starter has counted it.
            futures.push_back(pool.submit([&pool]() -> task<int> {
                co_await pool.schedule();
                co_return 1;
            }));
            futures.push_back(pool.submit([]() -> task<int> {
                co_await io::sleep_for(1ms);
                co_return 1;
            }));
            futures.push_back(pool.submit(
                [g = gates[static_cast<std::size_t>(i)].get_future()]() mutable -> task<int> {
                    co_return co_await std::move(g);
                }));
        }
        std::thread opener([&] {
            std::this_thread::sleep_for(2ms);  // most of them wait by then, shutdown too
            for (auto& g : gates)
                g.set_value(1);
        });
        pool.shutdown(true);
        int done = 0, sum = 0;
        for (auto& f : futures)
            done += f.done() ? 1 : 0;
        opener.join();
        for (auto& f : futures)
            sum += f.get();
        REQUIRE(done == 4 * per_kind);
        REQUIRE(sum == 4 * per_kind);
        CHECK(pool.stats().completed == 4u * per_kind);
    }
}

namespace {

/// Hands the coroutine to `inner` (which queues it), then keeps the
/// starting thread inside the first run for a while: the window in which
/// another worker may resume the job before its starter has counted it.
template <class Inner>
struct stall_after_suspend {
    Inner inner;
    std::chrono::milliseconds stall;
    bool await_ready() { return inner.await_ready(); }
    void await_suspend(std::coroutine_handle<> h) {
        const auto how_long = stall;  // the frame, this awaiter with it, may be gone next
        inner.await_suspend(h);
        std::this_thread::sleep_for(how_long);
    }
    void await_resume() { inner.await_resume(); }
};

}  // namespace

TEST_CASE("a worker does not exit, closing its ring, while another is in a job's first run",
          "[thread_pool][coroutine][concurrency]") {
    // The job hops (its resumption queued on its starter's queue), the other
    // worker steals it and starts a timer on its own ring, and runs out of
    // work with shutdown requested while the starter is still stalled in the
    // first run: the job is in flight, not yet counted. The timer must run
    // to its end, not be cancelled by a worker leaving.
    int stolen = 0;
    for (int attempt = 0; attempt < 6 && stolen < 2; ++attempt) {
        thread_pool pool{{.max_workers = 2}};
        std::atomic<bool> other_thread{false};
        auto f = pool.submit([&]() -> task<int> {
            const auto starter = std::this_thread::get_id();
            co_await stall_after_suspend<decltype(pool.schedule())>{pool.schedule(), 60ms};
            other_thread = std::this_thread::get_id() != starter;
            co_await io::sleep_for(5ms);
            co_return 7;
        });
        pool.shutdown(true);
        CHECK(f.get() == 7);
        stolen += other_thread ? 1 : 0;
    }
    CHECK(stolen > 0);  // else the window was never reached
}

namespace {

/// Suspends and hands its coroutine to the test, which resumes it on a
/// thread of its own: the job then ends outside the pool.
struct parked {
    std::atomic<std::coroutine_handle<>>* slot;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) noexcept { slot->store(h); }
    void await_resume() const noexcept {}
};

}  // namespace

TEST_CASE("shutdown(wait) returns once the last coroutine jobs end on a thread outside the pool",
          "[thread_pool][coroutine][shutdown][concurrency]") {
    // Workers count the coroutine jobs they see start and end; a job that
    // ends on another thread is counted by that thread, which must wake the
    // workers, asleep by then with shutdown requested: else shutdown(wait)
    // would never return.
    for (int round = 0; round < 20; ++round) {
        thread_pool pool{{.max_workers = 2}};
        constexpr int jobs = 64;
        std::vector<std::atomic<std::coroutine_handle<>>> slots(jobs);
        std::vector<coexec::future<int>> futures;
        for (int i = 0; i < jobs; ++i) {
            futures.push_back(
                pool.submit([slot = &slots[static_cast<std::size_t>(i)]]() -> task<int> {
                    co_await parked{slot};
                    co_return 1;
                }));
        }
        for (auto& s : slots) {
            while (!s.load())
                std::this_thread::yield();
        }
        std::atomic<bool> returned{false};
        std::thread stopper([&] {
            pool.shutdown(true);
            returned = true;
        });
        std::this_thread::sleep_for(round % 2 == 0 ? 0ms : 5ms);  // workers asleep, or not yet
        CHECK_FALSE(returned.load());
        for (auto& s : slots)
            s.load().resume();  // each job ends here, on this thread
        stopper.join();
        int sum = 0;
        for (auto& f : futures)
            sum += f.get();
        REQUIRE(sum == jobs);
    }
}
