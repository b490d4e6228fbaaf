// Fault tests of coexec::process_pool: crashes, kills, deadlines, OOM,
// exceptions, broken pools, fork safety, leaks, a killed parent, chaos.
// Each is bounded in time (get_for) so a bug shows as a failure, not a hang.
#include <link.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "coexec/process_pool.hpp"
#include "coexec/shared_buffer.hpp"
#include "helpers.hpp"
#include "process_gate.hpp"
#include "process_tree.hpp"

using namespace std::chrono_literals;
using coexec::process_pool;
using coexec_test::pid_alive;

#if defined(__SANITIZE_ADDRESS__)
#define COEXEC_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COEXEC_TEST_ASAN 1
#endif
#endif

namespace {

int square(int x) {
    return x * x;
}
int twice(int x) {
    return 2 * x;
}
int pid_of() {
    return static_cast<int>(::getpid());
}
int do_abort() {
    std::abort();
}
int do_segv() {
    ::raise(SIGSEGV);
    return 0;
}
int do_exit3() {
    ::_exit(3);
}
int parent_pid() {
    return static_cast<int>(::getppid());
}
int do_sigkill() {
    ::raise(SIGKILL);  // no handler can see it: only the worker's wait status tells
    return 0;
}
int sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}
int stop_own_worker() {
    ::raise(SIGSTOP);  // default action in a worker: the whole process stops
    return 1;
}
[[noreturn]] void stop_forever() {
    for (;;)
        ::raise(SIGSTOP);
}
int stop_own_worker_forever() {
    stop_forever();
}
// Starts a child that waits for a pipe's end, then stops its whole process
// group (the worker and the child, as the kernel does to a background group
// reading the terminal), then closes the pipe and waits for the child: only
// a continue of the whole group lets it return.
int stop_group_with_child() {
    int p[2];
    if (::pipe(p) != 0) return -1;
    const pid_t child = ::fork();
    if (child == 0) {
        ::close(p[1]);
        char c;
        while (::read(p[0], &c, 1) > 0) {
        }
        ::_exit(0);
    }
    ::close(p[0]);
    if (child < 0) return -1;
    ::kill(0, SIGSTOP);
    ::close(p[1]);
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) ? 7 : -2;
}
// Publishes its pid in the buffer, then sleeps `ms` (to be stopped meanwhile).
int publish_pid_and_sleep_ms(coexec::shared_buffer b, int ms) {
    const int pid = static_cast<int>(::getpid());
    std::memcpy(b.data(), &pid, sizeof pid);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}
// Publishes its pid in the buffer, then sleeps (to be killed from outside).
int publish_pid_and_sleep(coexec::shared_buffer b) {
    const int pid = static_cast<int>(::getpid());
    std::memcpy(b.data(), &pid, sizeof pid);
    std::this_thread::sleep_for(30s);
    return 0;
}
#if !defined(COEXEC_TEST_ASAN)
std::size_t allocate_past_limit() {
    rlimit lim{512u << 20, 512u << 20};
    if (::setrlimit(RLIMIT_AS, &lim) != 0)
        throw std::system_error(errno, std::generic_category(), "setrlimit");
    std::vector<char> big(std::size_t{2} << 30, 'x');  // 2 GiB > 512 MiB
    return big.size();
}
#endif

// The pid a task published in `b` (publish_pid_and_sleep*), once it has;
// 0 if none came within 30 s (a shared_buffer starts zero-filled).
int published_pid(const coexec::shared_buffer& b) {
    int pid = 0;
    for (int i = 0; i < 30000 && pid == 0; ++i) {
        std::this_thread::sleep_for(1ms);
        std::memcpy(&pid, b.data(), sizeof pid);
    }
    return pid;
}

// Waits up to `limit`; fails the test (not hangs) if the future does not end.
template <class T>
void require_done(const coexec::future<T>& f, std::chrono::seconds limit = 30s) {
    REQUIRE(f.wait_for(limit));
}

template <class T>
coexec::worker_died require_worker_died(const coexec::future<T>& f) {
    require_done(f);
    try {
        f.get();
    } catch (const coexec::worker_died& e) {
        return e;
    } catch (const std::exception& e) {
        FAIL("expected worker_died, got: " << e.what());
    }
    FAIL("expected worker_died, got a value");
    throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("a task that aborts fails with worker_died naming SIGABRT and the pool goes on",
          "[process_pool][faults]") {
    process_pool pool{{.max_workers = 2}};
    auto other = pool.submit(sleep_ms, 200);
    auto f = pool.submit(do_abort);
    auto e = require_worker_died(f);
    REQUIRE(e.signal() == SIGABRT);
    REQUIRE(e.pid() > 0);
    REQUIRE(std::string(e.what()).find("SIGABRT") != std::string::npos);
    // It names the task: the function it was running.
    CHECK(e.task() == "(anonymous namespace)::do_abort");
    CHECK(std::string(e.what()).find("while running (anonymous namespace)::do_abort") !=
          std::string::npos);
    REQUIRE(other.get_for(30s) == 200);  // another task was not disturbed
    REQUIRE(pool.submit(square, 5).get_for(30s) == 25);
    REQUIRE(pool.stats().failed == 1);
}

TEST_CASE("a task that raises SIGSEGV fails with worker_died naming SIGSEGV",
          "[process_pool][faults]") {
    process_pool pool{{.max_workers = 2}};
    auto e = require_worker_died(pool.submit(do_segv));
    REQUIRE(e.signal() == SIGSEGV);
    REQUIRE(std::string(e.what()).find("SIGSEGV") != std::string::npos);
    CHECK(e.task() == "(anonymous namespace)::do_segv");
    // Another callable is named by its type; a map chunk says so.
    struct crasher {
        int operator()(int) const {
            ::raise(SIGSEGV);
            return 0;
        }
    };
    auto by_type = require_worker_died(pool.submit(crasher{}, 1));
    CHECK(by_type.task().find("crasher") != std::string::npos);
    auto chunk = pool.map(crasher{}, std::vector<int>{1, 2, 3}, {.chunksize = 3});
    try {
        for (int v : chunk)
            (void)v;
        FAIL("the chunk did not fail");
    } catch (const coexec::worker_died& d) {
        CHECK(d.task().find("crasher") != std::string::npos);
        CHECK(d.task().find("a map chunk of 3 elements") != std::string::npos);
    }
    REQUIRE(pool.submit(square, 6).get_for(30s) == 36);
}

TEST_CASE("a task that calls _exit(3) fails with worker_died carrying exit code 3",
          "[process_pool][faults]") {
    process_pool pool{{.max_workers = 1}};
    auto e = require_worker_died(pool.submit(do_exit3));
    REQUIRE(e.signal() == 0);
    REQUIRE(e.exit_code() == 3);
    REQUIRE(std::string(e.what()).find("status 3") != std::string::npos);
    REQUIRE(pool.submit(square, 7).get_for(30s) == 49);
    REQUIRE(pool.stats().respawns >= 1);
}

TEST_CASE("a worker SIGKILLed from outside fails its task with worker_died and an OOM hint",
          "[process_pool][faults]") {
    process_pool pool{{.max_workers = 2}};
    coexec::shared_buffer b(sizeof(int));
    auto f = pool.submit(publish_pid_and_sleep, b);
    const int pid = published_pid(b);
    REQUIRE(pid > 0);
    REQUIRE(::kill(pid, SIGKILL) == 0);
    auto e = require_worker_died(f);
    REQUIRE(e.pid() == pid);
    REQUIRE(e.signal() == SIGKILL);
    REQUIRE(std::string(e.what()).find("out-of-memory") != std::string::npos);
    REQUIRE(pool.submit(square, 8).get_for(30s) == 64);
}

TEST_CASE("allocating past RLIMIT_AS arrives as std::bad_alloc or as worker_died",
          "[process_pool][faults]") {
#if defined(COEXEC_TEST_ASAN)
    WARN(
        "skipped under AddressSanitizer: it reserves far more address space than RLIMIT_AS allows");
#else
    process_pool pool{{.max_workers = 1}};
    auto f = pool.submit(allocate_past_limit);
    require_done(f);
    bool ok = false;
    try {
        f.get();
    } catch (const std::bad_alloc&) {
        ok = true;
    } catch (const coexec::worker_died&) {
        ok = true;
    }
    REQUIRE(ok);
    REQUIRE(pool.submit(square, 9).get_for(30s) == 81);
#endif
}

TEST_CASE("a task past its deadline fails with deadline_exceeded and the pool goes on",
          "[process_pool][faults][deadline]") {
    process_pool pool{{.max_workers = 1}};
    auto t0 = std::chrono::steady_clock::now();
    auto f = pool.submit_with({.timeout = 100ms}, sleep_ms, 30'000);
    require_done(f);
    REQUIRE_THROWS_AS(f.get(), coexec::deadline_exceeded);
    REQUIRE(std::chrono::steady_clock::now() - t0 < 5s);
    REQUIRE(pool.submit(square, 10).get_for(30s) == 100);
}

TEST_CASE("the pool's task_timeout applies to every task", "[process_pool][faults][deadline]") {
    // Long enough for `fast` on a loaded machine (its clock starts at
    // dispatch, which may include its worker's start); `slow` would take 30 s.
    process_pool pool{{.max_workers = 2, .task_timeout = 2s}};
    auto slow = pool.submit(sleep_ms, 30'000);
    auto fast = pool.submit(sleep_ms, 10);
    require_done(slow);
    REQUIRE_THROWS_AS(slow.get(), coexec::deadline_exceeded);
    REQUIRE(fast.get_for(30s) == 10);
    REQUIRE(pool.submit(square, 11).get_for(30s) == 121);
}

TEST_CASE("break_pool fails every pending future with broken_pool", "[process_pool][faults]") {
    process_pool pool{{.max_workers = 1, .on_worker_death = coexec::worker_death::break_pool}};
    // The worker is held until all are submitted: a crash before the last
    // submit would break the pool under it (submit throws broken_pool then).
    coexec_test::process_gate gate;
    auto held = pool.submit(&coexec_test::wait_at_process_gate, gate.buffer());
    auto crash = pool.submit(do_abort);
    std::vector<coexec::future<int>> queued;
    for (int i = 0; i < 5; ++i)
        queued.push_back(pool.submit(sleep_ms, 1));
    gate.open();
    REQUIRE(held.get_for(30s));
    require_done(crash);
    REQUIRE_THROWS_AS(crash.get(), coexec::broken_pool);
    REQUIRE_THROWS_WITH(crash.get(), Catch::Contains("SIGABRT"));
    for (auto& q : queued) {
        require_done(q);
        REQUIRE_THROWS_AS(q.get(), coexec::broken_pool);
    }
    REQUIRE_THROWS_AS(pool.submit(square, 1), coexec::broken_pool);
}

namespace {
struct custom_error : std::exception {
    const char* what() const noexcept override { return "custom trouble"; }
};
template <class E>
int throw_it() {
    throw E("message of " + std::string(typeid(E).name()));
}
int throw_bad_alloc() {
    throw std::bad_alloc();
}
int throw_system_error() {
    throw std::system_error(ENOENT, std::generic_category(), "open(/nope)");
}
int throw_custom() {
    throw custom_error();
}
int throw_int() {
    throw 42;
}

template <class E>
void check_round_trip(process_pool& pool) {
    auto f = pool.submit(throw_it<E>);
    require_done(f);
    try {
        f.get();
        FAIL("no exception");
    } catch (const E& e) {
        REQUIRE(typeid(e) == typeid(E));
        REQUIRE(std::string(e.what()) == "message of " + std::string(typeid(E).name()));
    }
}
}  // namespace

TEST_CASE("standard exceptions thrown in a worker arrive as the same type with the same what()",
          "[process_pool][faults][exceptions]") {
    process_pool pool{{.max_workers = 2}};
    check_round_trip<std::logic_error>(pool);
    check_round_trip<std::invalid_argument>(pool);
    check_round_trip<std::domain_error>(pool);
    check_round_trip<std::length_error>(pool);
    check_round_trip<std::out_of_range>(pool);
    check_round_trip<std::runtime_error>(pool);
    check_round_trip<std::range_error>(pool);
    check_round_trip<std::overflow_error>(pool);
    check_round_trip<std::underflow_error>(pool);
    REQUIRE_THROWS_AS(pool.submit(throw_bad_alloc).get_for(30s), std::bad_alloc);
    try {
        pool.submit(throw_system_error).get_for(30s);
        FAIL("no exception");
    } catch (const std::system_error& e) {
        REQUIRE(e.code().value() == ENOENT);
        REQUIRE(std::string(e.what()) ==
                std::system_error(ENOENT, std::generic_category(), "open(/nope)").what());
    }
    try {
        pool.submit(throw_custom).get_for(30s);
        FAIL("no exception");
    } catch (const coexec::remote_error& e) {
        REQUIRE(e.type_name().find("custom_error") != std::string::npos);
        REQUIRE(e.original_what() == "custom trouble");
    }
    REQUIRE_THROWS_AS(pool.submit(throw_int).get_for(30s), coexec::remote_error);
    REQUIRE(pool.stats().failed == 13);
    REQUIRE(pool.stats().respawns == 0);  // exceptions do not kill workers
}

namespace {
std::mutex g_held_elsewhere;
int take_the_mutex() {
    std::lock_guard lock(g_held_elsewhere);
    return 1;
}
}  // namespace

TEST_CASE(
    "workers start from the fork server: a mutex held by another thread does not deadlock a task",
    "[process_pool][faults][fork_safety]") {
    REQUIRE(process_pool::prepare());  // while single-threaded
    std::atomic<bool> locked{false}, release{false};
    std::thread holder([&] {
        std::lock_guard lock(g_held_elsewhere);
        locked = true;
        while (!release)
            std::this_thread::sleep_for(1ms);
    });
    while (!locked)
        std::this_thread::sleep_for(1ms);
    {
        // Workers start while the mutex is held; had they been forked from
        // this (multithreaded) process, their copy would be locked forever.
        process_pool pool{{.max_workers = 2, .max_tasks_per_child = 1}};
        for (int i = 0; i < 4; ++i) {
            auto f = pool.submit(take_the_mutex);
            REQUIRE(f.wait_for(20s));
            REQUIRE(f.get() == 1);
        }
    }
    release = true;
    holder.join();
}

TEST_CASE("a worker forked while another thread walks the loaded modules runs its tasks",
          "[process_pool][faults][fork_safety]") {
    // glibc's fork does not reset the lock dl_iterate_phdr holds: a forked
    // worker that walked the modules itself (to find a task's function) would
    // wait forever for a walk under way in another thread at the fork. Here a
    // thread holds that lock most of the time while workers are forked.
    std::atomic<bool> stop{false};
    std::thread walker([&] {
        while (!stop.load()) {
            ::dl_iterate_phdr(
                [](dl_phdr_info*, std::size_t, void*) -> int {
                    std::this_thread::sleep_for(200us);
                    return 0;
                },
                nullptr);
            std::this_thread::sleep_for(20us);  // lets the pool's own walks in
        }
    });
    bool all_ran = true;
    {
        process_pool pool{
            {.max_workers = 2, .max_tasks_per_child = 1, .start = coexec::start_method::fork}};
        for (int i = 0; i < 8 && all_ran; ++i) {
            auto f = pool.submit(square, i);
            all_ran = f.wait_for(20s) && f.get() == i * i;
        }
        // A hung worker would hold the pool's shutdown forever: kill it so
        // that the test fails instead.
        if (!all_ran) pool.terminate_workers();
    }
    stop = true;
    walker.join();
    REQUIRE(all_ran);
}

TEST_CASE("no descriptors or zombies are left after a pool is destroyed",
          "[process_pool][faults][leaks]") {
    REQUIRE(process_pool::prepare());
    for (auto method : {coexec::start_method::fork_server, coexec::start_method::fork}) {
        const std::size_t before = coexec_test::fd_count(::getpid());
        std::set<int> pids;
        {
            process_pool pool{{.max_workers = 2, .max_tasks_per_child = 3, .start = method}};
            coexec::shared_buffer b(64);
            for (int i = 0; i < 12; ++i)
                pids.insert(pool.submit(pid_of).get_for(30s));
            require_done(pool.submit(do_segv));
            pool.submit([](coexec::shared_buffer x) { return x; }, b).get_for(30s);
            REQUIRE(pool.submit(square, 3).get_for(30s) == 9);
        }
        REQUIRE(coexec_test::fd_count(::getpid()) == before);
        REQUIRE(pids.size() >= 4);
        // Direct children were reaped by the pool; the fork server reaps its own.
        auto deadline = std::chrono::steady_clock::now() + 2s;
        bool any = true;
        while (any && std::chrono::steady_clock::now() < deadline) {
            any = false;
            for (int pid : pids)
                any |= coexec_test::status_of(pid).has_value();  // zombies count
            if (any) std::this_thread::sleep_for(10ms);
        }
        REQUIRE_FALSE(any);
    }
}

TEST_CASE("workers do not outlive a parent killed with SIGKILL",
          "[process_pool][faults][orphans]") {
    int out[2];
    REQUIRE(::pipe(out) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::dup2(out[1], 1);
        ::close(out[0]);
        ::close(out[1]);
        ::execl(COEXEC_ORPHAN_HELPER, COEXEC_ORPHAN_HELPER, static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(out[1]);
    FILE* in = ::fdopen(out[0], "r");
    std::vector<int> pids;
    char line[64];
    bool ready = false;
    while (std::fgets(line, sizeof line, in) != nullptr) {
        if (std::string(line) == "ready\n") {
            ready = true;
            break;
        }
        pids.push_back(std::atoi(line));
    }
    REQUIRE(ready);
    REQUIRE(pids.size() == 3);
    for (int pid : pids)
        REQUIRE(pid_alive(pid));
    REQUIRE(::kill(child, SIGKILL) == 0);
    ::waitpid(child, nullptr, 0);
    std::fclose(in);
    for (int pid : pids)
        REQUIRE(coexec_test::eventually([pid] { return !pid_alive(pid); }));
}

TEST_CASE("chaos: 20000 tasks while workers are killed at random and every future ends",
          "[process_pool][faults][chaos]") {
    process_pool pool{{.max_workers = 2}};
    // Every 25 ms, a worker seen at least 300 ms ago (the killer's default):
    // one younger may still be starting (slow under the sanitizers), and five
    // deaths before ready in a row would rightly break the pool.
    coexec_test::worker_killer killer(::getpid(), 25ms, 12345);
    // At least 20000 tasks, and more until the killer has struck 10 times
    // (it spares young workers, so a fast build could finish before any kill).
    std::vector<coexec::future<int>> fs;
    for (int round = 0; round < 2000 && (fs.size() < 20000 || killer.kills() < 10); ++round) {
        for (int k = 0; k < 1000; ++k)
            fs.push_back(pool.submit(twice, static_cast<int>(fs.size())));
        if (fs.size() >= 20000) std::this_thread::sleep_for(5ms);  // let the killer work
    }
    const int n = static_cast<int>(fs.size());
    int ok = 0, died = 0, other = 0, hung = 0;
    std::string other_what;
    for (int i = 0; i < n; ++i) {
        auto& f = fs[static_cast<std::size_t>(i)];
        if (!f.wait_for(60s)) {
            ++hung;
            continue;
        }
        try {
            if (f.get() == 2 * i) {
                ++ok;
            } else {
                ++other;
            }
        } catch (const coexec::worker_died&) {
            ++died;
        } catch (const std::exception& e) {
            ++other;
            other_what = e.what();
        }
    }
    const int kills = killer.stop();
    INFO("ok " << ok << " died " << died << " other " << other << " (" << other_what << ") kills "
               << kills);
    REQUIRE(hung == 0);
    REQUIRE(other == 0);
    REQUIRE(ok + died == n);
    REQUIRE(died <= kills);
    REQUIRE(kills >= 10);
    REQUIRE(pool.submit(square, 12).get_for(30s) == 144);
}

TEST_CASE("pools made from several threads at once each get their own workers' death reports",
          "[process_pool][faults][fork_server]") {
    // The first pool makes the fork server (the program is single-threaded
    // here); the others register with it from four threads at once, under
    // ids the program chooses, and each must hear of its own worker's death
    // with its status (a report sent to another pool leaves it unknown).
    process_pool first{{.max_workers = 1}};
    REQUIRE(first.submit(square, 3).get_for(30s) == 9);
    std::atomic<int> killed{0};
    std::atomic<int> served{0};
    std::atomic<int> by_server{0};
    std::barrier all_made(4);  // every round, the four pools live at once
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int k = 0; k < 6; ++k) {
                process_pool pool{{.max_workers = 2}};
                all_made.arrive_and_wait();
                auto f = pool.submit(do_sigkill);
                try {
                    (void)f.get_for(30s);
                } catch (const coexec::worker_died& e) {
                    if (e.signal() == SIGKILL) killed.fetch_add(1);
                } catch (...) {
                }
                if (pool.submit(square, k).get_for(30s) == k * k) served.fetch_add(1);
                // Still forked by the fork server (a pool that took another's
                // registration for the fork server's death would spawn).
                if (pool.submit(parent_pid).get_for(30s) != ::getpid()) by_server.fetch_add(1);
            }
        });
    }
    for (auto& t : threads)
        t.join();
    CHECK(killed.load() == 24);
    CHECK(served.load() == 24);
    CHECK(by_server.load() == 24);
}

TEST_CASE("a stopped worker is continued, and one stopped again and again is killed, never hangs",
          "[process_pool][faults][stop]") {
    // No task_timeout: nothing but the pool's watch on its workers ends these.
    for (auto m : {coexec::start_method::fork_server, coexec::start_method::fork,
                   coexec::start_method::spawn}) {
        INFO("start method " << static_cast<int>(m));
        // Each case on a fresh worker: a worker stopped 3 times within 2 s
        // is killed, whatever stopped it.
        // A task that stops its own worker once goes on (as after a job's
        // suspension and resumption as a whole).
        {
            process_pool pool{{.max_workers = 1, .start = m}};
            REQUIRE(pool.submit(stop_own_worker).get_for(30s) == 1);
        }
        {
            process_pool pool{{.max_workers = 1, .start = m}};
            REQUIRE(pool.submit(stop_group_with_child).get_for(30s) == 7);
        }
        // Stopped from outside while it runs a task: terminal job control's
        // SIGTSTP, or SIGSTOP. Its task finishes.
        for (int sig : {SIGTSTP, SIGSTOP}) {
            process_pool pool{{.max_workers = 1, .start = m}};
            coexec::shared_buffer b(sizeof(int));  // zero-filled
            auto f = pool.submit(publish_pid_and_sleep_ms, b, 300);
            const int pid = published_pid(b);
            REQUIRE(pid > 0);
            REQUIRE(::kill(pid, sig) == 0);
            REQUIRE(f.get_for(30s) == 300);
        }

        process_pool pool{{.max_workers = 1, .start = m}};
        // A task that stops its worker without end (as one reading the
        // terminal is stopped at each try) fails, naming the stop.
        auto e = require_worker_died(pool.submit(stop_own_worker_forever));
        CHECK(e.signal() == SIGKILL);
        CHECK(e.cause().find("stopped by SIGSTOP") != std::string::npos);
        CHECK(std::string(e.what()).find("stopped by SIGSTOP") != std::string::npos);
        REQUIRE(pool.submit(square, 4).get_for(30s) == 16);

        // Stopped while idle: the next task is not lost to it.
        const int idle = pool.submit(pid_of).get_for(30s);
        REQUIRE(::kill(idle, SIGSTOP) == 0);
        REQUIRE(pool.submit(square, 6).get_for(30s) == 36);
        CHECK(pool.stats().failed == 1);
    }
}

TEST_CASE("an initializer that stops its worker without end breaks the pool, never hangs",
          "[process_pool][faults][stop]") {
    for (auto m : {coexec::start_method::fork_server, coexec::start_method::fork,
                   coexec::start_method::spawn}) {
        INFO("start method " << static_cast<int>(m));
        process_pool pool{{.max_workers = 1, .initializer = stop_forever, .start = m}};
        auto f = pool.submit(square, 2);
        require_done(f);
        CHECK_THROWS_AS(f.get(), coexec::broken_pool);
    }
}
