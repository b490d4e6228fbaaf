// Fault tests of coexec::mpi_pool: crashes, deadlines, exceptions, shutdown
// with work in flight, cancellation, refused arguments. Each wait is bounded
// (get_for / require_done) so a bug shows as a failure, not a hang.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <system_error>
#include <vector>

#include "coexec/mpi_pool.hpp"
#include "coexec/shared_buffer.hpp"
#include "helpers.hpp"
#include "mpi_test_env.hpp"

using namespace std::chrono_literals;
using coexec::mpi_pool;
using coexec_test::mpi;
using coexec_test::require_done;
using coexec_test::require_error;

namespace {

int square(int x) {
    return x * x;
}
int crash() {
    ::raise(SIGSEGV);
    return 0;
}
int sleep_ms(int ms) {
    ::usleep(static_cast<useconds_t>(ms) * 1000);
    return ms;
}
// Runs until its stop token is signalled (or forever, if it never is).
int until_stopped(std::stop_token stop) {
    while (!stop.stop_requested())
        ::usleep(1000);
    return 1;
}
int throw_invalid() {
    throw std::invalid_argument("bad argument");
}
int throw_range() {
    throw std::out_of_range("index 7");
}
int throw_system() {
    throw std::system_error(ENOENT, std::generic_category(), "open");
}
struct custom_failure : std::exception {
    const char* what() const noexcept override { return "custom"; }
};
int throw_custom() {
    throw custom_failure();
}
// Registered: arrives on rank 0 as itself, with its member.
struct quota_exceeded : std::runtime_error {
    using std::runtime_error::runtime_error;
    long used = 0;
    template <class Ar>
    void serialize(Ar& ar) {
        ar(used);
    }
};
int throw_quota(long used) {
    quota_exceeded e("quota exceeded");
    e.used = used;
    throw e;
}
int fail_on_three(int x) {
    if (x == 3) throw std::runtime_error("three");
    return x;
}
std::size_t buffer_size(coexec::shared_buffer b) {
    return b.size();
}

}  // namespace

COEXEC_REGISTER_EXCEPTION(quota_exceeded);

TEST_CASE("under process isolation a crashing task fails only its future with worker_died",
          "[mpi][faults]") {
    mpi_pool pool{mpi(), {.slots_per_rank = 2}};
    auto slow = pool.submit(sleep_ms, 300);
    auto crashed = pool.submit(crash);
    auto e = require_error<coexec::worker_died>(crashed);
    REQUIRE(e.signal() == SIGSEGV);
    REQUIRE(std::string(e.what()).find("SIGSEGV") != std::string::npos);
    // Named by rank 0, which knows the function (the rank ran a copy).
    CHECK(e.task().find("crash") != std::string::npos);
    REQUIRE(slow.get_for(30s) == 300);  // another task was not disturbed
    for (int i = 0; i < 8; ++i)
        REQUIRE(pool.submit(square, i).get_for(30s) == i * i);  // the ranks serve on
    REQUIRE(pool.stats().respawns >= 1);
    REQUIRE(pool.stats().failed == 1);
    // A map chunk is named with its size.
    std::vector<int> three{1, 2, 3};
    auto results = pool.map([](int x) { return x == 2 ? crash() : x; }, three, {.chunksize = 3});
    try {
        (void)results.to_vector();
        FAIL("the chunk's worker did not die");
    } catch (const coexec::worker_died& died) {
        CHECK(died.task().find("a map chunk of 3 elements") != std::string::npos);
    }
}

TEST_CASE("a task past its deadline is killed and fails with deadline_exceeded", "[mpi][faults]") {
    mpi_pool pool{mpi(), {.slots_per_rank = 1, .task_timeout = 200ms}};
    require_error<coexec::deadline_exceeded>(pool.submit(sleep_ms, 20'000));
    require_error<coexec::deadline_exceeded>(
        pool.submit_with({.timeout = 100ms}, sleep_ms, 20'000));
    REQUIRE(pool.submit_with({.timeout = 10s}, sleep_ms, 1).get_for(30s) == 1);
    REQUIRE(pool.submit(square, 5).get_for(30s) == 25);
}

TEST_CASE("under thread isolation a deadline fails the future", "[mpi][faults]") {
    mpi_pool pool{mpi(), {.slots_per_rank = 2, .isolation = coexec::mpi_isolation::thread}};
    require_error<coexec::deadline_exceeded>(pool.submit_with({.timeout = 100ms}, sleep_ms, 1500));
    REQUIRE(pool.submit(square, 5).get_for(30s) == 25);
}

TEST_CASE("exceptions arrive as the same standard types with the same what()", "[mpi][faults]") {
    for (auto isolation : {coexec::mpi_isolation::process, coexec::mpi_isolation::thread}) {
        mpi_pool pool{mpi(), {.slots_per_rank = 1, .isolation = isolation}};
        REQUIRE(
            std::string(require_error<std::invalid_argument>(pool.submit(throw_invalid)).what()) ==
            "bad argument");
        REQUIRE(std::string(require_error<std::out_of_range>(pool.submit(throw_range)).what()) ==
                "index 7");
        auto se = require_error<std::system_error>(pool.submit(throw_system));
        REQUIRE(se.code() == std::error_code(ENOENT, std::generic_category()));
        REQUIRE(std::string(se.what()) ==
                std::system_error(ENOENT, std::generic_category(), "open").what());
        auto re = require_error<coexec::remote_error>(pool.submit(throw_custom));
        REQUIRE(re.type_name().find("custom_failure") != std::string::npos);
        REQUIRE(re.original_what() == "custom");
    }
}

TEST_CASE("a registered exception type arrives as itself with its members", "[mpi][faults]") {
    for (auto isolation : {coexec::mpi_isolation::process, coexec::mpi_isolation::thread}) {
        mpi_pool pool{mpi(), {.slots_per_rank = 1, .isolation = isolation}};
        auto e = require_error<quota_exceeded>(pool.submit(throw_quota, 7L));
        REQUIRE(std::string(e.what()) == "quota exceeded");
        REQUIRE(e.used == 7);
    }
}

TEST_CASE("map delivers a failing element's exception and keeps the rest", "[mpi][faults]") {
    mpi_pool pool{mpi(), {.slots_per_rank = 1}};
    std::vector<int> in{1, 2, 3, 4, 5};
    auto results = pool.map(fail_on_three, in, {.chunksize = 2});
    REQUIRE(*results.next_blocking() == 1);
    REQUIRE(*results.next_blocking() == 2);
    REQUIRE_THROWS_WITH(results.next_blocking(), "three");
    REQUIRE(*results.next_blocking() == 4);
    REQUIRE(*results.next_blocking() == 5);
    REQUIRE(!results.next_blocking());
}

TEST_CASE("destroying a pool with work in flight finishes every future", "[mpi][shutdown]") {
    std::vector<coexec::future<int>> fs;
    {
        mpi_pool pool{mpi(), {.slots_per_rank = 1}};
        for (int i = 0; i < 20; ++i)
            fs.push_back(pool.submit(sleep_ms, 5));
    }
    for (auto& f : fs) {
        REQUIRE(f.done());
        REQUIRE(f.get() == 5);
    }
}

TEST_CASE("shutdown with cancel_futures cancels the queued tasks and later submits throw",
          "[mpi][shutdown]") {
    mpi_pool pool{mpi(), {.slots_per_rank = 1}};
    std::vector<coexec::future<int>> fs;
    for (int i = 0; i < 30; ++i)
        fs.push_back(pool.submit(sleep_ms, 20));
    pool.shutdown(false, true);
    REQUIRE_THROWS_AS(pool.submit(square, 1), coexec::executor_shutdown);
    pool.shutdown(true);
    std::size_t cancelled = 0;
    std::size_t finished = 0;
    for (auto& f : fs) {
        REQUIRE(f.done());
        if (f.cancelled()) {
            ++cancelled;
        } else {
            REQUIRE(f.get() == 20);
            ++finished;
        }
    }
    REQUIRE(cancelled > 0);
    REQUIRE(cancelled + finished == 30);
}

TEST_CASE("terminate_workers cancels running tasks at once and the ranks serve the next pool",
          "[mpi][shutdown]") {
    std::vector<coexec::future<int>> fs;
    {
        mpi_pool pool{mpi(), {.slots_per_rank = 1}};
        for (int i = 0; i < 6; ++i)
            fs.push_back(pool.submit(sleep_ms, 20'000));
        while (pool.stats().running == 0)
            ::usleep(1000);
        const auto t0 = std::chrono::steady_clock::now();
        pool.terminate_workers();
        REQUIRE(std::chrono::steady_clock::now() - t0 < 15s);
    }
    for (auto& f : fs)
        REQUIRE(f.cancelled());
    mpi_pool next{mpi(), {.slots_per_rank = 1}};
    REQUIRE(next.submit(square, 3).get_for(30s) == 9);
}

TEST_CASE("cancel() of a running task kills it and the pool goes on", "[mpi][cancel]") {
    mpi_pool pool{mpi(), {.slots_per_rank = 1}};
    auto f = pool.submit(sleep_ms, 20'000);
    REQUIRE(coexec_test::eventually([&] { return f.running(); }, 30s));
    REQUIRE(f.cancel());
    REQUIRE(f.cancelled());
    REQUIRE(pool.submit(square, 4).get_for(30s) == 16);
    REQUIRE(pool.submit(square, 5).get_for(30s) == 25);
}

TEST_CASE("cancel() of a queued task means it never runs", "[mpi][cancel]") {
    mpi_pool pool{mpi(), {.max_workers = 1, .slots_per_rank = 1}};
    auto busy = pool.submit(sleep_ms, 300);
    auto queued1 = pool.submit(sleep_ms, 1);  // held by the rank, ready to start
    auto queued2 = pool.submit(sleep_ms, 2);  // still on rank 0
    REQUIRE(queued2.cancel());
    REQUIRE(queued2.cancelled());
    REQUIRE(busy.get_for(30s) == 300);
    REQUIRE(queued1.get_for(30s) == 1);
    // The pool counts a queued task cancelled when it next looks at its queue.
    for (int i = 0; i < 10'000 && pool.stats().cancelled == 0; ++i)
        ::usleep(1000);
    REQUIRE(pool.stats().cancelled == 1);
}

TEST_CASE("a shared_buffer argument is refused at submit with serialization_error",
          "[mpi][faults]") {
    mpi_pool pool{mpi(), {.slots_per_rank = 1}};
    coexec::shared_buffer b(64);
    try {
        pool.submit(buffer_size, b);
        FAIL("a shared_buffer was accepted");
    } catch (const coexec::serialization_error& e) {
        REQUIRE(std::string(e.what()).find("another MPI rank") != std::string::npos);
    }
    REQUIRE(pool.submit(square, 2).get_for(30s) == 4);
}

TEST_CASE("destroying a pool stops a running task that takes a stop token", "[mpi][shutdown]") {
    // As on a thread_pool, destruction signals the tasks' stop tokens; on
    // another rank that stops the task (its worker is killed), so a task
    // that only ends when told cannot hold the destructor forever.
    // Under thread isolation the token itself is signalled in the rank.
    for (auto isolation : {coexec::mpi_isolation::process, coexec::mpi_isolation::thread}) {
        coexec::future<int> stoppable;
        coexec::future<int> plain;
        const auto t0 = std::chrono::steady_clock::now();
        {
            mpi_pool pool{mpi(), {.slots_per_rank = 1, .isolation = isolation}};
            stoppable = pool.submit(until_stopped);
            plain = pool.submit(sleep_ms, 300);  // no token: waited for, as Python's `with`
            // (If `plain` ended meanwhile, there is nothing left to wait for.)
            REQUIRE(coexec_test::eventually(
                [&] { return pool.stats().running >= 2 || plain.done(); }, 30s));
        }
        REQUIRE(std::chrono::steady_clock::now() - t0 < 60s);
        REQUIRE(stoppable.cancelled());
        REQUIRE(plain.get_for(1s) == 300);
    }
}

TEST_CASE("shutdown(cancel_futures) stops running and queued tasks that take a stop token",
          "[mpi][shutdown]") {
    mpi_pool pool{mpi(), {.max_workers = 1, .slots_per_rank = 1}};
    auto running = pool.submit(until_stopped);
    REQUIRE(coexec_test::eventually([&] { return running.running(); }, 30s));
    auto queued = pool.submit(until_stopped);
    pool.shutdown(true, true);
    REQUIRE(running.cancelled());
    REQUIRE(queued.cancelled());
    REQUIRE_THROWS_AS(pool.submit(square, 2), coexec::executor_shutdown);
}
