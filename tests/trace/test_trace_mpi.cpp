// coexec::trace over mpi_pool: each worker rank is a process of rank 0's
// trace file ("rank R (host)") with a track per local worker, each task a
// slice there with its flow from the submit on rank 0, and a worker's death
// on a rank an instant event on that rank. Each TEST_CASE runs as an MPI job
// of 3 ranks (tests/mpi/mpi_launch.sh); rank 0 writes the file, parses it
// back (strictly) and checks its structure, never its timings.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "coexec/errors.hpp"
#include "coexec/mpi_pool.hpp"
#include "coexec/task.hpp"
#include "coexec/thread_pool.hpp"
#include "coexec/trace.hpp"
#include "mpi_test_env.hpp"
#include "trace_file.hpp"

using namespace std::chrono_literals;
using coexec_test::mpi;
using coexec_test::trace_file;

namespace trace_test {
// Not static: the trace names tasks after their symbol.
int rank_cube(int x) {
    return x * x * x;
}
int rank_crash() {
    ::kill(::getpid(), SIGKILL);
    return 0;
}
bool rank_recording() {
    return coexec::trace::recording();
}
}  // namespace trace_test

namespace {

/// The processes named "rank R (...)": pid → R.
std::map<double, int> rank_pids(const trace_file& t) {
    std::map<double, int> out;
    for (const auto& [key, name] : t.names("process_name"))
        if (name.rfind("rank ", 0) == 0 && name.find(" (") != std::string::npos)
            out[key.first] = std::stoi(name.substr(5));
    return out;
}

/// The slices named `part` on each rank: R → count.
std::map<int, std::size_t> slices_per_rank(const trace_file& t, const std::string& part) {
    const auto ranks = rank_pids(t);
    std::map<int, std::size_t> out;
    for (const auto& s : t.slices_named(part)) {
        auto it = ranks.find(s["pid"].number());
        out[it == ranks.end() ? -1 : it->second] += 1;
    }
    return out;
}

std::string record(const std::string& test, auto&& body) {
    coexec::trace::start(coexec_test::trace_path(test));
    body();
    coexec::trace::stop();
    return coexec::trace::path();
}

}  // namespace

TEST_CASE("a traced mpi_pool draws each rank as a process with its tasks and their flows",
          "[trace][mpi]") {
    const std::string path = record("mpi_ranks", [] {
        coexec::mpi_pool pool{mpi(), {.slots_per_rank = 2}};
        std::vector<coexec::future<int>> fs;
        for (int i = 0; i < 40; ++i)
            fs.push_back(pool.submit(&trace_test::rank_cube, i));
        for (auto& f : fs)
            REQUIRE(f.get_for(30s) >= 0);
        // A coroutine awaiting tasks on the ranks: their flows end where it resumes.
        coexec::thread_pool threads{{.max_workers = 1}};
        auto outer = threads.submit([&pool]() -> coexec::task<int> {
            int sum = 0;
            for (int i = 0; i < 3; ++i)
                sum += co_await pool.submit(&trace_test::rank_cube, i);
            co_return sum;
        });
        REQUIRE(outer.get_for(30s) == 9);
    });
    trace_file t(path);
    CHECK(t.dropped() == 0);
    // One process per worker rank, neither of them this one.
    const auto ranks = rank_pids(t);
    REQUIRE(ranks.size() == 2);
    std::set<int> numbers;
    for (const auto& [pid, rank] : ranks) {
        CHECK(pid != static_cast<double>(::getpid()));
        numbers.insert(rank);
    }
    CHECK(numbers == std::set<int>{1, 2});
    // Every task is a slice on a rank, on the track of the worker process
    // that ran it, and both ranks ran some.
    const auto per_rank = slices_per_rank(t, "rank_cube");
    CHECK(per_rank.count(-1) == 0);
    CHECK(per_rank.count(1) == 1);
    CHECK(per_rank.count(2) == 1);
    const auto threads = t.names("thread_name");
    const auto slices = t.slices_named("rank_cube");
    REQUIRE(slices.size() == 43);
    for (const auto& s : slices) {
        auto it = threads.find({s["pid"].number(), s["tid"].number()});
        REQUIRE(it != threads.end());
        CHECK(it->second.rfind("worker (pid ", 0) == 0);
        CHECK(s["args"].has("queued_us"));
    }
    // Flows: from the submit on rank 0, into the task's slice on its rank,
    // and (for the awaited ones) to the coroutine's resumption.
    const auto starts = t.flow_ids("s");
    CHECK(starts == t.flow_ids("t"));
    std::map<std::string, double> submitted;  // flow id → its submit's ts
    for (const auto& s : t.where("s")) {
        CHECK(s["pid"].number() == static_cast<double>(::getpid()));
        submitted[coexec_test::id_of(s)] = s["ts"].number();
    }
    std::size_t into_ranks = 0;
    for (const auto& e : t.where("t")) {
        into_ranks += ranks.count(e["pid"].number());
        // The rank's times are clamped after the task's send: never before its submit.
        CHECK(e["ts"].number() >= submitted[coexec_test::id_of(e)]);
    }
    CHECK(into_ranks == 43);
    const auto ends = t.where("f");
    CHECK(ends.size() >= 3);
    for (const auto& e : ends)
        CHECK(starts.count(coexec_test::id_of(e)) == 1);
    // Each rank's serve loop has a track, with how its clock was aligned.
    const auto clocks = t.where("i", "clock offset");
    REQUIRE(clocks.size() == 2);
    for (const auto& c : clocks) {
        CHECK(ranks.count(c["pid"].number()) == 1);
        CHECK_FALSE(c["args"].str("reason").empty());
    }
    // rank 0's own tracks: the pool's progress thread and its counters.
    bool progress = false;
    for (const auto& [key, name] : threads)
        progress = progress || name == "mpi_pool 1 progress";
    CHECK(progress);
    CHECK_FALSE(t.where("C", "mpi_pool 1").empty());
}

TEST_CASE("under thread isolation a rank's tracks are its threads", "[trace][mpi]") {
    const std::string path = record("mpi_threads", [] {
        coexec::mpi_pool pool{mpi(),
                              {.slots_per_rank = 1, .isolation = coexec::mpi_isolation::thread}};
        std::vector<coexec::future<int>> fs;
        for (int i = 0; i < 20; ++i)
            fs.push_back(pool.submit(&trace_test::rank_cube, i));
        for (auto& f : fs)
            REQUIRE(f.get_for(30s) >= 0);
    });
    trace_file t(path);
    const auto ranks = rank_pids(t);
    REQUIRE(ranks.size() == 2);
    const auto threads = t.names("thread_name");
    const auto slices = t.slices_named("rank_cube");
    REQUIRE(slices.size() == 20);
    for (const auto& s : slices) {
        CHECK(ranks.count(s["pid"].number()) == 1);
        auto it = threads.find({s["pid"].number(), s["tid"].number()});
        REQUIRE(it != threads.end());
        CHECK(it->second.rfind("thread ", 0) == 0);
    }
}

TEST_CASE("a worker dying on a rank mid-task leaves a valid file with its death on that rank",
          "[trace][mpi]") {
    const std::string path = record("mpi_crash", [] {
        coexec::mpi_pool pool{mpi(), {.max_workers = 1, .slots_per_rank = 1}};
        REQUIRE(pool.submit(&trace_test::rank_cube, 2).get_for(30s) == 8);
        auto crashed = pool.submit(&trace_test::rank_crash);
        CHECK_THROWS_AS(crashed.get_for(30s), coexec::worker_died);
        REQUIRE(pool.submit(&trace_test::rank_cube, 3).get_for(30s) == 27);
    });
    trace_file t(path);
    const auto ranks = rank_pids(t);
    REQUIRE(ranks.size() == 1);
    const double rank1 = ranks.begin()->first;
    const auto deaths = t.where("i", "worker died");
    REQUIRE(deaths.size() == 1);
    CHECK(deaths[0]["pid"].number() == rank1);
    CHECK(deaths[0]["args"].str("reason").find("SIGKILL") != std::string::npos);
    CHECK(deaths[0]["args"].str("task").find("rank_crash") != std::string::npos);
    const auto respawns = t.where("i", "worker respawned");
    REQUIRE_FALSE(respawns.empty());
    CHECK(respawns[0]["pid"].number() == rank1);
    // The crashed task is a slice on the dead worker's track, marked as such.
    const auto crashed = t.slices_named("rank_crash");
    REQUIRE(crashed.size() == 1);
    CHECK(crashed[0]["pid"].number() == rank1);
    CHECK(crashed[0]["args"].str("ended") == "its worker died");
    CHECK(crashed[0]["tid"].number() == deaths[0]["tid"].number());
    // The tasks before and after: on the first worker and on its replacement.
    const auto cubes = t.slices_named("rank_cube");
    REQUIRE(cubes.size() == 2);
    CHECK(cubes[0]["tid"].number() != cubes[1]["tid"].number());
}

// Run with COEXEC_TRACE set for every rank (tests/trace/trace_mpi.cmake), so
// hidden from the plain run: rank 0 records, the worker ranks do not.
TEST_CASE("COEXEC_TRACE under mpirun records on rank 0 alone", "[.][trace][mpi][environment]") {
    REQUIRE(coexec::trace::recording());
    {
        coexec::mpi_pool pool{mpi(),
                              {.slots_per_rank = 1, .isolation = coexec::mpi_isolation::thread}};
        std::vector<coexec::future<bool>> fs;
        for (int i = 0; i < 8; ++i)
            fs.push_back(pool.submit(&trace_test::rank_recording));
        for (auto& f : fs)
            CHECK_FALSE(f.get_for(30s));  // evaluated in the rank's own process
    }
    coexec::trace::stop();
    trace_file t(coexec::trace::path());
    CHECK(rank_pids(t).size() == 2);
    CHECK(t.slices_named("rank_recording").size() == 8);
    std::remove(coexec::trace::path().c_str());  // named by the test's environment, not trace_dir
}
