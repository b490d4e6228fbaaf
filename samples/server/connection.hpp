// samples/server/connection.hpp — accepting connections and serving HTTP/1.1 on them.
//
// One awaitable coroutine per connection reads a request with Boost.Beast's
// parser, awaits the handler, writes the response, and loops while the
// connection is kept alive. The handler is type-erased, so this file knows
// nothing of executors: only routes.hpp is generic over the CPU executor.
//
// Limits and timeouts (options in state.hpp):
//   - waiting for a request's first byte: idle_timeout, then the connection
//     is closed without a word (keep-alive connections end this way);
//   - from that byte, the whole request within request_timeout, else the
//     connection is closed (a slowloris client holds it no longer);
//   - a head over limits::max_header_bytes → 431; a declared body over
//     limits::max_body_bytes → 413 before the body is read;
//   - malformed requests → 400, an HTTP version other than 1.0/1.1 → 505,
//     a transfer coding other than chunked → 501.
// Each error answer closes the connection: after a framing error the server
// cannot know where the next request would start.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>

#include "http.hpp"
#include "state.hpp"

namespace server {

/// Turns a request into a response. Must not throw (routes catch).
using handler = std::function<boost::asio::awaitable<http::response>(const http::request&)>;

/// Accepts until the acceptor is closed; each connection runs as its own
/// coroutine on the acceptor's executor. `handle`, `opts` and `stats` must
/// outlive every connection (they live in main's frame, past io_context::run).
boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor,
                                         const handler& handle, const options& opts,
                                         counters& stats);

}  // namespace server
