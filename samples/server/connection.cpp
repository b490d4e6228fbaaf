// samples/server/connection.cpp — see connection.hpp.
#include "connection.hpp"

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <utility>

namespace server {
namespace {

using asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

// The socket and its deadline, shared by the session and its watchdog.
struct connection {
    explicit connection(tcp::socket s) : socket(std::move(s)), timer(socket.get_executor()) {}

    void close() {
        asio::error_code ignored;
        socket.close(ignored);
        timer.cancel();
    }

    tcp::socket socket;
    asio::steady_timer timer;
    clock_type::time_point deadline = clock_type::time_point::max();
};

// Closes the socket once its deadline passes: a pending read or write then
// completes with operation_aborted, which ends the session. Moving the
// deadline needs no cancel(): the timer wakes at the old time, sees the new
// one and sleeps again (the pattern of Asio's own timeout examples).
asio::awaitable<void> watchdog(std::shared_ptr<connection> c) {
    while (c->socket.is_open()) {
        c->timer.expires_at(c->deadline);
        asio::error_code ec;
        co_await c->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (c->deadline <= clock_type::now()) {
            c->close();
            co_return;
        }
    }
}

// Reads what is available; 0 when the peer closed, an error occurred or the
// watchdog closed the socket (all of which end the session the same way).
asio::awaitable<std::size_t> read_some(connection& c, std::string& buffer) {
    char chunk[8192];
    asio::error_code ec;
    std::size_t n = co_await c.socket.async_read_some(
        asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return 0;
    buffer.append(chunk, n);
    co_return n;
}

asio::awaitable<bool> write_response(connection& c, const http::response& r, bool keep_alive,
                                     const options& opts) {
    std::string bytes = http::serialize(r, keep_alive);
    c.deadline = clock_type::now() + opts.request_timeout;  // a client that never reads
    asio::error_code ec;
    co_await asio::async_write(c.socket, asio::buffer(bytes),
                               asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec;
}

// Closing a socket that still has unread input makes the kernel send RST,
// which can destroy the response we just wrote before the client reads it
// (the client is often still sending an oversized body). So: stop sending,
// drain the input for a moment, then close — nginx's "lingering close".
asio::awaitable<void> lingering_close(connection& c) {
    asio::error_code ignored;
    c.socket.shutdown(tcp::socket::shutdown_send, ignored);
    c.deadline = clock_type::now() + std::chrono::seconds(2);
    std::string sink;
    std::size_t drained = 0;
    while (drained < 1024 * 1024) {
        sink.clear();
        std::size_t n = co_await read_some(c, sink);
        if (n == 0) break;
        drained += n;
    }
    c.close();
}

void count_response(counters& stats, int status) {
    if (status < 400) {
        ++stats.responses_2xx;
    } else if (status < 500) {
        ++stats.responses_4xx;
    } else {
        ++stats.responses_5xx;
    }
}

// Keeps connections_open right however the session ends (including its frame
// being destroyed with the io_context at shutdown).
struct open_connection_count {
    counters& stats;
    explicit open_connection_count(counters& s) : stats(s) { ++stats.connections_open; }
    ~open_connection_count() { --stats.connections_open; }
    open_connection_count(const open_connection_count&) = delete;
    open_connection_count& operator=(const open_connection_count&) = delete;
};

asio::awaitable<void> session(std::shared_ptr<connection> c, const handler& handle,
                              const options& opts, counters& stats) {
    open_connection_count open(stats);
    std::string buffer;  // bytes received and not yet consumed (pipelined requests stay here)
    for (;;) {
        // 1. The request head. Idle time between requests is allowed up to
        //    idle_timeout; once a request has started it must arrive within
        //    request_timeout (a slowloris client cannot hold us forever).
        c->deadline =
            clock_type::now() + (buffer.empty() ? opts.idle_timeout : opts.request_timeout);
        http::parse_result head;
        for (;;) {
            head = http::parse_head(buffer, opts.limits);
            if (head.status != http::parse_result::state::incomplete) break;
            const bool first_bytes = buffer.empty();
            if (co_await read_some(*c, buffer) == 0) {
                c->close();
                co_return;
            }
            if (first_bytes) c->deadline = clock_type::now() + opts.request_timeout;
        }
        ++stats.requests;
        if (head.status == http::parse_result::state::error) {
            auto r = http::json_error(head.error_status, "bad_request", head.error_detail);
            count_response(stats, r.status);
            co_await write_response(*c, r, false, opts);
            co_await lingering_close(*c);
            co_return;
        }
        buffer.erase(0, head.head_bytes);

        // 2. The body: no route reads one, but it must be consumed so the next
        //    request on this connection starts at the right byte.
        std::size_t body_left = head.req.content_length;
        while (body_left > 0) {
            if (buffer.empty() && co_await read_some(*c, buffer) == 0) {
                c->close();
                co_return;
            }
            const std::size_t take = std::min(body_left, buffer.size());
            buffer.erase(0, take);
            body_left -= take;
        }

        // 3. The answer. No deadline while the pools work: the process pool's
        //    task_timeout bounds that instead.
        c->deadline = clock_type::time_point::max();
        ++stats.in_flight;
        http::response r;
        try {
            r = co_await handle(head.req);
        } catch (const std::exception& e) {  // handlers should not throw; be safe anyway
            r = http::json_error(500, "internal_error", e.what());
        }
        --stats.in_flight;
        count_response(stats, r.status);
        const bool keep_alive = head.req.keep_alive && !r.close && !stats.stopping;
        if (!co_await write_response(*c, r, keep_alive, opts)) {
            c->close();
            co_return;
        }
        if (!keep_alive) {
            co_await lingering_close(*c);
            co_return;
        }
    }
}

}  // namespace

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, const handler& handle,
                                  const options& opts, counters& stats) {
    auto executor = co_await asio::this_coro::executor;
    while (acceptor.is_open()) {
        asio::error_code ec;
        tcp::socket socket =
            co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        if (ec) {
            // Typically EMFILE: back off briefly instead of spinning on accept.
            std::fprintf(stderr, "server: accept: %s\n", ec.message().c_str());
            asio::steady_timer pause(executor, std::chrono::milliseconds(50));
            co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        ++stats.connections_accepted;
        socket.set_option(tcp::no_delay(true), ec);
        auto c = std::make_shared<connection>(std::move(socket));
        asio::co_spawn(executor, watchdog(c), asio::detached);
        asio::co_spawn(executor, session(c, handle, opts, stats), asio::detached);
    }
}

}  // namespace server
