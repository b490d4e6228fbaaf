// Where io completions resume: on the worker whose reactor saw them, or, when
// that worker is saturated, queued where an idle worker of the same pool can
// steal them, and half given outright to a worker that sleeps, so a burst of
// io started on one busy worker is resumed by all of them; and io whose
// resumptions sit in those queues still ends every future at cancellation and
// shutdown. Runs on both backends (see tests/CMakeLists.txt).
#include <fcntl.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>
#include <vector>

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

namespace {

/// Holds whichever worker runs hold() until release() (blocking, on purpose).
struct worker_hold {
    std::atomic<bool> running{false};
    std::atomic<bool> released{false};
    void hold() {
        running = true;
        while (!released.load())
            std::this_thread::sleep_for(1ms);
    }
    void release() { released = true; }
};

struct pipe_pair {
    std::array<int, 2> fd{-1, -1};
    pipe_pair() {
        if (::pipe2(fd.data(), O_CLOEXEC) != 0)
            throw std::system_error(errno, std::generic_category());
    }
    ~pipe_pair() {
        ::close(fd[0]);
        ::close(fd[1]);
    }
};

/// Reads started in a burst on one worker: worker B is held while `n`
/// coroutines each start a read on worker A (on `n` empty pipes), then A is
/// held too, so the completions wait in A's reactor until the test lets go.
struct burst_on_one_worker {
    static constexpr int n = 8;
    worker_hold hold_b, hold_a;  // before the pool: they outlive its workers
    thread_pool pool{{.max_workers = 2}};
    coexec::future<void> fb, fa;
    std::vector<pipe_pair> pipes = std::vector<pipe_pair>(n);
    std::mutex m;
    std::set<std::thread::id> started_on;
    std::atomic<int> started{0};

    // Lets both workers go, so the pool's destructor can join them whatever
    // a failed assertion skipped.
    ~burst_on_one_worker() {
        hold_a.release();
        hold_b.release();
    }

    /// Every reader calls this first.
    void note_start() {
        {
            std::lock_guard lock(m);
            started_on.insert(std::this_thread::get_id());
        }
        started.fetch_add(1);
    }

    /// Starts `reader(fd)` on every pipe's read end, all on worker A, and
    /// returns with A held.
    template <class Reader>
    std::vector<coexec::future<char>> start(Reader reader) {
        fb = pool.submit([this] { hold_b.hold(); });
        REQUIRE(eventually([&] { return hold_b.running.load(); }));
        std::vector<coexec::future<char>> fs;
        for (auto& p : pipes)
            fs.push_back(pool.submit(reader, p.fd[0]));
        REQUIRE(eventually([&] { return started.load() == n; }));
        fa = pool.submit([this] { hold_a.hold(); });
        REQUIRE(eventually([&] { return hold_a.running.load(); }));
        return fs;
    }

    void write_every_pipe() {
        for (auto& p : pipes)
            REQUIRE(::write(p.fd[1], "x", 1) == 1);
    }
};

/// True if `f` ends cancelled within `bound`: cancelled_error if it was
/// cancelled before it ran, operation_canceled from the io it awaited else.
bool ends_cancelled(coexec::future<void>& f, std::chrono::seconds bound) {
    try {
        f.get_for(bound);
    } catch (const coexec::cancelled_error&) {
        return true;
    } catch (const std::system_error& e) {
        return e.code().value() == ECANCELED;
    } catch (...) {
    }
    return false;
}

/// Loops on zero-length sleeps, which every backend completes at its next
/// reap (never inline): 64 of them keep both workers saturated, so their
/// resumptions pass through the worker queues.
task<void> ticker(std::atomic<long>& ticks) {
    for (;;) {
        co_await io::sleep_for(0ms);
        ticks.fetch_add(1, std::memory_order_relaxed);
    }
}

// Counted by the pool's test hook: completions given to a sleeping worker,
// and workers going to sleep.
std::atomic<int> g_gifts{0};
std::atomic<int> g_sleeps{0};
void count_gifts(coexec::detail::pool_event e, std::size_t) noexcept {
    if (e == coexec::detail::pool_event::gave_completions) g_gifts.fetch_add(1);
    if (e == coexec::detail::pool_event::about_to_sleep) g_sleeps.fetch_add(1);
}

struct gift_counter {
    gift_counter() {
        g_gifts = 0;
        g_sleeps = 0;
        coexec::detail::set_pool_test_hook(count_gifts);
    }
    ~gift_counter() { coexec::detail::set_pool_test_hook(nullptr); }
    gift_counter(const gift_counter&) = delete;
    gift_counter& operator=(const gift_counter&) = delete;
};

}  // namespace

TEST_CASE("io completions of coroutines that all started on one worker are resumed on both",
          "[io][scheduling]") {
    // The 8 completions wait in A's reactor (burst_on_one_worker), so A's
    // next reap finds them together. The first coroutine resumed holds its
    // worker until a coroutine has resumed on another thread: only a worker
    // that takes completions queued by A can do that. (Were they resumed
    // inline on A, it would give up after 10 s.)
    burst_on_one_worker burst;
    std::condition_variable cv;
    std::set<std::thread::id> resumed_on;
    bool gave_up = false;
    auto fs = burst.start([&](int fd) -> task<char> {
        burst.note_start();
        char c = 0;
        co_await io::read(fd, io::mutable_buffer(&c, 1));
        std::unique_lock lock(burst.m);
        resumed_on.insert(std::this_thread::get_id());
        cv.notify_all();
        if (!cv.wait_for(lock, 10s, [&] { return resumed_on.size() > 1 || gave_up; }))
            gave_up = true;
        co_return c;
    });
    burst.write_every_pipe();
    // A worker shares its completions only when saturated, busy for 1 ms
    // without running out of work (lib/thread_pool): A is, held this long.
    std::this_thread::sleep_for(20ms);
    burst.hold_b.release();
    burst.hold_a.release();
    for (auto& f : fs)
        CHECK(f.get_for(30s) == 'x');
    burst.fa.get_for(30s);
    burst.fb.get_for(30s);
    std::lock_guard lock(burst.m);
    CHECK(burst.started_on.size() == 1);
    CHECK(resumed_on.size() == 2);
    CHECK_FALSE(gave_up);
}

TEST_CASE("an io operation resumes its coroutine on a worker of the pool that started it",
          "[io][scheduling]") {
    std::mutex m;
    std::set<std::thread::id> workers;
    thread_pool pool{{.max_workers = 3, .initializer = [&] {
                          std::lock_guard lock(m);
                          workers.insert(std::this_thread::get_id());
                      }}};
    int zero = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
    REQUIRE(zero >= 0);
    std::vector<coexec::future<std::vector<std::thread::id>>> fs;
    for (int i = 0; i < 16; ++i) {
        fs.push_back(pool.submit([zero]() -> task<std::vector<std::thread::id>> {
            std::vector<std::thread::id> seen{std::this_thread::get_id()};
            char buf[256];
            for (int k = 0; k < 50; ++k) {
                co_await io::read(zero, io::mutable_buffer(buf, sizeof buf), 0);
                seen.push_back(std::this_thread::get_id());
            }
            co_return seen;
        }));
    }
    std::size_t resumptions = 0, on_workers = 0;
    for (auto& f : fs) {
        for (std::thread::id id : f.get_for(30s)) {
            ++resumptions;
            std::lock_guard lock(m);
            on_workers += workers.count(id);
        }
    }
    ::close(zero);
    CHECK(resumptions == 16 * 51);
    CHECK(on_workers == resumptions);
}

TEST_CASE("cancelling coroutines whose io completions are queued ends every future",
          "[io][scheduling][cancel]") {
    // 64 coroutines loop on sleeps that are due at once: at any moment many
    // completions wait in the workers' queues rather than in a reactor.
    thread_pool pool{{.max_workers = 2}};
    std::atomic<long> ticks{0};
    std::vector<coexec::future<void>> fs;
    for (int i = 0; i < 64; ++i)
        fs.push_back(pool.submit(ticker, std::ref(ticks)));
    REQUIRE(eventually([&] { return ticks.load() > 10'000; }, 30s));
    for (auto& f : fs)
        f.cancel();
    int cancelled = 0;
    for (auto& f : fs)
        cancelled += ends_cancelled(f, 30s) ? 1 : 0;
    CHECK(cancelled == 64);
}

TEST_CASE("shutdown(cancel_futures) with io completions queued ends every future",
          "[io][scheduling][shutdown]") {
    std::atomic<long> ticks{0};
    std::vector<coexec::future<void>> fs;
    auto t0 = std::chrono::steady_clock::now();
    {
        thread_pool pool{{.max_workers = 2}};
        for (int i = 0; i < 64; ++i)
            fs.push_back(pool.submit(ticker, std::ref(ticks)));
        REQUIRE(eventually([&] { return ticks.load() > 10'000; }, 30s));
        pool.shutdown(true, true);
    }
    CHECK(std::chrono::steady_clock::now() - t0 < 60s);
    int cancelled = 0;
    for (auto& f : fs)
        cancelled += ends_cancelled(f, 1s) ? 1 : 0;
    CHECK(cancelled == 64);
}

TEST_CASE("shutdown(cancel_futures) ends a coroutine whose file reads never suspend",
          "[io][scheduling][shutdown]") {
    // On the epoll backend a regular file's read is done at once, inside
    // start: the coroutine never suspends and its worker never reaps, so the
    // pool's stop must reach it through its next read. (The loop gives up
    // after 20 s so that a miss fails the test instead of hanging it.)
    temp_dir dir;
    const std::string path = dir.file("data");
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, "0123456789abcdef", 16) == 16);
    std::atomic<long> reads{0};
    auto reader = [&]() -> task<void> {
        const auto give_up = std::chrono::steady_clock::now() + 20s;
        char buf[16];
        while (std::chrono::steady_clock::now() < give_up) {
            co_await io::read(fd, io::mutable_buffer(buf, sizeof buf), 0);
            reads.fetch_add(1, std::memory_order_relaxed);
        }
    };
    coexec::future<void> f;
    {
        thread_pool pool{{.max_workers = 2}};
        f = pool.submit(reader);
        REQUIRE(eventually([&] { return reads.load() > 1000; }, 30s));
        pool.shutdown(true, true);
    }
    CHECK(ends_cancelled(f, 1s));
    ::close(fd);
}

TEST_CASE(
    "a saturated worker gives half of its finished io to a sleeping worker, and all of it resumes",
    "[io][scheduling]") {
    // The 8 completions wait in A's reactor (burst_on_one_worker); B is let
    // go first and sleeps (it has nothing to do). A, saturated when it reaps
    // them, puts the back half in B's own queue and wakes it (once: the hook
    // counts it). Which worker resumes them then is a race (A, out of work,
    // may steal them back before B is awake: that is work-conserving); that
    // every one resumes is not.
    gift_counter gifts;
    burst_on_one_worker burst;
    auto fs = burst.start([&](int fd) -> task<char> {
        burst.note_start();
        char c = 0;
        co_await io::read(fd, io::mutable_buffer(&c, 1));
        co_return c;
    });
    const int sleeps_before = g_sleeps.load();
    burst.hold_b.release();
    burst.fb.get_for(30s);
    // A is busy: whoever goes to sleep now is B.
    REQUIRE(eventually([&] { return g_sleeps.load() > sleeps_before; }));
    burst.write_every_pipe();
    // Saturated means busy for 1 ms without running out of work (lib/thread_pool).
    std::this_thread::sleep_for(20ms);
    burst.hold_a.release();
    for (auto& f : fs)
        CHECK(f.get_for(30s) == 'x');
    burst.fa.get_for(30s);
    CHECK(g_gifts.load() == 1);
    std::lock_guard lock(burst.m);
    CHECK(burst.started_on.size() == 1);
}

TEST_CASE(
    "coroutines looping on io over 4 workers that fall asleep and are given completions "
    "all end with every resumption",
    "[io][scheduling][stress]") {
    // 48 coroutines on 4 workers, each 300 zero-length sleeps: workers
    // saturate, fall asleep, are given completions and woken, steal; no
    // resumption may be lost or stranded in a sleeping worker's queue.
    gift_counter gifts;
    for (int round = 0; round < 10; ++round) {
        thread_pool pool{{.max_workers = 4}};
        std::vector<coexec::future<int>> fs;
        for (int i = 0; i < 48; ++i) {
            fs.push_back(pool.submit([]() -> task<int> {
                int ticks = 0;
                for (int k = 0; k < 300; ++k) {
                    co_await io::sleep_for(0ms);
                    ++ticks;
                }
                co_return ticks;
            }));
        }
        for (auto& f : fs)
            REQUIRE(f.get_for(60s) == 300);
    }
    INFO("completions given to a sleeping worker: " << g_gifts.load());
    SUCCEED();
}

TEST_CASE("a job waiting for its own child is not starved by io that keeps the other worker busy",
          "[io][scheduling]") {
    // 16 coroutines loop on short sleeps, so a worker out of queued work
    // nearly always finds finished I/O to resume; a job then submits a child
    // (to its own worker's queue) and blocks until it has run. Only a steal
    // by the other worker can run the child: a worker that always reaped
    // its ring before stealing never did, while the loopers ran.
    thread_pool pool{{.max_workers = 2}};
    std::atomic<bool> stop{false};
    std::atomic<long> ticks{0};
    std::vector<coexec::future<void>> loopers;
    for (int i = 0; i < 16; ++i) {
        loopers.push_back(pool.submit([&]() -> task<void> {
            while (!stop.load(std::memory_order_relaxed)) {
                co_await io::sleep_for(1us);
                ticks.fetch_add(1, std::memory_order_relaxed);
            }
        }));
    }
    REQUIRE(eventually([&] { return ticks.load() > 1000; }, 30s));
    for (int round = 0; round < 3; ++round) {
        auto parent = pool.submit([&] {
            auto child = pool.submit([] { return 1; });
            return child.get_for(10s);  // timeout_error if no worker ever ran it
        });
        CHECK(parent.get_for(30s) == 1);
    }
    stop = true;
    for (auto& f : loopers)
        f.get_for(30s);
}
