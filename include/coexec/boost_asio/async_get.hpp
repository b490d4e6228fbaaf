// coexec/boost_asio/async_get.hpp — await a coexec future inside Boost.Asio code.
//
//   boost::asio::awaitable<void> session(...) {
//       int n = co_await coexec::boost_asio::async_get(pool.submit(count, text),
//                                                      boost::asio::use_awaitable);
//   }
//
// coexec::async_get (<coexec/asio/async_get.hpp>) for Boost.Asio: the same
// code, the same behaviour (completion tokens, the handler's associated
// executor, work counted while the pool computes, cancellation slot →
// future::cancel()); see that header. Both can be used in one program.
//
// Target: coexec::boost_asio (Boost 1.81 or later, header-only).
#pragma once

#include <utility>

#include "coexec/detail/asio_interop/async_get.hpp"
#include "coexec/detail/asio_interop/boost.hpp"
#include "coexec/future.hpp"

namespace coexec::boost_asio {

/// Starts waiting for `fut`; completes through `token` with the value or the
/// task's exception (`void(std::exception_ptr, T)`, or `void(std::exception_ptr)`
/// for future<void>). T must be default constructible.
template <class T, class CompletionToken>
auto async_get(future<T> fut, CompletionToken&& token) {
    return detail::asio_interop::async_get<detail::asio_interop::boost_asio_library>(
        std::move(fut), std::forward<CompletionToken>(token));
}

}  // namespace coexec::boost_asio
