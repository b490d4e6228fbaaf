// samples/server — an HTTP/1.1 server on Boost.Asio coroutines (Boost.Beast
// for HTTP) that sends its CPU-bound work to a coexec executor and its
// blocking I/O to a thread_pool.
//
//   server [--port 8080] [--root DIR] [--executor process|thread|inline]
//          [--cpu-workers N] [--io-workers N] [--max-pending N]
//          [--idle-timeout S] [--request-timeout S]        (server --help)
//
//   curl 'http://127.0.0.1:8080/primes?below=100000'
//   curl 'http://127.0.0.1:8080/wordcount?path=README.md'
//   curl  http://127.0.0.1:8080/stats
//
// Threads: one event-loop thread (this one) runs every connection coroutine;
// --io-workers threads do blocking file reads; the CPU executor is a
// process_pool (default: crash-isolated workers), a thread_pool, or inline
// (on the event loop itself, for comparison). Binds 127.0.0.1 only.
// SIGINT/SIGTERM: stop accepting, finish in-flight requests (up to 5 s), exit 0.
//
// Files, in the order a request meets them:
//   main.cpp        flags (CLI11), the executor switch, the event loop, signals
//   connection.*    accept loop; per-connection coroutine: Beast's parser, limits,
//                   keep-alive, timeouts, HEAD
//   routes.*        the endpoints, generic over the CPU executor; admission; errors → 5xx
//   http.*, json.*  responses and their JSON bodies
//   files.*         reading a file confined to --root (openat, no symlinks)
//   work.*          the CPU-bound functions sent to the CPU executor
//   state.hpp       settings and counters
#include <fcntl.h>
#include <unistd.h>

#include <CLI/App.hpp>
#include <CLI/Config.hpp>
#include <CLI/Formatter.hpp>
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <thread>

#include "coexec/inline_executor.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/thread_pool.hpp"
#include "connection.hpp"
#include "routes.hpp"
#include "state.hpp"

namespace {

using namespace server;
namespace net = boost::asio;
using net::ip::tcp;

std::chrono::milliseconds to_ms(double seconds) {
    return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

/// The flags; exits (0 after --help, 2 on a mistake, CLI11's message on stderr).
options parse_flags(int argc, char** argv) {
    options o;
    double idle = 30, request = 10;
    CLI::App app{
        "An HTTP/1.1 server on Boost.Asio coroutines that sends CPU work to a coexec "
        "executor.\nEndpoints: /health, /primes?below=N, /wordcount?path=REL, /stats "
        "(GET or HEAD).",
        "server"};
    app.add_option("--port", o.port, "TCP port on 127.0.0.1 (0: any free one)")
        ->capture_default_str();
    app.add_option("--root", o.root, "directory /wordcount reads from (nothing outside it)")
        ->check(CLI::ExistingDirectory)
        ->capture_default_str();
    std::string executor = "process";
    app.add_option("--executor", executor,
                   "where CPU work runs: process (crash-isolated workers), thread, or inline "
                   "(on the event loop)")
        ->check(CLI::IsMember({"process", "thread", "inline"}))
        ->capture_default_str();
    app.add_option("--cpu-workers", o.cpu_workers, "CPU executor workers (0: one per core)")
        ->capture_default_str();
    app.add_option("--io-workers", o.io_workers, "threads for blocking file reads")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--max-pending", o.max_pending,
                   "requests waiting for the pools before new ones get 503")
        ->capture_default_str();
    app.add_option("--idle-timeout", idle,
                   "seconds a connection may wait for a request's first byte")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--request-timeout", request,
                   "seconds a request may take to arrive once started (and a response to be read)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        std::exit(app.exit(e));
    }
    o.executor = executor == "process"  ? cpu_executor::process
                 : executor == "thread" ? cpu_executor::thread
                                        : cpu_executor::inline_;
    o.idle_timeout = to_ms(idle);
    o.request_timeout = to_ms(request);
    if (o.cpu_workers == 0) o.cpu_workers = std::max(1u, std::thread::hardware_concurrency());
    return o;
}

// SIGINT/SIGTERM: stop accepting, let in-flight requests finish (bounded),
// then stop the event loop. Idle keep-alive connections are simply dropped.
net::awaitable<void> stop_gracefully(tcp::acceptor& acceptor, counters& stats,
                                     net::io_context& ctx) {
    stats.stopping = true;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    net::steady_timer tick(ctx);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (stats.in_flight > 0 && std::chrono::steady_clock::now() < give_up) {
        tick.expires_after(std::chrono::milliseconds(20));
        co_await tick.async_wait(net::use_awaitable);
    }
    ctx.stop();
}

/// Runs the server with `cpu` as the CPU executor until SIGINT/SIGTERM.
template <coexec::executor Cpu>
int serve(Cpu& cpu, const char* cpu_name, const options& opts, int root_fd) {
    // Threads start here, after the CPU executor: a process_pool's fork server was
    // forked while this process still had a single thread.
    coexec::thread_pool io_pool{{.max_workers = opts.io_workers, .thread_name_prefix = "io"}};
    counters stats;
    routes<Cpu> app(cpu, cpu_name, io_pool, root_fd, opts, stats);
    handler handle = [&app](const http::request& req) { return app.handle(req); };

    // Declared after everything the connection coroutines refer to, so that
    // its destructor (which destroys suspended coroutine frames) runs first.
    net::io_context ctx{1};  // one thread runs it: the hint lets Asio skip locking
    tcp::acceptor acceptor(ctx);
    const tcp::endpoint where(net::ip::address_v4::loopback(), opts.port);
    acceptor.open(where.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(where);
    acceptor.listen(net::socket_base::max_listen_connections);
    // Tests and scripts read the port from this line (--port 0 picks a free one).
    std::printf("listening on 127.0.0.1:%u\n", acceptor.local_endpoint().port());
    std::fflush(stdout);
    std::fprintf(stderr, "server: executor=%s cpu-workers=%zu io-workers=%zu root=%s\n", cpu_name,
                 cpu.max_workers(), opts.io_workers, opts.root.c_str());

    net::co_spawn(ctx, accept_loop(acceptor, handle, opts, stats), net::detached);
    net::signal_set signals(ctx, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int signo) {
        if (ec) return;
        std::fprintf(stderr, "server: %s, shutting down\n", ::strsignal(signo));
        net::co_spawn(ctx, stop_gracefully(acceptor, stats, ctx), net::detached);
    });
    ctx.run();

    // Pool results still on their way dispatch into the stopped io_context
    // (and are destroyed with it); shutting the pools down first means no
    // completion can arrive after the io_context is gone.
    cpu.shutdown(true, true);
    io_pool.shutdown(true, true);
    std::fprintf(stderr, "server: stopped after %llu requests\n",
                 static_cast<unsigned long long>(stats.requests));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    // Writes to a closed connection must fail with EPIPE, not kill the server.
    std::signal(SIGPIPE, SIG_IGN);
    const options opts = parse_flags(argc, argv);

    // Files are opened relative to this descriptor (see files.hpp).
    const int root_fd = ::open(opts.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
        std::fprintf(stderr, "server: --root %s: %s\n", opts.root.c_str(), std::strerror(errno));
        return 1;
    }

    // The one-type switch: the same routes, three CPU strategies. Each pool
    // is created before any other thread exists (see serve()).
    try {
        switch (opts.executor) {
            case cpu_executor::process: {
                // A task running past 30 s has its worker killed and fails with
                // deadline_exceeded (→ 503): a safety net; the bound on N keeps
                // real requests far shorter.
                coexec::process_pool cpu{
                    {.max_workers = opts.cpu_workers, .task_timeout = std::chrono::seconds(30)}};
                return serve(cpu, "process", opts, root_fd);
            }
            case cpu_executor::thread: {
                coexec::thread_pool cpu{
                    {.max_workers = opts.cpu_workers, .thread_name_prefix = "cpu"}};
                return serve(cpu, "thread", opts, root_fd);
            }
            case cpu_executor::inline_: {
                coexec::inline_executor cpu;
                return serve(cpu, "inline", opts, root_fd);
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "server: %s\n", e.what());
        return 1;
    }
    return 1;
}
