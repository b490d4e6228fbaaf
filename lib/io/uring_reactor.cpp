// lib/io/uring_reactor.cpp — the io_uring backend of io_reactor.
//
// One ring per thread_pool worker, created on that worker's thread (so
// IORING_SETUP_SINGLE_ISSUER holds: only the owner ever submits; other
// threads reach it through io_reactor's request doors and the wake eventfd,
// which the ring watches with a one-shot IORING_OP_POLL_ADD re-armed after
// each wake-up).
//
// Each op's sqe carries user_data = the io_op*; its CQE completes that op.
// Sleeps never reach the kernel one by one: they wait in a timer_heap and the
// ring's wait carries the earliest deadline as its timeout.
// Two tags mark internal submissions: wake polls and cancel requests (whose
// own completions mean nothing: the cancelled op reports for itself).
//
// Fork: a process_pool forks its workers from a single-threaded fork server
// made before any pool thread exists, so no child ever starts with a ring. For a
// program that forks by itself anyway, the ring memory is still marked
// MADV_DONTFORK (io_uring_ring_dontfork): the child gets no mapping of the
// SQ/CQ/SQE pages, so it cannot scribble on the parent's ring, and it never
// runs the parent's worker threads, so nothing in it would use the ring.
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>

#include "io/reactor.hpp"
#include "io/timer_heap.hpp"
#include "util/eventfd.hpp"
#include "util/system_error.hpp"

namespace coexec::detail {
namespace {

constexpr std::uint64_t tag_ignore = 0;  // cancel requests
constexpr std::uint64_t tag_wake = 1;    // poll on the wake eventfd
constexpr unsigned ring_entries = 1024;
constexpr unsigned reap_batch = 128;

int init_ring(io_uring& ring, unsigned entries) {
    io_uring_params p{};
    // Only the owner submits and it reaps on its own schedule: tell the
    // kernel, so it skips the locking and IPIs a shared ring needs. Older
    // kernels reject unknown flags with EINVAL: then plain.
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    int r = io_uring_queue_init_params(entries, &ring, &p);
    if (r == -EINVAL) {
        p = io_uring_params{};
        r = io_uring_queue_init_params(entries, &ring, &p);
    }
    return r;
}

class uring_reactor final : public io_reactor {
  public:
    uring_reactor(int wake_fd, resumer* owner)
        : io_reactor(io::backend_kind::io_uring, wake_fd, owner) {
        int r = init_ring(m_ring, ring_entries);
        if (r < 0) throw_system_error(-r, "io_uring_queue_init");
        io_uring_ring_dontfork(&m_ring);  // best effort: see the file comment
        m_wake_armed = false;
        arm_wake();
    }
    ~uring_reactor() override { io_uring_queue_exit(&m_ring); }

  protected:
    bool backend_start(io_op& op) noexcept override {
        if (op.opcode == io_opcode::sleep) {
            // In user space (timer_heap.hpp): the ring waits for the earliest.
            m_timers.push(op);
            return true;
        }
        prep(get_sqe(), static_cast<io_fd_op&>(op));
        return true;
    }

    static void prep(io_uring_sqe* sqe, io_fd_op& op) noexcept {
        switch (op.opcode) {
            case io_opcode::sleep:  // never here (backend_start)
                break;
            case io_opcode::read:
                io_uring_prep_read(sqe, op.fd, op.buf, clamp(op.len),
                                   static_cast<__u64>(op.offset));
                break;
            case io_opcode::write:
                io_uring_prep_write(sqe, op.fd, op.buf, clamp(op.len),
                                    static_cast<__u64>(op.offset));
                break;
            case io_opcode::recv:
                io_uring_prep_recv(sqe, op.fd, op.buf, op.len, op.flags);
                break;
            case io_opcode::send:
                io_uring_prep_send(sqe, op.fd, op.buf, op.len, op.flags | MSG_NOSIGNAL);
                break;
            case io_opcode::accept:
                io_uring_prep_accept(sqe, op.fd, nullptr, nullptr, SOCK_CLOEXEC);
                break;
            case io_opcode::connect:
                io_uring_prep_connect(sqe, op.fd, static_cast<const sockaddr*>(op.buf), op.addrlen);
                break;
            case io_opcode::close:
                io_uring_prep_close(sqe, op.fd);
                break;
            case io_opcode::open:
                io_uring_prep_openat(sqe, AT_FDCWD, static_cast<const char*>(op.buf),
                                     op.flags | O_CLOEXEC, op.mode);
                break;
        }
        io_uring_sqe_set_data(sqe, static_cast<io_op*>(&op));
    }

    void backend_cancel(io_op& op) noexcept override {
        if (op.opcode == io_opcode::sleep) {
            m_timers.remove(op);
            complete(op, -ECANCELED);
            return;
        }
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_cancel64(sqe, reinterpret_cast<std::uintptr_t>(&op), 0);
        io_uring_sqe_set_data64(sqe, tag_ignore);
    }

    void backend_cancel_sleeps() noexcept override {
        while (io_op* op = m_timers.pop_due(INT64_MAX))
            complete(*op, -ECANCELED);
    }

    void backend_reap(bool block) noexcept override {
        arm_wake();
        // The clock is read only to block (a busy worker polls every 32
        // items, and with 100k sleepers clock_gettime was 7% of its time).
        std::int64_t now = 0;
        if (block && !m_timers.empty()) {
            now = monotonic_now_ns();
            if (m_timers.due(now)) block = false;
        }
        if (block && !m_timers.empty()) {
            // One syscall submits what is queued and sleeps until a CQE (an
            // op, or the wake poll) is there or the earliest sleeper is due
            // (-ETIME). EINTR: back to the loop.
            // At most a day: a sleep "for ever" (a saturated deadline) would
            // overflow the kernel's own start + timeout.
            constexpr std::int64_t day_ns = 86'400'000'000'000;
            const std::int64_t ns = std::min(m_timers.earliest() - now, day_ns);
            __kernel_timespec ts{ns / 1'000'000'000, ns % 1'000'000'000};
            io_uring_cqe* cqe = nullptr;
            io_uring_submit_and_wait_timeout(&m_ring, &cqe, 1, &ts, nullptr);
        } else if (block) {
            io_uring_submit_and_wait(&m_ring, 1);
        } else if (io_uring_sq_ready(&m_ring) != 0) {
            io_uring_submit(&m_ring);
        }
        drain_cq();
        if (!m_timers.empty()) {
            now = monotonic_now_ns();
            while (io_op* op = m_timers.pop_due(now))
                complete(*op, 0);
        }
        // The wake poll, re-armed if it fired, goes out with the next
        // submission (at the latest the submit_and_wait before sleeping).
        arm_wake();
    }

    bool backend_ready_hint() const noexcept override {
        // A plain load of the CQ tail, and of the flag the kernel raises when
        // completions wait for us to enter it (COOP_TASKRUN).
        auto* ring = const_cast<io_uring*>(&m_ring);
        return io_uring_cq_ready(ring) != 0 ||
               (IO_URING_READ_ONCE(*ring->sq.kflags) & IORING_SQ_TASKRUN) != 0 ||
               m_timers.due(m_timers.empty() ? 0 : monotonic_now_ns());
    }

  private:
    static unsigned clamp(std::size_t n) noexcept {
        // read/write move at most 0x7ffff000 bytes per call anyway.
        return n > 0x7ffff000u ? 0x7ffff000u : static_cast<unsigned>(n);
    }

    io_uring_sqe* get_sqe() noexcept {
        io_uring_sqe* sqe;
        while ((sqe = io_uring_get_sqe(&m_ring)) == nullptr) {
            // SQ full: hand the batch to the kernel. Should it refuse
            // (-EBUSY: completions overflowed on kernels that insist), move
            // completions to the ready list first (nothing is resumed here).
            int r = io_uring_submit(&m_ring);
            if (r < 0 && r != -EINTR) drain_cq();
        }
        return sqe;
    }

    /// Moves every available CQE to the ready list (complete() resumes nothing).
    void drain_cq() noexcept {
        io_uring_cqe* cqes[reap_batch];
        for (;;) {
            // Also flushes overflowed CQEs and pending task work (TASKRUN_FLAG).
            unsigned n = io_uring_peek_batch_cqe(&m_ring, cqes, reap_batch);
            if (n == 0) break;
            for (unsigned i = 0; i < n; ++i)
                handle(*cqes[i]);
            io_uring_cq_advance(&m_ring, n);
            if (n < reap_batch) break;
        }
    }

    void arm_wake() noexcept {
        if (m_wake_armed) return;
        m_wake_armed = true;
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_poll_add(sqe, wake_fd(), POLLIN);
        io_uring_sqe_set_data64(sqe, tag_wake);
    }

    void handle(const io_uring_cqe& cqe) noexcept {
        std::uint64_t data = io_uring_cqe_get_data64(&cqe);
        // LIBURING_UDATA_TIMEOUT: the timeout liburing itself queues for
        // submit_and_wait_timeout on kernels without IORING_FEAT_EXT_ARG.
        if (data == tag_ignore || data == LIBURING_UDATA_TIMEOUT) return;
        if (data == tag_wake) {
            if (cqe.res > 0) {
                eventfd_drain(wake_fd());  // readable: cannot block (one reader)
            }
            m_wake_armed = false;  // re-armed by the caller, outside CQ processing
            return;
        }
        auto* op = reinterpret_cast<io_op*>(static_cast<std::uintptr_t>(data));
        complete(*op, cqe.res);
    }

    io_uring m_ring{};
    bool m_wake_armed = false;
    timer_heap m_timers;
};

}  // namespace

std::unique_ptr<io_reactor> make_uring_reactor(int wake_fd, resumer* owner) {
    return std::make_unique<uring_reactor>(wake_fd, owner);
}

bool uring_supported() noexcept {
    io_uring ring{};
    int r = io_uring_queue_init(2, &ring, 0);
    if (r < 0) return false;
    io_uring_queue_exit(&ring);
    return true;
}

}  // namespace coexec::detail
