// lib/io/timer_heap.hpp — the sleeping ops of one reactor, earliest deadline first.
//
// Both backends keep io::sleep_for / sleep_until in user space: a 4-ary
// min-heap on the deadline (op.offset, absolute CLOCK_MONOTONIC ns), with each
// op's slot in op.backend_index so a cancel removes it in O(log n). The kernel
// only ever holds one timer per worker, armed at the earliest deadline (a
// timerfd for epoll, the wait timeout for io_uring). Measured with 100k
// sleepers on 2 workers: one io_uring timeout per sleep spent most of its time
// in the kernel's timeout setup, hrtimer and slab code.
//
// Most sleeps are pushed in deadline order (the same duration, started one
// after another): those go to a FIFO "run" instead, pushed and popped in
// O(1); a deadline earlier than the run's last goes to the heap, and pops
// take the earlier of the two fronts. perf with 100k sleepers of 10 ms: the
// heap alone was 20% of all cycles, mostly sifting each pop's last entry
// down through 100k entries.
//
// Owner thread only, like the rest of the reactor's state.
#pragma once

#include <time.h>

#include <cstddef>
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
    bool empty() const noexcept { return m_heap.empty() && m_run_live == 0; }
    std::size_t size() const noexcept { return m_heap.size() + m_run_live; }
    /// The earliest deadline; only if !empty().
    std::int64_t earliest() const noexcept {
        return run_first() ? m_run[m_run_head].deadline : m_heap.front().deadline;
    }
    /// True if the earliest deadline is at or before `now`.
    bool due(std::int64_t now) const noexcept { return !empty() && earliest() <= now; }

    /// Adds `op` (its deadline in op.offset). bad_alloc terminates, as in
    /// any noexcept reactor path: the two vectors are the only allocations.
    void push(io_op& op) noexcept {
        // backend_index is 32 bits (the top one says "in the run"): 2 billion
        // sleepers per worker would need 2 billion coroutine frames first.
        if (m_run.empty() || op.offset >= m_run.back().deadline) {
            op.backend_index =
                run_bit | ((m_run_base + static_cast<std::uint32_t>(m_run.size())) & ~run_bit);
            m_run.push_back({op.offset, &op});
            ++m_run_live;
            return;
        }
        m_heap.push_back({op.offset, &op});
        sift_up(m_heap.size() - 1);
    }

    /// Removes `op` if it is held (cancelled before its deadline).
    void remove(io_op& op) noexcept {
        if (!holds(op)) return;
        if ((op.backend_index & run_bit) != 0) {
            m_run[run_position(op)].op = nullptr;  // a hole, skipped at the front
            --m_run_live;
            trim_run();
            return;
        }
        const std::size_t i = op.backend_index;
        const entry last = m_heap.back();
        m_heap.pop_back();
        if (last.op == &op) return;
        set(i, last);
        if (i > 0 && last.deadline < m_heap[parent(i)].deadline) {
            sift_up(i);
        } else {
            sift_down(i);
        }
    }

    /// Removes and returns the earliest op if it is due at `now`, else null.
    io_op* pop_due(std::int64_t now) noexcept {
        if (!due(now)) return nullptr;
        io_op* op;
        if (run_first()) {
            op = m_run[m_run_head].op;
            // Due sleepers are popped in a burst, and each op (inside its
            // coroutine frame, cold after the sleep) is written at once by
            // complete(): asking for a later one now overlaps the misses.
            if (m_run_head + prefetch_ahead < m_run.size())
                __builtin_prefetch(m_run[m_run_head + prefetch_ahead].op, 1);
        } else {
            op = m_heap.front().op;
        }
        remove(*op);
        return op;
    }

    /// True if `op` is held where its backend_index says (tests).
    bool holds(const io_op& op) const noexcept {
        if ((op.backend_index & run_bit) != 0) {
            const std::size_t i = run_position(op);
            return i >= m_run_head && i < m_run.size() && m_run[i].op == &op;
        }
        const std::size_t i = op.backend_index;
        return i < m_heap.size() && m_heap[i].op == &op;
    }

  private:
    // The deadline is kept beside the pointer: sifting compares entries of
    // this array, not fields of ops scattered over 100k coroutine frames
    // (a cache miss per comparison). Four children per node: half the
    // depth of a binary heap, and a node's children share a cache line.
    // Measured with 100k sleepers (2 workers, perf): the binary heap of bare
    // pointers made the reactor's reap 17% of all cycles.
    struct entry {
        std::int64_t deadline;
        io_op* op;  // null: a hole in the run (cancelled)
    };
    static constexpr std::size_t arity = 4;
    static constexpr std::uint32_t run_bit = 0x8000'0000u;
    static constexpr std::size_t prefetch_ahead = 8;
    static std::size_t parent(std::size_t i) noexcept { return (i - 1) / arity; }

    /// Where an op of the run is in m_run. Run ops carry a sequence number
    /// (31 bits, wrapping), the run's m_run_base-th push being m_run[0]: when
    /// the run moves down only the base changes, and no op is written. (It
    /// wrote each moved op's index: a cache miss per op, with 100k frames.)
    std::size_t run_position(const io_op& op) const noexcept {
        return (op.backend_index - m_run_base) & ~run_bit;
    }

    /// The run's front (never a hole: trim_run) is the earliest held op.
    bool run_first() const noexcept {
        return m_run_live != 0 &&
               (m_heap.empty() || m_run[m_run_head].deadline <= m_heap.front().deadline);
    }

    void set(std::size_t i, const entry& e) noexcept {
        m_heap[i] = e;
        e.op->backend_index = static_cast<std::uint32_t>(i);
    }
    void sift_up(std::size_t i) noexcept {
        const entry e = m_heap[i];
        while (i > 0) {
            const std::size_t p = parent(i);
            if (!(e.deadline < m_heap[p].deadline)) break;
            set(i, m_heap[p]);
            i = p;
        }
        set(i, e);
    }
    void sift_down(std::size_t i) noexcept {
        const entry e = m_heap[i];
        const std::size_t n = m_heap.size();
        for (;;) {
            const std::size_t first = arity * i + 1;
            if (first >= n) break;
            const std::size_t end = first + arity < n ? first + arity : n;
            std::size_t best = first;
            for (std::size_t c = first + 1; c < end; ++c) {
                if (m_heap[c].deadline < m_heap[best].deadline) best = c;
            }
            if (!(m_heap[best].deadline < e.deadline)) break;
            set(i, m_heap[best]);
            i = best;
        }
        set(i, e);
    }

    /// Skips the holes at the run's front; empties it when nothing is live;
    /// drops what is before its front once that is half of it (amortized O(1)
    /// per pop; holes further on stay until they reach the front).
    void trim_run() noexcept {
        if (m_run_live == 0) {
            m_run.clear();
            m_run_head = 0;
            return;
        }
        while (m_run[m_run_head].op == nullptr)
            ++m_run_head;
        if (m_run_head < 1024 || m_run_head * 2 < m_run.size()) return;
        m_run.erase(m_run.begin(), m_run.begin() + static_cast<std::ptrdiff_t>(m_run_head));
        m_run_base = (m_run_base + static_cast<std::uint32_t>(m_run_head)) & ~run_bit;
        m_run_head = 0;
    }

    std::vector<entry> m_heap;
    std::vector<entry> m_run;      // deadlines never decrease along it
    std::size_t m_run_head = 0;    // m_run[m_run_head] is live (if any is)
    std::uint32_t m_run_base = 0;  // the sequence number of m_run[0] (run_position)
    std::size_t m_run_live = 0;    // live entries in m_run
};

}  // namespace coexec::detail
