// detail/process_task.hpp — one task as the process_pool's core sees it.
//
// submit() encodes the call on the caller's thread into a process_task: the
// worker-side trampoline's code address, then the codec's encoding of the
// callable and arguments (descriptors of shared_buffers beside it). The core
// moves it to a worker and, when the result message comes back, calls
// `complete` on the supervisor thread to decode the result into the future
// (user code that completion triggers runs elsewhere: lib/process/completions.hpp).
#pragma once

#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/detail/codec/code_address.hpp"
#include "coexec/detail/codec/values.hpp"
#include "coexec/detail/outcome.hpp"
#include "coexec/detail/shared_state.hpp"
#include "coexec/errors.hpp"

namespace coexec::detail {

struct process_task {
    /// Decodes a result message into `state`; must complete it. Never throws.
    using complete_fn = void (*)(shared_state_base* state, byte_reader& in,
                                 std::size_t count) noexcept;

    process_task() = default;
    process_task(const process_task&) = delete;
    process_task& operator=(const process_task&) = delete;

    /// Safety net: a task dropped without a result still ends its future.
    /// The core destroys tasks outside its locks, since this may run callbacks.
    ~process_task() {
        if (state != nullptr) {
            state->set_exception(std::make_exception_ptr(
                broken_pool("coexec::process_pool: the task was dropped without a result")));
            state->release();
        }
        close_fds(fds);
    }

    shared_state_base* state = nullptr;  ///< one reference held
    std::vector<std::byte> message;      ///< trampoline address + encoded call
    std::vector<int> fds;                ///< owned; sent with the message
    complete_fn complete = nullptr;
    std::size_t count = 0;                ///< map chunks: elements in the chunk
    std::chrono::nanoseconds timeout{0};  ///< 0: the pool's task_timeout
    /// Its callable takes a std::stop_token: the pool's destruction and
    /// shutdown(cancel_futures) stop it (its worker is killed).
    bool stoppable = false;
    /// Times a worker died holding this task before starting it (the pool
    /// re-runs it elsewhere a bounded number of times).
    std::uint8_t restarts = 0;
    /// What worker_died::task() names, looked up only if a worker dies
    /// running it: a function pointer's target, or another callable's type
    /// (typeid name). Neither: "a process_pool task".
    const void* function = nullptr;
    const char* callable_type = nullptr;
};

/// Moves the queued tasks that take a stop token from `queue` to `out`: a
/// process or MPI pool's shutdown(cancel_futures) and destructor stop them.
template <class Queue, class Out>
void move_stoppable(Queue& queue, Out& out) {
    for (auto it = queue.begin(); it != queue.end();) {
        if ((*it)->stoppable) {
            out.push_back(std::move(*it));
            it = queue.erase(it);
        } else {
            ++it;
        }
    }
}

/// Records what `f` is, for worker_died::task() (see process_task).
template <class F>
void name_task(process_task& t, const F& f) noexcept {
    using D = std::decay_t<F>;
    if constexpr (std::is_pointer_v<D> && std::is_function_v<std::remove_pointer_t<D>>) {
        const D fn = f;
        t.function = std::bit_cast<const void*>(fn);
    } else {
        t.callable_type = typeid(D).name();
    }
}

/// The module-relative address of a worker-side trampoline, computed once per type.
template <auto Fn>
std::uint64_t trampoline_address() {
    static const std::uint64_t address = encode_code_address(std::bit_cast<const void*>(Fn));
    return address;
}

template <class R>
void complete_single(shared_state_base* base, byte_reader& in, std::size_t) noexcept {
    auto* s = static_cast<shared_state<R>*>(base);
    try {
        if constexpr (std::is_void_v<R>) {
            decode_result<void>(in);
            s->set_value();
        } else {
            s->set_value(decode_result<R>(in));
        }
    } catch (...) {
        s->set_exception(std::current_exception());
    }
}

template <class R>
void complete_chunk(shared_state_base* base, byte_reader& in, std::size_t count) noexcept {
    auto* s = static_cast<shared_state<std::vector<outcome<R>>>*>(base);
    try {
        s->set_value(decode_chunk_result<R>(in, count));
    } catch (...) {
        s->set_exception(std::current_exception());
    }
}

}  // namespace coexec::detail
