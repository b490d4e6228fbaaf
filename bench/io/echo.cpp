// TCP echo on 127.0.0.1, 64 connections: round trips per second of 64-byte
// messages, each connection ping-ponging one message at a time.
//
//   coexec   thread_pool{2}: an accept loop and one coroutine per connection,
//            io::accept / io::recv / io::send (io_uring, or epoll)
//   asio     io_context run by 2 threads: the classic co_spawn echo server
//            (async_accept, async_read_some, async_write; epoll)
//   coexec1, asio1   the same two servers on 1 thread each: no session is
//            ever spread over a second thread (see the note in main)
//   floor    no framework: one thread, one liburing ring, a recv or send
//            always queued per connection, one io_uring_enter per round of
//            completions. What any io_uring server could do in this shape;
//            it bounds how far ahead of Asio the loopback kernel lets one be.
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

#include <liburing.h>

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

[[noreturn]] void coexec_server_on(int listen_fd, std::size_t workers) {
    coexec::thread_pool pool{{.max_workers = workers}};
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

[[noreturn]] void coexec_server(int listen_fd) {
    coexec_server_on(listen_fd, threads);
}
[[noreturn]] void coexec_server_1(int listen_fd) {
    coexec_server_on(listen_fd, 1);
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

[[noreturn]] void asio_server_on(int listen_fd, std::size_t n) {
    asio::io_context ctx(static_cast<int>(n));
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
    std::vector<std::thread> helpers;
    for (std::size_t i = 1; i < n; ++i)
        helpers.emplace_back([&] { ctx.run(); });
    ctx.run();
    for (auto& t : helpers)
        t.join();
    ::_exit(0);
}

[[noreturn]] void asio_server(int listen_fd) {
    asio_server_on(listen_fd, threads);
}
[[noreturn]] void asio_server_1(int listen_fd) {
    asio_server_on(listen_fd, 1);
}

[[noreturn]] void floor_server(int listen_fd) {
    io_uring ring{};
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
    if (io_uring_queue_init_params(256, &ring, &p) < 0) ::_exit(1);
    struct conn {
        int fd = -1;
        char buf[4096];
    };
    std::vector<conn> conns(connections + 1);
    // user_data: connection index << 1 | (1 for a send); ~0 for the accept.
    constexpr std::uint64_t accept_tag = ~std::uint64_t{0};
    auto queue_accept = [&] {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring);
        io_uring_prep_accept(sqe, listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        io_uring_sqe_set_data64(sqe, accept_tag);
    };
    auto queue_recv = [&](std::size_t i) {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring);
        io_uring_prep_recv(sqe, conns[i].fd, conns[i].buf, sizeof conns[i].buf, 0);
        io_uring_sqe_set_data64(sqe, i << 1);
    };
    std::size_t accepted = 0;
    queue_accept();
    for (;;) {
        io_uring_submit_and_wait(&ring, 1);
        io_uring_cqe* cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            ++seen;
            std::uint64_t tag = cqe->user_data;
            if (tag == accept_tag) {
                if (cqe->res < 0 || accepted == conns.size()) ::_exit(1);
                int one = 1;
                ::setsockopt(cqe->res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                conns[accepted].fd = cqe->res;
                queue_recv(accepted++);
                queue_accept();
                continue;
            }
            std::size_t i = tag >> 1;
            if (cqe->res <= 0) continue;  // closed: the run is over
            if ((tag & 1) == 0) {         // 64 bytes or fewer: one send takes them
                io_uring_sqe* sqe = io_uring_get_sqe(&ring);
                io_uring_prep_send(sqe, conns[i].fd, conns[i].buf, static_cast<unsigned>(cqe->res),
                                   MSG_NOSIGNAL);
                io_uring_sqe_set_data64(sqe, i << 1 | 1);
            } else {
                queue_recv(i);
            }
        }
        io_uring_cq_advance(&ring, seen);
    }
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
    double one = run_against(coexec_server_1);
    double as_one = run_against(asio_server_1);
    double fl = run_against(floor_server);
    std::printf("TCP echo, %d connections, %zu-byte ping-pong, servers on %zu threads\n",
                connections, message, threads);
    std::printf("  %-36s %10.0f round trips/s\n", "coexec io::recv/send", co);
    std::printf("  %-36s %10.0f round trips/s\n", "asio co_spawn echo", as);
    auto vs_asio = [&](const char* what, double x) {
        std::printf("  %-36s %10.0f round trips/s (%.2fx asio)\n", what, x, as > 0 ? x / as : 0.0);
    };
    vs_asio("coexec, thread_pool of 1 worker", one);
    vs_asio("asio co_spawn echo, 1 thread", as_one);
    vs_asio("floor: bare liburing loop, 1 thread", fl);
    coexec_bench::report("TCP echo, 64 connections", co, "round trips/s", "asio co_spawn echo", as,
                         coexec_bench::better::higher);
    coexec_bench::report("TCP echo, 64 connections, 1 thread each", one, "round trips/s",
                         "asio co_spawn echo, 1 thread", as_one, coexec_bench::better::higher);
    if (fl > 0 && as > 0) {
        // The limit the goal meets on this host: the bare loop is what any
        // io_uring server reaches here, one thread beside the load generator.
        char floor_note[320];
        std::snprintf(floor_note, sizeof floor_note,
                      "TCP echo floor, same run: a bare single-thread liburing loop (no "
                      "framework) makes %.0f round trips/s, %.2fx Asio on 2 threads; coexec "
                      "makes %.0f%% of it on 2 workers and %.0f%% on 1.",
                      fl, fl / as, 100.0 * co / fl, 100.0 * one / fl);
        coexec_bench::note(floor_note);
    }
    coexec_bench::note(
        "TCP echo: " + std::string(coexec::io::backend_name()) +
        " backend; 64-byte messages, one in flight per connection, one epoll "
        "load-generator thread in the parent, each server in its own child; " +
        std::to_string(static_cast<int>(measure_s)) +
        " s measured. A coexec worker that keeps up resumes its completions itself "
        "(one reap of all 64 per round when the sessions share a worker); a worker "
        "busy for 1 ms without running out of work hands its completions to the idle "
        "one, and sessions resumed there stay on its ring. The load generator shares "
        "the 2 cores, so a server spread over two threads (coexec's, or Asio's) takes "
        "CPU from it: the same run measures both servers on 1 thread and a bare "
        "single-thread liburing loop (the floor), printed above against Asio.");
    return 0;
}
