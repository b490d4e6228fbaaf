// Behaviour of coexec::io on thread_pool workers. The same program runs twice
// in CI: with the process's own backend choice (io_uring here) and with
// COEXEC_IO_BACKEND=epoll (tests/io_epoll.cmake).
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "coexec/errors.hpp"
#include "coexec/inline_executor.hpp"
#include "coexec/io.hpp"
#include "coexec/sync_wait.hpp"
#include "coexec/task.hpp"
#include "coexec/thread_pool.hpp"
#include "helpers.hpp"

using namespace std::chrono_literals;
using coexec::task;
using coexec::thread_pool;
namespace io = coexec::io;

namespace {

/// Which errno-like condition an exception carries: 0 if none was thrown,
/// -1 for an exception that is not a system_error.
template <class F>
int error_of(F&& f) {
    try {
        f();
        return 0;
    } catch (const std::system_error& e) {
        return e.code().value();
    } catch (...) {
        return -1;
    }
}

/// A temporary directory removed (with its files) at scope exit.
struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/coexec-io-XXXXXX";
        char* p = ::mkdtemp(tmpl);
        if (p == nullptr) throw std::runtime_error("mkdtemp failed");
        path = p;
    }
    ~temp_dir() {
        std::string cmd = "rm -rf '" + path + "'";
        [[maybe_unused]] int r = std::system(cmd.c_str());
    }
    std::string file(const std::string& name) const { return path + "/" + name; }
};

/// A listening TCP socket on 127.0.0.1 with a kernel-chosen port.
struct listener {
    int fd = -1;
    std::uint16_t port = 0;
    listener() {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 128) != 0)
            throw std::runtime_error("listen failed");
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
    }
    ~listener() { ::close(fd); }
};

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return a;
}

int tcp_socket() {
    return ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

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

std::string expected_backend() {
    const char* env = std::getenv("COEXEC_IO_BACKEND");
    if (env != nullptr && std::string(env) == "epoll") return "epoll";
    return std::string(io::backend_name());  // whatever the probe chose
}

}  // namespace

// ------------------------------------------------------------------ backend

TEST_CASE("io::backend names the backend in use, epoll when forced by the environment", "[io]") {
    auto name = io::backend_name();
    CHECK((name == "io_uring" || name == "epoll"));
    CHECK(std::string(name) == expected_backend());
    CHECK(io::backend_name(io::backend()) == name);
}

// ------------------------------------------------------------------ timers

TEST_CASE("sleeps finish in deadline order, not start order", "[io][timer]") {
    thread_pool pool{{.max_workers = 2}};
    std::mutex m;
    std::vector<int> order;
    auto sleeper = [&](int id, std::chrono::milliseconds d) -> task<void> {
        co_await io::sleep_for(d);
        std::lock_guard lock(m);
        order.push_back(id);
    };
    auto a = pool.submit(sleeper, 1, 150ms);
    auto b = pool.submit(sleeper, 2, 30ms);
    auto c = pool.submit(sleeper, 3, 90ms);
    a.get();
    b.get();
    c.get();
    CHECK(order == std::vector<int>{2, 3, 1});
}

TEST_CASE("sleep_for lasts at least its duration and resumes on the worker that started it",
          "[io][timer]") {
    thread_pool pool{{.max_workers = 4}};
    struct outcome {
        std::thread::id before, after;
        std::chrono::nanoseconds slept;
    };
    std::vector<coexec::future<outcome>> fs;
    for (int i = 0; i < 16; ++i) {
        fs.push_back(pool.submit([]() -> task<outcome> {
            outcome o;
            o.before = std::this_thread::get_id();
            auto t0 = std::chrono::steady_clock::now();
            co_await io::sleep_for(20ms);
            o.slept = std::chrono::steady_clock::now() - t0;
            o.after = std::this_thread::get_id();
            co_return o;
        }));
    }
    for (auto& f : fs) {
        outcome o = f.get();
        CHECK(o.before == o.after);
        CHECK(o.slept >= 20ms);
    }
}

TEST_CASE("sleep_until a past time point resumes at once", "[io][timer]") {
    thread_pool pool{{.max_workers = 1}};
    auto f = pool.submit([]() -> task<int> {
        co_await io::sleep_until(std::chrono::steady_clock::now() - 1s);
        co_await io::sleep_for(0ms);
        co_await io::sleep_until(std::chrono::system_clock::now() + 5ms);
        co_return 7;
    });
    CHECK(f.get_for(5s) == 7);
}

TEST_CASE("ten thousand coroutines sleep at once without a thread each", "[io][timer]") {
    thread_pool pool{{.max_workers = 2}};
    constexpr int n = 10'000;
    std::atomic<int> woke{0};
    std::vector<coexec::future<void>> fs;
    fs.reserve(n);
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
        fs.push_back(pool.submit([&woke]() -> task<void> {
            co_await io::sleep_for(200ms);
            woke.fetch_add(1, std::memory_order_relaxed);
        }));
    }
    for (auto& f : fs)
        f.get();
    auto elapsed = std::chrono::steady_clock::now() - t0;
    CHECK(woke.load() == n);
    CHECK(elapsed >= 200ms);
    CHECK(elapsed < 20s);  // two workers: they all slept concurrently
    CHECK(pool.stats().completed == static_cast<std::uint64_t>(n));
}

TEST_CASE("a sleep ends with operation_canceled when its stop token is signalled",
          "[io][timer][cancel]") {
    thread_pool pool{{.max_workers = 2}};
    std::stop_source source;
    std::atomic<bool> started{false};
    auto f = pool.submit([&]() -> task<void> {
        started = true;
        co_await io::sleep_for(1h, source.get_token());
    });
    REQUIRE(coexec_test::eventually([&] { return started.load(); }));
    std::this_thread::sleep_for(20ms);
    auto t0 = std::chrono::steady_clock::now();
    source.request_stop();
    CHECK(error_of([&] { f.get(); }) == ECANCELED);
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);
    try {
        f.get();
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::operation_canceled);
        CHECK(std::string(e.what()).find("io::sleep_for") != std::string::npos);
    }
}

TEST_CASE("an already signalled token cancels an io operation before it starts",
          "[io][timer][cancel]") {
    thread_pool pool{{.max_workers = 1}};
    std::stop_source source;
    source.request_stop();
    auto f = pool.submit([&]() -> task<void> { co_await io::sleep_for(1h, source.get_token()); });
    CHECK(error_of([&] { f.get_for(10s); }) == ECANCELED);
}

TEST_CASE("future::cancel of a running coroutine job cancels the sleep it awaits",
          "[io][timer][cancel]") {
    thread_pool pool{{.max_workers = 2}};
    std::atomic<bool> started{false};
    // No explicit token: the job's own token (signalled by cancel()) is used,
    // also after the coroutine hopped with schedule().
    auto f = pool.submit([&]() -> task<int> {
        co_await pool.schedule();
        started = true;
        co_await io::sleep_for(1h);
        co_return 1;
    });
    REQUIRE(coexec_test::eventually([&] { return started.load(); }));
    std::this_thread::sleep_for(20ms);
    CHECK_FALSE(f.cancel());  // running: not cancelled, but its token is signalled
    CHECK(error_of([&] { f.get_for(10s); }) == ECANCELED);
}

TEST_CASE("future::cancel reaches io started after the job awaited another pool's future",
          "[io][timer][cancel]") {
    thread_pool pool{{.max_workers = 2}}, other{{.max_workers = 1}};
    std::atomic<bool> started{false};
    // The job hops to `other` and back through a future; its token must still
    // reach the sleep it starts afterwards.
    auto f = pool.submit([&]() -> task<int> {
        int v = co_await other.submit([] { return 1; });
        started = true;
        co_await io::sleep_for(1h);
        co_return v;
    });
    REQUIRE(coexec_test::eventually([&] { return started.load(); }));
    std::this_thread::sleep_for(20ms);
    CHECK_FALSE(f.cancel());
    CHECK(error_of([&] { f.get_for(10s); }) == ECANCELED);
}

TEST_CASE("a job taking a stop_token hands the same token to the io it awaits",
          "[io][timer][cancel]") {
    thread_pool pool{{.max_workers = 2}};
    std::atomic<bool> started{false};
    auto f = pool.submit([&](std::stop_token st) -> task<bool> {
        started = true;
        try {
            co_await io::sleep_for(1h);
        } catch (const std::system_error& e) {
            co_return e.code() == std::errc::operation_canceled&& st.stop_requested();
        }
        co_return false;
    });
    REQUIRE(coexec_test::eventually([&] { return started.load(); }));
    std::this_thread::sleep_for(20ms);
    f.cancel();
    CHECK(f.get_for(10s));
}

TEST_CASE("thousands of sleeps cancelled at once all end with operation_canceled",
          "[io][timer][cancel]") {
    thread_pool pool{{.max_workers = 2}};
    constexpr int n = 5'000;
    std::stop_source source;
    std::atomic<int> waiting{0};
    std::vector<coexec::future<void>> fs;
    for (int i = 0; i < n; ++i) {
        fs.push_back(pool.submit([&]() -> task<void> {
            waiting.fetch_add(1);
            co_await io::sleep_for(1h, source.get_token());
        }));
    }
    REQUIRE(coexec_test::eventually([&] { return waiting.load() == n; }));
    std::this_thread::sleep_for(20ms);
    source.request_stop();
    int cancelled = 0;
    for (auto& f : fs)
        cancelled += error_of([&] { f.get_for(30s); }) == ECANCELED ? 1 : 0;
    CHECK(cancelled == n);
}

// ------------------------------------------------------------------ files

TEST_CASE("write and read at offsets round-trip, with short reads at end of file", "[io][file]") {
    temp_dir dir;
    thread_pool pool{{.max_workers = 2}};
    std::string path = dir.file("data.bin");
    struct result {
        std::size_t w1, w2, r_full, r_short, r_eof;
        std::string head, tail;
    };
    auto f = pool.submit([&]() -> task<result> {
        result r{};
        int fd = co_await io::open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        std::string a(4096, 'a'), b = "tail-bytes";
        r.w1 = co_await io::write(fd, a, 0);
        r.w2 = co_await io::write(fd, b, 8192);  // leaves a hole from 4096 to 8192
        std::vector<char> buf(4096);
        r.r_full = co_await io::read(fd, buf, 0);
        r.head.assign(buf.data(), 4);
        r.r_short = co_await io::read(fd, buf, 8192);  // fewer bytes than asked
        r.tail.assign(buf.data(), r.r_short);
        r.r_eof = co_await io::read(fd, buf, 1 << 20);
        co_await io::close(fd);
        co_return r;
    });
    result r = f.get();
    CHECK(r.w1 == 4096);
    CHECK(r.w2 == 10);
    CHECK(r.r_full == 4096);
    CHECK(r.head == "aaaa");
    CHECK(r.r_short == 10);
    CHECK(r.tail == "tail-bytes");
    CHECK(r.r_eof == 0);
}

TEST_CASE("a large file is read back in parallel blocks, many in flight", "[io][file]") {
    temp_dir dir;
    thread_pool pool{{.max_workers = 2}};
    std::string path = dir.file("big.bin");
    constexpr std::size_t block = 64 * 1024, blocks = 64;
    std::vector<char> data(block * blocks);
    for (std::size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<char>(i * 131 % 251);
    int wfd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(::write(wfd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    ::close(wfd);

    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    std::vector<char> back(data.size());
    std::vector<coexec::future<std::size_t>> fs;
    for (std::size_t i = 0; i < blocks; ++i) {
        fs.push_back(pool.submit([&, i]() -> task<std::size_t> {
            co_return co_await io::read(fd, io::mutable_buffer(back.data() + i * block, block),
                                        i * block);
        }));
    }
    std::size_t total = 0;
    for (auto& f : fs)
        total += f.get();
    ::close(fd);
    CHECK(total == data.size());
    CHECK(back == data);
}

TEST_CASE("file errors arrive as system_error naming the operation", "[io][file]") {
    temp_dir dir;
    thread_pool pool{{.max_workers = 1}};
    std::string missing = dir.file("missing");
    auto bad_read = pool.submit([]() -> task<std::size_t> {
        char buf[16];
        co_return co_await io::read(987654, buf, 0);
    });
    auto bad_write = pool.submit(
        []() -> task<std::size_t> { co_return co_await io::write(987654, std::string("x"), 0); });
    auto no_file =
        pool.submit([&]() -> task<int> { co_return co_await io::open(missing, O_RDONLY); });
    CHECK(error_of([&] { bad_read.get(); }) == EBADF);
    CHECK(error_of([&] { bad_write.get(); }) == EBADF);
    CHECK(error_of([&] { no_file.get(); }) == ENOENT);
    try {
        no_file.get();
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::no_such_file_or_directory);
        CHECK(std::string(e.what()).find("io::open") != std::string::npos);
    }
    try {
        bad_read.get();
    } catch (const std::system_error& e) {
        CHECK(std::string(e.what()).find("io::read") != std::string::npos);
    }
}

TEST_CASE("a read on a pipe waits for the writer without holding the worker", "[io][file]") {
    thread_pool pool{{.max_workers = 1}};
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    auto reader = pool.submit([&]() -> task<std::string> {
        char buf[64];
        std::size_t n = co_await io::read(p[0], buf);
        co_return std::string(buf, n);
    });
    // The only worker is free while the read waits: it runs this at once.
    auto other = pool.submit([] { return 5; });
    CHECK(other.get_for(5s) == 5);
    CHECK_FALSE(reader.done());
    REQUIRE(::write(p[1], "hello", 5) == 5);
    CHECK(reader.get_for(10s) == "hello");
    ::close(p[0]);
    ::close(p[1]);
}

// ------------------------------------------------------------------ sockets

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

// ------------------------------------------------------------------ misuse and shutdown

TEST_CASE("awaiting io where no thread_pool runs the coroutine throws, it does not hang",
          "[io][misuse]") {
    auto says_thread_pool = [](auto&& f) {
        try {
            f();
        } catch (const coexec::error& e) {
            return std::string(e.what()).find("thread_pool") != std::string::npos;
        }
        return false;
    };
    // sync_wait's loop on this thread.
    CHECK(says_thread_pool([] { coexec::sync_wait(io::sleep_for(1ms)); }));
    CHECK(says_thread_pool([] {
        coexec::sync_wait([]() -> task<void> {
            char buf[4];
            co_await io::read(0, buf, 0);
        }());
    }));
    // inline_executor.
    coexec::inline_executor inl;
    auto f = inl.submit([]() -> task<void> { co_await io::sleep_for(1ms); });
    CHECK(says_thread_pool([&] { f.get(); }));
    // A blocking task on a pool worker that runs its own sync_wait loop.
    thread_pool pool{{.max_workers = 1}};
    auto g = pool.submit([] { coexec::sync_wait(io::sleep_for(1ms)); });
    CHECK(says_thread_pool([&] { g.get_for(10s); }));
}

TEST_CASE("destroying a pool with io in flight cancels it, frees every frame and does not hang",
          "[io][shutdown]") {
    using coexec_test::lifetime_counter;
    int before = lifetime_counter::alive.load();
    std::vector<coexec::future<void>> fs;
    std::atomic<int> waiting{0};
    std::atomic<bool> closed_after_cancel{false};
    listener l;
    int client = tcp_socket();
    sockaddr_in a = loopback(l.port);
    REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    auto t0 = std::chrono::steady_clock::now();
    {
        thread_pool pool{{.max_workers = 2}};
        for (int i = 0; i < 200; ++i) {
            fs.push_back(pool.submit([&]() -> task<void> {
                lifetime_counter guard(1);
                waiting.fetch_add(1);
                co_await io::sleep_for(1h);
            }));
        }
        fs.push_back(pool.submit([&]() -> task<void> {
            lifetime_counter guard(2);
            char buf[8];
            waiting.fetch_add(1);
            std::exception_ptr failure;
            try {
                co_await io::recv(client, buf);
            } catch (const std::system_error&) {
                failure = std::current_exception();
            }
            co_await io::close(client);  // cleanup io still runs after cancellation
            closed_after_cancel = true;
            if (failure) std::rethrow_exception(failure);
        }));
        REQUIRE(coexec_test::eventually([&] { return waiting.load() == 201; }));
        std::this_thread::sleep_for(20ms);
    }  // ~thread_pool: signals stop, waits
    CHECK(std::chrono::steady_clock::now() - t0 < 30s);
    int cancelled = 0;
    for (auto& f : fs)
        cancelled += error_of([&] { f.get_for(1s); }) == ECANCELED ? 1 : 0;
    CHECK(cancelled == 201);
    CHECK(lifetime_counter::alive.load() == before);
    CHECK(closed_after_cancel.load());
    CHECK(::fcntl(client, F_GETFD) == -1);  // really closed
}

TEST_CASE(
    "shutdown(cancel_futures) cancels io in flight; plain shutdown cancels io of "
    "coroutines that only hopped onto the pool",
    "[io][shutdown]") {
    SECTION("cancel_futures") {
        thread_pool pool{{.max_workers = 2}};
        std::atomic<bool> started{false};
        auto f = pool.submit([&]() -> task<void> {
            started = true;
            co_await io::sleep_for(1h);
        });
        REQUIRE(coexec_test::eventually([&] { return started.load(); }));
        std::this_thread::sleep_for(20ms);
        pool.shutdown(false, true);
        CHECK(error_of([&] { f.get_for(10s); }) == ECANCELED);
    }
    SECTION("a coroutine that hopped with schedule() from another thread") {
        thread_pool pool{{.max_workers = 1}};
        std::atomic<int> error{-2};
        std::atomic<bool> started{false};
        std::thread t([&] {
            error = error_of([&] {
                coexec::sync_wait([&]() -> task<void> {
                    co_await pool.schedule();
                    started = true;
                    co_await io::sleep_for(1h);
                }());
            });
        });
        REQUIRE(coexec_test::eventually([&] { return started.load(); }));
        std::this_thread::sleep_for(20ms);
        pool.shutdown();  // waits; the sleeper is no job, so its sleep is cancelled
        t.join();
        CHECK(error.load() == ECANCELED);
    }
}

// ------------------------------------------------------------------ fallback

namespace {
constexpr const char* seccomp_child_test = "io fallback child: epoll runs sleeps and reads";
}

TEST_CASE("io fallback child: epoll runs sleeps and reads", "[.io_seccomp_child]") {
    // Runs in a child whose seccomp filter refuses io_uring_setup (below).
    REQUIRE(io::backend() == io::backend_kind::epoll);
    thread_pool pool{{.max_workers = 2}};
    temp_dir dir;
    std::string path = dir.file("f");
    auto f = pool.submit([&]() -> task<std::string> {
        co_await io::sleep_for(10ms);
        int fd = co_await io::open(path, O_RDWR | O_CREAT, 0600);
        co_await io::write(fd, std::string("fallback"), 0);
        char buf[16];
        std::size_t n = co_await io::read(fd, buf, 0);
        co_await io::close(fd);
        co_return std::string(buf, n);
    });
    REQUIRE(f.get_for(30s) == "fallback");
    std::_Exit(42);  // success, distinct from Catch's own exit codes
}

TEST_CASE("when seccomp refuses io_uring_setup the epoll backend is chosen by itself",
          "[io][fallback]") {
#if defined(__x86_64__)
    constexpr std::uint32_t arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
    constexpr std::uint32_t arch = AUDIT_ARCH_AARCH64;
#else
    constexpr std::uint32_t arch = 0;
    WARN("no seccomp architecture constant for this CPU: test skipped");
    return;
#endif
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(10);
        if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) ::_exit(11);
        // The choice is made once per process: a fresh image must make it,
        // on its own (no COEXEC_IO_BACKEND to help it).
        ::unsetenv("COEXEC_IO_BACKEND");
        ::execl("/proc/self/exe", "test_io", seccomp_child_test, static_cast<char*>(nullptr));
        ::_exit(12);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    INFO("child exit status " << (WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status)));
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 42);
}
