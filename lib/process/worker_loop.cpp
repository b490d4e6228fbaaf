#include "process/worker_loop.hpp"

#include <poll.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/detail/codec/code_address.hpp"
#include "coexec/detail/codec/exceptions.hpp"
#include "coexec/detail/spin.hpp"
#include "coexec/errors.hpp"
#include "sandbox/sandbox.hpp"
#include "trace/process_link.hpp"

namespace coexec::detail::proc {
namespace {

// Worker exit codes for failures of the worker loop itself (not of tasks).
constexpr int exit_init_failed = 3;
constexpr int exit_loop_error = 70;

using initializer_fn = void (*)();

void encode_failure(std::vector<std::byte>& out, std::vector<int>& out_fds) {
    close_fds(out_fds);
    out_fds.clear();
    out.clear();
    byte_writer w(out, nullptr);
    w.put(1);  // the codec's status_exception, then the exception
    encode_exception(w, std::current_exception());
}

int worker_loop(channel_fds fds) {
    channel ch = channel::attach(std::move(fds));
    std::vector<std::byte> out;
    out.reserve(4096);
    std::vector<int> out_fds;
    trace::link::task_timer timer;  // while the parent's trace wants tasks timed
    message m;
    for (;;) {
        if (!ch.try_receive(m)) {
            if (spin_until([&] { return ch.readable(); }, spin::process_worker)) continue;
            if (!ch.prepare_sleep()) continue;
            pollfd p[2] = {{ch.wake_fd(), POLLIN, 0}, {ch.socket_fd(), POLLRDHUP, 0}};
            const int r = ::poll(p, 2, -1);
            ch.end_sleep();
            if (r < 0 && errno != EINTR) return exit_loop_error;
            // The parent is gone (or closed the channel): nothing more will come.
            if ((p[1].revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0 && !ch.readable()) return 0;
            continue;
        }
        switch (m.kind) {
            case msg_kind::config: {
                out.clear();
                try {
                    byte_reader in(m.bytes);
                    const std::uint64_t init = in.get_u64();
                    if (init != 0) std::bit_cast<initializer_fn>(decode_code_address(init))();
                    // Limits and sandbox (lib/sandbox): after the worker's own
                    // set-up and the initializer, before the first task.
                    sandboxing::enter(in);
                } catch (...) {
                    encode_failure(out, out_fds);
                    ch.send(msg_kind::init_failed, m.id, out);
                    return exit_init_failed;
                }
                ch.send(msg_kind::ready, m.id, {});
                break;
            }
            case msg_kind::task: {
                out.clear();
                out_fds.clear();
                try {
                    byte_reader in(m.bytes, m.fds);
                    byte_writer w(out, &out_fds);
                    const trampoline_fn fn = decode_trampoline(in);
                    ch.set_running_id(m.id);
                    timer.begin();
                    fn(in, w);  // encodes the task's own exceptions itself
                    if (out_fds.size() > max_fds_per_message) {
                        throw serialization_error(
                            "coexec: a task's result holds " + std::to_string(out_fds.size()) +
                            " shared_buffers; at most " + std::to_string(max_fds_per_message) +
                            " may cross in one message");
                    }
                } catch (...) {
                    encode_failure(out, out_fds);
                }
                // The arguments are decoded: free the message before the result
                // goes out, so the parent finds the arena free for the next task.
                ch.release(m);
                try {
                    timer.ship(ch, m.id);
                    ch.send(msg_kind::result, m.id, out, out_fds);
                } catch (...) {
                    close_fds(out_fds);
                    throw;
                }
                close_fds(out_fds);
                out_fds.clear();
                // Its cpu_time budget spent (lib/sandbox): exit, to be replaced.
                if (sandboxing::should_retire()) return 0;
                break;
            }
            case msg_kind::trace_config:
                timer.configure(m.bytes);
                break;
            case msg_kind::exit:
                ch.release(m);
                return 0;
            default:
                return exit_loop_error;
        }
        ch.release(m);
    }
}

}  // namespace

[[noreturn]] void worker_main(channel_fds fds) noexcept {
    int code = exit_loop_error;
    try {
        code = worker_loop(std::move(fds));
    } catch (...) {
        code = exit_loop_error;
    }
    // _exit: the worker is a copy of the caller's image; its atexit handlers
    // and static destructors belong to the caller.
    std::fflush(nullptr);
    ::_exit(code);
}

}  // namespace coexec::detail::proc
