// coexec::io timers on thread_pool workers: sleep_for / sleep_until, their
// order and where they resume, many at once, and cancellation through stop
// tokens and future::cancel. Runs on both backends (see tests/CMakeLists.txt).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "coexec/detail/job.hpp"
#include "coexec/errors.hpp"
#include "coexec/io.hpp"
#include "coexec/task.hpp"
#include "coexec/thread_pool.hpp"
#include "helpers.hpp"
#include "io_helpers.hpp"

using namespace std::chrono_literals;
using coexec::task;
using coexec::thread_pool;
using namespace coexec_test;
namespace io = coexec::io;

TEST_CASE("sleeps finish in deadline order, not start order", "[io][timer]") {
    thread_pool pool{{.max_workers = 2}};
    std::mutex m;
    std::vector<int> order;
    // One start for all and deadlines 300 ms apart: neither when a worker
    // picks a job up nor a slow resume on a loaded machine reorders them.
    const auto t0 = std::chrono::steady_clock::now();
    auto sleeper = [&](int id, std::chrono::milliseconds d) -> task<void> {
        co_await io::sleep_until(t0 + d);
        std::lock_guard lock(m);
        order.push_back(id);
    };
    auto a = pool.submit(sleeper, 1, 700ms);
    auto b = pool.submit(sleeper, 2, 100ms);
    auto c = pool.submit(sleeper, 3, 400ms);
    a.get();
    b.get();
    c.get();
    CHECK(order == std::vector<int>{2, 3, 1});
}

TEST_CASE("sleep_for lasts at least its duration and resumes on a worker of its pool",
          "[io][timer]") {
    std::mutex m;
    std::set<std::thread::id> workers;
    thread_pool pool{{.max_workers = 4, .initializer = [&] {
                          std::lock_guard lock(m);
                          workers.insert(std::this_thread::get_id());
                      }}};
    struct outcome {
        std::thread::id after;
        std::chrono::nanoseconds slept;
    };
    std::vector<coexec::future<outcome>> fs;
    for (int i = 0; i < 16; ++i) {
        fs.push_back(pool.submit([]() -> task<outcome> {
            outcome o;
            auto t0 = std::chrono::steady_clock::now();
            co_await io::sleep_for(20ms);
            o.slept = std::chrono::steady_clock::now() - t0;
            o.after = std::this_thread::get_id();
            co_return o;
        }));
    }
    for (auto& f : fs) {
        outcome o = f.get();
        std::lock_guard lock(m);
        CHECK(workers.count(o.after) == 1);
        CHECK(o.slept >= 20ms);
    }
}

TEST_CASE("sleep_until a past time point resumes at once", "[io][timer]") {
    thread_pool pool{{.max_workers = 1}};
    auto f = pool.submit([]() -> task<int> {
        co_await io::sleep_until(std::chrono::steady_clock::now() - 1s);
        co_await io::sleep_for(0ms);
        co_await io::sleep_until(std::chrono::system_clock::now() + 5ms);
        co_return 7;
    });
    CHECK(f.get_for(5s) == 7);
}

TEST_CASE("a sleep too long for the clock lasts until cancelled", "[io][timer][cancel]") {
    // seconds::max() from now, or a time point past what steady_clock holds,
    // cannot be added without overflow: it saturates to a sleep for ever
    // (it used to wrap into the past and return at once).
    thread_pool pool{{.max_workers = 2}};
    using seconds_point = std::chrono::time_point<std::chrono::steady_clock, std::chrono::seconds>;
    std::vector<coexec::future<int>> sleeps;
    sleeps.push_back(pool.submit([]() -> task<int> {
        co_await io::sleep_for(std::chrono::seconds::max());
        co_return 1;
    }));
    sleeps.push_back(pool.submit([]() -> task<int> {
        co_await io::sleep_for(std::chrono::duration<double>(1e300));
        co_return 2;
    }));
    sleeps.push_back(pool.submit([]() -> task<int> {
        co_await io::sleep_until(std::chrono::system_clock::time_point::max());
        co_return 3;
    }));
    sleeps.push_back(pool.submit([]() -> task<int> {
        // float seconds just under the limit: float's own rounding once overflowed
        co_await io::sleep_for(std::chrono::duration<float>(9223371776.0f));
        co_return 6;
    }));
    sleeps.push_back(pool.submit([]() -> task<int> {
        co_await io::sleep_until(seconds_point::max());
        co_return 4;
    }));
    auto past = pool.submit([]() -> task<int> {
        co_await io::sleep_for(-std::chrono::seconds::max());
        co_await io::sleep_until(seconds_point::min());
        // Not a time: due at once rather than a hang.
        co_await io::sleep_for(
            std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN()));
        // A time point of another clock and a coarser duration is not early.
        const auto target = std::chrono::time_point_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() + 20ms);
        co_await io::sleep_until(target);
        if (std::chrono::steady_clock::now() < target) co_return -1;
        co_return 5;
    });
    CHECK(past.get_for(10s) == 5);
    REQUIRE(eventually([&] {
        return std::all_of(sleeps.begin(), sleeps.end(), [](auto& f) { return f.running(); });
    }));
    std::this_thread::sleep_for(100ms);  // they are asleep, not done
    for (auto& f : sleeps) {
        CHECK_FALSE(f.done());
        f.cancel();
        CHECK(error_of([&] { f.get_for(10s); }) == ECANCELED);
    }
}

TEST_CASE("ten thousand coroutines sleep at once without a thread each", "[io][timer]") {
    thread_pool pool{{.max_workers = 2}};
    constexpr int n = 10'000;
    std::atomic<int> woke{0};
    std::vector<coexec::future<void>> fs;
    fs.reserve(n);
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
        fs.push_back(pool.submit([&woke]() -> task<void> {
            co_await io::sleep_for(200ms);
            woke.fetch_add(1, std::memory_order_relaxed);
        }));
    }
    for (auto& f : fs)
        f.get();
    auto elapsed = std::chrono::steady_clock::now() - t0;
    CHECK(woke.load() == n);
    CHECK(elapsed >= 200ms);
    CHECK(elapsed < 20s);  // two workers: they all slept concurrently
    CHECK(pool.stats().completed == static_cast<std::uint64_t>(n));
}

TEST_CASE("a sleep ends with operation_canceled when its stop token is signalled",
          "[io][timer][cancel]") {
    thread_pool pool{{.max_workers = 2}};
    std::stop_source source;
    std::atomic<bool> started{false};
    auto f = pool.submit([&]() -> task<void> {
        started = true;
        co_await io::sleep_for(1h, source.get_token());
    });
    REQUIRE(coexec_test::eventually([&] { return started.load(); }));
    std::this_thread::sleep_for(20ms);
    auto t0 = std::chrono::steady_clock::now();
    source.request_stop();
    CHECK(error_of([&] { f.get(); }) == ECANCELED);
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);
    try {
        f.get();
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::operation_canceled);
        CHECK(std::string(e.what()).find("io::sleep_for") != std::string::npos);
    }
}

TEST_CASE("an already signalled token cancels an io operation before it starts",
          "[io][timer][cancel]") {
    thread_pool pool{{.max_workers = 1}};
    std::stop_source source;
    source.request_stop();
    auto f = pool.submit([&]() -> task<void> { co_await io::sleep_for(1h, source.get_token()); });
    CHECK(error_of([&] { f.get_for(10s); }) == ECANCELED);
}

TEST_CASE("future::cancel of a running coroutine job cancels the sleep it awaits",
          "[io][timer][cancel]") {
    thread_pool pool{{.max_workers = 2}};
    std::atomic<bool> started{false};
    // No explicit token: the job's own token (signalled by cancel()) is used,
    // also after the coroutine hopped with schedule().
    auto f = pool.submit([&]() -> task<int> {
        co_await pool.schedule();
        started = true;
        co_await io::sleep_for(1h);
        co_return 1;
    });
    REQUIRE(coexec_test::eventually([&] { return started.load(); }));
    std::this_thread::sleep_for(20ms);
    CHECK_FALSE(f.cancel());  // running: not cancelled, but its token is signalled
    CHECK(error_of([&] { f.get_for(10s); }) == ECANCELED);
}

TEST_CASE("future::cancel reaches io started after the job awaited another pool's future",
          "[io][timer][cancel]") {
    thread_pool pool{{.max_workers = 2}}, other{{.max_workers = 1}};
    std::atomic<bool> started{false};
    // The job hops to `other` and back through a future; its token must still
    // reach the sleep it starts afterwards.
    auto f = pool.submit([&]() -> task<int> {
        int v = co_await other.submit([] { return 1; });
        started = true;
        co_await io::sleep_for(1h);
        co_return v;
    });
    REQUIRE(coexec_test::eventually([&] { return started.load(); }));
    std::this_thread::sleep_for(20ms);
    CHECK_FALSE(f.cancel());
    CHECK(error_of([&] { f.get_for(10s); }) == ECANCELED);
}

TEST_CASE("a job taking a stop_token hands the same token to the io it awaits",
          "[io][timer][cancel]") {
    thread_pool pool{{.max_workers = 2}};
    std::atomic<bool> started{false};
    auto f = pool.submit([&](std::stop_token st) -> task<bool> {
        started = true;
        try {
            co_await io::sleep_for(1h);
        } catch (const std::system_error& e) {
            co_return st.stop_requested() && e.code() == std::errc::operation_canceled;
        }
        co_return false;
    });
    REQUIRE(coexec_test::eventually([&] { return started.load(); }));
    std::this_thread::sleep_for(20ms);
    f.cancel();
    CHECK(f.get_for(10s));
}

TEST_CASE("thousands of sleeps cancelled at once all end with operation_canceled",
          "[io][timer][cancel]") {
    thread_pool pool{{.max_workers = 2}};
    constexpr int n = 5'000;
    std::stop_source source;
    std::atomic<int> waiting{0};
    std::vector<coexec::future<void>> fs;
    for (int i = 0; i < n; ++i) {
        fs.push_back(pool.submit([&]() -> task<void> {
            waiting.fetch_add(1);
            co_await io::sleep_for(1h, source.get_token());
        }));
    }
    REQUIRE(coexec_test::eventually([&] { return waiting.load() == n; }));
    std::this_thread::sleep_for(20ms);
    source.request_stop();
    int cancelled = 0;
    for (auto& f : fs)
        cancelled += error_of([&] { f.get_for(30s); }) == ECANCELED ? 1 : 0;
    CHECK(cancelled == n);
}

TEST_CASE("cancels racing sleeps that are just finishing end every future, once",
          "[io][timer][cancel]") {
    // Jobs sleeping a few microseconds at a time, cancelled at random moments
    // from another thread: a cancel may meet a sleep being started, in flight,
    // completing or already resumed. Each future ends (a value if the job won,
    // operation_canceled if the cancel did) and nothing is touched after it
    // is freed (the sanitizer presets run this).
    thread_pool pool{{.max_workers = 2}};
    constexpr int jobs = 2'000;
    std::vector<coexec::future<int>> fs;
    fs.reserve(jobs);
    for (int i = 0; i < jobs; ++i) {
        fs.push_back(pool.submit([i]() -> task<int> {
            for (int k = 0; k < 3 + i % 5; ++k)
                co_await io::sleep_for(std::chrono::microseconds(i % 7 * 10));
            co_return i;
        }));
    }
    std::thread canceller([&] {
        for (int i = 0; i < jobs; i += 2)
            fs[static_cast<std::size_t>(i)].cancel();
    });
    canceller.join();
    int values = 0, cancelled = 0;
    for (int i = 0; i < jobs; ++i) {
        auto& f = fs[static_cast<std::size_t>(i)];
        int err = error_of([&] {
            if (f.get_for(30s) == i) ++values;
        });
        if (err == ECANCELED || err == -1) ++cancelled;
    }
    CHECK(values + cancelled == jobs);
    CHECK(values >= jobs / 2);  // the odd ones were never cancelled
}

TEST_CASE("a token outlives the sleeps that completed with it, and stops racing them end each",
          "[io][timer][cancel]") {
    // An explicit token is moved into a stop callback while its op is in
    // flight and an empty token is put back when the op completes: the
    // callback must be gone before the frame resumes, so a stop requested
    // later touches no op (the sanitizer presets run this), and each source
    // stopped while its sleeps run ends exactly one of them cancelled.
    thread_pool pool{{.max_workers = 2}};
    std::stop_source kept;
    auto quiet = pool.submit([&]() -> task<int> {
        int n = 0;
        for (; n < 200; ++n)
            co_await io::sleep_for(std::chrono::microseconds(n % 3), kept.get_token());
        co_return n;
    });
    CHECK(quiet.get_for(30s) == 200);
    kept.request_stop();  // no callback of those 200 sleeps is left to run
    auto after = pool.submit([&]() -> task<void> { co_await io::sleep_for(1h, kept.get_token()); });
    CHECK(error_of([&] { after.get_for(10s); }) == ECANCELED);

    constexpr int jobs = 500;
    std::vector<std::stop_source> sources(jobs);
    std::vector<coexec::future<int>> fs;
    fs.reserve(jobs);
    for (int i = 0; i < jobs; ++i) {
        fs.push_back(pool.submit([&sources, i]() -> task<int> {
            int slept = 0;
            try {
                for (; slept < 20; ++slept)
                    co_await io::sleep_for(std::chrono::microseconds(slept % 4 * 5),
                                           sources[static_cast<std::size_t>(i)].get_token());
            } catch (const std::system_error& e) {
                if (e.code() != std::errc::operation_canceled) throw;
                co_return -1;
            }
            co_return slept;
        }));
    }
    std::thread stopper([&] {
        for (int i = 0; i < jobs; i += 2)
            sources[static_cast<std::size_t>(i)].request_stop();
    });
    stopper.join();
    int ended = 0, odd_finished = 0;
    for (int i = 0; i < jobs; ++i) {
        const int r = fs[static_cast<std::size_t>(i)].get_for(30s);
        if (r == -1 || r == 20) ++ended;
        if (i % 2 == 1 && r == 20) ++odd_finished;
    }
    CHECK(ended == jobs);
    CHECK(odd_finished == jobs / 2);  // never stopped: every sleep ran
}

TEST_CASE("a coroutine started inside a job may go on sleeping after the job ended",
          "[io][timer]") {
    // A fire-and-forget coroutine (the user's own, not a job) started by a
    // job inherits the job while it runs; its sleeps outlive the job's end.
    // Each pending op holds the job, so none touches it freed (ASan checks).
    thread_pool pool{{.max_workers = 2}};
    std::atomic<int> woke{0};
    {
        auto f = pool.submit([&]() -> task<int> {
            [](std::atomic<int>& w) -> coexec::detail::detached_coro {
                co_await io::sleep_for(2s);   // well past the checks below
                co_await io::sleep_for(1ms);  // started after the job ended
                w.fetch_add(1);
            }(woke);
            co_return 1;
        });
        CHECK(f.get() == 1);
    }  // the future's reference goes: only the sleep holds the job now
    CHECK(woke.load() == 0);
    REQUIRE(coexec_test::eventually([&] { return woke.load() == 1; }));
}

TEST_CASE("an io awaitable awaited a second time throws instead of reusing its outcome",
          "[io][timer]") {
    thread_pool pool{{.max_workers = 1}};
    auto f = pool.submit([]() -> task<std::string> {
        auto nap = io::sleep_for(1ms);
        co_await nap;
        try {
            co_await nap;
        } catch (const coexec::error& e) {
            co_return e.what();
        }
        co_return "";
    });
    CHECK_THAT(f.get(), Catch::Contains("io::sleep_for") && Catch::Contains("awaited already"));
}
