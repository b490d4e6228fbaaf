#include "io/reactor.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <utility>

#include "coexec/detail/shared_state.hpp"
#include "coexec/errors.hpp"
#include "trace/hooks.hpp"
#include "util/eventfd.hpp"
#include "util/system_error.hpp"

namespace coexec {
namespace detail {
namespace {

thread_local io_reactor* t_reactor = nullptr;
thread_local shared_state_base* t_io_job = nullptr;

}  // namespace

// ---------------------------------------------------------------- helpers

shared_state_base* current_io_job() noexcept {
    return t_io_job;
}

shared_state_base* exchange_current_io_job(shared_state_base* job) noexcept {
    shared_state_base* old = t_io_job;
    t_io_job = job;
    return old;
}

void io_cancel_fn::operator()() const noexcept {
    op->reactor->request_cancel(*op);
}

namespace {

using token_link_type = std::stop_callback<io_cancel_fn>;

// stop_listener::on_stop of an op hung on its job.
void cancel_on_job_stop(stop_listener* l) noexcept {
    auto* op = static_cast<io_op*>(l);
    op->reactor->request_cancel(*op);
}

}  // namespace

void io_check_context(const char* name) {
    io_reactor* r = t_reactor;
    resumer* here = current_resumer();
    if (r != nullptr && here == r->owner()) return;
    // A sync_wait loop makes its reactor now (it may throw system_error).
    if (here != nullptr && here->attach_io_reactor()) return;
    throw error(std::string(name) +
                ": no I/O reactor runs this coroutine; coexec::io operations must be awaited "
                "by a coroutine running on a coexec::thread_pool (submit the coroutine to the "
                "pool, or `co_await pool.schedule()` first) or under sync_wait, not on a plain "
                "thread, inline_executor or inside a blocking task");
}

void io_throw_awaited_twice(const char* name) {
    throw error(std::string(name) +
                ": this awaitable was awaited already; a coexec::io awaitable is awaited once "
                "(make a new one for the next operation)");
}

bool io_start(io_op& op) noexcept {
    return t_reactor->start(op);  // io_check_context ran in await_ready
}

void io_throw(const io_op& op) {
    throw_system_error(static_cast<int>(-op.result), op.name());
}

// ---------------------------------------------------------------- reactor

io_reactor::io_reactor(io::backend_kind kind, int wake_fd, resumer* owner) noexcept
    : m_kind(kind), m_wake_fd(wake_fd), m_owner(owner) {}

io_reactor::~io_reactor() {
    m_pool_stop_link.reset();  // waits for a concurrent request_close() to return
    if (t_reactor == this) t_reactor = nullptr;
}

io_reactor* io_reactor::current() noexcept {
    return t_reactor;
}

io_reactor* io_reactor::exchange_current(io_reactor* r) noexcept {
    return std::exchange(t_reactor, r);
}

std::unique_ptr<io_reactor> io_reactor::create(int wake_fd, resumer* owner,
                                               std::stop_token pool_stop) {
    std::unique_ptr<io_reactor> r;
    if (io::backend() == io::backend_kind::io_uring) {
        try {
            r = make_uring_reactor(wake_fd, owner);
        } catch (const std::system_error&) {
            // The probe worked but this ring did not (e.g. memlock or fd
            // limits): this worker does its I/O with epoll instead.
        }
    }
    if (!r) r = make_epoll_reactor(wake_fd, owner);
    t_reactor = r.get();
    r->link_pool_stop(std::move(pool_stop));
    return r;
}

void io_reactor::link_pool_stop(std::stop_token pool_stop) {
    if (pool_stop.stop_possible()) m_pool_stop_link.emplace(std::move(pool_stop), close_fn{this});
}

bool io_reactor::start(io_op& op) noexcept {
    // A close asked for by another thread (the pool's stop) is acted on here
    // too, not only when this worker next reaps: a coroutine whose ops all
    // finish at once (regular files on the epoll backend) never lets its
    // worker get back to reaping, and its next op must still be cancelled.
    if (!m_closing && m_close_requested.load(std::memory_order_acquire)) close();
    op.job = t_io_job;
    // close is never cancelled: cleanup after a cancellation must not leak the fd.
    const bool cancellable = op.opcode != io_opcode::close;
    const bool by_token = cancellable && op.explicit_token;
    const bool by_job = cancellable && !op.explicit_token && op.job != nullptr;
    if ((op.opcode == io_opcode::read || op.opcode == io_opcode::write) && op.offset < -1) {
        op.result = -EINVAL;  // an offset past off_t (io_file_offset)
        return false;
    }
    if (cancellable && (m_closing || (by_token && op.token.stop_requested()) ||
                        (by_job && op.job->stop_requested()))) {
        op.result = -ECANCELED;
        return false;
    }
    // An explicit token's callback is made once the op is in flight (it may
    // run at once), but its memory is taken first: nothing can fail after
    // the kernel has the op.
    void* link_memory = nullptr;
    if (by_token && op.token.stop_possible()) {
        link_memory = ::operator new(sizeof(token_link_type), std::nothrow);
        if (link_memory == nullptr) {
            op.result = -ENOMEM;
            return false;
        }
    }
    op.reactor = this;
    op.cancel_queued.store(false, std::memory_order_relaxed);
    op.next = nullptr;
    if (!backend_start(op)) {
        ::operator delete(link_memory);
        return false;
    }
    if (trace::on()) trace::io_begin(&op, op.name(), op.fd_or_none());
    // In flight: link it so close() can find it (a sleep is in the timer heap).
    op.in_flight = true;
    if (op.opcode != io_opcode::sleep) {
        auto& f = static_cast<io_fd_op&>(op);
        f.list_prev = nullptr;
        f.list_next = m_list;
        if (m_list != nullptr) m_list->list_prev = &f;
        m_list = &f;
    }
    ++m_in_flight;
    // The op holds its job until the coroutine has been resumed: the op is
    // taken off the job's listeners when it completes, and the coroutine
    // runs as the job again, even if that coroutine is not the job's own
    // (a fire-and-forget coroutine started inside the job may outlive it).
    if (op.job != nullptr) op.job->add_ref();
    // Registered last: if a stop was requested meanwhile, the callback runs
    // here and queues a cancel request, which the next reap acts on.
    if (link_memory != nullptr) {
        // The callback takes the token's stop state; the word becomes the link.
        auto* link = ::new (link_memory) token_link_type(std::move(op.token), io_cancel_fn{&op});
        op.token.~stop_token();
        op.token_link = link;
        op.token_linked = true;
    } else if (by_job) {
        op.on_stop = &cancel_on_job_stop;
        if (!op.job->add_stop_listener(op)) op.on_stop = nullptr;  // a job without a stop
    }
    return true;
}

void io_reactor::complete(io_op& op, std::int64_t result) noexcept {
    if (!op.in_flight) return;
    op.in_flight = false;
    op.result = result;
    if (op.opcode != io_opcode::sleep) {
        auto& f = static_cast<io_fd_op&>(op);
        if (f.list_prev != nullptr) {
            f.list_prev->list_next = f.list_next;
        } else {
            m_list = f.list_next;
        }
        if (f.list_next != nullptr) f.list_next->list_prev = f.list_prev;
        // f's own links are left as they were: close() walks on from it.
    }
    --m_in_flight;
    // take_ready takes the op off its job's stop listeners; the job is cold
    // after a sleep, and asking for it now overlaps that miss with the
    // next completions (100k sleepers: perf, see timer_heap.hpp).
    if (op.on_stop != nullptr) __builtin_prefetch(op.job, 1);
    op.next = nullptr;
    if (m_ready_tail != nullptr) {
        m_ready_tail->next = &op;
    } else {
        m_ready_head = &op;
    }
    m_ready_tail = &op;
    ++m_ready_count;
}

work_item* io_reactor::take_ready(std::size_t& count) noexcept {
    work_item* const head = m_ready_head;
    // drain_requests may complete more ops (cancelled sleeps): they join the
    // tail and this walk, so the count is read afterwards.
    for (io_op* op = m_ready_head; op != nullptr; op = static_cast<io_op*>(op->next)) {
        // After this no stop callback runs or will run for `op` (both wait
        // for one running on another thread).
        if (op->token_linked) {
            token_link_type* const link = op->token_link;
            link->~token_link_type();
            ::operator delete(link);
            op->token_linked = false;
            ::new (&op->token) std::stop_token();  // the token was moved into the link
        } else if (op->on_stop != nullptr) {
            op->job->remove_stop_listener(*op);
            op->on_stop = nullptr;
        }
        // A callback that ran pushed `op` on the cancel stack: take it off
        // before the coroutine (and with it `op`) can go away.
        if (op->cancel_queued.load(std::memory_order_acquire)) drain_requests();
        if (trace::on()) trace::io_end(op, op->name(), op->result);
    }
    count = m_ready_count;
    m_ready_head = m_ready_tail = nullptr;
    m_ready_count = 0;
    return head;
}

bool io_op::resume(work_item* self, const std::exception_ptr* drop) noexcept {
    if (drop != nullptr) return false;  // the coroutine must still run
    auto* op = static_cast<io_op*>(self);
    shared_state_base* const job = op->job;  // its reference is ours now (see start)
    shared_state_base* previous = exchange_current_io_job(job);
    {
        trace::resume_scope traced(job);
        op->handle.resume();  // may free `op`
    }
    exchange_current_io_job(previous);
    if (job != nullptr) job->release();
    return true;
}

void io_reactor::request_cancel(io_op& op) noexcept {
    if (op.cancel_queued.exchange(true, std::memory_order_acq_rel)) return;
    m_cancels.push(&op);
    eventfd_signal(m_wake_fd);
}

void io_reactor::request_close() noexcept {
    if (!m_close_requested.exchange(true, std::memory_order_acq_rel)) eventfd_signal(m_wake_fd);
}

bool io_reactor::drain_requests() noexcept {
    bool acted = false;
    if (!m_closing && m_close_requested.load(std::memory_order_acquire)) {
        close();
        acted = true;
    }
    io_op* op = m_cancels.take_all();
    if (op == nullptr) return acted;
    while (op != nullptr) {
        io_op* next = op->cancel_next;
        // Completed ops are still alive (not yet handed out, see take_ready): skip them.
        if (op->in_flight) backend_cancel(*op);
        op = next;
    }
    return true;
}

void io_reactor::close() noexcept {
    m_closing = true;
    // The in-flight list itself, not a copy (this runs at shutdown, also
    // short of memory: a copy of 100k pointers could throw in a noexcept
    // path). backend_cancel may complete ops at once (this one, or others
    // whose completions it drains) and unlink them; complete() leaves an
    // unlinked op's own links as they were, and nothing is resumed or freed
    // before close returns, so the successor saved here is still an op, and
    // links followed from an unlinked op still reach every op after it.
    for (io_fd_op* op = m_list; op != nullptr;) {
        io_fd_op* const next = op->list_next;
        if (op->in_flight) backend_cancel(*op);
        op = next;
    }
    backend_cancel_sleeps();
}

void io_reactor::reap(bool block) noexcept {
    drain_requests();
    if (m_ready_head != nullptr) block = false;
    backend_reap(block);
    // Requests that arrived while we slept: act now so their cancels go out.
    if (drain_requests()) backend_reap(false);
}

bool io_reactor::ready_hint() const noexcept {
    return m_ready_head != nullptr || backend_ready_hint() || !m_cancels.empty() ||
           (!m_closing && m_close_requested.load(std::memory_order_relaxed));
}

bool io_reactor::has_work() const noexcept {
    return m_in_flight != 0 || ready_hint();
}

}  // namespace detail

// ---------------------------------------------------------------- backend choice

namespace io {

backend_kind backend() {
    static const backend_kind chosen = [] {
        if (const char* env = std::getenv("COEXEC_IO_BACKEND");
            env != nullptr && std::strcmp(env, "epoll") == 0) {
            return backend_kind::epoll;
        }
        return detail::uring_supported() ? backend_kind::io_uring : backend_kind::epoll;
    }();
    return chosen;
}

std::string_view backend_name(backend_kind kind) noexcept {
    return kind == backend_kind::io_uring ? "io_uring" : "epoll";
}

}  // namespace io
}  // namespace coexec
