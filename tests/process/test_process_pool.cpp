// Behaviour of coexec::process_pool: submit, map, options, cancellation,
// shutdown, stats, shared_buffer.
#include "coexec/process_pool.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include "coexec/shared_buffer.hpp"
#include "coexec/task.hpp"
#include "coexec/thread_pool.hpp"  // both in one translation unit must compile
#include "helpers.hpp"
#include "process_gate.hpp"

using namespace std::chrono_literals;
using coexec::process_pool;

namespace {

int square(int x) {
    return x * x;
}
int pid_of() {
    return static_cast<int>(::getpid());
}
std::string greet(std::string name, int n) {
    return "hello " + name + " x" + std::to_string(n);
}
int sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}
void nothing() {}

int g_init_count = 0;
void count_init() {
    ++g_init_count;
}
int init_count() {
    return g_init_count;
}
// Slower than the task_timeout of the test that uses it.
void slow_init() {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    ++g_init_count;
}

void fill(coexec::shared_buffer b, int value) {
    for (auto& x : b.span())
        x = static_cast<std::byte>(value);
}
coexec::shared_buffer make_buffer(std::size_t n) {
    coexec::shared_buffer b(n);
    for (std::size_t i = 0; i < n; ++i)
        b.data()[i] = static_cast<std::byte>(i % 251);
    return b;
}

// A plain struct of strings and containers: no serialize() needed.
struct order {
    std::string id;
    std::vector<int> quantities;
    std::optional<double> discount;
};
order total_order(order o) {
    int sum = 0;
    for (int q : o.quantities)
        sum += q;
    o.id += "-total";
    o.quantities = {sum};
    return o;
}

}  // namespace

TEST_CASE("plain structs of strings and containers cross to a worker and back", "[process_pool]") {
    process_pool pool{{.max_workers = 1}};
    order back = pool.submit(total_order, order{"A7", {1, 2, 3}, 0.5}).get();
    CHECK(back.id == "A7-total");
    CHECK(back.quantities == std::vector<int>{6});
    CHECK(back.discount == 0.5);
}

TEST_CASE("a coroutine submitted to a process_pool runs there and its future holds its value",
          "[process_pool]") {
    process_pool pool{{.max_workers = 1}};
    auto f = pool.submit(
        [](int x) -> coexec::task<int> {
            auto twice = [](int v) -> coexec::task<int> { co_return 2 * v; };
            co_return co_await twice(x) + static_cast<int>(::getpid() != 0);
        },
        20);
    static_assert(std::is_same_v<decltype(f), coexec::future<int>>);
    CHECK(f.get() == 41);
    auto where = pool.submit([]() -> coexec::task<int> { co_return static_cast<int>(::getpid()); });
    CHECK(where.get() != static_cast<int>(::getpid()));
    auto fails = pool.submit([]() -> coexec::task<void> {
        throw std::out_of_range("from a coroutine in a worker");
        co_return;
    });
    CHECK_THROWS_AS(fails.get(), std::out_of_range);
}

TEST_CASE("process_pool runs function pointers and captureless lambdas in other processes",
          "[process_pool]") {
    process_pool pool{{.max_workers = 2}};
    REQUIRE(pool.max_workers() == 2);
    auto f = pool.submit(square, 12);
    REQUIRE(f.get() == 144);
    auto g = pool.submit([](int a, int b) { return a + b; }, 2, 3);
    REQUIRE(g.get() == 5);
    auto h = pool.submit(greet, std::string("pool"), 3);
    REQUIRE(h.get() == "hello pool x3");
    // A string literal or a char pointer travels as the string it points to.
    REQUIRE(pool.submit(greet, "literal", 1).get() == "hello literal x1");
    char name[] = "array";
    const char* pointer = name;
    REQUIRE(pool.submit(greet, pointer, 2).get() == "hello array x2");
    const char* null = nullptr;
    REQUIRE_THROWS_AS(pool.submit(greet, null, 2), std::invalid_argument);
    auto v = pool.submit(nothing);
    v.get();
    REQUIRE(v.done());
    auto p = pool.submit(pid_of);
    REQUIRE(p.get() != static_cast<int>(::getpid()));
}

TEST_CASE("process_pool runs many tasks concurrently and every future completes",
          "[process_pool]") {
    process_pool pool{{.max_workers = 3}};
    std::vector<coexec::future<int>> fs;
    for (int i = 0; i < 500; ++i)
        fs.push_back(pool.submit(square, i));
    for (int i = 0; i < 500; ++i)
        REQUIRE(fs[static_cast<std::size_t>(i)].get() == i * i);
    auto st = pool.stats();
    REQUIRE(st.submitted == 500);
    REQUIRE(st.completed == 500);
    REQUIRE(st.failed == 0);
    // Workers after the first start in the background (see the constructor's
    // comment): short tasks may all be done before the third is up.
    REQUIRE(coexec_test::eventually([&] { return pool.stats().workers_alive == 3; }));
}

TEST_CASE("process_pool map returns results in input order or in completion order",
          "[process_pool][map]") {
    process_pool pool{{.max_workers = 2}};
    std::vector<int> in(1000);
    for (int i = 0; i < 1000; ++i)
        in[static_cast<std::size_t>(i)] = i;
    auto out = pool.map(square, in, {.chunksize = 37}).to_vector();
    REQUIRE(out.size() == 1000);
    for (int i = 0; i < 1000; ++i)
        REQUIRE(out[static_cast<std::size_t>(i)] == i * i);

    auto unordered = pool.map(square, in, {.ordered = false}).to_vector();
    std::sort(unordered.begin(), unordered.end());
    REQUIRE(unordered == out);
    // one message per chunk: far fewer tasks than elements
    REQUIRE(pool.stats().submitted < 200);
}

TEST_CASE("process_pool map delivers a failing element's exception and keeps the rest",
          "[process_pool][map]") {
    process_pool pool{{.max_workers = 2}};
    std::vector<int> in{1, 2, -1, 4};
    auto res = pool.map(
        [](int x) {
            if (x < 0) throw std::invalid_argument("negative input");
            return x * 10;
        },
        in, {.chunksize = 2});
    REQUIRE(*res.next_blocking() == 10);
    REQUIRE(*res.next_blocking() == 20);
    REQUIRE_THROWS_AS(res.next_blocking(), std::invalid_argument);
    REQUIRE(*res.next_blocking() == 40);
    REQUIRE(!res.next_blocking());
}

TEST_CASE("max_tasks_per_child replaces workers after that many tasks", "[process_pool]") {
    process_pool pool{{.max_workers = 1, .max_tasks_per_child = 2}};
    std::vector<int> pids;
    for (int i = 0; i < 6; ++i)
        pids.push_back(pool.submit(pid_of).get());
    REQUIRE(pids[0] == pids[1]);
    REQUIRE(pids[2] == pids[3]);
    REQUIRE(pids[4] == pids[5]);
    REQUIRE(pids[0] != pids[2]);
    REQUIRE(pids[2] != pids[4]);
    REQUIRE(pool.stats().respawns >= 2);
}

TEST_CASE("the initializer runs once in every worker before its tasks", "[process_pool]") {
    process_pool pool{{.max_workers = 2, .initializer = count_init}};
    std::vector<coexec::future<int>> fs;
    for (int i = 0; i < 50; ++i)
        fs.push_back(pool.submit(init_count));
    for (auto& f : fs)
        REQUIRE(f.get() == 1);
    REQUIRE(g_init_count == 0);  // never in the parent
}

TEST_CASE("an initializer slower than task_timeout does not count against the first tasks",
          "[process_pool][timeout]") {
    // Each worker (and each replacement, after 2 tasks) spends 1.5 s in its
    // initializer; a task may take 300 ms. Were the initializer's time
    // counted, every worker's first task would miss its deadline, and five
    // such kills in a row would break the pool.
    process_pool pool{{.max_workers = 2,
                       .max_tasks_per_child = 2,
                       .initializer = slow_init,
                       .task_timeout = std::chrono::milliseconds(300)}};
    std::vector<coexec::future<int>> fs;
    for (int i = 0; i < 8; ++i)
        fs.push_back(pool.submit(init_count));
    for (auto& f : fs)
        CHECK(f.get() == 1);
    CHECK(pool.stats().failed == 0);
    // A task over its timeout is still stopped.
    REQUIRE_THROWS_AS(pool.submit(sleep_ms, 5000).get(), coexec::deadline_exceeded);
}

TEST_CASE("an initializer that throws breaks the pool", "[process_pool]") {
    process_pool pool{
        {.max_workers = 1, .initializer = [] { throw std::runtime_error("no config"); }}};
    // The pool may break before or after this submit: either the submit or
    // the future reports it.
    try {
        auto f = pool.submit(square, 2);
        REQUIRE_THROWS_AS(f.get(), coexec::broken_pool);
        REQUIRE_THROWS_WITH(f.get(), Catch::Contains("no config"));
    } catch (const coexec::broken_pool& e) {
        REQUIRE(std::string(e.what()).find("no config") != std::string::npos);
    }
    REQUIRE_THROWS_AS(pool.submit(square, 3), coexec::broken_pool);
}

TEST_CASE("cancel() of a queued task means it never runs", "[process_pool][cancel]") {
    process_pool pool{{.max_workers = 1}};
    coexec_test::process_gate gate;
    auto busy = pool.submit(&coexec_test::wait_at_process_gate, gate.buffer());
    auto queued = pool.submit(sleep_ms, 1);
    REQUIRE(queued.cancel());
    REQUIRE(queued.cancelled());
    REQUIRE_THROWS_AS(queued.get(), coexec::cancelled_error);
    gate.open();
    REQUIRE(busy.get());
    REQUIRE(pool.stats().cancelled == 1);
}

TEST_CASE("cancel() of a running task kills its worker and the pool goes on",
          "[process_pool][cancel]") {
    process_pool pool{{.max_workers = 1}};
    const int before = pool.submit(pid_of).get();
    auto running = pool.submit(sleep_ms, 30'000);
    REQUIRE(running.running());
    std::this_thread::sleep_for(50ms);
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(running.cancel());
    REQUIRE(running.cancelled());
    REQUIRE_THROWS_AS(running.get(), coexec::cancelled_error);
    const int after = pool.submit(pid_of).get();
    REQUIRE(after != before);
    REQUIRE(std::chrono::steady_clock::now() - t0 < 5s);
    auto st = pool.stats();
    REQUIRE(st.cancelled == 1);
    REQUIRE(st.respawns >= 1);
}

TEST_CASE(
    "shutdown without waiting and with cancel_futures cancels queued work and returns at once",
    "[process_pool][shutdown]") {
    process_pool pool{{.max_workers = 1}};
    auto running = pool.submit(sleep_ms, 3000);
    std::vector<coexec::future<int>> queued;
    for (int i = 0; i < 5; ++i)
        queued.push_back(pool.submit(sleep_ms, 1000));
    auto t0 = std::chrono::steady_clock::now();
    pool.shutdown(false, true);
    // Far below the running task's 3 s (and the queued 5 s): it did not wait.
    REQUIRE(std::chrono::steady_clock::now() - t0 < 2s);
    for (auto& q : queued)
        REQUIRE(q.cancelled());
    REQUIRE_THROWS_AS(pool.submit(square, 1), coexec::executor_shutdown);
    REQUIRE(running.get() == 3000);
}

TEST_CASE("destroying a pool with work queued finishes every future", "[process_pool][shutdown]") {
    std::vector<coexec::future<int>> fs;
    {
        process_pool pool{{.max_workers = 2}};
        for (int i = 0; i < 20; ++i)
            fs.push_back(pool.submit(sleep_ms, 5));
    }
    for (auto& f : fs) {
        REQUIRE(f.done());
        REQUIRE(f.get() == 5);
    }
}

TEST_CASE("terminate_workers stops running work now", "[process_pool][shutdown]") {
    process_pool pool{{.max_workers = 2}};
    auto a = pool.submit(sleep_ms, 30'000);
    auto b = pool.submit(sleep_ms, 30'000);
    auto c = pool.submit(sleep_ms, 30'000);
    std::this_thread::sleep_for(50ms);
    auto t0 = std::chrono::steady_clock::now();
    pool.terminate_workers();
    REQUIRE(std::chrono::steady_clock::now() - t0 < 5s);
    for (auto* f : {&a, &b, &c}) {
        REQUIRE(f->done());
        REQUIRE(f->cancelled());
    }
    REQUIRE(pool.stats().workers_alive == 0);
    REQUIRE_THROWS_AS(pool.submit(square, 1), coexec::executor_shutdown);
}

TEST_CASE("stats count submitted and completed and failed and queued and running tasks and workers",
          "[process_pool]") {
    process_pool pool{{.max_workers = 1}};
    coexec_test::process_gate gate;
    auto slow = pool.submit(&coexec_test::wait_at_process_gate, gate.buffer());
    auto q1 = pool.submit(square, 3);
    auto q2 = pool.submit([]() -> int { throw std::runtime_error("x"); });
    auto st = pool.stats();
    REQUIRE(st.submitted == 3);
    REQUIRE(st.running == 1);
    REQUIRE(st.queued == 2);
    REQUIRE(st.workers_alive == 1);
    gate.open();
    REQUIRE(slow.get());
    q1.get();
    REQUIRE_THROWS(q2.get());
    pool.shutdown();
    st = pool.stats();
    REQUIRE(st.completed == 2);
    REQUIRE(st.failed == 1);
    REQUIRE(st.queued == 0);
    REQUIRE(st.running == 0);
}

TEST_CASE("shared_buffer arguments and results are shared memory and never copied",
          "[process_pool][shared_buffer]") {
    process_pool pool{{.max_workers = 1}};
    coexec::shared_buffer b(1 << 20);
    pool.submit(fill, b, 7).get();
    REQUIRE(std::all_of(b.span().begin(), b.span().end(),
                        [](std::byte x) { return x == std::byte{7}; }));
    auto r = pool.submit(make_buffer, std::size_t{4096}).get();
    REQUIRE(r.size() == 4096);
    REQUIRE(r.data()[300] == static_cast<std::byte>(300 % 251));
}

TEST_CASE("every start method runs tasks", "[process_pool][start]") {
    for (auto m : {coexec::start_method::fork_server, coexec::start_method::fork,
                   coexec::start_method::spawn}) {
        process_pool pool{{.max_workers = 2, .initializer = count_init, .start = m}};
        REQUIRE(pool.submit(square, 9).get() == 81);
        REQUIRE(pool.submit(init_count).get() == 1);
        auto out = pool.map(square, std::vector<int>{1, 2, 3}).to_vector();
        REQUIRE(out == std::vector<int>{1, 4, 9});
    }
}

TEST_CASE("a pool made from a multithreaded program without a fork server falls back to spawn",
          "[process_pool][start]") {
    // This test process has no fork server yet (each test runs in its own
    // process); a running thread makes it multithreaded.
    std::atomic<bool> stop{false};
    std::thread t([&] {
        while (!stop)
            std::this_thread::sleep_for(1ms);
    });
    {
        process_pool pool{{.max_workers = 1}};
        REQUIRE(pool.submit(square, 4).get() == 16);
    }
    stop = true;
    t.join();
}

namespace {
long span_sum(long a, long b) {
    return a + b;
}
}  // namespace

TEST_CASE("map over pairs applies each pair as two arguments like the thread_pool does",
          "[process_pool][map]") {
    std::vector<std::pair<long, long>> in{{1, 2}, {3, 4}, {5, 6}};
    process_pool procs{{.max_workers = 2}};
    coexec::thread_pool threads{{.max_workers = 2}};
    REQUIRE(procs.map(&span_sum, in, {.chunksize = 1}).to_vector() == std::vector<long>{3, 7, 11});
    REQUIRE(threads.map(&span_sum, in).to_vector() == std::vector<long>{3, 7, 11});
}

TEST_CASE("a done-callback may cancel another running task", "[process_pool][cancel]") {
    process_pool pool{{.max_workers = 2}};
    auto a = pool.submit(sleep_ms, 30'000);
    auto b = pool.submit(sleep_ms, 30'000);
    a.add_done_callback([b](const coexec::future<int>&) { b.cancel(); });
    std::this_thread::sleep_for(20ms);
    REQUIRE(a.cancel());
    REQUIRE(b.wait_for(10s));
    REQUIRE(b.cancelled());
    REQUIRE(pool.submit(square, 2).get_for(10s) == 4);
    REQUIRE(pool.stats().cancelled == 2);
}

namespace {
std::vector<char> reversed(std::vector<char> v) {
    std::reverse(v.begin(), v.end());
    return v;
}
}  // namespace

TEST_CASE("large arguments and results travel by value through the channel", "[process_pool]") {
    process_pool pool{{.max_workers = 1}};
    std::vector<char> big(8 << 20);
    for (std::size_t i = 0; i < big.size(); ++i)
        big[i] = static_cast<char>(i * 7 % 127);
    for (int round = 0; round < 3; ++round) {
        auto out = pool.submit(reversed, big).get_for(30s);
        REQUIRE(out.size() == big.size());
        REQUIRE(std::equal(out.begin(), out.end(), big.rbegin()));
    }
}

namespace {
long span_of(std::pair<long, long> r) {
    return r.second - r.first;
}
long span_of_two(long a, long b) {
    return b - a;
}
}  // namespace

TEST_CASE("map passes a pair whole to a function that takes a pair, and spreads it otherwise",
          "[process_pool]") {
    coexec::process_pool pool{{.max_workers = 2}};
    std::vector<std::pair<long, long>> ranges{{0, 10}, {10, 30}};
    CHECK(pool.map(&span_of, ranges).to_vector() == std::vector<long>{10, 20});
    CHECK(pool.map(&span_of_two, ranges).to_vector() == std::vector<long>{10, 20});
}

namespace {
long tuple_span(std::tuple<long, long> r) {
    return std::get<1>(r) - std::get<0>(r);
}
long sum_of_three(long a, long b, long c) {
    return a + b + c;
}
}  // namespace

TEST_CASE("map passes tuples and arrays by the same rule as the thread_pool", "[process_pool]") {
    coexec::process_pool procs{{.max_workers = 2}};
    coexec::thread_pool threads{{.max_workers = 2}};
    std::vector<std::tuple<long, long>> tuples{{0, 10}, {10, 30}};
    std::vector<std::array<long, 3>> arrays{{1, 2, 3}, {4, 5, 6}};
    // A function that takes the tuple gets it whole; one that takes its
    // elements gets them spread, as a pair or array is.
    CHECK(procs.map(&tuple_span, tuples).to_vector() == std::vector<long>{10, 20});
    CHECK(threads.map(&tuple_span, tuples).to_vector() == std::vector<long>{10, 20});
    CHECK(procs.map(&span_of_two, tuples).to_vector() == std::vector<long>{10, 20});
    CHECK(procs.map(&sum_of_three, arrays).to_vector() == std::vector<long>{6, 15});
    CHECK(threads.map(&sum_of_three, arrays).to_vector() == std::vector<long>{6, 15});
}

// map's chunk machinery is not part of process_pool's public interface.
template <class P>
concept has_public_submit_chunk =
    requires(P& p, std::vector<int> chunk) { p.submit_chunk(&square, std::move(chunk)); };
static_assert(!has_public_submit_chunk<coexec::process_pool>);

TEST_CASE("tasks submitted right after construction run, and every worker comes to take them",
          "[process_pool][start]") {
    // The constructor waits for one worker; the others start after it
    // returns. Tasks queued meanwhile must reach them: 4 tasks that each hold
    // their worker until all 4 run can only finish on 4 distinct workers.
    for (auto m : {coexec::start_method::fork_server, coexec::start_method::fork,
                   coexec::start_method::spawn}) {
        INFO("start method " << static_cast<int>(m));
        process_pool pool{{.max_workers = 4, .start = m}};
        coexec::shared_buffer arrived(sizeof(int));
        auto meet = [](coexec::shared_buffer b) {
            auto* n = reinterpret_cast<std::atomic<int>*>(b.data());
            n->fetch_add(1);
            const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
            while (n->load() < 4 && std::chrono::steady_clock::now() < until)
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            return static_cast<int>(::getpid()) * (n->load() >= 4 ? 1 : -1);
        };
        std::vector<coexec::future<int>> fs;
        for (int i = 0; i < 4; ++i)
            fs.push_back(pool.submit(meet, arrived));
        std::set<int> pids;
        for (auto& f : fs) {
            const int pid = f.get_for(std::chrono::seconds(60));
            CHECK(pid > 0);  // negative: it gave up waiting for the others
            pids.insert(pid);
        }
        CHECK(pids.size() == 4);
        CHECK(pool.stats().workers_alive == 4);
    }
}

TEST_CASE("a pool's other workers start while its first task still runs alone",
          "[process_pool][start]") {
    // With the fork server, the workers after the first wait for its first
    // result or for a task that finds no worker free, but not for ever: a
    // first task that runs long, alone, must not keep them from starting.
    process_pool pool{{.max_workers = 3}};
    auto f = pool.submit(sleep_ms, 60'000);
    REQUIRE(coexec_test::eventually([&] { return pool.stats().workers_alive == 3; }));
    CHECK_FALSE(f.done());
    // And they take the tasks queued behind it.
    CHECK(pool.submit(square, 7).get() == 49);
    CHECK(f.cancel());
}

namespace {
int until_stopped(std::stop_token st, int k) {
    while (!st.stop_requested())
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return k;
}
}  // namespace

TEST_CASE("a running task that takes a stop_token is stopped by shutdown with cancel_futures",
          "[process_pool][shutdown]") {
    process_pool pool{{.max_workers = 1}};
    auto f = pool.submit(until_stopped, 3);
    REQUIRE(coexec_test::eventually([&] { return f.running(); }));
    auto plain = pool.submit(square, 5);  // queued: cancelled
    pool.shutdown(true, true);            // returns: the stoppable task does not hold it
    REQUIRE(f.done());
    REQUIRE(f.cancelled());
    REQUIRE(plain.cancelled());
    REQUIRE(pool.stats().cancelled == 2);
}

TEST_CASE("destroying a process_pool stops its tasks that take a stop_token and waits for others",
          "[process_pool][shutdown]") {
    coexec::future<int> stoppable, queued_stoppable;
    coexec::future<bool> plain;
    coexec_test::process_gate gate;  // holds `plain` until it is seen running
    std::thread opener;
    {
        process_pool pool{{.max_workers = 2}};
        stoppable = pool.submit(until_stopped, 1);
        plain = pool.submit(&coexec_test::wait_at_process_gate, gate.buffer());
        REQUIRE(coexec_test::eventually([&] { return stoppable.running() && plain.running(); }));
        queued_stoppable = pool.submit(until_stopped, 2);
        opener = std::thread([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            gate.open();
        });
    }  // would wait forever for until_stopped if it were not stopped
    opener.join();
    REQUIRE(stoppable.cancelled());
    REQUIRE(queued_stoppable.cancelled());
    REQUIRE(plain.get());  // waited for, as Python's `with` does
}
