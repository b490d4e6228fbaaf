#include "coexec/detail/task_deadline.hpp"

#include <atomic>
#include <exception>
#include <memory>

#include "coexec/detail/timer_service.hpp"
#include "coexec/errors.hpp"

namespace coexec::detail {
namespace {

// The timer's callback and the state's continuation share it: whichever of
// them comes second frees it. (The continuation is the first base: the state
// hands back the pointer it was given.)
struct deadline_watch : continuation {
    shared_state_base* state = nullptr;
    timer_handle timer;
    std::atomic<int> refs{2};  // the timer's and the continuation's

    void drop() noexcept {
        if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            state->release();
            delete this;
        }
    }
};

void on_deadline(deadline_watch* w) noexcept {
    if (!w->state->is_done()) {
        // set_exception is a no-op if the task finished meanwhile.
        w->state->set_exception(std::make_exception_ptr(deadline_exceeded(
            "thread_pool: the task ran past its deadline; its stop token was signalled (a "
            "thread cannot be killed: the task runs until it returns, and its result is "
            "dropped)")));
        w->state->request_stop();
    }
    w->drop();
}

}  // namespace

void fail_at_deadline(shared_state_base& state, std::chrono::steady_clock::time_point deadline) {
    if (deadline == std::chrono::steady_clock::time_point::max()) return;  // never
    auto watch = std::make_unique<deadline_watch>();
    deadline_watch* w = watch.get();
    w->state = &state;
    w->fn = [](continuation* c) noexcept {
        auto* self = static_cast<deadline_watch*>(c);
        // Done in time: the timer goes (and its reference with it), unless
        // its callback already runs, which drops its own.
        if (cancel_timer(self->timer)) self->drop();
        self->drop();
    };
    w->timer = schedule_timer(deadline, [w] { on_deadline(w); });  // may throw: nothing armed
    state.add_ref();
    watch.release();
    // After the timer's handle is stored: the continuation reads it.
    if (!state.add_continuation(w)) w->fn(w);  // already done
}

std::chrono::steady_clock::time_point deadline_after(std::chrono::nanoseconds timeout) noexcept {
    using clock = std::chrono::steady_clock;
    const auto now = clock::now();
    if (timeout.count() <= 0) return now;
    if (timeout >= clock::time_point::max() - now) return clock::time_point::max();
    return now + std::chrono::duration_cast<clock::duration>(timeout);
}

}  // namespace coexec::detail
