// lib/process/worker_loop.hpp — the main loop of a process worker.
//
// The worker takes messages from its channel (config, then tasks, then exit),
// runs each task through the codec's trampoline and sends the result back. It
// holds one task at a time. Between messages it spins briefly
// (spin::process_worker), then sleeps on its eventfd and on its socket's
// hang-up: the parent's end closing means the parent is gone, and the worker
// exits.
#pragma once

#include "process/channel.hpp"

namespace coexec::detail::proc {

/// Runs the worker loop over `fds`, then exits the process (_exit): 0 after
/// an exit message or the parent's hang-up, 3 if the initializer threw, 70
/// if the loop itself failed. Never returns.
[[noreturn]] void worker_main(channel_fds fds) noexcept;

}  // namespace coexec::detail::proc
