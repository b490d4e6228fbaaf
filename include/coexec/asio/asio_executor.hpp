// coexec/asio/asio_executor.hpp — an Asio executor seen as a coexec executor.
//
//   asio::io_context io;
//   coexec::asio_executor ex{io.get_executor()};
//   auto f = ex.submit(parse, request);        // runs inside io.run()
//
// Code written against coexec::executor (submit/map/shutdown/stats) runs on
// an io_context, a strand or an asio::thread_pool unchanged. Coroutines
// submitted here (callables returning task<U>) resume on the Asio executor
// after awaiting coexec futures (sticky resumption).
//
// Members: submit(f, args...) posts `f(args...)` to the Asio executor, run
// there by the same job runner as thread_pool (`f(stop_token, args...)` if f
// takes a stop_token first); map, shutdown(wait, cancel_futures), stats,
// max_workers (1), get_executor.
//
// @par Thread safety
// All members are thread-safe. shutdown(wait = true) and the destructor block
// until the submitted work is done, so the Asio executor must keep running it
// (io_context::run on some thread). Called from inside one of this executor's
// own jobs (a coroutine that owns a local asio_executor, resumed by a job of
// it, and returns), they wait for every job but the ones running on the
// calling thread, which finish after the executor is gone: what those jobs
// still need lives in a block they share.
//
// @par Errors and shutdown
// submit throws executor_shutdown after shutdown(). Asio has no queue coexec
// can cancel, so shutdown(cancel_futures = true) cancels nothing already
// posted; it signals the stop tokens of tasks that take one. The destructor
// signals those stop tokens, then waits as shutdown(wait = true).
//
// Target: coexec::asio (standalone Asio). For Boost.Asio the same class is
// coexec::boost_asio::asio_executor (<coexec/boost_asio/asio_executor.hpp>).
#pragma once

#include "coexec/detail/asio_interop/asio_executor.hpp"
#include "coexec/detail/asio_interop/standalone.hpp"

namespace coexec {

template <class AsioExecutor>
class asio_executor final : public detail::asio_interop::basic_asio_executor<
                                detail::asio_interop::standalone_asio_library, AsioExecutor> {
  public:
    using detail::asio_interop::basic_asio_executor<detail::asio_interop::standalone_asio_library,
                                                    AsioExecutor>::basic_asio_executor;
};

/// An io_context's executor (or any other) as a coexec executor; deduces the type.
template <class AsioExecutor>
asio_executor(AsioExecutor) -> asio_executor<AsioExecutor>;

}  // namespace coexec
