// detail/asio_interop/async_get.hpp — async_get, written once for standalone
// Asio and Boost.Asio.
//
// `Net` is a library description (detail/asio_interop/standalone.hpp or
// boost.hpp): a struct whose static members forward to the library's free
// functions. The code below names no library, so the two public headers
// (<coexec/asio/async_get.hpp>, <coexec/boost_asio/async_get.hpp>) only pick
// `Net`, and both can be used in one program, even in one file.
#pragma once

#include <exception>
#include <type_traits>
#include <utility>

#include "coexec/future.hpp"

namespace coexec::detail::asio_interop {

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

template <class Net>
struct async_get_initiation {
    template <class Handler, class T>
    void operator()(Handler&& handler, future<T> fut) const {
        auto slot = Net::get_associated_cancellation_slot(handler);
        if (slot.is_connected()) {
            slot.assign([fut](auto /*cancellation_type*/) { fut.cancel(); });
        }
        auto executor = Net::get_associated_executor(handler);
        // The work guard keeps the handler's executor (io_context::run) busy until we complete.
        auto work = Net::make_work_guard(executor);
        fut.add_done_callback([handler = std::forward<Handler>(handler),
                               work = std::move(work)](const future<T>& done) mutable {
            auto ex = work.get_executor();
            Net::dispatch(ex,
                          // A non-const copy: a move-only value is moved out of it.
                          [handler = std::move(handler), done = future<T>(done),
                           work = std::move(work)]() mutable {
                              auto slot = Net::get_associated_cancellation_slot(handler);
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

template <class Net, class T, class CompletionToken>
auto async_get(future<T> fut, CompletionToken&& token) {
    return Net::template async_initiate<CompletionToken, async_get_signature<T>>(
        async_get_initiation<Net>{}, token, std::move(fut));
}

}  // namespace coexec::detail::asio_interop
