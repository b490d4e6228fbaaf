// coexec::io on TCP sockets over 127.0.0.1 from thread_pool workers: accept,
// connect, partial sends, many connections, refused connects, closed peers and
// cancelled receives. Runs on both backends (see tests/CMakeLists.txt).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

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

/// Connects a fresh socket to 127.0.0.1:port from a coroutine.
task<int> connect_to(std::uint16_t port) {
    int fd = tcp_socket();
    sockaddr_in a = loopback(port);
    try {
        co_await io::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
    } catch (...) {
        ::close(fd);
        throw;
    }
    co_return fd;
}

/// Sends all of `data`, looping over partial sends; yields the send count.
task<std::size_t> send_all(int fd, const std::vector<char>& data) {
    std::size_t sent = 0, calls = 0;
    while (sent < data.size()) {
        sent += co_await io::send(fd, io::const_buffer(data.data() + sent, data.size() - sent));
        ++calls;
    }
    co_return calls;
}

}  // namespace

TEST_CASE("a TCP echo over 127.0.0.1: accept, connect, partial sends, peer close", "[io][socket]") {
    thread_pool pool{{.max_workers = 2}};
    listener l;
    constexpr std::size_t total = 8 << 20;

    // Server: counts what it receives until the peer closes its side, then
    // answers with the count and closes.
    auto server = pool.submit([&]() -> task<std::size_t> {
        int c = co_await io::accept(l.fd);
        std::vector<char> buf(64 * 1024);
        std::size_t got = 0;
        for (;;) {
            std::size_t n = co_await io::recv(c, buf);
            if (n == 0) break;
            got += n;
        }
        std::uint64_t answer = got;
        co_await io::send(c, io::const_buffer(&answer, sizeof answer));
        co_await io::close(c);
        co_return got;
    });

    struct client_result {
        std::size_t send_calls = 0;
        std::uint64_t answer = 0;
        std::size_t after_close = 99;
    };
    auto client = pool.submit([&]() -> task<client_result> {
        client_result r;
        int fd = co_await connect_to(l.port);
        // More than the socket buffers hold: sends come back partial.
        std::vector<char> data(total, 'x');
        r.send_calls = co_await send_all(fd, data);
        ::shutdown(fd, SHUT_WR);
        std::size_t got = 0;
        while (got < sizeof r.answer) {
            std::size_t n =
                co_await io::recv(fd, io::mutable_buffer(reinterpret_cast<char*>(&r.answer) + got,
                                                         sizeof r.answer - got));
            if (n == 0) break;
            got += n;
        }
        char extra[8];
        r.after_close = co_await io::recv(fd, extra);  // 0: the server closed
        co_await io::close(fd);
        co_return r;
    });

    client_result c = client.get_for(60s);
    CHECK(server.get_for(60s) == total);
    CHECK(c.answer == total);
    CHECK(c.after_close == 0);
    CHECK(c.send_calls >= 1);
    INFO("send calls for " << (total >> 20) << " MiB: " << c.send_calls);
}

TEST_CASE("many concurrent connections each get their own echo", "[io][socket]") {
    thread_pool pool{{.max_workers = 2}};
    listener l;
    constexpr int clients = 32;
    auto acceptor = pool.submit([&]() -> task<void> {
        for (int i = 0; i < clients; ++i) {
            int c = co_await io::accept(l.fd);
            pool.submit([c]() -> task<void> {
                char buf[256];
                for (;;) {
                    std::size_t n = co_await io::recv(c, buf);
                    if (n == 0) break;
                    std::size_t off = 0;
                    while (off < n)
                        off += co_await io::send(c, io::const_buffer(buf + off, n - off));
                }
                co_await io::close(c);
            });
        }
    });
    std::vector<coexec::future<bool>> fs;
    for (int i = 0; i < clients; ++i) {
        fs.push_back(pool.submit([&, i]() -> task<bool> {
            int fd = co_await connect_to(l.port);
            bool ok = true;
            for (int round = 0; round < 20; ++round) {
                std::string msg = "client " + std::to_string(i) + " round " + std::to_string(round);
                std::vector<char> v(msg.begin(), msg.end());
                co_await send_all(fd, v);
                std::string back;
                char buf[256];
                while (back.size() < msg.size()) {
                    std::size_t n = co_await io::recv(fd, buf);
                    if (n == 0) break;
                    back.append(buf, n);
                }
                ok = ok && back == msg;
            }
            co_await io::close(fd);
            co_return ok;
        }));
    }
    int good = 0;
    for (auto& f : fs)
        good += f.get_for(60s) ? 1 : 0;
    acceptor.get_for(60s);
    CHECK(good == clients);
}

TEST_CASE("connecting to a port nobody listens on throws ECONNREFUSED", "[io][socket]") {
    thread_pool pool{{.max_workers = 1}};
    std::uint16_t port;
    {
        listener l;  // take a free port, then close it
        port = l.port;
    }
    auto f = pool.submit([&]() -> task<int> { co_return co_await connect_to(port); });
    CHECK(error_of([&] { f.get_for(10s); }) == ECONNREFUSED);
    try {
        f.get();
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::connection_refused);
        CHECK(std::string(e.what()).find("io::connect") != std::string::npos);
    }
}

TEST_CASE("recv returns 0 when the peer closes, send to a closed peer throws EPIPE",
          "[io][socket]") {
    thread_pool pool{{.max_workers = 2}};
    listener l;
    struct result {
        std::size_t recv_after_close = 99;
        int send_error = 0;
    };
    auto f = pool.submit([&]() -> task<result> {
        result r;
        int fd = co_await connect_to(l.port);
        int c = co_await io::accept(l.fd);
        co_await io::close(c);
        char buf[8];
        r.recv_after_close = co_await io::recv(fd, buf);
        // The first send may still succeed (the RST has not arrived): retry.
        std::vector<char> data(1024, 'y');
        for (int i = 0; i < 100 && r.send_error == 0; ++i) {
            try {
                co_await io::send(fd, data);
                co_await io::sleep_for(1ms);
            } catch (const std::system_error& e) {
                r.send_error = e.code().value();
            }
        }
        co_await io::close(fd);
        co_return r;
    });
    result r = f.get_for(30s);
    CHECK(r.recv_after_close == 0);
    CHECK((r.send_error == EPIPE || r.send_error == ECONNRESET));
}

TEST_CASE("a recv waiting for data is cancelled by its stop token and by future::cancel",
          "[io][socket][cancel]") {
    thread_pool pool{{.max_workers = 2}};
    listener l;
    int client = tcp_socket();
    sockaddr_in a = loopback(l.port);
    REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    int served = ::accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(served >= 0);

    std::stop_source source;
    std::atomic<int> waiting{0};
    auto by_token = pool.submit([&]() -> task<std::size_t> {
        char buf[16];
        waiting.fetch_add(1);
        co_return co_await io::recv(served, buf, source.get_token());
    });
    auto by_cancel = pool.submit([&]() -> task<std::size_t> {
        char buf[16];
        waiting.fetch_add(1);
        co_return co_await io::recv(client, buf);
    });
    REQUIRE(coexec_test::eventually([&] { return waiting.load() == 2; }));
    std::this_thread::sleep_for(30ms);
    CHECK_FALSE(by_token.done());
    CHECK_FALSE(by_cancel.done());
    source.request_stop();
    by_cancel.cancel();
    CHECK(error_of([&] { by_token.get_for(10s); }) == ECANCELED);
    CHECK(error_of([&] { by_cancel.get_for(10s); }) == ECANCELED);

    // The sockets still work afterwards.
    auto after = pool.submit([&]() -> task<std::size_t> {
        co_await io::send(client, std::string("ok"));
        char buf[16];
        co_return co_await io::recv(served, buf);
    });
    CHECK(after.get_for(10s) == 2);
    ::close(client);
    ::close(served);
}
