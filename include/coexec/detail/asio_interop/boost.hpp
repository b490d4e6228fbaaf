// detail/asio_interop/boost.hpp — Boost.Asio, as the interop code
// (detail/asio_interop/async_get.hpp, asio_executor.hpp) calls it.
//
// Every library function that code uses, forwarded by a static member, so the
// interop is written once and compiled against either library. The twin for
// standalone Asio is detail/asio_interop/standalone.hpp; keep the two in step.
#pragma once

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <utility>

namespace coexec::detail::asio_interop {

struct boost_asio_library {
    template <class T>
    static auto get_associated_cancellation_slot(const T& t) noexcept {
        return ::boost::asio::get_associated_cancellation_slot(t);
    }
    template <class T>
    static auto get_associated_executor(const T& t) noexcept {
        return ::boost::asio::get_associated_executor(t);
    }
    template <class Executor>
    static auto make_work_guard(const Executor& ex) {
        return ::boost::asio::make_work_guard(ex);
    }
    template <class Executor, class F>
    static void dispatch(const Executor& ex, F&& f) {
        ::boost::asio::dispatch(ex, std::forward<F>(f));
    }
    template <class Executor, class F>
    static void post(const Executor& ex, F&& f) {
        ::boost::asio::post(ex, std::forward<F>(f));
    }
    template <class Token, class Signature, class Initiation, class... Args>
    static decltype(auto) async_initiate(Initiation&& init, Token& token, Args&&... args) {
        return ::boost::asio::async_initiate<Token, Signature>(std::forward<Initiation>(init),
                                                               token, std::forward<Args>(args)...);
    }
};

}  // namespace coexec::detail::asio_interop
