// The samples/server binary over real sockets: its routes on every CPU
// executor, keep-alive and pipelining, malformed and oversized requests, and
// paths that try to leave the served directory.
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "helpers.hpp"
#include "server_harness.hpp"

using namespace std::chrono_literals;
using namespace coexec_test;

TEST_CASE("the server answers /health, /primes, /wordcount and /stats on every CPU executor",
          "[server]") {
    const std::string executor = GENERATE(as<std::string>{}, "process", "thread", "inline");
    INFO("--executor=" << executor);
    served_dir dir;
    server_process srv(
        {"--root", dir.root.string(), "--executor=" + executor, "--cpu-workers", "2"});
    client c(srv.port());
    REQUIRE(c.connected());

    auto health = c.get("/health");
    REQUIRE(health);
    CHECK(health->status == 200);
    CHECK(health->header("content-type") == "application/json");
    CHECK(contains(health->body, "\"status\":\"ok\""));

    for (std::int64_t n : {0, 3, 10, 100000}) {
        auto r = c.get("/primes?below=" + std::to_string(n));
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(json_int(r->body, "primes") == primes_below(n));
    }

    auto words = c.get("/wordcount?path=hello.txt");
    REQUIRE(words);
    CHECK(words->status == 200);
    CHECK(json_int(words->body, "words") == 5);
    CHECK(json_int(words->body, "bytes") == 26);
    auto nested = c.get("/wordcount?path=sub%2Fnested.txt");
    REQUIRE(nested);
    CHECK(nested->status == 200);
    CHECK(json_int(nested->body, "words") == 3);

    auto stats = c.get("/stats");
    REQUIRE(stats);
    CHECK(stats->status == 200);
    const std::string& s = stats->body;
    CHECK(contains(s, "\"executor\":\"" + executor + "\""));
    for (const char* field : {"submitted", "completed", "failed", "cancelled", "queued", "running",
                              "workers_alive", "respawns"}) {
        CHECK(json_int(s, field, "cpu_pool") >= 0);
        CHECK(json_int(s, field, "io_pool") >= 0);
    }
    CHECK(json_int(s, "completed", "cpu_pool") >= 6);  // 4 primes + 2 word counts
    CHECK(json_int(s, "completed", "io_pool") >= 2);   // 2 file reads
    CHECK(json_int(s, "requests", "server") >= 8);
    // The pool's second worker starts in the background; it is up soon.
    if (executor == "process")
        CHECK(coexec_test::eventually([&] {
            auto again = c.get("/stats");
            return again && json_int(again->body, "workers_alive", "cpu_pool") == 2;
        }));

    CHECK(srv.stop() == 0);
}

TEST_CASE("several requests share one keep-alive connection, pipelined or not", "[server]") {
    served_dir dir;
    server_process srv({"--root", dir.root.string(), "--cpu-workers", "2"});
    {
        client c(srv.port());
        for (int i = 0; i < 10; ++i) {
            auto r = c.get(i % 2 == 0 ? "/health" : "/primes?below=" + std::to_string(1000 + i));
            REQUIRE(r);
            CHECK(r->status == 200);
            CHECK(r->header("connection") == "keep-alive");
        }
        // Three requests in one write: answered in order on the same connection.
        REQUIRE(
            c.send("GET /primes?below=100 HTTP/1.1\r\nHost: x\r\n\r\n"
                   "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                   "GET /wordcount?path=hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"));
        auto a = c.read_reply(), b = c.read_reply(), d = c.read_reply();
        REQUIRE((a && b && d));
        CHECK(json_int(a->body, "primes") == 25);
        CHECK(contains(b->body, "\"ok\""));
        CHECK(json_int(d->body, "words") == 5);
        auto stats = c.get("/stats");
        REQUIRE(stats);
        CHECK(json_int(stats->body, "connections_accepted") == 1);
        CHECK(json_int(stats->body, "requests") == 14);
    }
    {  // "Connection: close" is honoured
        client c(srv.port());
        auto r = c.get("/health", "Connection: close\r\n");
        REQUIRE(r);
        CHECK(r->header("connection") == "close");
        CHECK(c.closed_by_server());
    }
    {  // HTTP/1.0 closes by default and keeps alive on request
        client c(srv.port());
        REQUIRE(c.send("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        auto r = c.read_reply();
        REQUIRE(r);
        CHECK(r->header("connection") == "keep-alive");
        REQUIRE(c.send("GET /health HTTP/1.0\r\n\r\n"));
        r = c.read_reply();
        REQUIRE(r);
        CHECK(r->header("connection") == "close");
        CHECK(c.closed_by_server());
    }
    CHECK(srv.stop() == 0);
}

TEST_CASE("malformed requests get 400 (or 501/505) and the connection is closed", "[server]") {
    served_dir dir;
    server_process srv({"--root", dir.root.string(), "--cpu-workers", "1"});
    struct bad {
        const char* what;
        std::string bytes;
        int status;
        const char* error;  // the "error" field of the body: the status's own name
    };
    const std::vector<bad> cases = {
        {"garbage", "GARBAGE\r\n\r\n", 400, "bad_request"},
        {"no version", "GET /health\r\nHost: x\r\n\r\n", 400, "bad_request"},
        {"extra field", "GET /health HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400, "bad_request"},
        {"relative target", "GET health HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"},
        {"absolute-form target", "GET http://x/health HTTP/1.1\r\nHost: x\r\n\r\n", 400,
         "bad_request"},
        {"bad version", "GET /health HTTP/x.y\r\nHost: x\r\n\r\n", 400, "bad_request"},
        {"no Host in 1.1", "GET /health HTTP/1.1\r\n\r\n", 400, "bad_request"},
        {"header without colon", "GET /health HTTP/1.1\r\nHost: x\r\nBroken\r\n\r\n", 400,
         "bad_request"},
        {"space in header name", "GET /health HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400,
         "bad_request"},
        {"bad Content-Length", "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400,
         "bad_request"},
        {"negative Content-Length", "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
         400, "bad_request"},
        {"conflicting Content-Length",
         "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400,
         "bad_request"},
        {"bare LF", "GET /health HTTP/1.1\nHost: x\n\n", 400, "bad_request"},
        {"control character", std::string("GET /health HTTP/1.1\r\nHost: x\r\nX: a\x01z\r\n\r\n"),
         400, "bad_request"},
        {"HTTP/2.0", "GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported"},
        {"unknown transfer coding",
         "GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
         "not_implemented"},
    };
    for (const auto& b : cases) {
        INFO(b.what);
        client c(srv.port());
        REQUIRE(c.send(b.bytes));
        auto r = c.read_reply();
        REQUIRE(r);
        CHECK(r->status == b.status);
        CHECK(r->header("connection") == "close");
        CHECK(contains(r->body, std::string("\"error\":\"") + b.error + "\""));
        CHECK(c.closed_by_server());
    }

    // Well-formed HTTP with bad parameters: 4xx, and the connection stays usable.
    client c(srv.port());
    const std::vector<std::pair<std::string, int>> app_errors = {
        {"/primes", 400},
        {"/primes?below=", 400},
        {"/primes?below=abc", 400},
        {"/primes?below=-5", 400},
        {"/primes?below=12x", 400},
        {"/primes?below=99999999999999", 400},
        {"/primes?below=%zz", 400},
        {"/primes?below=1%", 400},
        {"/wordcount", 400},
        {"/wordcount?path=", 400},
        {"/nope", 404},
        {"/", 404},
    };
    for (const auto& [target, status] : app_errors) {
        INFO(target);
        auto r = c.get(target);
        REQUIRE(r);
        CHECK(r->status == status);
        CHECK(contains(r->body,
                       status == 400 ? "\"error\":\"bad_request\"" : "\"error\":\"not_found\""));
        CHECK(r->header("connection") == "keep-alive");
    }
    REQUIRE(c.send("POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"));
    auto post = c.read_reply();
    REQUIRE(post);
    CHECK(post->status == 405);
    CHECK(post->header("allow") == "GET, HEAD");
    CHECK(contains(post->body, "\"error\":\"method_not_allowed\""));
    // A chunked body is read (and dropped) like any other.
    REQUIRE(
        c.send("GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5\r\nhello\r\n0\r\n\r\n"));
    auto chunked = c.read_reply();
    REQUIRE(chunked);
    CHECK(chunked->status == 200);
    auto after = c.get("/health");
    REQUIRE(after);
    CHECK(after->status == 200);
    CHECK(srv.alive());
    CHECK(srv.stop() == 0);
}

TEST_CASE("oversized heads get 431 and oversized bodies 413", "[server]") {
    served_dir dir;
    server_process srv({"--root", dir.root.string(), "--cpu-workers", "1"});
    for (std::size_t size : {9000u, 64u * 1024u}) {
        INFO("header of " << size << " bytes");
        client c(srv.port());
        // The server answers as soon as it has seen 8 KiB without the end of
        // the head, possibly while this send is still going: ignore its result.
        c.send("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(size, 'a') + "\r\n\r\n");
        auto r = c.read_reply();
        REQUIRE(r);
        CHECK(r->status == 431);
        CHECK(contains(r->body, "\"error\":\"header_fields_too_large\""));
        CHECK(c.closed_by_server());
    }
    {  // many small headers add up too
        std::string head = "GET /health HTTP/1.1\r\nHost: x\r\n";
        for (int i = 0; i < 600; ++i)
            head += "X-H" + std::to_string(i) + ": 0123456789\r\n";
        auto r = send_raw(srv.port(), head + "\r\n");
        REQUIRE(r);
        CHECK(r->status == 431);
    }
    {  // just under the limit is fine
        std::string head = "GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ";
        head += std::string(8000 - head.size(), 'p') + "\r\n\r\n";
        auto r = send_raw(srv.port(), head);
        REQUIRE(r);
        CHECK(r->status == 200);
    }
    {  // a declared body above 1 MiB: refused before it is read
        client c(srv.port());
        c.send("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n" +
               std::string(64 * 1024, 'b'));
        auto r = c.read_reply();
        REQUIRE(r);
        CHECK(r->status == 413);
        CHECK(r->header("connection") == "close");
        CHECK(contains(r->body, "\"error\":\"payload_too_large\""));
    }
    {  // a body within the limit is read and dropped; the connection goes on
        client c(srv.port());
        REQUIRE(c.send("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" +
                       std::string(100000, 'b')));
        auto r = c.read_reply();
        REQUIRE(r);
        CHECK(r->status == 200);
        auto again = c.get("/primes?below=10");
        REQUIRE(again);
        CHECK(json_int(again->body, "primes") == 4);
    }
    CHECK(srv.alive());
    CHECK(srv.stop() == 0);
}

TEST_CASE("paths that leave the served directory are refused with 403, missing files get 404",
          "[server]") {
    served_dir dir;
    server_process srv({"--root", dir.root.string(), "--cpu-workers", "1"});
    client c(srv.port());
    const std::vector<std::string> escapes = {
        "../secret.txt",
        "%2e%2e/secret.txt",
        "%2E%2E%2Fsecret.txt",
        "..%2fsecret.txt",
        "sub/../../secret.txt",
        "sub/%2e%2e/%2e%2e/secret.txt",
        "sub/../hello.txt",  // stays inside, but '..' is refused outright
        "./../secret.txt",
        "..",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        ("/" + dir.base.string() + "/secret.txt"),
        "escape",              // symlink to ../secret.txt
        "linkdir/secret.txt",  // through a symlinked directory
        "linkdir/root/hello.txt",
        "inside_link",  // links are never followed, even inward ones
        "sub",          // a directory
        ".",
    };
    for (const auto& path : escapes) {
        INFO("path=" << path);
        auto r = c.get("/wordcount?path=" + path);
        REQUIRE(r);
        CHECK(r->status == 403);
        CHECK_FALSE(contains(r->body, "\"words\""));
    }
    for (const std::string path : {"missing.txt", "sub/missing.txt", "nodir/x.txt"}) {
        INFO("path=" << path);
        auto r = c.get("/wordcount?path=" + path);
        REQUIRE(r);
        CHECK(r->status == 404);
    }
    // A traversal in the URL path itself matches no route.
    auto r = c.get("/../wordcount?path=hello.txt");
    REQUIRE(r);
    CHECK(r->status == 404);
    CHECK(srv.stop() == 0);
}

TEST_CASE("HEAD is answered like GET, with the same headers and no body", "[server]") {
    served_dir dir;
    server_process srv({"--root", dir.root.string(), "--cpu-workers", "1"});
    client c(srv.port());
    for (const std::string target : {"/health", "/primes?below=1000", "/wordcount?path=hello.txt",
                                     "/nope", "/primes?below=abc"}) {
        INFO(target);
        auto get = c.get(target);
        REQUIRE(get);
        auto head = c.head(target);
        REQUIRE(head);
        CHECK(head->status == get->status);
        CHECK(head->header("content-type") == get->header("content-type"));
        CHECK(head->header("content-length") == std::to_string(get->body.size()));
        CHECK(head->header("connection") == "keep-alive");
    }
    // Had a body followed the HEAD answer, this reply would start inside it.
    auto after = c.get("/health");
    REQUIRE(after);
    CHECK(after->status == 200);
    CHECK(contains(after->body, "\"status\":\"ok\""));
    CHECK(srv.stop() == 0);
}

TEST_CASE("--help prints the flags and exits 0, a bad flag exits non-zero saying why", "[server]") {
    auto [help_code, help] = run_server_to_exit("--help");
    CHECK(help_code == 0);
    for (const char* flag : {"--port", "--root", "--executor", "--cpu-workers", "--io-workers",
                             "--max-pending", "--idle-timeout", "--request-timeout"}) {
        CHECK(contains(help, flag));
    }
    CHECK_FALSE(contains(help, "needs a value"));

    auto [bad_code, bad] = run_server_to_exit("--executor=quantum");
    CHECK(bad_code != 0);
    CHECK(contains(bad, "--executor"));
    auto [unknown_code, unknown] = run_server_to_exit("--frobnicate 3");
    CHECK(unknown_code != 0);
    CHECK(contains(unknown, "--frobnicate"));
}
