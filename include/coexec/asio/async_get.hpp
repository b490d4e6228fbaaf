// coexec/asio/async_get.hpp — await a coexec future inside Asio code.
//
//   asio::awaitable<void> session(...) {
//       int n = co_await coexec::async_get(pool.submit(count, text), asio::use_awaitable);
//   }
//
// An `asio::awaitable` coroutine can only co_await Asio operations; this makes
// a coexec::future one. It follows Asio's completion-token model, so
// `use_awaitable`, `use_future`, `deferred` and plain callbacks all work.
// Completion signature: `void(std::exception_ptr, T)` (`void(std::exception_ptr)`
// for future<void>); with `use_awaitable` the exception is rethrown.
//
// - The handler runs through its associated executor (a strand stays a strand;
//   a coroutine resumes on its own io_context thread). A plain callback with
//   no executor gets Asio's default (system_executor): it runs on the thread
//   that finished the future; bind_executor chooses.
// - That executor must outlive the operation: an io_context destroyed while
//   an async_get on it is pending is dispatched into when the future ends.
// - Outstanding work is counted on that executor while the pool computes, so
//   `io_context::run()` does not return early.
// - The handler's cancellation slot maps to `future::cancel()` (a queued task is
//   cancelled; on a process_pool a running one is stopped too).
//
// Target: coexec::asio (standalone Asio 1.22 or later). For Boost.Asio the
// same function is coexec::boost_asio::async_get (<coexec/boost_asio/async_get.hpp>,
// target coexec::boost_asio); both can be used in one program.
#pragma once

#include <utility>

// asio_executor too: this is the header a user of coexec::asio reaches for.
#include "coexec/asio/asio_executor.hpp"
#include "coexec/detail/asio_interop/async_get.hpp"
#include "coexec/detail/asio_interop/standalone.hpp"
#include "coexec/future.hpp"

namespace coexec {

/// Starts waiting for `fut`; completes through `token` with the value or the
/// task's exception. T must be default constructible (Asio passes a value
/// alongside the exception). Throws nothing itself; what the token does with
/// a failure is the token's business (use_awaitable rethrows).
template <class T, class CompletionToken>
auto async_get(future<T> fut, CompletionToken&& token) {
    return detail::asio_interop::async_get<detail::asio_interop::standalone_asio_library>(
        std::move(fut), std::forward<CompletionToken>(token));
}

}  // namespace coexec
