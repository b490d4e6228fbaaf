// coexec/boost_asio.hpp — Boost.Asio interop (target coexec::boost_asio):
// coexec::boost_asio::async_get and coexec::boost_asio::asio_executor.
#pragma once

#include "coexec/boost_asio/asio_executor.hpp"
#include "coexec/boost_asio/async_get.hpp"
