// The samples/server binary under load: admission control past --max-pending,
// and many concurrent clients that must all get correct answers.
#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "server_harness.hpp"

using namespace std::chrono_literals;
using namespace coexec_test;

TEST_CASE("past --max-pending waiting requests the server answers 503 with Retry-After",
          "[server]") {
    served_dir dir;
    server_process srv({"--root", dir.root.string(), "--cpu-workers", "1", "--max-pending", "2"});
    constexpr int n = 8;
    std::vector<std::optional<reply>> replies(n);
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
        // Enough work that the others arrive while two are admitted (about a
        // second each in a debug build). The two admitted run one after the
        // other on the one worker, so a loaded machine needs the longer timeout.
        threads.emplace_back(
            [&, i] { replies[i] = get_once(srv.port(), "/primes?below=2000000", 60s); });
    }
    for (auto& t : threads)
        t.join();
    int ok = 0, busy = 0;
    for (const auto& r : replies) {
        REQUIRE(r);
        if (r->status == 200) {
            ++ok;
            CHECK(json_int(r->body, "primes") == 148933);
        } else {
            CHECK(r->status == 503);
            CHECK(r->header("retry-after") == "1");
            CHECK(contains(r->body, "\"busy\""));
            ++busy;
        }
    }
    CHECK(ok >= 1);
    CHECK(busy >= 1);
    CHECK(ok + busy == n);
    auto stats = get_once(srv.port(), "/stats");
    REQUIRE(stats);
    CHECK(json_int(stats->body, "rejected_busy") == busy);
    CHECK(json_int(stats->body, "pending_peak") <= 2);
    CHECK(json_int(stats->body, "pending") == 0);
    auto later = get_once(srv.port(), "/primes?below=100");
    REQUIRE(later);
    CHECK(later->status == 200);
    CHECK(srv.stop() == 0);
}

TEST_CASE("64 concurrent clients doing 20 requests each all get correct answers", "[server]") {
    served_dir dir;
    server_process srv(
        {"--root", dir.root.string(), "--cpu-workers", "2", "--max-pending", "1000"});
    constexpr int clients = 64, per_client = 20;
    std::vector<std::string> failures(clients);  // one slot per thread; asserted below
    std::vector<std::thread> threads;
    for (int t = 0; t < clients; ++t) {
        threads.emplace_back([&, t] {
            client c(srv.port(), 30s);
            if (!c.connected()) {
                failures[t] = "connect failed";
                return;
            }
            for (int i = 0; i < per_client; ++i) {
                const int kind = (t + i) % 3;
                const std::int64_t below = 1000 + 37 * t + i;
                auto r = kind == 0   ? c.get("/health")
                         : kind == 1 ? c.get("/primes?below=" + std::to_string(below))
                                     : c.get("/wordcount?path=hello.txt");
                if (!r) {
                    failures[t] = "request " + std::to_string(i) + " got no reply" +
                                  (c.timed_out() ? " (timeout)" : "");
                    return;
                }
                bool good = r->status == 200;
                if (kind == 1) good = good && json_int(r->body, "primes") == primes_below(below);
                if (kind == 2) good = good && json_int(r->body, "words") == 5;
                if (!good) {
                    failures[t] = "request " + std::to_string(i) + ": " +
                                  std::to_string(r->status) + " " + r->body;
                    return;
                }
            }
        });
    }
    for (auto& t : threads)
        t.join();
    for (int t = 0; t < clients; ++t) {
        INFO("client " << t);
        CHECK(failures[t].empty());
        if (!failures[t].empty()) UNSCOPED_INFO(failures[t]);
    }
    auto stats = get_once(srv.port(), "/stats");
    REQUIRE(stats);
    CHECK(json_int(stats->body, "requests", "server") >= clients * per_client);
    CHECK(json_int(stats->body, "responses_5xx", "server") == 0);
    CHECK(srv.stop() == 0);
}
