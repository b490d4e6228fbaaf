// The Asio interop, compiled twice from this one file (tests/CMakeLists.txt):
// against standalone Asio (test_asio: interop::async_get, interop::asio_executor)
// and against Boost.Asio (test_boost_asio, COEXEC_TEST_BOOST_ASIO:
// coexec::boost_net::async_get, coexec::boost_net::asio_executor). `net` is
// the Asio library under test, `interop` the coexec namespace that goes with it.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "coexec/promise.hpp"
#include "coexec/thread_pool.hpp"
#include "helpers.hpp"

#if defined(COEXEC_TEST_BOOST_ASIO)
#include <boost/asio.hpp>
#include <boost/asio/deferred.hpp>

#include "coexec/boost_asio.hpp"
namespace net = boost::asio;
namespace interop = coexec::boost_asio;
#define COEXEC_TEST_ASIO_TAG "[boost_asio]"
#else
#include <asio.hpp>
#include <asio/experimental/deferred.hpp>

#include "coexec/asio.hpp"
namespace net = asio;
namespace interop = coexec;
#define COEXEC_TEST_ASIO_TAG "[asio]"
#endif

namespace {
// Asio 1.22 still has deferred under experimental; Boost 1.81 (Asio 1.25) does not.
#if defined(COEXEC_TEST_BOOST_ASIO)
constexpr auto& deferred = net::deferred;
#else
constexpr auto& deferred = net::experimental::deferred;
#endif
}  // namespace

using namespace std::chrono_literals;

TEST_CASE("async_get resumes an awaitable on its own io_context thread", COEXEC_TEST_ASIO_TAG) {
    net::io_context io;
    coexec::thread_pool pool{{.max_workers = 2}};
    std::thread::id resumed_on, pool_thread;
    int value = 0;
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
            auto f = pool.submit([&] {
                pool_thread = std::this_thread::get_id();
                std::this_thread::sleep_for(10ms);
                return 21;
            });
            value = 2 * co_await interop::async_get(f, net::use_awaitable);
            resumed_on = std::this_thread::get_id();
        },
        net::detached);
    io.run();  // must not return before the pool has computed (work is counted)
    CHECK(value == 42);
    CHECK(resumed_on == std::this_thread::get_id());
    CHECK(pool_thread != resumed_on);
}

TEST_CASE("async_get rethrows the task's exception inside the awaitable", COEXEC_TEST_ASIO_TAG) {
    net::io_context io;
    coexec::thread_pool pool{{.max_workers = 1}};
    bool caught = false;
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
            try {
                co_await interop::async_get(
                    pool.submit([]() -> int { throw std::out_of_range("x"); }), net::use_awaitable);
            } catch (const std::out_of_range&) {
                caught = true;
            }
        },
        net::detached);
    io.run();
    CHECK(caught);
}

TEST_CASE("async_get hands a move-only result to the awaitable", COEXEC_TEST_ASIO_TAG) {
    net::io_context io;
    coexec::thread_pool pool{{.max_workers = 1}};
    int got = 0;
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
            std::unique_ptr<int> p = co_await interop::async_get(
                pool.submit([] { return std::make_unique<int>(5); }), net::use_awaitable);
            got = *p;
        },
        net::detached);
    io.run();
    CHECK(got == 5);
}

TEST_CASE("async_get works with use_future, deferred and plain callbacks", COEXEC_TEST_ASIO_TAG) {
    net::io_context io;
    auto guard = net::make_work_guard(io);
    std::thread runner([&] { io.run(); });
    coexec::thread_pool pool{{.max_workers = 1}};

    std::future<int> sf = interop::async_get(pool.submit([] { return 5; }), net::use_future);
    CHECK(sf.get() == 5);

    std::promise<int> via_callback;
    interop::async_get(pool.submit([] { return 6; }),
                       net::bind_executor(io, [&](std::exception_ptr e, int v) {
                           if (e) {
                               via_callback.set_exception(e);
                           } else {
                               via_callback.set_value(v);
                           }
                       }));
    CHECK(via_callback.get_future().get() == 6);

    auto op = interop::async_get(pool.submit([] {}), deferred);
    std::promise<bool> deferred_done;
    std::move(op)([&](std::exception_ptr e) { deferred_done.set_value(e == nullptr); });
    CHECK(deferred_done.get_future().get());

    guard.reset();
    runner.join();
}

TEST_CASE("async_get completes through a strand", COEXEC_TEST_ASIO_TAG) {
    net::io_context io;
    auto strand = net::make_strand(io);
    coexec::thread_pool pool{{.max_workers = 2}};
    std::atomic<int> in_strand{0};
    for (int i = 0; i < 20; ++i) {
        interop::async_get(pool.submit([i] { return i; }),
                           net::bind_executor(strand, [&, strand](std::exception_ptr, int) {
                               if (strand.running_in_this_thread()) in_strand.fetch_add(1);
                           }));
    }
    std::thread second([&] { io.run(); });
    io.run();
    second.join();
    CHECK(in_strand.load() == 20);
}

TEST_CASE("cancelling the Asio operation cancels the queued future", COEXEC_TEST_ASIO_TAG) {
    net::io_context io;
    coexec::thread_pool pool{{.max_workers = 1}};
    coexec_test::gate g;
    auto blocker = pool.submit([&] { g.wait(); });
    auto queued = pool.submit([] { return 1; });
    net::cancellation_signal signal;
    std::exception_ptr error;
    interop::async_get(queued, net::bind_cancellation_slot(
                                   signal.slot(), [&](std::exception_ptr e, int) { error = e; }));
    signal.emit(net::cancellation_type::terminal);
    g.open();
    io.run();
    CHECK(queued.cancelled());
    REQUIRE(error);
    CHECK_THROWS_AS(std::rethrow_exception(error), coexec::cancelled_error);
    blocker.get();
}

TEST_CASE("asio_executor runs submitted work inside io_context::run", COEXEC_TEST_ASIO_TAG) {
    net::io_context io;
    interop::asio_executor ex{io.get_executor()};
    coexec::thread_pool pool{{.max_workers = 1}};
    auto plain = ex.submit([](int x) { return std::pair{x + 1, std::this_thread::get_id()}; }, 1);
    auto coro = ex.submit([&]() -> coexec::task<bool> {
        auto before = std::this_thread::get_id();
        int v = co_await pool.submit([] { return 3; });
        co_return v == 3 &&
            std::this_thread::get_id() == before;  // resumed on the io_context thread
    });
    CHECK_FALSE(plain.done());
    std::thread runner([&] { io.run(); });
    CHECK(plain.get().first == 2);
    CHECK(plain.get().second == runner.get_id());
    CHECK(coro.get());
    ex.shutdown();
    runner.join();
    CHECK(ex.stats().completed == 2);
    CHECK_THROWS_AS(ex.submit([] {}), coexec::executor_shutdown);
}

TEST_CASE("asio_executor's stats count a value, a throw and a task cancelled before it started",
          COEXEC_TEST_ASIO_TAG "[stats]") {
    net::io_context io;
    interop::asio_executor ex{io.get_executor()};
    coexec_test::job_counts inside{};
    auto value = ex.submit([&] {
        inside = coexec_test::job_counts_of(ex.stats());
        return 1;
    });
    auto thrown = ex.submit([]() -> int { throw std::runtime_error("x"); });
    auto cancelled = ex.submit([] { return 3; });
    CHECK(coexec_test::job_counts_of(ex.stats()) == coexec_test::job_counts{3, 0, 0, 0, 3, 0});
    REQUIRE(cancelled.cancel());
    io.run();  // nothing was running: io_context::run() takes every job
    CHECK(value.get() == 1);
    CHECK(inside == coexec_test::job_counts{3, 0, 0, 0, 2, 1});  // running, not queued
    CHECK(thrown.has_exception());
    CHECK(coexec_test::job_counts_of(ex.stats()) == coexec_test::after_value_throw_cancelled);
}

TEST_CASE("asio_executor signals a running task's stop token on shutdown with cancel_futures",
          COEXEC_TEST_ASIO_TAG "[cancel]") {
    net::io_context io;
    interop::asio_executor ex{io.get_executor()};
    std::atomic<bool> started{false};
    auto f = ex.submit([&](std::stop_token token) {
        started = true;
        auto give_up = std::chrono::steady_clock::now() + 10s;
        while (!token.stop_requested() && std::chrono::steady_clock::now() < give_up)
            std::this_thread::sleep_for(1ms);
        return token.stop_requested();
    });
    std::thread runner([&] { io.run(); });
    REQUIRE(coexec_test::eventually([&] { return started.load(); }));
    ex.shutdown(false, true);
    CHECK(f.get());
    runner.join();
}

TEST_CASE("asio_executor's submit passes move-only arguments as rvalues",
          COEXEC_TEST_ASIO_TAG "[submit]") {
    net::io_context io;
    interop::asio_executor ex{io.get_executor()};
    auto f = ex.submit([](std::unique_ptr<int> p, std::string s) { return s + std::to_string(*p); },
                       std::make_unique<int>(3), std::string("z"));
    io.run();
    CHECK(f.get() == "z3");
}

TEST_CASE("asio_executor maps a coroutine function, its elements resumed on the io_context",
          COEXEC_TEST_ASIO_TAG "[map]") {
    // Each element awaits a thread_pool future (it suspends), then reports
    // the thread it resumed on: the io_context's, as any coroutine job there.
    net::io_context io;
    auto work = net::make_work_guard(io);  // chunks are submitted as results are pulled
    interop::asio_executor ex{io.get_executor()};
    coexec::thread_pool pool{{.max_workers = 1}};
    auto results = ex.map(
        [&pool](int x) -> coexec::task<std::pair<int, std::thread::id>> {
            const int doubled = co_await pool.submit([x] { return 2 * x; });
            co_return std::pair{doubled, std::this_thread::get_id()};
        },
        std::vector<int>{1, 2, 3, 4, 5}, {.chunksize = 2});
    std::thread runner([&] { io.run(); });
    const auto runner_id = runner.get_id();
    auto out = results.to_vector();
    work.reset();
    ex.shutdown();
    runner.join();
    REQUIRE(out.size() == 5);
    for (std::size_t i = 0; i < out.size(); ++i) {
        CHECK(out[i].first == 2 * static_cast<int>(i + 1));
        CHECK(out[i].second == runner_id);
    }
}

TEST_CASE("a coroutine that awaits work on its own local asio_executor returns instead of hanging",
          COEXEC_TEST_ASIO_TAG) {
    // The job resumes the coroutine inline (async_get dispatches to the
    // io_context it already runs on); the coroutine then destroys the
    // executor, whose destructor must not wait for the job it runs inside.
    struct state {
        net::io_context io;
        std::atomic<int> result{0};
        std::atomic<bool> returned{false};
    };
    auto* s = new state;  // leaked if the io_context thread hangs
    net::co_spawn(
        s->io,
        [s]() -> net::awaitable<void> {
            {
                interop::asio_executor aex{s->io.get_executor()};
                s->result =
                    co_await interop::async_get(aex.submit([] { return 7; }), net::use_awaitable);
                co_await interop::async_get(aex.submit([] {}), net::use_awaitable);
            }  // `aex` is destroyed here, inside the job that resumed us
            s->returned = true;
        },
        net::detached);
    std::thread runner([s] { s->io.run(); });
    if (!coexec_test::eventually([s] { return s->returned.load(); }, 30s)) {
        runner.detach();  // the old behaviour: that thread waits forever
        FAIL("~asio_executor() waited for the job it was running inside");
    }
    runner.join();
    CHECK(s->result == 7);
    delete s;
}
static_assert(coexec::executor<interop::asio_executor<net::io_context::executor_type>>);

#if defined(COEXEC_TEST_BOOST_ASIO)
// Both interops in one file: different namespaces, no clash.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include "coexec/asio.hpp"

TEST_CASE("standalone Asio and Boost.Asio interops work side by side in one program",
          COEXEC_TEST_ASIO_TAG) {
    asio::io_context standalone_io;
    boost::asio::io_context boost_io;
    // Declared after the io_contexts, so destroyed (workers joined) first: a
    // worker that posted a completion may still be inside the io_context's
    // wake-up (Asio signals after unlocking) when run() has already returned.
    coexec::thread_pool pool{{.max_workers = 1}};
    int from_standalone = 0, from_boost = 0;
    asio::co_spawn(
        standalone_io,
        [&]() -> asio::awaitable<void> {
            from_standalone =
                co_await coexec::async_get(pool.submit([] { return 1; }), asio::use_awaitable);
        },
        asio::detached);
    boost::asio::co_spawn(
        boost_io,
        [&]() -> boost::asio::awaitable<void> {
            from_boost = co_await coexec::boost_asio::async_get(pool.submit([] { return 2; }),
                                                                boost::asio::use_awaitable);
        },
        boost::asio::detached);
    standalone_io.run();
    boost_io.run();
    CHECK(from_standalone == 1);
    CHECK(from_boost == 2);
}
#endif
