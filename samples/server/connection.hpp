// samples/server/connection.hpp — accepting connections and serving HTTP/1.1 on them.
//
// One asio::awaitable coroutine per connection reads a request, awaits the
// handler, writes the response, and loops while the connection is kept alive.
// The handler is type-erased, so this file knows nothing of executors: only
// routes.hpp is generic over the CPU executor.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <functional>

#include "http.hpp"
#include "state.hpp"

namespace server {

/// Turns a parsed request into a response. Must not throw (routes catch).
using handler = std::function<asio::awaitable<http::response>(const http::request&)>;

/// Accepts until the acceptor is closed; each connection runs as its own
/// coroutine on the acceptor's executor. `handle`, `opts` and `stats` must
/// outlive every connection (they live in main's frame, past io_context::run).
asio::awaitable<void> accept_loop(asio::ip::tcp::acceptor& acceptor, const handler& handle,
                                  const options& opts, counters& stats);

}  // namespace server
