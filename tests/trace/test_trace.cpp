// coexec::trace over the thread pool, futures, coroutines and pipelines: a
// traced run's file is parsed (strictly) and checked for its structure, never
// for its timings.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "coexec/errors.hpp"
#include "coexec/future.hpp"
#include "coexec/pipeline.hpp"
#include "coexec/task.hpp"
#include "coexec/thread_pool.hpp"
#include "coexec/trace.hpp"
#include "trace_file.hpp"

using coexec_test::trace_file;

namespace trace_test {
// Not static, not in an anonymous namespace: the trace names it from the symbol table.
int traced_square(int x) {
    return x * x;
}
std::string traced_text(int x) {
    return std::to_string(x);
}
}  // namespace trace_test

namespace {

std::string record(const std::string& test, auto&& body, coexec::trace::options o = {}) {
    coexec::trace::start(coexec_test::trace_path(test), o);
    body();
    coexec::trace::stop();
    return coexec::trace::path();
}

}  // namespace

TEST_CASE("a traced thread_pool run has a track per worker and a slice per task", "[trace]") {
    const std::string path = record("thread_pool_tracks", [] {
        coexec::thread_pool pool{{.max_workers = 2, .thread_name_prefix = "tracetest"}};
        // Two tasks that wait for each other: both workers run (and show) one.
        std::atomic<int> arrived{0};
        auto meet = [&arrived] {
            arrived.fetch_add(1);
            const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
            while (arrived.load() < 2 && std::chrono::steady_clock::now() < until)
                std::this_thread::yield();
            return arrived.load() == 2;
        };
        auto m1 = pool.submit(meet);
        auto m2 = pool.submit(meet);
        REQUIRE(m1.get());
        REQUIRE(m2.get());
        std::vector<coexec::future<int>> fs;
        for (int i = 0; i < 200; ++i)
            fs.push_back(pool.submit(&trace_test::traced_square, i));
        for (auto& f : fs)
            REQUIRE(f.get() >= 0);
    });
    trace_file t(path);
    REQUIRE(coexec::trace::dropped_events() == 0);
    std::set<double> worker_tids;
    for (const auto& [key, name] : t.names("thread_name"))
        if (name.rfind("tracetest", 0) == 0) worker_tids.insert(key.second);
    CHECK(worker_tids.size() == 2);
    const auto slices = t.slices_named("traced_square");
    REQUIRE(slices.size() == 200);
    for (const auto& s : slices) {
        CHECK(worker_tids.count(s["tid"].number()) == 1);
        CHECK(s["dur"].number() >= 0);
        CHECK(s["args"].has("queued_us"));
    }
    CHECK(t.dropped() == 0);
}

TEST_CASE("every task's flow runs from its submit to its start", "[trace]") {
    const std::string path = record("thread_pool_flows", [] {
        coexec::thread_pool pool{{.max_workers = 2}};
        std::vector<coexec::future<int>> fs;
        for (int i = 0; i < 50; ++i)
            fs.push_back(pool.submit(&trace_test::traced_square, i));
        for (auto& f : fs)
            f.wait();
    });
    trace_file t(path);
    const auto starts = t.flow_ids("s");
    const auto steps = t.flow_ids("t");
    CHECK(starts.size() >= 50);
    CHECK(starts == steps);
    CHECK(t.where("X", "submit").size() == starts.size());
    // The submit markers are on the submitting thread (this one), not on a worker.
    for (const auto& s : t.where("s"))
        CHECK(s["tid"].number() == static_cast<double>(::gettid()));
}

TEST_CASE("a coroutine awaiting a task ends the task's flow where it resumes", "[trace][task]") {
    const std::string path = record("awaited_flow", [] {
        coexec::thread_pool pool{{.max_workers = 2}};
        auto outer = pool.submit([&pool]() -> coexec::task<int> {
            int sum = 0;
            for (int i = 0; i < 5; ++i)
                sum += co_await pool.submit(&trace_test::traced_square, i);
            co_return sum;
        });
        REQUIRE(outer.get() == 30);
    });
    trace_file t(path);
    const auto ends = t.where("f");
    REQUIRE(ends.size() >= 5);
    const auto starts = t.flow_ids("s");
    for (const auto& e : ends)
        CHECK(starts.count(coexec_test::id_of(e)) == 1);
}

TEST_CASE("trace::name names the tasks submitted under it", "[trace]") {
    const std::string path = record("named", [] {
        coexec::thread_pool pool{{.max_workers = 1}};
        coexec::future<int> a, b;
        {
            coexec::trace::name n("fetch page");
            a = pool.submit([] { return 1; });
        }
        b = pool.submit(&trace_test::traced_square, 3);
        REQUIRE(a.get() + b.get() == 10);
    });
    trace_file t(path);
    CHECK(t.where("X", "fetch page").size() == 1);
    CHECK(t.slices_named("traced_square").size() == 1);
}

TEST_CASE("the executors' counters are sampled into the trace", "[trace]") {
    const std::string path = record("counters", [] {
        coexec::thread_pool pool{{.max_workers = 2, .thread_name_prefix = "counted"}};
        std::vector<coexec::future<int>> fs;
        for (int i = 0; i < 100; ++i)
            fs.push_back(pool.submit(&trace_test::traced_square, i));
        for (auto& f : fs)
            f.wait();
    });
    trace_file t(path);
    std::size_t ours = 0;
    for (const auto& c : t.where("C")) {
        CHECK(c["args"].has("queued"));
        CHECK(c["args"].has("in flight"));
        CHECK(c["args"].has("workers alive"));
        if (c.str("name").rfind("thread_pool", 0) == 0 &&
            c.str("name").find("counted") != std::string::npos)
            ++ours;
    }
    CHECK(ours >= 1);  // sampled at least when the trace started or the pool went
}

TEST_CASE("a pipeline's stages are async slices on their own tracks", "[trace][pipeline]") {
    const std::string path = record("pipeline", [] {
        coexec::thread_pool pool{{.max_workers = 2}};
        std::vector<int> in(64);
        for (int i = 0; i < 64; ++i)
            in[i] = i;
        auto out = coexec::pipeline(in)
                       .then(pool, &trace_test::traced_square, {.name = "square"})
                       .then(pool, &trace_test::traced_text, {.name = "text"})
                       .collect();
        REQUIRE(out.size() == 64);
    });
    trace_file t(path);
    for (const std::string stage : {"square", "text"}) {
        std::multiset<std::string> begins, ends;
        for (const auto& e : t.where("b", "stage: " + stage))
            begins.insert(coexec_test::id_of(e));
        for (const auto& e : t.where("e", "stage: " + stage))
            ends.insert(coexec_test::id_of(e));
        CHECK_FALSE(begins.empty());
        CHECK(begins == ends);
    }
    // A named stage names its tasks.
    CHECK_FALSE(t.where("X", "square").empty());
}

TEST_CASE("start while recording throws and stop without a trace does nothing", "[trace]") {
    CHECK_FALSE(coexec::trace::recording());
    coexec::trace::stop();
    coexec::trace::start(coexec_test::trace_path("twice"));
    CHECK(coexec::trace::recording());
    CHECK_THROWS_AS(coexec::trace::start(coexec_test::trace_path("twice")), coexec::error);
    coexec::trace::stop();
    CHECK_FALSE(coexec::trace::recording());
    trace_file t(coexec::trace::path());  // an empty session is still valid JSON
    CHECK(t.slices_named("traced_square").empty());
}

TEST_CASE("tasks run while no trace records leave nothing in a later file", "[trace]") {
    coexec::thread_pool pool{{.max_workers = 2}};
    for (int i = 0; i < 20; ++i)
        pool.submit(&trace_test::traced_square, i).wait();
    const std::string path =
        record("off_then_on", [&] { pool.submit(&trace_test::traced_text, 1).wait(); });
    trace_file t(path);
    CHECK(t.slices_named("traced_square").empty());
    CHECK(t.slices_named("traced_text").size() == 1);
}

TEST_CASE("a full thread buffer drops events, counts them and keeps the file valid", "[trace]") {
    const std::string path =
        record("dropping",
               [] {
                   coexec::thread_pool pool{{.max_workers = 1}};
                   std::vector<coexec::future<int>> fs;
                   for (int i = 0; i < 20'000; ++i)
                       fs.push_back(pool.submit(&trace_test::traced_square, i));
                   for (auto& f : fs)
                       f.wait();
               },
               {.buffer_events = 8, .flush_interval = std::chrono::milliseconds(1000)});
    trace_file t(path);
    const std::uint64_t dropped = coexec::trace::dropped_events();
    CHECK(dropped > 0);
    CHECK(t.dropped() == static_cast<double>(dropped));
    CHECK_FALSE(t.where("i", "trace buffer full: events dropped").empty());
    CHECK(t.slices_named("traced_square").size() + dropped >= 20'000);
}

TEST_CASE("a program that calls exit() mid-trace leaves a complete file", "[trace]") {
    const std::string path = "/tmp/coexec_test_trace_exit_" + std::to_string(::getpid()) + ".json";
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        coexec::trace::start(path);
        auto* pool = new coexec::thread_pool({.max_workers = 2});  // never destroyed
        for (int i = 0; i < 10; ++i)
            pool->submit(&trace_test::traced_square, i).wait();
        std::exit(0);  // no stop(): the trace's atexit handler finishes the file
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    trace_file t(path);
    CHECK(t.slices_named("traced_square").size() == 10);
    std::remove(path.c_str());
}

TEST_CASE("a program ended by SIGTERM mid-trace leaves a complete file", "[trace]") {
    const std::string path = "/tmp/coexec_test_trace_term_" + std::to_string(::getpid()) + ".json";
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::signal(SIGTERM, SIG_DFL);  // Catch's handler off: the trace installs its own
        coexec::trace::start(path);
        coexec::thread_pool pool{{.max_workers = 2}};
        for (int i = 0; i < 10; ++i)
            pool.submit(&trace_test::traced_square, i).wait();
        ::kill(::getpid(), SIGTERM);
        for (;;)
            ::pause();
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));  // the signal still took its default action
    CHECK(WTERMSIG(status) == SIGTERM);
    trace_file t(path);
    CHECK(t.slices_named("traced_square").size() == 10);
    std::remove(path.c_str());
}

namespace {

// Runs `n` traced_square tasks on 2 workers, `batch` at a time.
void run_batches(int n, int batch) {
    coexec::thread_pool pool{{.max_workers = 2}};
    std::vector<coexec::future<int>> fs;
    for (int done = 0; done < n; done += batch) {
        for (int i = done; i < done + batch && i < n; ++i)
            fs.push_back(pool.submit(&trace_test::traced_square, i));
        for (auto& f : fs)
            f.wait();
        fs.clear();
        // Now and then the CPUs to spare: on 2 cores the waiter and the two
        // workers can otherwise keep the trace writer (1 ms flushes) from
        // running until the end (seen once: every event past the two
        // workers' buffers dropped).
        if (done % 1024 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

}  // namespace

TEST_CASE("a session holding many times more events than the buffers converts every one",
          "[trace]") {
    // The writer moves the buffers into the session's spill as they fill;
    // the JSON is made from the spill at stop(): every event recorded is in
    // the file, every other one is counted as dropped.
    const int tasks = 10'000;
    const std::size_t buffer = 64;
    const std::string path =
        record("spill", [] { run_batches(tasks, 32); },
               {.buffer_events = buffer, .flush_interval = std::chrono::milliseconds(1)});
    trace_file t(path);
    const auto slices = t.slices_named("traced_square");
    CHECK(static_cast<double>(slices.size()) + t.dropped() == tasks);
    CHECK(slices.size() > 2 * buffer);  // more than the two workers' buffers hold
    CHECK(t.flow_ids("s") == t.flow_ids("t"));
    std::remove(path.c_str());
}

TEST_CASE("a trace leaves no file but its own in its directory", "[trace]") {
    const coexec_test::temp_dir dir("coexec_test_trace_dir");
    auto entries = [&dir] {
        std::set<std::string> names;
        for (const auto& e : std::filesystem::directory_iterator(dir.path()))
            names.insert(e.path().filename().string());
        return names;
    };
    const std::string path = dir.file("out.json");
    coexec::trace::start(path);
    run_batches(1000, 100);
    const auto during = entries();  // the spill has no name (or lost it at once)
    coexec::trace::stop();
    CHECK(during == std::set<std::string>{"out.json"});
    CHECK(entries() == std::set<std::string>{"out.json"});
    trace_file t(path);
    CHECK(static_cast<double>(t.slices_named("traced_square").size()) + t.dropped() == 1000);
}

TEST_CASE("a program ended by SIGTERM during a long trace leaves every recorded event", "[trace]") {
    // The handler waits while the writer turns the whole spill into JSON.
    const std::string path =
        "/tmp/coexec_test_trace_term_long_" + std::to_string(::getpid()) + ".json";
    const int tasks = 20'000;
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::signal(SIGTERM, SIG_DFL);  // Catch's handler off: the trace installs its own
        coexec::trace::start(path, {.buffer_events = 1024});
        run_batches(tasks, 256);
        ::kill(::getpid(), SIGTERM);
        for (;;)
            ::pause();
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGTERM);
    trace_file t(path);
    CHECK(static_cast<double>(t.slices_named("traced_square").size()) + t.dropped() == tasks);
    CHECK(t.slices_named("traced_square").size() > 0);
    std::remove(path.c_str());
}

TEST_CASE("a program that crashes mid-trace leaves a complete file and still crashes", "[trace]") {
    const std::string path = "/tmp/coexec_test_trace_crash_" + std::to_string(::getpid()) + ".json";
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        const rlimit no_core{0, 0};
        ::setrlimit(RLIMIT_CORE, &no_core);
        ::signal(SIGSEGV, SIG_DFL);  // Catch's handler off: the trace installs its own
        coexec::trace::start(path);
        coexec::thread_pool pool{{.max_workers = 2}};
        for (int i = 0; i < 10; ++i)
            pool.submit(&trace_test::traced_square, i).wait();
        volatile std::uintptr_t address = 8;  // a real fault, not a raise()
        *reinterpret_cast<volatile int*>(address) = 1;
        std::_Exit(0);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));  // the crash still took its default action
    CHECK(WTERMSIG(status) == SIGSEGV);
    trace_file t(path);
    CHECK(t.slices_named("traced_square").size() == 10);
    std::remove(path.c_str());
}

TEST_CASE("a program killed by SIGKILL after idling leaves the events converted while it idled",
          "[trace]") {
    // Nothing runs at SIGKILL: what the file holds is what the idle-priority
    // converter wrote before, whole events in an unclosed array.
    const std::string path = "/tmp/coexec_test_trace_kill_" + std::to_string(::getpid()) + ".json";
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        coexec::trace::start(path);
        coexec::thread_pool pool{{.max_workers = 2}};
        for (int i = 0; i < 10; ++i)
            pool.submit(&trace_test::traced_square, i).wait();
        for (;;)
            ::pause();  // idle: the converter catches up
    }
    // Converted in the background, never finished: wait for the events to
    // appear (a generous bound: the machine may be busy, and the converter
    // only gets idle CPU).
    std::size_t seen = 0;
    for (int i = 0; i < 600 && seen < 10; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        try {
            seen = trace_file::cut_short(path).slices_named("traced_square").size();
        } catch (const std::exception&) {
            seen = 0;  // not a whole number of events: not written as such
        }
    }
    ::kill(child, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
    const trace_file t = trace_file::cut_short(path);  // throws (fails) if cut mid-event
    CHECK(t.slices_named("traced_square").size() == 10);
    CHECK(t.flow_ids("s") == t.flow_ids("t"));
    CHECK_FALSE(t.names("thread_name").empty());
    std::remove(path.c_str());
}

TEST_CASE("a session converted partly in the background ends as one complete file", "[trace]") {
    // stop() goes on from the converter's last block: no event twice, none lost.
    const std::string path = "/tmp/coexec_test_trace_bg_" + std::to_string(::getpid()) + ".json";
    coexec::trace::start(path);
    {
        coexec::thread_pool pool{{.max_workers = 2}};
        for (int i = 0; i < 10; ++i)
            pool.submit(&trace_test::traced_square, i).wait();
        std::size_t seen = 0;
        for (int i = 0; i < 600 && seen < 10; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            try {
                seen = trace_file::cut_short(path).slices_named("traced_square").size();
            } catch (const std::exception&) {
                seen = 0;
            }
        }
        REQUIRE(seen == 10);  // converted while the program idled
        for (int i = 0; i < 10; ++i)
            pool.submit(&trace_test::traced_square, i).wait();
    }
    coexec::trace::stop();
    trace_file t(path);
    CHECK(t.slices_named("traced_square").size() == 20);
    CHECK(t.flow_ids("s") == t.flow_ids("t"));
    std::remove(path.c_str());
}
