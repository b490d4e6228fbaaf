// Attacks on the shared primitives from process_pool tasks: a task killed
// while it waits, and a task that writes over the shared memory it was given
// while the parent uses it. Each asserts: the parent survives, the bad task's
// future ends within a bound, a task in flight beside it is unaffected, the
// pool serves new tasks, and shutdown returns.
#include <signal.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>

#include "coexec/process_mutex.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/shared_queue.hpp"
#include "coexec/shared_value.hpp"
#include "helpers.hpp"
#include "shm_attack.hpp"

using namespace std::chrono_literals;

namespace {

constexpr auto bound = 30s;

int pid_then_pop(coexec::shared_value<int> pid, coexec::shared_queue<int> q) {
    pid.store(static_cast<int>(::getpid()));
    return q.pop();
}

int pop_one(coexec::shared_queue<int> q) {
    return q.pop();
}

int slow_answer() {
    std::this_thread::sleep_for(200ms);
    return 42;
}

int twice(int x) {
    return 2 * x;
}

/// Writes random bytes over every block of `handle` for `ms` milliseconds.
template <class Handle>
int scribble_for(Handle handle, int ms) {
    auto blocks = coexec_test::raw_blocks_of(handle);
    std::mt19937_64 rng(static_cast<std::uint64_t>(::getpid()));
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    int rounds = 0;
    while (std::chrono::steady_clock::now() < until) {
        for (auto& b : blocks)
            coexec_test::scribble(b.bytes(), rng);
        ++rounds;
    }
    return rounds;
}

int scribble_queue(coexec::shared_queue<std::string> q, int ms) {
    return scribble_for(q, ms);
}
int scribble_mutex(coexec::process_mutex m, int ms) {
    return scribble_for(m, ms);
}

/// The pool still runs new tasks and shuts down.
void pool_still_serves(coexec::process_pool& pool) {
    CHECK(pool.submit(&twice, 21).get_for(bound) == 42);
    pool.shutdown(true);
}

}  // namespace

TEST_CASE("a worker SIGKILLed while blocked in shared_queue::pop does not stop later pushes",
          "[shared_memory][adversarial][process_pool]") {
    coexec::process_pool pool{{.max_workers = 2}};
    coexec::shared_queue<int> q(4);
    auto beside = pool.submit(&slow_answer);
    for (int round = 0; round < 3; ++round) {
        coexec::shared_value<int> pid(0);
        auto doomed = pool.submit(&pid_then_pop, pid, q);
        REQUIRE(coexec_test::eventually([&] { return pid.load() != 0; }));
        REQUIRE(coexec_test::wait_until_sleeping(pid.load()));
        ::kill(pid.load(), SIGKILL);
        CHECK_THROWS_AS(doomed.get_for(bound), coexec::worker_died);
        auto live = pool.submit(&pop_one, q);
        // The push must wake `live` wherever it sleeps (or find it not yet asleep).
        CHECK(q.push_for(100 + round, bound));
        CHECK(live.get_for(bound) == 100 + round);
    }
    CHECK(beside.get_for(bound) == 42);
    pool_still_serves(pool);
}

TEST_CASE("a task writing random bytes over a shared_queue cannot crash the parent using it",
          "[shared_memory][adversarial][process_pool]") {
    coexec::process_pool pool{{.max_workers = 2}};
    coexec::shared_queue<std::string> q(16, 256);
    for (int i = 0; i < 8; ++i)
        q.push("item " + std::to_string(i));
    auto beside = pool.submit(&slow_answer);
    auto bad = pool.submit(&scribble_queue, q, 400);
    int errors = 0, ops = 0;
    const auto until = std::chrono::steady_clock::now() + 600ms;
    while (std::chrono::steady_clock::now() < until) {
        try {
            (void)q.try_push("parent");
            (void)q.pop_for(1ms);
            (void)q.size();
            ++ops;
        } catch (const coexec::serialization_error&) {
            ++errors;
        }
    }
    INFO(ops << " clean rounds, " << errors << " serialization errors");
    CHECK(bad.get_for(bound) > 0);
    CHECK(beside.get_for(bound) == 42);
    pool_still_serves(pool);
}

TEST_CASE("a task writing over a process_mutex the parent holds cannot crash the parent",
          "[shared_memory][adversarial][process_pool]") {
    coexec::process_pool pool{{.max_workers = 2}};
    coexec::process_mutex m;
    auto beside = pool.submit(&slow_answer);
    m.lock();
    auto bad = pool.submit(&scribble_mutex, m, 200);
    CHECK(bad.get_for(bound) > 0);
    m.unlock();  // whatever the word holds now
    CHECK(m.try_lock());
    m.unlock();
    CHECK(beside.get_for(bound) == 42);
    pool_still_serves(pool);
}
