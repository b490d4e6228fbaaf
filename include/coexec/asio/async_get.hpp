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
//   a coroutine resumes on its own io_context thread), never on a pool worker.
// - Outstanding work is counted on that executor while the pool computes, so
//   `io_context::run()` does not return early.
// - The handler's cancellation slot maps to `future::cancel()` (a queued task is
//   cancelled; on a process_pool a running one is stopped too).
//
// Target: coexec::asio (opt-in; needs standalone Asio).
#pragma once

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/bind_executor.hpp>
#include <asio/dispatch.hpp>
#include <asio/executor_work_guard.hpp>
#include <exception>
#include <type_traits>
#include <utility>

#include "coexec/future.hpp"

namespace coexec {
namespace detail {

template <class T>
struct async_get_signature_of {
    using type = void(std::exception_ptr, T);
};
template <>
struct async_get_signature_of<void> {
    using type = void(std::exception_ptr);
};
template <class T>
using async_get_signature = typename async_get_signature_of<T>::type;

struct async_get_initiation {
    template <class Handler, class T>
    void operator()(Handler&& handler, future<T> fut) const {
        auto slot = ::asio::get_associated_cancellation_slot(handler);
        if (slot.is_connected()) {
            slot.assign([fut](::asio::cancellation_type) { fut.cancel(); });
        }
        auto executor = ::asio::get_associated_executor(handler);
        // The work guard keeps the handler's executor (io_context::run) busy until we complete.
        auto work = ::asio::make_work_guard(executor);
        fut.add_done_callback([handler = std::forward<Handler>(handler),
                               work = std::move(work)](const future<T>& done) mutable {
            auto ex = work.get_executor();
            ::asio::dispatch(
                ex, [handler = std::move(handler), done, work = std::move(work)]() mutable {
                    auto slot = ::asio::get_associated_cancellation_slot(handler);
                    if (slot.is_connected()) slot.clear();
                    std::exception_ptr error = done.exception();
                    if constexpr (std::is_void_v<T>) {
                        std::move(handler)(error);
                    } else if (error) {
                        std::move(handler)(error, T{});
                    } else if constexpr (std::is_copy_constructible_v<T>) {
                        std::move(handler)(error, done.get());
                    } else {
                        std::move(handler)(error, std::move(done).get());
                    }
                    work.reset();
                });
        });
    }
};

}  // namespace detail

/// Starts waiting for `fut`; completes through `token` with the value or the
/// task's exception. T must be default constructible (Asio passes a value
/// alongside the exception).
template <class T, class CompletionToken>
auto async_get(future<T> fut, CompletionToken&& token) {
    return ::asio::async_initiate<CompletionToken, detail::async_get_signature<T>>(
        detail::async_get_initiation{}, token, std::move(fut));
}

}  // namespace coexec
