// samples/server — an HTTP/1.1 server on Asio coroutines that sends its
// CPU-bound work to a coexec executor and its blocking I/O to a thread_pool.
//
//   server [--port 8080] [--root DIR] [--executor process|thread|inline]
//          [--cpu-workers N] [--io-workers N] [--max-pending N]
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
//   main.cpp        flags, the executor switch, the event loop, signals
//   connection.*    accept loop; per-connection coroutine: read, limits, keep-alive, timeouts
//   http.*          request-head parser, response formatting, query decoding
//   routes.*        the endpoints, generic over the CPU executor; admission; errors → 5xx
//   files.*         reading a file confined to --root (openat, no symlinks)
//   work.*          the CPU-bound functions sent to the CPU executor
//   state.hpp       settings and counters
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <thread>

#include "coexec/inline_executor.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/thread_pool.hpp"
#include "connection.hpp"
#include "routes.hpp"
#include "state.hpp"

namespace {

using namespace server;
using asio::ip::tcp;

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr,
                 "server: %s\n"
                 "usage: server [--port N] [--root DIR] [--executor process|thread|inline]\n"
                 "              [--cpu-workers N] [--io-workers N] [--max-pending N]\n",
                 why);
    std::exit(2);
}

std::size_t to_size(const std::string& flag, const std::string& value) {
    char* end = nullptr;
    unsigned long long v = std::strtoull(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || value.front() == '-') {
        usage((flag + " takes a non-negative integer").c_str());
    }
    return static_cast<std::size_t>(v);
}

// Accepts "--flag value" and "--flag=value".
options parse_flags(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i], value;
        if (auto eq = arg.find('='); eq != std::string::npos) {
            value = arg.substr(eq + 1);
            arg.resize(eq);
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            usage((arg + " needs a value").c_str());
        }
        if (arg == "--port") {
            std::size_t port = to_size(arg, value);
            if (port > 65535) usage("--port must be at most 65535");
            o.port = static_cast<unsigned short>(port);
        } else if (arg == "--io-workers") {
            o.io_workers = to_size(arg, value);
        } else if (arg == "--cpu-workers") {
            o.cpu_workers = to_size(arg, value);
        } else if (arg == "--max-pending") {
            o.max_pending = to_size(arg, value);
        } else if (arg == "--root") {
            o.root = value;
        } else if (arg == "--executor") {
            if (value == "process") {
                o.executor = cpu_executor::process;
            } else if (value == "thread") {
                o.executor = cpu_executor::thread;
            } else if (value == "inline") {
                o.executor = cpu_executor::inline_;
            } else {
                usage("--executor must be process, thread or inline");
            }
        } else {
            usage(("unknown flag " + arg).c_str());
        }
    }
    if (o.io_workers == 0) o.io_workers = 1;
    if (o.cpu_workers == 0) o.cpu_workers = std::max(1u, std::thread::hardware_concurrency());
    return o;
}

// SIGINT/SIGTERM: stop accepting, let in-flight requests finish (bounded),
// then stop the event loop. Idle keep-alive connections are simply dropped.
asio::awaitable<void> stop_gracefully(tcp::acceptor& acceptor, counters& stats,
                                      asio::io_context& ctx) {
    stats.stopping = true;
    asio::error_code ignored;
    acceptor.close(ignored);
    asio::steady_timer tick(ctx);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (stats.in_flight > 0 && std::chrono::steady_clock::now() < give_up) {
        tick.expires_after(std::chrono::milliseconds(20));
        co_await tick.async_wait(asio::use_awaitable);
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
    asio::io_context ctx{1};  // one thread runs it: the hint lets Asio skip locking
    tcp::acceptor acceptor(ctx);
    const tcp::endpoint where(asio::ip::address_v4::loopback(), opts.port);
    acceptor.open(where.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(where);
    acceptor.listen(asio::socket_base::max_listen_connections);
    // Tests and scripts read the port from this line (--port 0 picks a free one).
    std::printf("listening on 127.0.0.1:%u\n", acceptor.local_endpoint().port());
    std::fflush(stdout);
    std::fprintf(stderr, "server: executor=%s cpu-workers=%zu io-workers=%zu root=%s\n", cpu_name,
                 cpu.max_workers(), opts.io_workers, opts.root.c_str());

    asio::co_spawn(ctx, accept_loop(acceptor, handle, opts, stats), asio::detached);
    asio::signal_set signals(ctx, SIGINT, SIGTERM);
    signals.async_wait([&](const asio::error_code& ec, int signo) {
        if (ec) return;
        std::fprintf(stderr, "server: %s, shutting down\n", ::strsignal(signo));
        asio::co_spawn(ctx, stop_gracefully(acceptor, stats, ctx), asio::detached);
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
