// Behaviour tests of coexec::mpi_pool: every member, the waiting helpers,
// coroutines and pipelines, over 2 worker ranks (tests/mpi/mpi_tests.cmake
// runs each TEST_CASE as `mpirun --oversubscribe -n 3`). Rank 0 runs these.
#include <mpi.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <optional>
#include <ranges>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "coexec/as_completed.hpp"
#include "coexec/mpi_pool.hpp"
#include "coexec/pipeline.hpp"
#include "coexec/sync_wait.hpp"
#include "coexec/task.hpp"
#include "coexec/wait.hpp"
#include "coexec/when_all.hpp"
#include "coexec/when_any.hpp"
#include "mpi_test_env.hpp"

using namespace std::chrono_literals;
using coexec::mpi_pool;
using coexec_test::mpi;

namespace {

// The rank a task runs on (Open MPI puts it in every rank's environment, and
// the local process workers inherit it).
int task_rank() {
    const char* r = std::getenv("OMPI_COMM_WORLD_RANK");
    return r != nullptr ? std::atoi(r) : -1;
}
int square(int x) {
    return x * x;
}
long add(long a, long b) {
    return a + b;
}
// True in the rank's own process (thread isolation); a process worker was
// forked from the fork server before MPI_Init (process isolation).
bool in_mpi_process() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    return initialized != 0;
}
int slow_square(int x) {
    // Later items finish first, so completion order differs from input order.
    ::usleep(static_cast<useconds_t>(1000 * (8 - x % 8)));
    return x * x;
}

int slow_rank() {
    ::usleep(2000);
    return task_rank();
}

// Touches every byte and sends them all back: a large argument and result.
std::vector<char> flip(std::vector<char> bytes) {
    for (char& c : bytes)
        c = static_cast<char>(~c);
    return bytes;
}

struct scale {  // a serializable function object: its state travels with it
    int factor = 1;
    int operator()(int x) const { return factor * x; }
    template <class Ar>
    void serialize(Ar& ar) {
        ar(factor);
    }
};

int g_initialized = 0;
void initialize_worker() {
    g_initialized = 42;
}
int initialized_value() {
    return g_initialized;
}

coexec::task<int> await_both(mpi_pool& pool) {
    int a = co_await pool.submit(square, 6);
    int b = co_await pool.submit(square, 7);
    co_return a + b;
}

coexec::task<long> sum_with_next(mpi_pool& pool) {
    std::vector<int> in{1, 2, 3, 4, 5};
    auto results = pool.map(square, in, {.chunksize = 2});
    long sum = 0;
    while (auto r = co_await results.next())
        sum += *r;
    co_return sum;
}

}  // namespace

TEST_CASE("mpi_pool runs a function pointer on a worker rank and returns its value", "[mpi]") {
    mpi_pool pool{mpi(), {.slots_per_rank = 1}};
    REQUIRE(pool.submit(square, 9).get_for(30s) == 81);
    const int rank = pool.submit(task_rank).get_for(30s);
    REQUIRE((rank == 1 || rank == 2));
}

TEST_CASE("mpi_pool runs captureless lambdas and serializable function objects", "[mpi]") {
    mpi_pool pool{mpi(), {.slots_per_rank = 1}};
    REQUIRE(pool.submit([](int x) { return x + 1; }, 41).get_for(30s) == 42);
    REQUIRE(pool.submit(scale{3}, 5).get_for(30s) == 15);
    REQUIRE(pool.submit(add, 40L, 2L).get_for(30s) == 42);
    REQUIRE(pool.submit([] { return std::string("text"); }).get_for(30s) == "text");
}

TEST_CASE("a function defined in a shared library is found on the worker ranks", "[mpi]") {
    mpi_pool pool{mpi(), {.slots_per_rank = 1}};
    REQUIRE(pool.submit(mpi_test_lib_triple, 14L).get_for(30s) == 42);
    REQUIRE(pool.submit(&mpi_test_lib_triple, 5L).get_for(30s) == 15);
}

TEST_CASE("tasks are spread over every worker rank", "[mpi]") {
    mpi_pool pool{mpi(), {.slots_per_rank = 2}};
    REQUIRE(pool.max_workers() == 4);  // 2 worker ranks x 2 slots
    // A rank holds at most slots + 1 tasks, so 20 slow ones need both ranks.
    std::vector<coexec::future<int>> fs;
    for (int i = 0; i < 20; ++i)
        fs.push_back(pool.submit(slow_rank));
    std::set<int> ranks;
    for (auto& f : fs)
        ranks.insert(f.get_for(30s));
    REQUIRE(ranks == std::set<int>{1, 2});
    REQUIRE(pool.stats().completed == 20);
}

TEST_CASE("max_workers limits the worker ranks used", "[mpi]") {
    mpi_pool pool{mpi(), {.max_workers = 1, .slots_per_rank = 2}};
    REQUIRE(pool.max_workers() == 2);
    std::set<int> ranks;
    std::vector<coexec::future<int>> fs;
    for (int i = 0; i < 12; ++i)
        fs.push_back(pool.submit(task_rank));
    for (auto& f : fs)
        ranks.insert(f.get_for(30s));
    REQUIRE(ranks == std::set<int>{1});
}

TEST_CASE("map returns chunked results in input order", "[mpi][map]") {
    mpi_pool pool{mpi(), {.slots_per_rank = 1}};
    std::vector<int> in(1000);
    for (int i = 0; i < 1000; ++i)
        in[static_cast<std::size_t>(i)] = i;
    auto out = pool.map(square, in, {.chunksize = 16}).to_vector();
    REQUIRE(out.size() == 1000);
    for (int i = 0; i < 1000; ++i)
        REQUIRE(out[static_cast<std::size_t>(i)] == i * i);
    REQUIRE(pool.stats().submitted == (1000 + 15) / 16);
}

TEST_CASE("map with ordered = false yields every result in completion order", "[mpi][map]") {
    mpi_pool pool{mpi(), {.slots_per_rank = 2}};
    std::vector<int> in(32);
    for (int i = 0; i < 32; ++i)
        in[static_cast<std::size_t>(i)] = i;
    std::multiset<int> seen;
    for (int r : pool.map(slow_square, in, {.chunksize = 1, .ordered = false}))
        seen.insert(r);
    std::multiset<int> expected;
    for (int i : in)
        expected.insert(i * i);
    REQUIRE(seen == expected);
}

TEST_CASE("map consumes an endless input lazily with bounded look-ahead", "[mpi][map]") {
    mpi_pool pool{mpi(), {.slots_per_rank = 1}};
    std::atomic<long> pulled{0};
    auto endless = std::views::iota(0L) | std::views::transform([&](long i) {
                       pulled.fetch_add(1);
                       return i;
                   });
    auto results =
        pool.map([](long x) { return x % 3; }, endless, {.chunksize = 10, .buffersize = 100});
    long seen = 0;
    long sum = 0;
    for (long r : results) {
        sum += r;
        if (++seen == 5000) break;
        REQUIRE(pulled.load() - seen <= 100 + 10);
    }
    REQUIRE(sum == 4999);
}

TEST_CASE("map over pairs applies each pair as two arguments", "[mpi][map]") {
    mpi_pool pool{mpi(), {.slots_per_rank = 1}};
    std::vector<std::pair<long, long>> in{{1, 2}, {3, 4}, {5, 6}};
    REQUIRE(pool.map(add, in).to_vector() == std::vector<long>{3, 7, 11});
}

TEST_CASE("as_completed, wait, when_all and when_any take mpi_pool futures", "[mpi][waiting]") {
    mpi_pool pool{mpi(), {.slots_per_rank = 1}};
    std::vector<coexec::future<int>> fs;
    for (int i = 0; i < 6; ++i)
        fs.push_back(pool.submit(slow_square, i));
    std::multiset<int> seen;
    for (auto f : coexec::as_completed(fs, 30s))
        seen.insert(f.get());
    REQUIRE(seen == std::multiset<int>{0, 1, 4, 9, 16, 25});

    auto more = std::vector<coexec::future<int>>{pool.submit(square, 2), pool.submit(square, 3)};
    auto w = coexec::wait(more, coexec::return_when::all_completed, 30s);
    REQUIRE(w.done.size() == 2);
    REQUIRE(w.not_done.empty());

    auto all =
        coexec::sync_wait(coexec::when_all(pool.submit(square, 4), pool.submit(add, 1L, 2L)));
    REQUIRE(std::get<0>(all) == 16);
    REQUIRE(std::get<1>(all) == 3);
    std::vector<coexec::future<int>> race{pool.submit(slow_square, 0), pool.submit(square, 5)};
    auto [index, first] = coexec::sync_wait(coexec::when_any(race));
    REQUIRE(index < 2);
    REQUIRE(first.done());
}

TEST_CASE("co_await and results::next() work on mpi_pool inside coroutines", "[mpi][coroutine]") {
    mpi_pool pool{mpi(), {.slots_per_rank = 1}};
    REQUIRE(coexec::sync_wait(await_both(pool)) == 36 + 49);
    REQUIRE(coexec::sync_wait(sum_with_next(pool)) == 1 + 4 + 9 + 16 + 25);
}

TEST_CASE("a pipeline runs a stage on an mpi_pool", "[mpi][pipeline]") {
    mpi_pool pool{mpi(), {.slots_per_rank = 1}};
    std::vector<int> in(50);
    for (int i = 0; i < 50; ++i)
        in[static_cast<std::size_t>(i)] = i;
    auto out = coexec::pipeline(in).then(pool, square, {.concurrency = 4}).collect();
    REQUIRE(out.size() == 50);
    for (int i = 0; i < 50; ++i)
        REQUIRE(out[static_cast<std::size_t>(i)] == i * i);
}

TEST_CASE("stats count submitted, completed and failed tasks and the slots alive", "[mpi]") {
    mpi_pool pool{mpi(), {.slots_per_rank = 1}};
    for (int i = 0; i < 5; ++i)
        pool.submit(square, i).get_for(30s);
    auto bad = pool.submit([] {
        throw std::runtime_error("no");
        return 0;
    });
    bad.wait_for(30s);
    auto s = pool.stats();
    REQUIRE(s.submitted == 6);
    REQUIRE(s.completed == 5);
    REQUIRE(s.failed == 1);
    REQUIRE(s.queued == 0);
    REQUIRE(s.running == 0);
    REQUIRE(s.workers_alive == 2);
}

TEST_CASE("large arguments and results cross ranks whole", "[mpi]") {
    for (auto isolation : {coexec::mpi_isolation::process, coexec::mpi_isolation::thread}) {
        mpi_pool pool{mpi(), {.slots_per_rank = 1, .isolation = isolation}};
        std::vector<char> big(24u << 20);
        for (std::size_t i = 0; i < big.size(); ++i)
            big[i] = static_cast<char>(i * 7);
        auto a = pool.submit(flip, big);
        auto b = pool.submit(flip, std::vector<char>(100, 'x'));
        const auto back = a.get_for(60s);
        REQUIRE(back.size() == big.size());
        bool same = true;
        for (std::size_t i = 0; i < big.size() && same; ++i)
            same = back[i] == static_cast<char>(~big[i]);
        REQUIRE(same);
        REQUIRE(b.get_for(60s) == std::vector<char>(100, static_cast<char>(~'x')));
    }
}

TEST_CASE("process isolation runs tasks in local worker processes, thread isolation in the rank",
          "[mpi][isolation]") {
    {
        mpi_pool pool{mpi(), {.slots_per_rank = 1, .isolation = coexec::mpi_isolation::process}};
        REQUIRE_FALSE(pool.submit(in_mpi_process).get_for(30s));
    }
    mpi_pool pool{mpi(), {.slots_per_rank = 2, .isolation = coexec::mpi_isolation::thread}};
    REQUIRE(pool.submit(in_mpi_process).get_for(30s));
    REQUIRE(pool.map(square, std::vector<int>{1, 2, 3}).to_vector() == std::vector<int>{1, 4, 9});
}

TEST_CASE("the initializer runs in every worker before its tasks", "[mpi]") {
    for (auto isolation : {coexec::mpi_isolation::process, coexec::mpi_isolation::thread}) {
        mpi_pool pool{
            mpi(), {.slots_per_rank = 1, .isolation = isolation, .initializer = initialize_worker}};
        std::vector<coexec::future<int>> fs;
        for (int i = 0; i < 6; ++i)
            fs.push_back(pool.submit(initialized_value));
        for (auto& f : fs)
            REQUIRE(f.get_for(30s) == 42);
    }
}

TEST_CASE("pools are made one after another, never two at once", "[mpi]") {
    {
        mpi_pool first{mpi(), {.slots_per_rank = 1}};
        REQUIRE(first.submit(square, 3).get_for(30s) == 9);
        REQUIRE_THROWS_AS((mpi_pool{mpi()}), coexec::error);
    }
    mpi_pool second{mpi(), {.slots_per_rank = 1, .isolation = coexec::mpi_isolation::thread}};
    REQUIRE(second.submit(square, 4).get_for(30s) == 16);
}
