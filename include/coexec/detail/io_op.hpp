// detail/io_op.hpp — one I/O operation as the reactor sees it.
//
// Every coexec::io awaitable embeds an io_op. The awaitable fills in the
// opcode and its arguments, then hands the op to the reactor of the worker
// it runs on (io_start, in lib/). The backend (io_uring or epoll, lib/) turns
// the op into a submission, and when the operation finishes it stores the
// result (a byte count / fd, or -errno) and hands the op itself, a work
// item, to that worker: the coroutine resumes there, or, if the worker is
// saturated, on another worker of the same pool that steals it from its
// queue (sticky to the pool, like every other await). No kernel type appears here: the backends
// keep their private data in the `backend_*` fields.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <stop_token>
#include <utility>

#include "coexec/detail/shared_state.hpp"
#include "coexec/detail/work_item.hpp"

namespace coexec::detail {

class io_reactor;  // lib/io/reactor.hpp

enum class io_opcode : std::uint8_t {
    sleep,    // offset = absolute CLOCK_MONOTONIC deadline in ns
    read,     // fd, buf, len, offset (-1: current position)
    write,    // fd, buf, len, offset (-1: current position)
    recv,     // fd, buf, len, flags
    send,     // fd, buf, len, flags
    accept,   // fd → new fd
    connect,  // fd, addr (buf, in the awaitable), addrlen
    close,    // fd
    open,     // path (buf), flags, mode → new fd
};

struct io_op;

/// The stop callback of an op given an explicit token: asks the op's
/// reactor to cancel it. Runs on whichever thread requests the stop; only
/// queues the request.
struct io_cancel_fn {
    io_op* op;
    void operator()() const noexcept;
};

/// A work item once it completed: running it resumes the awaiting coroutine
/// (with its job restored), on whichever worker of the pool takes it.
///
/// This is all a sleep needs; operations on a descriptor are an io_fd_op.
/// Kept small: an io_op sits in every awaiting coroutine frame (100k
/// sleepers = 100k io_ops), and fields are ordered so small ones share words.
/// Its stop_listener base is how a stop reaches it in the common case: hung
/// on the job without a stop_source (nothing allocated). An explicit token
/// gets a std::stop_callback instead, allocated only then (token_link).
struct io_op : work_item, stop_listener {
    io_op() noexcept : token() { handler = &io_op::resume; }
    io_op(const io_op&) = delete;
    io_op& operator=(const io_op&) = delete;
    ~io_op() {
        if (!token_linked) token.~stop_token();
    }

    /// Copies what the awaitable filled in (not the reactor's state).
    void copy_parameters(const io_op& o) noexcept {
        opcode = o.opcode;
        explicit_token = o.explicit_token;
        named_until = o.named_until;
        offset = o.offset;
        token = o.token;
    }

    /// The operation as errors and traces name it ("io::read"): from the
    /// opcode, not stored (a word less in every awaiting frame).
    const char* name() const noexcept;

    // ---- filled in by the awaitable ----
    io_opcode opcode = io_opcode::sleep;
    /// True when `token` was given explicitly (else the job's stop is used).
    bool explicit_token : 1 = false;
    /// A sleep made by io::sleep_until (named so), not io::sleep_for.
    bool named_until : 1 = false;
    /// Set by the reactor: `token_link` holds the word, not `token`.
    bool token_linked : 1 = false;

    // ---- owned by the reactor (lib/) ----
    bool in_flight = false;  // started and not yet completed
    std::atomic<bool> cancel_queued{false};
    std::uint32_t backend_index = 0;  // a sleep's slot in the reactor's timer heap

    // One word, the token then its callback: the reactor moves an explicit
    // token into a std::stop_callback when the op goes in flight (the
    // callback keeps the token's stop state) and destroys that callback
    // before the op is handed back, making an empty token again. A word
    // less in every awaiting frame: a sleeping coroutine's frame is 168
    // bytes, not 184 (a size class less, see lib/core/job_memory.cpp).
    union {
        /// Filled in by the awaitable: the explicit token (empty otherwise).
        std::stop_token token;
        /// Owned by the reactor, while `token_linked`.
        std::stop_callback<io_cancel_fn>* token_link;
    };

    // One word, in then out (as an sqe's arguments and its cqe's result): the
    // parameter is read only while the op is started or retried, the result
    // written only when it completes, and read only after that.
    union {
        /// In: the file offset (-1: the current position), or a sleep's
        /// deadline (absolute CLOCK_MONOTONIC ns).
        std::int64_t offset = -1;
        /// Out: bytes transferred / new fd / 0, or -errno (-ECANCELED when
        /// cancelled).
        std::int64_t result;
    };
    std::coroutine_handle<> handle;

    // ---- owned by the reactor (lib/) ----
    io_reactor* reactor = nullptr;
    shared_state_base* job = nullptr;  // the job whose frames were running at start
    io_op* cancel_next = nullptr;      // the reactor's cross-thread cancel stack
    // The ready list and the worker queues link through work_item::next; a
    // sleep in flight is found through its reactor's timer heap.

    /// work_item::handler of a completed op: resumes the coroutine (it is
    /// never dropped unrun). In lib/io/reactor.cpp.
    static bool resume(work_item* self, const std::exception_ptr* drop) noexcept;
    /// The descriptor the op works on, -1 for a sleep.
    int fd_or_none() const noexcept;
};

/// An operation on a descriptor (every opcode but sleep).
struct io_fd_op : io_op {
    void copy_parameters(const io_fd_op& o) noexcept {
        io_op::copy_parameters(o);
        fd = o.fd;
        flags = o.flags;
        mode = o.mode;
        addrlen = o.addrlen;
        buf = o.buf;
        len = o.len;
    }

    // ---- filled in by the awaitable ----
    int fd = -1;
    int flags = 0;
    unsigned mode = 0;
    std::uint32_t addrlen = 0;
    void* buf = nullptr;
    std::size_t len = 0;

    // ---- owned by the reactor (lib/) ----
    io_fd_op* wait_next = nullptr;  // the epoll backend's per-fd wait queue
    io_fd_op* list_prev = nullptr;  // the reactor's in-flight list
    io_fd_op* list_next = nullptr;
};

inline const char* io_op::name() const noexcept {
    switch (opcode) {
        case io_opcode::sleep:
            return named_until ? "io::sleep_until" : "io::sleep_for";
        case io_opcode::read:
            return "io::read";
        case io_opcode::write:
            return "io::write";
        case io_opcode::recv:
            return "io::recv";
        case io_opcode::send:
            return "io::send";
        case io_opcode::accept:
            return "io::accept";
        case io_opcode::connect:
            return "io::connect";
        case io_opcode::close:
            return "io::close";
        case io_opcode::open:
            return "io::open";
    }
    return "io";
}

inline int io_op::fd_or_none() const noexcept {
    return opcode == io_opcode::sleep ? -1 : static_cast<const io_fd_op*>(this)->fd;
}

/// The most one read, write, recv or send moves (Linux's MAX_RW_COUNT: the
/// kernel caps every transfer there). Longer buffers are cut to it up front,
/// as a short transfer: io_uring's length field is 32 bits, and a 4 GiB
/// buffer would wrap to nothing.
inline constexpr std::size_t io_max_transfer = 0x7fff'f000;

/// An explicit file offset as the op holds it: one past what off_t holds
/// becomes a value below -1 (-1 means the file position), which the reactor
/// fails with EINVAL as pread(2) would.
constexpr std::int64_t io_file_offset(std::uint64_t offset) noexcept {
    return offset > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MIN
                                                          : static_cast<std::int64_t>(offset);
}

/// Throws coexec::error naming `name` unless the calling thread is a
/// thread_pool worker running its own work (the only place with a reactor).
void io_check_context(const char* name);

/// Throws coexec::error: the awaitable of `name` was awaited already.
[[noreturn]] void io_throw_awaited_twice(const char* name);

/// Starts `op` on the calling worker's reactor. Returns true if the op is
/// pending (the coroutine will be resumed by the reactor, on this thread),
/// false if it finished at once (op.result holds the outcome).
bool io_start(io_op& op) noexcept;

/// Throws std::system_error(-op.result, op.name).
[[noreturn]] void io_throw(const io_op& op);

// current_io_job() / exchange_current_io_job(): see detail/work_item.hpp.

/// Builds the coexec::io awaitables (io::read, io::sleep_for, ...): their
/// constructors take detail parameters (the opcode, the operation's name in
/// errors), so they are protected and this is their friend.
struct io_factory {
    template <class Awaitable, class... A>
    static Awaitable make(A&&... args) noexcept {
        return Awaitable(std::forward<A>(args)...);
    }
};

/// The common awaiter of every io operation: checks the context, starts the
/// op, and leaves the interpretation of the result to the derived class.
/// `Op` is io_op for a sleep, io_fd_op for the rest.
template <class Op>
class io_awaitable_base {
  public:
    /// Moving is allowed until the awaitable is awaited (it moves the
    /// operation's parameters; a started op never moves: it sits in the
    /// awaiting coroutine's frame until it completes).
    io_awaitable_base(io_awaitable_base&& o) noexcept { m_op.copy_parameters(o.m_op); }
    io_awaitable_base& operator=(io_awaitable_base&&) = delete;

    bool await_ready() const {
        // Both throw before suspending: nothing to undo. A second await would
        // start over from the first one's outcome (it replaced the offset).
        if (m_op.handle) io_throw_awaited_twice(m_op.name());
        io_check_context(m_op.name());
        return false;
    }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
        m_op.handle = h;
        return io_start(m_op);
    }

  protected:
    explicit io_awaitable_base(io_opcode code) noexcept { m_op.opcode = code; }
    io_awaitable_base(io_opcode code, std::stop_token token) noexcept : io_awaitable_base(code) {
        m_op.token = std::move(token);
        m_op.explicit_token = true;
    }
    /// The raw result; throws std::system_error if it is an error.
    std::int64_t checked_result() const {
        if (m_op.result < 0) io_throw(m_op);
        return m_op.result;
    }

    Op m_op;
};

}  // namespace coexec::detail
