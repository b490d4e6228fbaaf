// coexec/coexec.hpp — everything in coexec (the MPI executor aside; the Asio interop when linked
// with coexec::asio).
//
// A convenience; code that wants short compile times includes what it uses.
#pragma once

#include "coexec/as_completed.hpp"
#include "coexec/errors.hpp"
#include "coexec/executor.hpp"
#include "coexec/future.hpp"
#include "coexec/inline_executor.hpp"
#include "coexec/io.hpp"
#include "coexec/pipeline.hpp"
#include "coexec/process_mutex.hpp"
#include "coexec/process_pool.hpp"
#include "coexec/promise.hpp"
#include "coexec/register_exception.hpp"
#include "coexec/results.hpp"
#include "coexec/shared_buffer.hpp"
#include "coexec/shared_queue.hpp"
#include "coexec/shared_value.hpp"
#include "coexec/sync_wait.hpp"
#include "coexec/task.hpp"
#include "coexec/thread_pool.hpp"
#include "coexec/trace.hpp"
#include "coexec/wait.hpp"
#include "coexec/when_all.hpp"
#include "coexec/when_any.hpp"

// Linked with coexec::asio (which defines COEXEC_WITH_ASIO): asio_executor
// and async_get as well.
#if defined(COEXEC_WITH_ASIO)
#include "coexec/asio.hpp"
#endif
