// coexec/asio.hpp — standalone Asio interop (target coexec::asio): async_get and
// asio_executor. For Boost.Asio: <coexec/boost_asio.hpp>.
#pragma once

#include "coexec/asio/asio_executor.hpp"
#include "coexec/asio/async_get.hpp"
