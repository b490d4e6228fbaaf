// coexec::io under sync_wait: the loop on the waiting thread drives its own
// reactor, so a task run by sync_wait (or a coroutine it starts inline) can
// sleep, read files and use sockets without a thread_pool. Runs on both
// backends (see tests/CMakeLists.txt).
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "coexec/future.hpp"
#include "coexec/inline_executor.hpp"
#include "coexec/io.hpp"
#include "coexec/sync_wait.hpp"
#include "coexec/task.hpp"
#include "coexec/thread_pool.hpp"
#include "coexec/when_all.hpp"
#include "helpers.hpp"
#include "io_helpers.hpp"

using namespace std::chrono_literals;
using coexec::task;
using coexec::thread_pool;
using clock_type = std::chrono::steady_clock;

namespace {

// A bound far above any expected time: only a hang (a sleep that was not
// cancelled) reaches it.
constexpr auto hang_bound = 30s;

}  // namespace

TEST_CASE("sync_wait runs an io sleep on the waiting thread", "[io][sync_wait]") {
    const auto t0 = clock_type::now();
    coexec::sync_wait(coexec::io::sleep_for(20ms));
    CHECK(clock_type::now() - t0 >= 20ms);

    // A task that sleeps twice and returns a value; the thread is the caller's.
    const auto caller = std::this_thread::get_id();
    auto [value, same_thread] = coexec::sync_wait([&]() -> task<std::pair<int, bool>> {
        co_await coexec::io::sleep_for(5ms);
        co_await coexec::io::sleep_until(clock_type::now() + 5ms);
        co_return std::pair{42, std::this_thread::get_id() == caller};
    }());
    CHECK(value == 42);
    CHECK(same_thread);
}

TEST_CASE("sync_wait runs file io: a write then a read at an offset", "[io][sync_wait]") {
    coexec_test::temp_dir dir;
    const std::string path = dir.file("data");
    std::string read_back = coexec::sync_wait([&]() -> task<std::string> {
        int fd = co_await coexec::io::open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        const std::string text = "hello, sync_wait";
        std::size_t n = co_await coexec::io::write(fd, text, 0);
        REQUIRE(n == text.size());
        std::string out(5, '\0');
        n = co_await coexec::io::read(fd, coexec::io::mutable_buffer(out.data(), out.size()),
                                      7);  // "sync_"
        out.resize(n);
        co_await coexec::io::close(fd);
        co_return out;
    }());
    CHECK(read_back == "sync_");
}

TEST_CASE("sync_wait runs socket io: accept and echo a client thread's message",
          "[io][sync_wait]") {
    using namespace coexec_test;
    listener l;
    std::string client_got;
    std::thread client([&] {
        int c = tcp_socket();
        sockaddr_in a = loopback(l.port);
        if (::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
            ::send(c, "ping", 4, 0);
            char buf[8] = {};
            ssize_t n = ::recv(c, buf, sizeof buf, MSG_WAITALL);
            if (n > 0) client_got.assign(buf, static_cast<std::size_t>(n));
        }
        ::close(c);
    });
    std::string server_got = coexec::sync_wait([&]() -> task<std::string> {
        int conn = co_await coexec::io::accept(l.fd);
        char buf[4];
        std::size_t got = 0;
        while (got < sizeof buf) {
            std::size_t n = co_await coexec::io::recv(conn, {buf + got, sizeof buf - got});
            if (n == 0) break;
            got += n;
        }
        std::string reply = "pong";
        co_await coexec::io::send(conn, reply);
        co_await coexec::io::close(conn);
        co_return std::string(buf, got);
    }());
    client.join();
    CHECK(server_got == "ping");
    CHECK(client_got == "pong");
}

TEST_CASE("sync_wait mixes io with futures of a thread_pool", "[io][sync_wait]") {
    thread_pool pool{{.max_workers = 2}};
    int total = coexec::sync_wait([&]() -> task<int> {
        int sum = 0;
        for (int i = 0; i < 20; ++i) {
            auto f = pool.submit([i] {
                std::this_thread::sleep_for(1ms);
                return i;
            });
            co_await coexec::io::sleep_for(1ms);  // the pool's completion arrives meanwhile
            sum += co_await f;
        }
        // Many at once: the loop sleeps in its reactor and the pool's posts wake it.
        std::vector<coexec::future<int>> fs;
        for (int i = 0; i < 100; ++i)
            fs.push_back(pool.submit([] { return 1; }));
        auto ones = co_await coexec::when_all(std::move(fs));
        for (int v : ones)
            sum += v;
        co_return sum;
    }());
    CHECK(total == 190 + 100);
}

TEST_CASE("an io op under sync_wait is cancelled by its stop token from another thread",
          "[io][sync_wait][cancel]") {
    std::stop_source stop;
    std::thread stopper([&] {
        std::this_thread::sleep_for(50ms);
        stop.request_stop();
    });
    const auto t0 = clock_type::now();
    int err = coexec_test::error_of(
        [&] { coexec::sync_wait(coexec::io::sleep_for(600s, stop.get_token())); });
    stopper.join();
    CHECK(err == ECANCELED);
    CHECK(clock_type::now() - t0 < hang_bound);
}

TEST_CASE("sync_wait returns when its task does: io left behind is cancelled, not waited for",
          "[io][sync_wait][cancel]") {
    // A coroutine started inline (inline_executor runs it on the loop's
    // thread) sleeps for 10 minutes; the awaited task ends at once.
    coexec::inline_executor inl;
    std::atomic<bool> resumed{false};
    coexec::future<void> left;
    const auto t0 = clock_type::now();
    coexec::sync_wait([&]() -> task<void> {
        left = inl.submit([&]() -> task<void> {
            try {
                co_await coexec::io::sleep_for(600s);
            } catch (...) {
                resumed = true;
                throw;
            }
        });
        co_return;
    }());
    CHECK(clock_type::now() - t0 < hang_bound);
    CHECK(resumed);
    REQUIRE(left.done());
    int err = coexec_test::error_of([&] { left.get(); });
    CHECK(err == ECANCELED);
}

TEST_CASE("sync_wait with io inside a blocking task gives the worker its own reactor back",
          "[io][sync_wait]") {
    thread_pool pool{{.max_workers = 1}};
    // The worker's thread lends itself to a sync_wait loop with io...
    auto blocking = pool.submit([] {
        coexec::sync_wait(coexec::io::sleep_for(5ms));
        return 7;
    });
    CHECK(blocking.get_for(hang_bound) == 7);
    // ...and afterwards the same (only) worker still runs coroutines' io on its own ring.
    auto coro = pool.submit([]() -> task<int> {
        co_await coexec::io::sleep_for(5ms);
        co_return 8;
    });
    CHECK(coro.get_for(hang_bound) == 8);
}

TEST_CASE("nested sync_wait loops each drive their own io", "[io][sync_wait]") {
    int v = coexec::sync_wait([]() -> task<int> {
        co_await coexec::io::sleep_for(2ms);
        // A blocking call inside a coroutine is poor style but must work.
        int inner = coexec::sync_wait([]() -> task<int> {
            co_await coexec::io::sleep_for(2ms);
            co_return 2;
        }());
        co_await coexec::io::sleep_for(2ms);  // the outer loop's reactor is current again
        co_return inner + 1;
    }());
    CHECK(v == 3);
    // Many sync_waits in a row: each loop makes and frees its reactor.
    for (int i = 0; i < 50; ++i)
        coexec::sync_wait(coexec::io::sleep_for(100us));
}

TEST_CASE("io errors under sync_wait are system_errors", "[io][sync_wait]") {
    char buf[4];
    int err = coexec_test::error_of([&] {
        coexec::sync_wait(coexec::io::read(-1, {buf, sizeof buf}, 0));
    });
    CHECK(err == EBADF);
}

TEST_CASE("a forked child of a thread that ran io under sync_wait runs its own and exits cleanly",
          "[io][sync_wait][fork]") {
    // The thread keeps the loop's reactor for its next sync_wait; a child
    // forked from it must neither use the parent's ring nor free it on exit().
    coexec::sync_wait(coexec::io::sleep_for(1ms));
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        int code = 1;
        try {
            coexec::sync_wait(coexec::io::sleep_for(1ms));  // a reactor of its own
            code = 0;
        } catch (...) {
        }
        std::exit(code);  // runs thread_local destructors, unlike _exit
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    // The parent's reactor still works.
    coexec::sync_wait(coexec::io::sleep_for(1ms));
}
