#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "coexec/process_mutex.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/shared_queue.hpp"
#include "coexec/shared_value.hpp"

using namespace std::chrono_literals;

namespace {

// Python's classic: increment a shared counter under its lock, many times.
void add_under_lock(coexec::shared_value<long> counter, int times) {
    for (int i = 0; i < times; ++i) {
        std::lock_guard g(counter.mutex());
        counter.value() += 1;
    }
}

void add_atomically(coexec::shared_value<long> counter, int times) {
    for (int i = 0; i < times; ++i)
        counter.fetch_add(1);
}

int produce(coexec::shared_queue<std::string> q, int from, int n) {
    for (int i = 0; i < n; ++i)
        q.push("item " + std::to_string(from + i));
    return n;
}

int lock_and_die(coexec::process_mutex m) {
    m.lock();
    ::raise(SIGKILL);
    return 0;
}

}  // namespace

TEST_CASE("workers increment a shared_value under its process_mutex without losing updates",
          "[shared_memory]") {
    coexec::process_pool pool{{.max_workers = 2}};
    coexec::shared_value<long> counter(0);
    std::vector<coexec::future<void>> fs;
    for (int k = 0; k < 4; ++k)
        fs.push_back(pool.submit(add_under_lock, counter, 2000));
    add_under_lock(counter, 2000);  // the parent takes part too
    for (auto& f : fs)
        f.get();
    CHECK(counter.load() == 10'000);
}

TEST_CASE("shared_value fetch_add is atomic across processes", "[shared_memory]") {
    coexec::process_pool pool{{.max_workers = 2}};
    coexec::shared_value<long> counter;
    auto a = pool.submit(add_atomically, counter, 20'000);
    auto b = pool.submit(add_atomically, counter, 20'000);
    a.get();
    b.get();
    CHECK(counter.load() == 40'000);
    counter.store(5);
    CHECK(counter.value() == 5);
}

TEST_CASE("a shared_queue carries items from worker processes to the parent", "[shared_memory]") {
    coexec::process_pool pool{{.max_workers = 2}};
    coexec::shared_queue<std::string> q(8);  // smaller than the item count: producers block
    auto a = pool.submit(produce, q, 0, 100);
    auto b = pool.submit(produce, q, 100, 100);
    std::vector<std::string> got;
    for (int i = 0; i < 200; ++i)
        got.push_back(q.pop());
    CHECK(a.get() == 100);
    CHECK(b.get() == 100);
    std::sort(got.begin(), got.end());
    CHECK(std::unique(got.begin(), got.end()) == got.end());
    CHECK(got.size() == 200);
    CHECK_FALSE(q.try_pop());
}

TEST_CASE("shared_queue keeps FIFO order, bounds and timeouts", "[shared_memory]") {
    coexec::shared_queue<int> q(3);
    CHECK(q.capacity() == 3);
    CHECK(q.try_push(1));
    CHECK(q.try_push(2));
    CHECK(q.try_push(3));
    CHECK_FALSE(q.try_push(4));
    CHECK_FALSE(q.push_for(4, 20ms));
    CHECK(q.size() == 3);
    CHECK(q.pop() == 1);
    q.push(4);
    CHECK(q.pop() == 2);
    CHECK(q.pop() == 3);
    CHECK(q.pop() == 4);
    CHECK_FALSE(q.pop_for(20ms));
    CHECK(q.push_for(5, 20ms));
    CHECK(q.try_pop() == 5);
    CHECK_FALSE(q.try_pop());
    CHECK_THROWS_AS(coexec::shared_queue<int>(0), std::invalid_argument);
    coexec::shared_queue<std::string> small(2, 8);
    CHECK_THROWS_AS(small.push(std::string(100, 'x')), coexec::serialization_error);
    coexec::shared_queue<int> none;
    CHECK_FALSE(none.valid());
    CHECK_THROWS_AS(none.push(1), std::logic_error);
}

TEST_CASE("a process_mutex held by a killed worker is taken over, not deadlocked",
          "[shared_memory]") {
    coexec::process_pool pool{{.max_workers = 1}};
    coexec::process_mutex m;
    auto f = pool.submit(lock_and_die, m);
    CHECK_THROWS_AS(f.get(), coexec::worker_died);
    m.lock();  // would block forever with a plain process-shared mutex
    CHECK(m.owner_died());
    m.unlock();
    m.lock();
    CHECK_FALSE(m.owner_died());
    m.unlock();
}

TEST_CASE("a forked child and the parent share one process_mutex", "[shared_memory]") {
    coexec::process_mutex m;
    coexec::shared_value<int> stage(0);
    m.lock();
    pid_t pid = ::fork();
    if (pid == 0) {
        // Child: blocks until the parent unlocks, then records that it got in.
        m.lock();
        stage.store(2);
        m.unlock();
        ::_exit(0);
    }
    std::this_thread::sleep_for(20ms);
    CHECK(stage.load() == 0);  // the child is still waiting
    stage.store(1);
    m.unlock();
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(stage.load() == 2);
}

TEST_CASE("a small shared_queue between many threads loses and duplicates nothing",
          "[shared_memory]") {
    coexec::shared_queue<int> q(4);
    constexpr int producers = 4, per_producer = 3000, consumers = 3;
    std::vector<std::thread> threads;
    std::vector<std::vector<int>> got(consumers);
    for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&q, p] {
            for (int i = 0; i < per_producer; ++i)
                q.push(p * per_producer + i);
        });
    }
    for (int c = 0; c < consumers; ++c) {
        threads.emplace_back([&q, &got, c] {
            // -1 ends a consumer (one per consumer, pushed after the producers).
            for (int v = q.pop(); v != -1; v = q.pop())
                got[static_cast<std::size_t>(c)].push_back(v);
        });
    }
    for (int p = 0; p < producers; ++p)
        threads[static_cast<std::size_t>(p)].join();
    for (int c = 0; c < consumers; ++c)
        q.push(-1);
    for (std::size_t t = producers; t < threads.size(); ++t)
        threads[t].join();
    std::vector<int> all;
    for (auto& g : got)
        all.insert(all.end(), g.begin(), g.end());
    std::sort(all.begin(), all.end());
    REQUIRE(all.size() == std::size_t{producers * per_producer});
    for (int i = 0; i < producers * per_producer; ++i)
        CHECK(all[static_cast<std::size_t>(i)] == i);
}
