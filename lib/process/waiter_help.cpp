// lib/process/waiter_help.cpp — a caller blocked in get() on a process task
// reads the workers' results itself while the supervisor sleeps.
//
// Why: a round trip through the supervisor passes three parties (caller,
// worker, supervisor); on 2 cores two of them share one, and every hand-off
// on that core is a context switch (bench_process_pool_placement: p50 5 µs
// with the worker alone on a core, 11–12 µs otherwise). With the caller
// reading its own result, two parties remain, one per core.
//
// How (pool_impl.hpp, m_receiving): the receiving side has one owner at a
// time. The supervisor owns it while awake and lets it go only to sleep in
// epoll, once every live channel has its sleep announced. A helper that
// takes it withdraws those announcements (so results do not make workers
// wake the supervisor), reads results as the supervisor would (take_messages,
// with user code handed to the completion thread), and before it lets go
// announces sleep on every live channel again; where a message came first,
// and when a shutdown waits on what it read, it wakes the supervisor. So
// whenever nobody owns the side, a result wakes the supervisor, as before,
// and the supervisor sees every change it must act on (timers a result
// sets wake it from retire_locked). The supervisor, once awake, raises
// m_supervisor_wants and the helper gives the side back at its next step.
#include "coexec/detail/spin.hpp"
#include "process/pool_impl.hpp"

namespace coexec::detail {

using namespace proc;

bool process_pool_core::impl::runs(const shared_state_base& state, bool may_wait) const noexcept {
    std::unique_lock lock(m_mutex, std::defer_lock);
    if (may_wait) {
        lock.lock();
    } else if (!lock.try_lock()) {
        return false;
    }
    for (const auto& s : m_slots) {
        if (s.current && s.current->state == &state) return true;
    }
    return false;
}

namespace {

// The owner of the receiving side for the duration of a helping wait.
class receiving_side {
  public:
    explicit receiving_side(process_pool_core::impl& pool) noexcept : m_pool(pool) {}
    receiving_side(const receiving_side&) = delete;
    receiving_side& operator=(const receiving_side&) = delete;
    ~receiving_side() { release(); }

    bool held() const noexcept { return m_held; }

    /// Takes the side if the supervisor sleeps and no other helper has it.
    bool try_take() noexcept {
        if (m_pool.m_supervisor_wants.load(std::memory_order_relaxed)) return false;
        if (m_pool.m_receiving.load(std::memory_order_relaxed)) return false;
        if (m_pool.m_receiving.exchange(true, std::memory_order_acquire)) return false;
        m_held = true;
        // Done-callbacks and coroutine resumptions go to the completion
        // thread, as on the supervisor: this thread is inside get().
        m_old_sink = exchange_user_code_sink(&m_pool.m_completions);
        for (auto& s : m_pool.m_slots) {
            if (s.live && s.ch) s.ch.end_sleep(false);
        }
        return true;
    }

    /// Reads the results there are (a batch per worker); true if any.
    bool receive() noexcept {
        const bool any = m_pool.poll_results();
        m_received |= any;
        return any;
    }

    /// Announces sleep on every live channel again and lets the side go.
    /// The supervisor is woken if it has something to do: a channel where
    /// a message came before the announcement (it is not read here: a
    /// worker writing without end would keep this thread), or a shutdown
    /// waiting for the results read here.
    void release() noexcept {
        if (!m_held) return;
        bool wake = m_received && m_pool.m_shutdown_flag.load(std::memory_order_acquire);
        for (auto& s : m_pool.m_slots) {
            if (s.live && s.ch && !s.ch.prepare_sleep()) wake = true;
        }
        exchange_user_code_sink(m_old_sink);
        m_held = false;
        m_received = false;
        m_pool.m_receiving.store(false, std::memory_order_release);
        if (wake) m_pool.wake();
    }

  private:
    process_pool_core::impl& m_pool;
    resumer* m_old_sink = nullptr;
    bool m_held = false;
    bool m_received = false;
};

}  // namespace

bool process_pool_core::impl::help_wait(const shared_state_base& state, spin_policy policy,
                                        bool eager) noexcept {
    if (eager) m_helped.fetch_add(1, std::memory_order_relaxed);
    receiving_side side(*this);
    const auto deadline = clock::now() + policy.budget;
    const int burst = pauses_between_yields(policy);
    for (;;) {
        for (int k = 0; k < burst; ++k) {
            if (state.is_done()) return true;
            if (side.held() && m_supervisor_wants.load(std::memory_order_relaxed)) side.release();
            if (side.held() || side.try_take()) {
                if (side.receive()) continue;  // something came: look again at once
            }
            cpu_relax();
        }
        if (clock::now() >= deadline) break;
        if (policy.yields != yielding::never) {
            // A thread that waits long is often one of too many for the
            // cores: preempted while it held the side, it would keep the
            // supervisor from its deaths, timers and results meanwhile.
            if (!eager) side.release();
            std::this_thread::yield();
        }
    }
    side.release();
    return state.is_done();
}

void process_pool_core::impl::reclaim_receiving() noexcept {
    m_supervisor_wants.store(true, std::memory_order_relaxed);
    for (int round = 1; m_receiving.exchange(true, std::memory_order_acquire); ++round)
        wait_a_little(round);
    m_supervisor_wants.store(false, std::memory_order_relaxed);
}

}  // namespace coexec::detail
