// The rank side of coexec::trace without an MPI job (lib/trace/rank_link.hpp):
// the clock-offset estimate, and what rank 0 makes of whatever a rank sends
// (times, worker ids, its host name) — the file stays valid and bounded.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "coexec/trace.hpp"
#include "trace/names.hpp"
#include "trace/rank_link.hpp"
#include "trace/recorder.hpp"
#include "trace_file.hpp"

namespace ranks = coexec::detail::trace::ranks;
namespace dt = coexec::detail::trace;
using coexec_test::trace_file;

TEST_CASE("the clock offset comes from the ping with the smallest round trip, within half of it",
          "[trace][mpi]") {
    // rtt 1000: offset 50'000; rtt 200: offset 49'400 (kept); a negative rtt is ignored.
    const std::vector<ranks::clock_sample> samples = {
        {0, 50'500, 1'000}, {1'000, 50'500, 1'200}, {5'000, 0, 4'000}};
    const auto e = ranks::estimate_offset(samples);
    REQUIRE(e.known);
    CHECK(e.offset == 49'400);
    CHECK(e.error == 100);
    // An offset within its own error of zero is the same clock.
    const std::vector<ranks::clock_sample> same = {{1'000, 1'130, 1'200}};
    const auto s = ranks::estimate_offset(same);
    CHECK(s.known);
    CHECK(s.offset == 0);
    CHECK(s.error == 100);
    CHECK_FALSE(ranks::estimate_offset({}).known);
    const std::vector<ranks::clock_sample> backwards = {{10, 0, 5}};
    CHECK_FALSE(ranks::estimate_offset(backwards).known);
    // Moving a time onto rank 0's clock saturates, then clamps.
    const ranks::clock_estimate big{std::numeric_limits<std::int64_t>::min(), 0, true};
    CHECK(ranks::to_local(std::numeric_limits<std::int64_t>::max(), big, 10, 20) == 20);
    CHECK(ranks::to_local(100'000, e, 0, 1'000'000) == 100'000 - 49'400);
    CHECK(ranks::to_local(100'000, e, 60'000, 1'000'000) == 60'000);
}

TEST_CASE("whatever a rank sends, its spans stay in their round trip and its tracks bounded",
          "[trace][mpi]") {
    constexpr auto min = std::numeric_limits<std::int64_t>::min();
    constexpr auto max = std::numeric_limits<std::int64_t>::max();
    coexec::trace::start(coexec_test::trace_path("rank_untrusted"));
    ranks::rank_track rank;
    // A host name with quotes, control characters, invalid UTF-8, far too long.
    std::string host = "evil\"\\\n\x01\xff\xfe";
    host.append(1000, 'h');
    rank.identify(3, 4242, host, ranks::clock_estimate{123'456'789, 50, true});
    const auto sent = std::chrono::steady_clock::now();
    dt::task_ticket t;
    t.flow = dt::next_flow_id();
    t.submitted = dt::now();
    t.name = dt::intern("untrusted_task");
    t.submitter = dt::this_tid();
    const std::int64_t times[] = {min, -1, 0, 1, max};
    std::uint32_t worker = 0;
    for (std::int64_t a : times) {
        for (std::int64_t b : times) {
            for (std::int64_t c : times) {
                ++worker;
                const bool thread = worker % 2 == 0;
                rank.task(t, sent, ranks::remote_span{a, b, c, worker, thread}, 0xff);
            }
        }
    }
    // Far more workers than a rank may have tracks.
    for (std::uint32_t w = 0; w < 6000; ++w)
        rank.task(t, sent, ranks::remote_span{0, 0, 0, 100'000 + w, false}, 0);
    rank.fault("worker died", std::string(5000, 'r'), t.name, 7, false);
    const std::int64_t after = dt::now();
    coexec::trace::stop();

    trace_file file(coexec::trace::path());  // parses (strictly)
    std::set<double> pids, tids;
    const auto slices = file.slices_named("untrusted_task");
    REQUIRE(slices.size() == 125 + 6000);
    const double lo_us =
        static_cast<double>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(sent.time_since_epoch()).count() -
            dt::current_session().origin) /
            1000 -
        0.001;
    const double hi_us = static_cast<double>(after - dt::current_session().origin) / 1000 + 0.001;
    for (const auto& s : slices) {
        pids.insert(s["pid"].number());
        tids.insert(s["tid"].number());
        CHECK(s["ts"].number() >= lo_us);
        CHECK(s["ts"].number() + s["dur"].number() <= hi_us + 0.002);
    }
    REQUIRE(pids.size() == 1);
    CHECK(*pids.begin() != static_cast<double>(::getpid()));
    CHECK(tids.size() <= dt::max_remote_lanes);
    for (const auto& [key, name] : file.names("process_name")) {
        if (key.first != *pids.begin()) continue;
        CHECK(name.rfind("rank 3 (evil\"", 0) == 0);
        CHECK(name.size() < 100);
    }
    const auto deaths = file.where("i", "worker died");
    REQUIRE(deaths.size() == 1);
    CHECK(deaths[0]["args"].str("reason").size() <= 256);
}
