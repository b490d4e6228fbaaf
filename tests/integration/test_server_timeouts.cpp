// The samples/server binary's connection timeouts: a connection that sends
// nothing is closed after --idle-timeout, and one that sends its request too
// slowly (slowloris) after --request-timeout. Before the server moved to
// Beast's tcp_stream, neither fired: its watchdog was armed while the
// deadline was still "never" and not re-armed.
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "helpers.hpp"
#include "server_harness.hpp"

using namespace std::chrono_literals;
using namespace coexec_test;

TEST_CASE("a connection that sends nothing is closed after --idle-timeout", "[server][timeout]") {
    served_dir dir;
    server_process srv({"--root", dir.root.string(), "--cpu-workers", "1", "--idle-timeout", "0.5",
                        "--request-timeout", "30"});
    {  // never a byte: the server closes (the client would wait 20 s)
        client c(srv.port(), 20s);
        REQUIRE(c.connected());
        CHECK(c.closed_by_server());
        CHECK_FALSE(c.timed_out());
    }
    {  // idle after a request on a kept-alive connection: the same
        client c(srv.port(), 20s);
        auto r = c.get("/health");
        REQUIRE(r);
        CHECK(r->header("connection") == "keep-alive");
        CHECK(c.closed_by_server());
        CHECK_FALSE(c.timed_out());
    }
    // The server counts a connection closed when its handler has unwound,
    // which may be after the client saw the close: poll until it has.
    CHECK(eventually([&] {
        auto stats = get_once(srv.port(), "/stats");
        return stats && json_int(stats->body, "connections_open") == 1;  // this one
    }));
    CHECK(srv.stop() == 0);
}

TEST_CASE("a request that arrives too slowly is cut off after --request-timeout",
          "[server][timeout]") {
    served_dir dir;
    server_process srv({"--root", dir.root.string(), "--cpu-workers", "1", "--idle-timeout", "30",
                        "--request-timeout", "1"});
    client c(srv.port(), 20s);
    REQUIRE(c.send("GET /health HTTP/1.1\r\nHost: x\r\n"));
    // One header line every 200 ms: each byte resets no timer, so the whole
    // head must arrive within 1 s. Give up dripping after 20 s.
    bool cut_off = false;
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    for (int i = 0; std::chrono::steady_clock::now() < give_up; ++i) {
        std::this_thread::sleep_for(200ms);
        if (!c.send("X-Drip-" + std::to_string(i) + ": a\r\n")) {
            cut_off = true;
            break;
        }
    }
    // A send to a closed socket can still succeed once; reading tells for sure.
    CHECK((cut_off || c.closed_by_server()));
    CHECK_FALSE(c.timed_out());

    // The slow client held nothing: others are served.
    auto r = get_once(srv.port(), "/health");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(srv.stop() == 0);
}

TEST_CASE("a body that arrives too slowly is cut off after --request-timeout",
          "[server][timeout]") {
    served_dir dir;
    server_process srv({"--root", dir.root.string(), "--cpu-workers", "1", "--idle-timeout", "30",
                        "--request-timeout", "1"});
    client c(srv.port(), 20s);
    REQUIRE(c.send("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"));
    bool cut_off = false;
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(200ms);
        if (!c.send("b")) {
            cut_off = true;
            break;
        }
    }
    CHECK((cut_off || c.closed_by_server()));
    CHECK_FALSE(c.timed_out());
    CHECK(srv.stop() == 0);
}
