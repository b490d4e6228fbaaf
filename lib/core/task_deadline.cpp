#include "coexec/detail/task_deadline.hpp"

#include <atomic>
#include <exception>
#include <memory>

#include "coexec/detail/timer_service.hpp"
#include "coexec/errors.hpp"
#include "process/completions.hpp"  // a generic resumer thread, the process pool's
#include "util/per_process.hpp"

namespace coexec::detail {
namespace {

// Where an expired deadline's user code runs: `callbacks` takes the future's
// done-callbacks and the resumptions of coroutines with no executor (posted
// there by the state, this being the timer thread's user_code_sink while it
// completes one); `stops` requests the tasks' stops (their stop callbacks are
// user code too). Not on the timer thread, which every timer of the process
// shares: a callback that blocks, even on another deadline's future, would
// hold them all. Nor one thread for both: a done-callback that waits for its
// task to end (a latch, the pool's shutdown) would hold the stop that ends
// it. One pair per process (util/per_process.hpp). (The process pool's
// completion thread, reused.)
struct deadline_threads {
    proc::completion_thread callbacks;
    proc::completion_thread stops;
};

deadline_threads& deadline_completions() {
    return per_process<deadline_threads>();
}

// The timer's callback and the state's continuation share it: whichever of
// them comes second frees it. (The continuation is the first base: the state
// hands back the pointer it was given.) After an expiry it is also the work
// item that requests the task's stop (deadline_threads::stops).
struct deadline_watch : continuation, work_item {
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

bool request_stop_posted(work_item* item, const std::exception_ptr* drop) noexcept {
    if (drop != nullptr) return false;  // not droppable: it always runs
    auto* w = static_cast<deadline_watch*>(item);
    w->state->request_stop();  // its stop callbacks are user code
    w->drop();                 // the timer's reference, handed on
    return true;
}

void on_deadline(deadline_watch* w) noexcept {
    if (w->state->is_done()) {
        w->drop();
        return;
    }
    deadline_threads& threads = deadline_completions();
    resumer* previous = exchange_user_code_sink(&threads.callbacks);
    // A no-op if the task finished meanwhile. Blocked get()/wait() callers
    // are woken here; user code goes to `threads.callbacks`.
    w->state->set_exception(std::make_exception_ptr(deadline_exceeded(
        "thread_pool: the task ran past its deadline; its stop token was signalled (a "
        "thread cannot be killed: the task runs until it returns, and its result is "
        "dropped)")));
    exchange_user_code_sink(previous);
    w->handler = &request_stop_posted;
    threads.stops.post(w);
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
