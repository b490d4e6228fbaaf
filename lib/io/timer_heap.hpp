// lib/io/timer_heap.hpp — the sleeping ops of one reactor, earliest deadline first.
//
// Both backends keep io::sleep_for / sleep_until in user space: a binary
// min-heap on the deadline (op.offset, absolute CLOCK_MONOTONIC ns), with each
// op's slot in op.backend_index so a cancel removes it in O(log n). The kernel
// only ever holds one timer per worker, armed at the earliest deadline (a
// timerfd for epoll, the wait timeout for io_uring). Measured with 100k
// sleepers on 2 workers: one io_uring timeout per sleep spent most of its time
// in the kernel's timeout setup, hrtimer and slab code.
//
// Owner thread only, like the rest of the reactor's state.
#pragma once

#include <time.h>

#include <cstdint>
#include <vector>

#include "coexec/detail/io_op.hpp"

namespace coexec::detail {

/// CLOCK_MONOTONIC (= std::chrono::steady_clock) in nanoseconds.
inline std::int64_t monotonic_now_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

class timer_heap {
  public:
    bool empty() const noexcept { return m_heap.empty(); }
    /// The earliest deadline; only if !empty().
    std::int64_t earliest() const noexcept { return m_heap.front()->offset; }
    /// True if the earliest deadline is at or before `now`.
    bool due(std::int64_t now) const noexcept { return !empty() && earliest() <= now; }

    /// Adds `op` (its deadline in op.offset). bad_alloc terminates, as in
    /// any noexcept reactor path: the heap's vector is the only allocation.
    void push(io_op& op) noexcept {
        // backend_index is 32 bits: 4 billion sleepers per worker would need
        // 4 billion coroutine frames first.
        m_heap.push_back(&op);
        sift_up(m_heap.size() - 1);
    }

    /// Removes `op` if it is in the heap (cancelled before its deadline).
    void remove(io_op& op) noexcept {
        std::size_t i = op.backend_index;
        if (i >= m_heap.size() || m_heap[i] != &op) return;
        io_op* last = m_heap.back();
        m_heap.pop_back();
        if (last == &op) return;
        set(i, last);
        sift_down(i);
        sift_up(last->backend_index);
    }

    /// Removes and returns the earliest op if it is due at `now`, else null.
    io_op* pop_due(std::int64_t now) noexcept {
        if (!due(now)) return nullptr;
        io_op* op = m_heap.front();
        remove(*op);
        return op;
    }

  private:
    static bool earlier(const io_op* a, const io_op* b) noexcept { return a->offset < b->offset; }

    void set(std::size_t i, io_op* op) noexcept {
        m_heap[i] = op;
        op->backend_index = static_cast<std::uint32_t>(i);
    }
    void sift_up(std::size_t i) noexcept {
        io_op* op = m_heap[i];
        while (i > 0) {
            std::size_t parent = (i - 1) / 2;
            if (!earlier(op, m_heap[parent])) break;
            set(i, m_heap[parent]);
            i = parent;
        }
        set(i, op);
    }
    void sift_down(std::size_t i) noexcept {
        io_op* op = m_heap[i];
        std::size_t n = m_heap.size();
        for (;;) {
            std::size_t child = 2 * i + 1;
            if (child >= n) break;
            if (child + 1 < n && earlier(m_heap[child + 1], m_heap[child])) ++child;
            if (!earlier(m_heap[child], op)) break;
            set(i, m_heap[child]);
            i = child;
        }
        set(i, op);
    }

    std::vector<io_op*> m_heap;
};

}  // namespace coexec::detail
