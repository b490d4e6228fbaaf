// lib/io/epoll_reactor.cpp — the epoll fallback of io_reactor.
//
// Used when io_uring is refused (seccomp, kernel.io_uring_disabled, old
// kernels) or forced with COEXEC_IO_BACKEND=epoll. Per worker: one epoll
// instance watching the worker's wake eventfd, one timerfd armed at the
// earliest deadline of a heap of sleeping ops, and every descriptor some op
// waits on (level-triggered, interest = readers → EPOLLIN, writers →
// EPOLLOUT; removed when no op waits any more).
//
// How each op avoids blocking the worker:
//   recv/send   tried at once with MSG_DONTWAIT, then again on readiness;
//   accept      the listening socket is switched to O_NONBLOCK (documented);
//   connect     issued with O_NONBLOCK set just for the call, then EPOLLOUT
//               + SO_ERROR;
//   read/write  readiness first, then one call per readiness event (which
//               does not block for the ready amount); regular files cannot
//               be polled (EPERM) and are read/written synchronously, as
//               readiness-based loops (libuv without its pool, Asio) do;
//   open/close  synchronous (close also cancels ops of this worker on the fd).
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "io/reactor.hpp"
#include "io/timer_heap.hpp"
#include "util/eventfd.hpp"
#include "util/system_error.hpp"
#include "util/unique_fd.hpp"

namespace coexec::detail {
namespace {

constexpr std::uint64_t tag_wake = UINT64_MAX;
constexpr std::uint64_t tag_timer = UINT64_MAX - 1;
constexpr int event_batch = 256;

bool is_writer(io_opcode code) noexcept {
    return code == io_opcode::write || code == io_opcode::send || code == io_opcode::connect;
}

/// One attempt at the operation; -EAGAIN if it would block.
std::int64_t attempt(io_fd_op& op, bool may_block) noexcept {
    for (;;) {
        ssize_t n = -1;
        switch (op.opcode) {
            case io_opcode::read:
                if (op.offset >= 0) {
                    n = ::pread(op.fd, op.buf, op.len, op.offset);
                    if (n < 0 && errno == ESPIPE) n = ::read(op.fd, op.buf, op.len);
                } else {
                    n = ::read(op.fd, op.buf, op.len);
                }
                break;
            case io_opcode::write: {
                if (!may_block) {
                    // A blocking pipe or tty would block for the part that does
                    // not fit: RWF_NOWAIT writes what fits (kernels that do not
                    // support it here say EOPNOTSUPP; then a plain write).
                    iovec iov{op.buf, op.len};
                    n = ::pwritev2(op.fd, &iov, 1, op.offset >= 0 ? op.offset : -1, RWF_NOWAIT);
                    if (n >= 0 || (errno != EOPNOTSUPP && errno != EINVAL && errno != ESPIPE))
                        break;
                }
                if (op.offset >= 0) {
                    n = ::pwrite(op.fd, op.buf, op.len, op.offset);
                    if (n < 0 && errno == ESPIPE) n = ::write(op.fd, op.buf, op.len);
                } else {
                    n = ::write(op.fd, op.buf, op.len);
                }
                break;
            }
            case io_opcode::recv:
                n = ::recv(op.fd, op.buf, op.len, op.flags | MSG_DONTWAIT);
                break;
            case io_opcode::send:
                n = ::send(op.fd, op.buf, op.len, op.flags | MSG_DONTWAIT | MSG_NOSIGNAL);
                break;
            case io_opcode::accept:
                n = ::accept4(op.fd, nullptr, nullptr, SOCK_CLOEXEC);
                break;
            case io_opcode::connect: {
                int err = 0;
                socklen_t len = sizeof err;
                if (::getsockopt(op.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
                return err == 0 ? 0 : -err;
            }
            default:
                return -EINVAL;
        }
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        return -errno;
    }
}

class epoll_reactor final : public io_reactor {
  public:
    epoll_reactor(int wake_fd, resumer* owner)
        : io_reactor(io::backend_kind::epoll, wake_fd, owner) {
        m_ep.reset(::epoll_create1(EPOLL_CLOEXEC));
        if (!m_ep) throw_errno("epoll_create1");
        m_timer.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
        if (!m_timer) throw_errno("timerfd_create");
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = tag_wake;
        if (::epoll_ctl(m_ep.get(), EPOLL_CTL_ADD, wake_fd, &ev) < 0) throw_errno("epoll_ctl");
        ev.data.u64 = tag_timer;
        if (::epoll_ctl(m_ep.get(), EPOLL_CTL_ADD, m_timer.get(), &ev) < 0)
            throw_errno("epoll_ctl");
    }

  protected:
    bool backend_start(io_op& base) noexcept override {
        if (base.opcode == io_opcode::sleep) {
            m_timers.push(base);
            rearm_timer();
            return true;
        }
        auto& op = static_cast<io_fd_op&>(base);
        switch (op.opcode) {
            case io_opcode::sleep:  // above
                break;
            case io_opcode::open: {
                int fd = ::openat(AT_FDCWD, static_cast<const char*>(op.buf), op.flags | O_CLOEXEC,
                                  op.mode);
                op.result = fd >= 0 ? fd : -errno;
                return false;
            }
            case io_opcode::close:
                cancel_fd(op.fd);
                op.result = ::close(op.fd) == 0 ? 0 : -errno;
                return false;
            case io_opcode::recv:
            case io_opcode::send:
                if (std::int64_t r = attempt(op, false); r != -EAGAIN) {
                    op.result = r;
                    return false;
                }
                return wait_for_readiness(op);
            case io_opcode::accept: {
                int fl = ::fcntl(op.fd, F_GETFL);
                if (fl < 0) {
                    op.result = -errno;
                    return false;
                }
                if ((fl & O_NONBLOCK) == 0) ::fcntl(op.fd, F_SETFL, fl | O_NONBLOCK);
                if (std::int64_t r = attempt(op, false); r != -EAGAIN) {
                    op.result = r;
                    return false;
                }
                return wait_for_readiness(op);
            }
            case io_opcode::connect: {
                int fl = ::fcntl(op.fd, F_GETFL);
                if (fl < 0) {
                    op.result = -errno;
                    return false;
                }
                if ((fl & O_NONBLOCK) == 0) ::fcntl(op.fd, F_SETFL, fl | O_NONBLOCK);
                int r = ::connect(op.fd, static_cast<const sockaddr*>(op.buf), op.addrlen);
                int e = errno;
                if ((fl & O_NONBLOCK) == 0) ::fcntl(op.fd, F_SETFL, fl);
                if (r == 0) {
                    op.result = 0;
                    return false;
                }
                if (e != EINPROGRESS && e != EINTR) {
                    op.result = -e;
                    return false;
                }
                return wait_for_readiness(op);
            }
            case io_opcode::read:
            case io_opcode::write: {
                int e = enqueue(op);
                if (e == 0) return true;
                // EPERM: a regular file or directory, always "ready": do it here.
                op.result = e == EPERM ? attempt(op, true) : -e;
                return false;
            }
        }
        op.result = -EINVAL;
        return false;
    }

    void backend_cancel(io_op& op) noexcept override {
        if (op.opcode == io_opcode::sleep) {
            m_timers.remove(op);  // the timerfd may fire for nothing: harmless
        } else {
            auto& f = static_cast<io_fd_op&>(op);
            if (auto it = m_fds.find(f.fd); it != m_fds.end()) {
                waiters& w = it->second;
                unlink(is_writer(f.opcode) ? w.writers : w.readers, f);
                update(f.fd, w);
            }
        }
        complete(op, -ECANCELED);
    }

    void backend_cancel_sleeps() noexcept override {
        while (io_op* op = m_timers.pop_due(INT64_MAX))
            complete(*op, -ECANCELED);
        rearm_timer();
    }

    void backend_reap(bool block) noexcept override {
        epoll_event events[event_batch];
        int n = ::epoll_wait(m_ep.get(), events, event_batch, block ? -1 : 0);
        bool timers = false;
        for (int i = 0; i < n; ++i) {
            std::uint64_t data = events[i].data.u64;
            if (data == tag_wake) {
                eventfd_drain(wake_fd());  // readable: cannot block (one reader)
            } else if (data == tag_timer) {
                std::uint64_t expirations;
                [[maybe_unused]] auto r = ::read(m_timer.get(), &expirations, sizeof expirations);
                timers = true;
            } else {
                on_ready(static_cast<int>(data), events[i].events);
            }
        }
        if (timers) expire_timers();
    }

  private:
    struct queue {
        io_fd_op* head = nullptr;
        io_fd_op* tail = nullptr;
    };
    struct waiters {
        queue readers;
        queue writers;
        std::uint32_t mask = 0;  // what epoll watches now (0: not registered)
    };

    // ---- descriptors ----
    bool wait_for_readiness(io_fd_op& op) noexcept {
        int e = enqueue(op);
        if (e == 0) return true;
        op.result = -e;
        return false;
    }

    /// Queues `op` on its fd and updates the interest set; errno on failure.
    int enqueue(io_fd_op& op) noexcept {
        waiters& w = m_fds[op.fd];
        queue& q = is_writer(op.opcode) ? w.writers : w.readers;
        op.wait_next = nullptr;
        if (q.tail != nullptr) {
            q.tail->wait_next = &op;
        } else {
            q.head = &op;
        }
        q.tail = &op;
        int e = update(op.fd, w);
        if (e != 0) {
            unlink(q, op);
            if (w.readers.head == nullptr && w.writers.head == nullptr) m_fds.erase(op.fd);
        }
        return e;
    }

    static void unlink(queue& q, io_fd_op& op) noexcept {
        io_fd_op* prev = nullptr;
        for (io_fd_op* it = q.head; it != nullptr; prev = it, it = it->wait_next) {
            if (it != &op) continue;
            (prev != nullptr ? prev->wait_next : q.head) = it->wait_next;
            if (q.tail == it) q.tail = prev;
            it->wait_next = nullptr;
            return;
        }
    }

    /// Makes epoll's interest in `fd` match its queues; erases the entry when
    /// nobody waits. Returns errno on failure (EPERM: not pollable).
    int update(int fd, waiters& w) noexcept {
        std::uint32_t want = (w.readers.head != nullptr ? EPOLLIN | EPOLLRDHUP : 0u) |
                             (w.writers.head != nullptr ? EPOLLOUT : 0u);
        if (want == w.mask) {
            if (want == 0) m_fds.erase(fd);
            return 0;
        }
        if (want == 0) {
            ::epoll_ctl(m_ep.get(), EPOLL_CTL_DEL, fd, nullptr);  // may be gone with a closed fd
            m_fds.erase(fd);
            return 0;
        }
        epoll_event ev{};
        ev.events = want;
        ev.data.u64 = static_cast<std::uint64_t>(fd);
        int r = ::epoll_ctl(m_ep.get(), w.mask != 0 ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
        // The fd number was closed and reused behind our back, or is still
        // registered from a dup: switch between ADD and MOD once.
        if (r < 0 && errno == ENOENT) r = ::epoll_ctl(m_ep.get(), EPOLL_CTL_ADD, fd, &ev);
        if (r < 0 && errno == EEXIST) r = ::epoll_ctl(m_ep.get(), EPOLL_CTL_MOD, fd, &ev);
        if (r < 0) return errno;
        w.mask = want;
        return 0;
    }

    void on_ready(int fd, std::uint32_t events) noexcept {
        auto it = m_fds.find(fd);
        if (it == m_fds.end()) return;  // stale event for an fd nobody waits on
        waiters& w = it->second;
        if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) service(w.readers);
        if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) service(w.writers);
        update(fd, w);  // may erase `w`
    }

    void service(queue& q) noexcept {
        while (q.head != nullptr) {
            io_fd_op& op = *q.head;
            std::int64_t r = attempt(op, false);
            if (r == -EAGAIN) return;
            q.head = op.wait_next;
            if (q.head == nullptr) q.tail = nullptr;
            op.wait_next = nullptr;
            complete(op, r);
            // read/write/connect on a blocking fd are only safe once per
            // readiness report; level-triggered epoll reports again if more.
            if (op.opcode != io_opcode::recv && op.opcode != io_opcode::send &&
                op.opcode != io_opcode::accept) {
                return;
            }
        }
    }

    /// io::close on `fd`: ops of this worker waiting on it end with ECANCELED.
    void cancel_fd(int fd) noexcept {
        auto it = m_fds.find(fd);
        if (it == m_fds.end()) return;
        waiters& w = it->second;
        for (queue* q : {&w.readers, &w.writers}) {
            while (q->head != nullptr) {
                io_fd_op& op = *q->head;
                q->head = op.wait_next;
                op.wait_next = nullptr;
                complete(op, -ECANCELED);
            }
            q->tail = nullptr;
        }
        update(fd, w);
    }

    // ---- timers (timer_heap.hpp) ----
    void expire_timers() noexcept {
        std::int64_t now = monotonic_now_ns();
        while (io_op* op = m_timers.pop_due(now))
            complete(*op, 0);
        m_armed = -1;  // the timerfd fired: it is disarmed now
        rearm_timer();
    }

    void rearm_timer() noexcept {
        std::int64_t want = m_timers.empty() ? 0 : std::max<std::int64_t>(m_timers.earliest(), 1);
        if (want == m_armed) return;
        itimerspec spec{};
        spec.it_value.tv_sec = static_cast<time_t>(want / 1'000'000'000);
        spec.it_value.tv_nsec = static_cast<long>(want % 1'000'000'000);
        // Absolute CLOCK_MONOTONIC; a deadline already past fires at once; 0 disarms.
        ::timerfd_settime(m_timer.get(), TFD_TIMER_ABSTIME, &spec, nullptr);
        m_armed = want;
    }

    unique_fd m_ep;
    unique_fd m_timer;
    std::int64_t m_armed = 0;  // deadline the timerfd is set to (0: disarmed)
    timer_heap m_timers;
    std::unordered_map<int, waiters> m_fds;
};

}  // namespace

std::unique_ptr<io_reactor> make_epoll_reactor(int wake_fd, resumer* owner) {
    return std::make_unique<epoll_reactor>(wake_fd, owner);
}

}  // namespace coexec::detail
