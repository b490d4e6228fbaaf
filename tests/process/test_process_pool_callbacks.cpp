// Where a process_pool runs user code when its futures complete: never on
// its supervisor thread. Done-callbacks and coroutines with no executor run
// on the pool's completion thread ("coexec-callback"), so one that blocks —
// even on another future of the same pool — cannot stall the pool.
#include <pthread.h>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "coexec/process_pool.hpp"
#include "coexec/task.hpp"
#include "coexec/thread_pool.hpp"
#include "helpers.hpp"
#include "process_gate.hpp"

using namespace std::chrono_literals;

namespace {

constexpr auto bound = 30s;

int add_one(int x) {
    return x + 1;
}

std::string thread_name() {
    char name[16] = {};
    ::pthread_getname_np(::pthread_self(), name, sizeof name);
    return name;
}

}  // namespace

TEST_CASE("a done-callback that waits on another future of the same pool completes",
          "[process_pool][callbacks]") {
    coexec::process_pool pool{{.max_workers = 1}};
    std::atomic<int> result{0};
    std::atomic<bool> done{false};
    pool.submit(&add_one, 1).add_done_callback([&](const coexec::future<int>& f) {
        // On the supervisor thread this get() would wait for the supervisor.
        try {
            result = f.get() + pool.submit(&add_one, 10).get_for(bound);
        } catch (...) {
            result = -1;
        }
        done = true;
    });
    REQUIRE(coexec_test::eventually([&] { return done.load(); }, bound));
    CHECK(result.load() == 13);
    CHECK(pool.submit(&add_one, 41).get_for(bound) == 42);
}

TEST_CASE("done-callbacks of a process pool run in completion order on its completion thread",
          "[process_pool][callbacks]") {
    coexec::process_pool pool{{.max_workers = 1}};  // completes in submission order
    std::atomic<int> calls{0};
    std::atomic<bool> elsewhere{false};
    std::mutex m;
    std::vector<int> order;
    std::vector<coexec::future<int>> fs;
    // Held until every callback is attached: one added to a finished future
    // runs at once on the adding thread.
    coexec_test::process_gate gate;
    auto held = pool.submit(&coexec_test::wait_at_process_gate, gate.buffer());
    for (int i = 0; i < 20; ++i) {
        fs.push_back(pool.submit(&add_one, i));
        fs.back().add_done_callback([&, i](const coexec::future<int>&) {
            std::lock_guard g(m);
            if (thread_name() != "coexec-callback") elsewhere = true;
            order.push_back(i);
            ++calls;
        });
    }
    gate.open();
    CHECK(held.get_for(bound));
    for (auto& f : fs)
        f.get_for(bound);
    REQUIRE(coexec_test::eventually([&] { return calls.load() == 20; }, bound));
    CHECK_FALSE(elsewhere.load());
    std::lock_guard g(m);
    for (std::size_t k = 1; k < order.size(); ++k)
        CHECK(order[k - 1] < order[k]);
}

TEST_CASE("a coroutine with no executor resumes off the supervisor and may block on the pool",
          "[process_pool][callbacks]") {
    coexec::process_pool pool{{.max_workers = 1}};
    std::atomic<bool> finished{false};
    std::string resumed_on;
    int value = 0;
    auto body = [&]() -> coexec::task<void> {
        int a = co_await pool.submit(&add_one, 1);  // resumes on the completing side
        resumed_on = thread_name();
        value = a + pool.submit(&add_one, 2).get_for(bound);  // blocks that thread
        finished = true;
    };
    auto runner = [](coexec::task<void> t) -> coexec::detail::detached_coro {
        co_await std::move(t);
    };
    // Held until the coroutine has suspended: co_await of a finished future
    // does not suspend, and it would go on on this thread.
    coexec_test::process_gate gate;
    auto held = pool.submit(&coexec_test::wait_at_process_gate, gate.buffer());
    runner(body());  // started on this thread, which has no executor
    gate.open();
    CHECK(held.get_for(bound));
    REQUIRE(coexec_test::eventually([&] { return finished.load(); }, bound));
    CHECK(resumed_on == "coexec-callback");
    CHECK(value == 5);
}

TEST_CASE("a coroutine on a thread_pool awaiting a process task resumes on that thread_pool",
          "[process_pool][callbacks]") {
    coexec::process_pool pool{{.max_workers = 1}};
    coexec::thread_pool threads{{.max_workers = 1}};
    auto f = threads.submit([&]() -> coexec::task<bool> {
        int v = co_await pool.submit(&add_one, 1);
        co_return threads.running_in_this_thread() && v == 2;
    });
    CHECK(f.get_for(bound));
}

TEST_CASE("a done-callback may shut its own process pool down", "[process_pool][callbacks]") {
    auto pool =
        std::make_unique<coexec::process_pool>(coexec::process_pool_options{.max_workers = 1});
    std::atomic<bool> done{false};
    pool->submit(&add_one, 1).add_done_callback([&](const coexec::future<int>&) {
        pool->shutdown(true);
        done = true;
    });
    REQUIRE(coexec_test::eventually([&] { return done.load(); }, bound));
    CHECK_THROWS_AS(pool->submit(&add_one, 1), coexec::executor_shutdown);
    pool.reset();
}
