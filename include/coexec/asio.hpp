// coexec/asio.hpp — Asio interop (target coexec::asio): async_get and asio_executor.
#pragma once

#include "coexec/asio/asio_executor.hpp"
#include "coexec/asio/async_get.hpp"
