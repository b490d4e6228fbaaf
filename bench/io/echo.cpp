// TCP echo on 127.0.0.1, 64 connections: round trips per second of 64-byte
// messages, each connection ping-ponging one message at a time.
//
//   coexec   thread_pool{2}: an accept loop and one coroutine per connection,
//            io::accept / io::recv / io::send (io_uring, or epoll)
//   asio     io_context run by 2 threads: the classic co_spawn echo server
//            (async_accept, async_read_some, async_write; epoll)
//
// The load generator is the same for both: one thread driving all 64
// non-blocking connections with epoll, in this process. Each server runs in
// a forked child, so the two never share a process.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio.hpp>
#include <coexec/future.hpp>
#include <coexec/io.hpp>
#include <coexec/task.hpp>
#include <coexec/thread_pool.hpp>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_report.hpp"

namespace {

using coexec_bench::clock;

constexpr std::size_t threads = 2;
constexpr int connections = 64;
constexpr std::size_t message = 64;
constexpr double warmup_s = 0.5;
constexpr double measure_s = 3.0;

int make_listener(std::uint16_t& port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 1024) != 0)
        throw std::runtime_error("listen failed");
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    return fd;
}

// ---------------------------------------------------------------- servers

coexec::task<void> coexec_session(int fd) {
    char buf[4096];
    try {
        for (;;) {
            std::size_t n = co_await coexec::io::recv(fd, buf);
            if (n == 0) break;
            std::size_t off = 0;
            while (off < n)
                off += co_await coexec::io::send(fd, coexec::io::const_buffer(buf + off, n - off));
        }
    } catch (const std::system_error&) {
    }
    co_await coexec::io::close(fd);
}

[[noreturn]] void coexec_server(int listen_fd) {
    coexec::thread_pool pool{{.max_workers = threads}};
    auto acceptor = pool.submit([&]() -> coexec::task<void> {
        for (;;) {
            int c = co_await coexec::io::accept(listen_fd);
            int one = 1;
            ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            pool.submit(coexec_session, c);
        }
    });
    acceptor.wait();  // until killed
    ::_exit(0);
}

asio::awaitable<void> asio_session(asio::ip::tcp::socket s) {
    char buf[4096];
    try {
        for (;;) {
            std::size_t n = co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
            co_await asio::async_write(s, asio::buffer(buf, n), asio::use_awaitable);
        }
    } catch (const std::exception&) {
    }
}

[[noreturn]] void asio_server(int listen_fd) {
    asio::io_context ctx(static_cast<int>(threads));
    asio::ip::tcp::acceptor acceptor(ctx, asio::ip::tcp::v4(), listen_fd);
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
            for (;;) {
                auto s = co_await acceptor.async_accept(asio::use_awaitable);
                s.set_option(asio::ip::tcp::no_delay(true));
                asio::co_spawn(ctx, asio_session(std::move(s)), asio::detached);
            }
        },
        asio::detached);
    std::thread helper([&] { ctx.run(); });
    ctx.run();
    helper.join();
    ::_exit(0);
}

// ---------------------------------------------------------------- load

/// Ping-pongs `message` bytes on every connection; round trips per second.
double drive(std::uint16_t port) {
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    std::vector<int> fds;
    std::vector<std::size_t> got(connections, 0);
    char out[message];
    std::memset(out, 'm', sizeof out);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    for (int i = 0; i < connections; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("connect failed");
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = static_cast<std::uint32_t>(i);
        ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        fds.push_back(fd);
        if (::send(fd, out, sizeof out, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof out))
            throw std::runtime_error("send failed");
    }
    std::uint64_t trips = 0, counted_from = 0;
    auto start = clock::now();
    auto measure_from = start + std::chrono::duration<double>(warmup_s);
    auto end = measure_from + std::chrono::duration<double>(measure_s);
    bool measuring = false;
    epoll_event events[connections];
    char in[4096];
    for (;;) {
        auto now = clock::now();
        if (!measuring && now >= measure_from) {
            measuring = true;
            counted_from = trips;
        }
        if (now >= end) break;
        int n = ::epoll_wait(ep, events, connections, 100);
        for (int k = 0; k < n; ++k) {
            std::uint32_t i = events[k].data.u32;
            ssize_t r = ::recv(fds[i], in, sizeof in, 0);
            if (r <= 0) continue;
            got[i] += static_cast<std::size_t>(r);
            while (got[i] >= message) {
                got[i] -= message;
                ++trips;
                ::send(fds[i], out, sizeof out, MSG_NOSIGNAL);
            }
        }
    }
    for (int fd : fds)
        ::close(fd);
    ::close(ep);
    return static_cast<double>(trips - counted_from) / measure_s;
}

double run_against(void (*server)(int)) {
    std::uint16_t port = 0;
    int lfd = make_listener(port);
    std::fflush(stdout);
    pid_t pid = ::fork();
    if (pid == 0) server(lfd);
    ::close(lfd);
    double rate = 0;
    try {
        rate = drive(port);
    } catch (const std::exception& e) {
        std::printf("  load generator failed: %s\n", e.what());
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return rate;
}

}  // namespace

int main() {
    double co = run_against(coexec_server);
    double as = run_against(asio_server);
    std::printf("TCP echo, %d connections, %zu-byte ping-pong, servers on %zu threads\n",
                connections, message, threads);
    std::printf("  %-36s %10.0f round trips/s\n", "coexec io::recv/send", co);
    std::printf("  %-36s %10.0f round trips/s\n", "asio co_spawn echo", as);
    coexec_bench::report("TCP echo, 64 connections", co, "round trips/s", "asio co_spawn echo", as,
                         coexec_bench::better::higher);
    coexec_bench::note("TCP echo: " + std::string(coexec::io::backend_name()) +
                       " backend; 64-byte messages, one in flight per connection, one epoll "
                       "load-generator thread in the parent, each server in its own child; " +
                       std::to_string(static_cast<int>(measure_s)) +
                       " s measured. A coexec worker that keeps up resumes its completions itself "
                       "(one reap of all 64 per round when the sessions share a worker); only a "
                       "saturated worker hands them to the idle one. Sessions split over both "
                       "workers when the idle one steals some at accept time; the load generator "
                       "shares the 2 cores, so a split server, like Asio's two threads, takes CPU "
                       "from it.");
    return 0;
}
