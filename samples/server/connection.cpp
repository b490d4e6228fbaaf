// samples/server/connection.cpp — see connection.hpp.
#include "connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

namespace server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using beast::error_code;
// Every operation completes with (error_code, ...) as a tuple: errors are
// expected here (clients vanish, time out, send garbage), not exceptional.
constexpr auto no_throw = net::as_tuple(net::use_awaitable);

void count_response(counters& stats, unsigned status) {
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

// Beast refuses every version but 1.0 and 1.1 as bad_version; a well-formed
// "HTTP/2.0" deserves 505 rather than 400. True if the request line in
// `buffered` ends in HTTP/<digit>.<digit>.
bool well_formed_version(std::string_view buffered) {
    const auto eol = buffered.find("\r\n");
    if (eol == std::string_view::npos || eol < 8) return false;
    const std::string_view v = buffered.substr(eol - 8, 8);
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    return v.starts_with("HTTP/") && digit(v[5]) && v[6] == '.' && digit(v[7]);
}

// What Beast accepts but this server does not: a target that is not in
// origin form ("/path?query"), HTTP/1.1 without Host (RFC 9112 §3.2), and a
// transfer coding other than chunked, which Beast would pass through
// undecoded (RFC 9112 §6.1: 501 for a coding the server does not understand).
// 0 when acceptable.
int check_head(const http::request& req, std::string& detail) {
    if (auto te = req.find(bhttp::field::transfer_encoding);
        te != req.end() && !beast::iequals(te->value(), "chunked")) {
        detail = "only the chunked transfer coding is supported";
        return 501;
    }
    if (req.target().empty() || req.target().front() != '/') {
        detail = "the request target must be a path (origin form)";
        return 400;
    }
    if (req.version() == 11 && req.find(bhttp::field::host) == req.end()) {
        detail = "HTTP/1.1 requires a Host header";
        return 400;
    }
    return 0;
}

// A failed read of a request → the status to answer with, or 0: close without
// an answer (the client left, or timed out: Beast's tcp_stream has closed the
// socket). `buffered`: the bytes not yet consumed by the parser.
int refusal_status(const error_code& ec, const beast::flat_buffer& buffered) {
    if (ec == bhttp::error::bad_version) {
        const auto data = buffered.cdata();
        const std::string_view text(static_cast<const char*>(data.data()), data.size());
        return well_formed_version(text) ? 505 : 400;
    }
    if (ec == bhttp::error::header_limit) return 431;
    if (ec == bhttp::error::body_limit) return 413;
    if (ec == bhttp::error::bad_transfer_encoding) return 501;
    if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
        ec == bhttp::error::short_read) {
        return 0;
    }
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category()) return 400;
    return 0;  // a socket error, or beast::error::timeout
}

// Closing a socket that still has unread input makes the kernel send RST,
// which can destroy the response we just wrote before the client reads it
// (the client is often still sending an oversized body). So: stop sending,
// drain the input for a moment, then close — nginx's "lingering close".
net::awaitable<void> lingering_close(beast::tcp_stream& stream) {
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.expires_after(std::chrono::seconds(2));
    char sink[8192];
    std::size_t drained = 0;
    while (drained < 1024 * 1024) {
        auto [ec, n] = co_await stream.async_read_some(net::buffer(sink), no_throw);
        if (ec) break;
        drained += n;
    }
    stream.close();
}

// Reads a request head into `parser`. Beast's header_limit bounds the bytes
// one parse step looks at, not the head's total (a head arriving in several
// pieces can exceed it), so the total is counted here too.
net::awaitable<error_code> read_head(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                     bhttp::request_parser<bhttp::string_body>& parser,
                                     std::size_t max_head_bytes) {
    std::size_t head_bytes = 0;
    while (!parser.is_header_done()) {
        auto [ec, n] = co_await bhttp::async_read_some(stream, buffer, parser, no_throw);
        head_bytes += n;
        if (ec) co_return ec;
        if (head_bytes > max_head_bytes) co_return bhttp::error::header_limit;
    }
    co_return error_code{};
}

// Writes `r` (only its head when answering HEAD); false if the client is gone.
net::awaitable<bool> write_response(beast::tcp_stream& stream, http::response& r, bool keep_alive,
                                    bool head_only, const options& opts, counters& stats) {
    count_response(stats, r.result_int());
    r.set(bhttp::field::connection, keep_alive ? "keep-alive" : "close");
    r.prepare_payload();                         // Content-Length: the body's, also for HEAD
    stream.expires_after(opts.request_timeout);  // a client that never reads
    error_code ec;
    if (head_only) {
        bhttp::response_serializer<bhttp::string_body> sr{r};
        std::tie(ec, std::ignore) = co_await bhttp::async_write_header(stream, sr, no_throw);
    } else {
        std::tie(ec, std::ignore) = co_await bhttp::async_write(stream, r, no_throw);
    }
    co_return !ec;
}

net::awaitable<void> session(beast::tcp_stream stream, const handler& handle, const options& opts,
                             counters& stats) {
    open_connection_count open(stats);
    beast::flat_buffer buffer;  // bytes received and not yet parsed (pipelined requests stay here)
    for (;;) {
        // 1. The first byte of the next request, unless it is already here.
        if (buffer.size() == 0) {
            stream.expires_after(opts.idle_timeout);
            auto [ec, n] = co_await stream.async_read_some(buffer.prepare(8192), no_throw);
            if (ec) co_return;  // gone, or idle too long (the socket is closed)
            buffer.commit(n);
        }

        // 2. The request, head then body, whole within request_timeout.
        stream.expires_after(opts.request_timeout);
        bhttp::request_parser<bhttp::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(opts.limits.max_header_bytes));
        parser.body_limit(opts.limits.max_body_bytes);
        error_code ec = co_await read_head(stream, buffer, parser, opts.limits.max_header_bytes);
        int refuse = ec ? refusal_status(ec, buffer) : 0;
        std::string detail = ec ? ec.message() : std::string();
        if (!ec) refuse = check_head(parser.get(), detail);
        if (!ec && refuse == 0) {
            std::tie(ec, std::ignore) =
                co_await bhttp::async_read(stream, buffer, parser, no_throw);
            if (ec) {
                refuse = refusal_status(ec, buffer);
                detail = ec.message();
            }
        }
        if (ec && refuse == 0) co_return;  // nothing to answer: the client left or timed out
        ++stats.requests;
        if (refuse != 0) {
            http::response r = http::json_error(refuse, detail);
            co_await write_response(stream, r, false, false, opts, stats);
            co_await lingering_close(stream);
            co_return;
        }

        // 3. The answer. No deadline while the pools work: the process pool's
        //    task_timeout bounds that instead.
        stream.expires_never();
        const http::request req = parser.release();
        ++stats.in_flight;
        http::response r;
        try {
            r = co_await handle(req);
        } catch (const std::exception& e) {  // handlers should not throw; be safe anyway
            r = http::json_error(500, e.what());
        }
        --stats.in_flight;
        const bool keep_alive = req.keep_alive() && !stats.stopping;
        const bool head_only = req.method() == bhttp::verb::head;
        if (!co_await write_response(stream, r, keep_alive, head_only, opts, stats)) co_return;
        if (!keep_alive) {
            co_await lingering_close(stream);
            co_return;
        }
    }
}

}  // namespace

net::awaitable<void> accept_loop(tcp::acceptor& acceptor, const handler& handle,
                                 const options& opts, counters& stats) {
    auto executor = co_await net::this_coro::executor;
    while (acceptor.is_open()) {
        auto [ec, socket] = co_await acceptor.async_accept(no_throw);
        if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
        if (ec) {
            // Typically EMFILE: back off briefly instead of spinning on accept.
            std::fprintf(stderr, "server: accept: %s\n", ec.message().c_str());
            net::steady_timer pause(executor, std::chrono::milliseconds(50));
            co_await pause.async_wait(no_throw);
            continue;
        }
        ++stats.connections_accepted;
        socket.set_option(tcp::no_delay(true), ec);
        net::co_spawn(executor, session(beast::tcp_stream(std::move(socket)), handle, opts, stats),
                      net::detached);
    }
}

}  // namespace server
