// detail/event_signal.hpp — "something happened" from many producers to one
// consumer that blocks or awaits, without a lock or a syscall per event.
//
// Producers bump an epoch; the consumer remembers the epoch it has seen and
// waits for it to change. A blocked consumer spins briefly, then sleeps on
// the epoch (std::atomic::wait, which costs nothing to notify when nobody
// sleeps). An awaiting consumer parks its resume item in one atomic slot.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>

#include "coexec/detail/spin.hpp"
#include "coexec/detail/work_item.hpp"

namespace coexec::detail {

class event_signal {
  public:
    std::uint32_t epoch() const noexcept { return m_epoch.load(std::memory_order_acquire); }

    /// Records an event and wakes the consumer. Thread-safe.
    void notify() noexcept {
        // acq_rel + seq_cst on both sides: either the consumer sees the new
        // epoch after parking, or we see the parked waiter (no lost wake-up).
        m_epoch.fetch_add(1, std::memory_order_seq_cst);
        m_epoch.notify_all();
        if (resume_item* w = m_waiter.exchange(nullptr, std::memory_order_seq_cst))
            w->resume_home();
    }

    /// Blocks until the epoch differs from `seen`.
    void wait(std::uint32_t seen) const noexcept {
        const auto changed = [&] { return m_epoch.load(std::memory_order_acquire) != seen; };
        if (!spin_until(changed, spin::event_wait)) m_epoch.wait(seen, std::memory_order_acquire);
    }

    /// Awaitable: resumes once the epoch differs from `seen`.
    auto async_wait(std::uint32_t seen) noexcept {
        struct awaiter : resume_item {
            event_signal* signal;
            std::uint32_t seen;
            bool await_ready() const noexcept { return signal->epoch() != seen; }
            bool await_suspend(std::coroutine_handle<> h) noexcept {
                suspend(h);  // records where to resume, before the item is published
                signal->m_waiter.store(this, std::memory_order_seq_cst);
                if (signal->m_epoch.load(std::memory_order_seq_cst) == seen) return true;
                // An event slipped in: take our slot back unless a notifier already did
                // (then it resumes us).
                resume_item* expected = this;
                return !signal->m_waiter.compare_exchange_strong(expected, nullptr,
                                                                 std::memory_order_seq_cst);
            }
            void await_resume() const noexcept {}
        };
        awaiter a;
        a.signal = this;
        a.seen = seen;
        return a;
    }

  private:
    mutable std::atomic<std::uint32_t> m_epoch{0};
    std::atomic<resume_item*> m_waiter{nullptr};
};

}  // namespace coexec::detail
