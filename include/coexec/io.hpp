// coexec/io.hpp — coroutine I/O on thread_pool workers (docs/api-io.md).
//
// Awaitables for timers, files and sockets. Each thread_pool worker drives
// one io_uring ring (or, where io_uring is refused, an epoll instance) and
// sleeps in it when idle, so a single wait covers new work and finished I/O.
// An awaiting coroutine holds no thread and resumes on the worker that
// started the operation.
//
//     coexec::thread_pool pool;
//     auto f = pool.submit([]() -> coexec::task<std::size_t> {
//         co_await coexec::io::sleep_for(10ms);
//         int fd = co_await coexec::io::open("data.bin", O_RDONLY);
//         std::vector<char> buf(4096);
//         std::size_t n = co_await coexec::io::read(fd, buf, 0);
//         co_await coexec::io::close(fd);
//         co_return n;
//     });
//
// @par Cancellation
// Every awaitable takes an optional std::stop_token. Without one it uses the
// stop token of the submitted coroutine job running it (signalled by
// future::cancel()); pool shutdown(cancel_futures = true) and destruction
// cancel every operation in flight. A cancelled operation throws
// std::system_error with std::errc::operation_canceled (ECANCELED).
//
// Note: the job's token is found through a thread-local set while the job's
// frames run; every coexec awaiter carries it across its suspension (io
// awaits, pool.schedule(), `co_await` of futures and the combinators), but
// foreign awaitables (Asio's) do not. Pass the token explicitly where that
// matters.
//
// @par Errors
// OS failures: std::system_error carrying errno and the operation's name.
// Awaiting where no reactor runs the coroutine (a plain thread outside
// sync_wait, a blocking callable on a worker) throws coexec::error telling to
// run the coroutine on a thread_pool or under sync_wait (whose loop makes a
// reactor of its own for the waiting thread).
//
// @par Thread safety
// An awaitable is awaited once, by one coroutine (a second co_await throws
// coexec::error). The buffers must outlive
// the operation (true when it is co_awaited in the same expression).
#pragma once

#include "coexec/io/backend.hpp"
#include "coexec/io/buffer.hpp"
#include "coexec/io/file.hpp"
#include "coexec/io/socket.hpp"
#include "coexec/io/timer.hpp"
