// coexec::trace over process_pool: worker processes as tracks with their
// pids, task slices recorded in the worker, and deaths, respawns and deadline
// kills as instant events; a worker killed mid-task still leaves a valid file.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "coexec/errors.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/trace.hpp"
#include "trace_file.hpp"

using namespace std::chrono_literals;
using coexec_test::trace_file;

namespace trace_test {
int traced_cube(int x) {
    return x * x * x;
}
int traced_crash() {
    ::kill(::getpid(), SIGKILL);
    return 0;
}
int traced_sleep(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}
}  // namespace trace_test

namespace {

/// The pids of the worker processes named in the trace.
std::set<double> worker_pids(const trace_file& t) {
    std::set<double> out;
    for (const auto& [key, name] : t.names("process_name"))
        if (key.first != static_cast<double>(::getpid()) &&
            name.find("worker") != std::string::npos)
            out.insert(key.first);
    return out;
}

}  // namespace

TEST_CASE("a traced process_pool run draws each worker process with its pid and tasks",
          "[trace][process]") {
    coexec::process_pool::prepare();
    coexec::trace::start(coexec_test::trace_path("process_pool"));
    std::set<int> pids;
    {
        coexec::process_pool pool{{.max_workers = 2}};
        std::vector<coexec::future<int>> fs;
        for (int i = 0; i < 40; ++i)
            fs.push_back(pool.submit(&trace_test::traced_cube, i));
        for (auto& f : fs)
            REQUIRE(f.get_for(30s) >= 0);
    }
    coexec::trace::stop();
    trace_file t(coexec::trace::path());
    const auto workers = worker_pids(t);
    REQUIRE_FALSE(workers.empty());
    CHECK(workers.size() <= 2);
    const auto slices = t.slices_named("traced_cube");
    REQUIRE(slices.size() == 40);
    for (const auto& s : slices) {
        CHECK(workers.count(s["pid"].number()) == 1);
        CHECK(s["pid"].number() == s["tid"].number());  // a worker process is one track
    }
    // Flows start in this process (at submit) and step into the workers.
    CHECK(t.flow_ids("s") == t.flow_ids("t"));
    for (const auto& s : t.where("s"))
        CHECK(s["pid"].number() == static_cast<double>(::getpid()));
    std::size_t into_workers = 0;
    for (const auto& e : t.where("t"))
        into_workers += workers.count(e["pid"].number());
    CHECK(into_workers == 40);
    // The supervisor thread is named.
    bool supervisor = false;
    for (const auto& [key, name] : t.names("thread_name"))
        supervisor = supervisor || name.find("supervisor") != std::string::npos;
    CHECK(supervisor);
}

TEST_CASE("a worker killed mid-task leaves a valid file with its death and respawn",
          "[trace][process]") {
    coexec::process_pool::prepare();
    coexec::trace::start(coexec_test::trace_path("killed"));
    {
        coexec::process_pool pool{{.max_workers = 1}};
        REQUIRE(pool.submit(&trace_test::traced_cube, 2).get_for(30s) == 8);
        auto crashed = pool.submit(&trace_test::traced_crash);
        CHECK_THROWS_AS(crashed.get_for(30s), coexec::worker_died);
        REQUIRE(pool.submit(&trace_test::traced_cube, 3).get_for(30s) == 27);
    }
    coexec::trace::stop();
    trace_file t(coexec::trace::path());
    const auto deaths = t.where("i", "worker died");
    REQUIRE(deaths.size() == 1);
    CHECK(deaths[0]["args"].str("reason").find("SIGKILL") != std::string::npos);
    CHECK_FALSE(t.where("i", "worker respawned").empty());
    // The crashed task is drawn from its dispatch to the death, marked as such.
    const auto crashed = t.slices_named("traced_crash");
    REQUIRE(crashed.size() == 1);
    CHECK(crashed[0]["args"].str("ended") == "its worker died");
    // Both workers' tasks are there: the one before the death and the one after.
    CHECK(t.slices_named("traced_cube").size() == 2);
    CHECK(worker_pids(t).size() == 2);
}

TEST_CASE("a deadline kill is an instant event with its reason", "[trace][process]") {
    coexec::process_pool::prepare();
    coexec::trace::start(coexec_test::trace_path("deadline"));
    {
        coexec::process_pool pool{{.max_workers = 1}};
        auto slow = pool.submit_with({.timeout = 50ms}, &trace_test::traced_sleep, 20'000);
        CHECK_THROWS_AS(slow.get_for(30s), coexec::deadline_exceeded);
    }
    coexec::trace::stop();
    trace_file t(coexec::trace::path());
    const auto kills = t.where("i", "deadline kill");
    REQUIRE(kills.size() == 1);
    CHECK_FALSE(kills[0]["args"].str("reason").empty());
    CHECK(kills[0]["args"].str("task").find("traced_sleep") != std::string::npos);
}
