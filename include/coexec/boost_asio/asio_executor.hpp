// coexec/boost_asio/asio_executor.hpp — a Boost.Asio executor seen as a coexec executor.
//
//   boost::asio::io_context io;
//   coexec::boost_asio::asio_executor ex{io.get_executor()};
//   auto f = ex.submit(parse, request);        // runs inside io.run()
//
// coexec::asio_executor (<coexec/asio/asio_executor.hpp>) for Boost.Asio: the
// same code and the same contract (thread safety, shutdown, stop tokens,
// sticky resumption of coroutines); see that header.
//
// Target: coexec::boost_asio (Boost 1.81 or later, header-only).
#pragma once

#include "coexec/detail/asio_interop/asio_executor.hpp"
#include "coexec/detail/asio_interop/boost.hpp"

namespace coexec::boost_asio {

template <class AsioExecutor>
class asio_executor final
    : public detail::asio_interop::basic_asio_executor<detail::asio_interop::boost_asio_library,
                                                       AsioExecutor> {
  public:
    using detail::asio_interop::basic_asio_executor<detail::asio_interop::boost_asio_library,
                                                    AsioExecutor>::basic_asio_executor;
};

/// A Boost.Asio executor as a coexec executor; deduces the type.
template <class AsioExecutor>
asio_executor(AsioExecutor) -> asio_executor<AsioExecutor>;

}  // namespace coexec::boost_asio
