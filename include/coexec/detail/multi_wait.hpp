// detail/multi_wait.hpp — suspend a coroutine until some of many futures finish.
//
// The engine of when_all, when_all_settled and when_any. It uses only the
// public future interface (done, has_value, add_done_callback), so futures
// of any type and from any executor mix in one wait.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "coexec/detail/work_item.hpp"
#include "coexec/future.hpp"

namespace coexec::detail {

enum class wait_mode { any, all, all_or_failure };

class multi_wait_block;

/// One future's place in a wait: a continuation of its state, made in one
/// array for the whole wait (one allocation, not one per future: a
/// when_all over 100k children spent a quarter of its time in malloc). It
/// holds no reference to the state: it runs inside the state's completion,
/// and a state is only destroyed uncompleted if nobody can complete it.
struct wait_node : continuation {
    multi_wait_block* block = nullptr;
    const shared_state_base* state = nullptr;
    std::size_t index = 0;

    static void fire(continuation* c) noexcept;
};

/// The part of a wait the completion callbacks share; it outlives the
/// awaitable if callbacks arrive after the coroutine has resumed.
class multi_wait_block {
  public:
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

    explicit multi_wait_block(wait_mode mode) noexcept : m_mode(mode) {}

    /// Room for `count` nodes (before any is registered). Throws bad_alloc.
    void make_nodes(std::size_t count) { m_nodes.reset(new wait_node[count]); }

    /// Registers node `index` on `state`; false if the state is done already
    /// (nothing registered).
    bool register_node(std::size_t index, shared_state_base& state) noexcept {
        wait_node& n = m_nodes[index];
        n.fn = &wait_node::fire;
        n.block = this;
        n.state = &state;
        n.index = index;
        add_ref();
        if (state.add_continuation(&n)) return true;
        m_refs.fetch_sub(1, std::memory_order_relaxed);  // the awaitable still holds one
        return false;
    }

    /// Future `index` finished (`ok`: with a value).
    void on_done(std::size_t index, bool ok) noexcept {
        const bool last = m_remaining.fetch_sub(1, std::memory_order_acq_rel) == 1;
        bool fire = false;
        switch (m_mode) {
            case wait_mode::any:
                fire = true;
                break;
            case wait_mode::all:
                fire = last;
                break;
            case wait_mode::all_or_failure:
                fire = last || !ok;
                break;
        }
        if (!fire || m_triggered.exchange(true, std::memory_order_acq_rel)) return;
        if (m_mode == wait_mode::any || !ok) m_trigger.store(index, std::memory_order_release);
        if (open_gate()) m_item.resume_home();
    }

    void add_ref() noexcept { m_refs.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept {
        if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

    /// Once the condition holds, later futures cannot change the outcome.
    bool triggered() const noexcept { return m_triggered.load(std::memory_order_acquire); }
    std::size_t trigger() const noexcept { return m_trigger.load(std::memory_order_acquire); }

    void start(std::coroutine_handle<> h, std::size_t count) noexcept {
        m_item.suspend(h);
        m_remaining.store(count, std::memory_order_relaxed);
    }
    /// Registration itself holds one of the two "gates" (registration done,
    /// condition met); whoever opens the last one resumes the coroutine.
    /// True if this call opened the last gate.
    bool open_gate() noexcept { return m_gates.fetch_sub(1, std::memory_order_acq_rel) == 1; }

  private:
    std::unique_ptr<wait_node[]> m_nodes;
    std::atomic<int> m_refs{1};  // the awaitable + one per pending callback
    wait_mode m_mode;
    std::atomic<std::size_t> m_remaining{0};
    std::atomic<bool> m_triggered{false};
    std::atomic<std::size_t> m_trigger{npos};
    std::atomic<int> m_gates{2};
    resume_item m_item;
};

inline void wait_node::fire(continuation* c) noexcept {
    auto* n = static_cast<wait_node*>(c);
    multi_wait_block* b = n->block;  // release() may free the node with the block
    b->on_done(n->index, n->state->load_status() == status::has_value);
    b->release();
}

/// Awaitable over `Futures` (a std::vector<future<R>> or a std::tuple of
/// futures, which must outlive the co_await): resumes when the condition of
/// `mode` holds; await_resume() gives the index of the future that triggered
/// it: the first to finish (`any`), the first to fail (`all_or_failure`),
/// else npos.
template <class Futures>
class multi_wait {
  public:
    static constexpr std::size_t npos = multi_wait_block::npos;

    multi_wait(const Futures& futures, wait_mode mode)
        : m_futures(futures), m_block(new multi_wait_block(mode)) {}
    multi_wait(const multi_wait&) = delete;
    multi_wait& operator=(const multi_wait&) = delete;
    ~multi_wait() { m_block->release(); }

    bool await_ready() const noexcept { return size() == 0; }

    bool await_suspend(std::coroutine_handle<> h) {
        multi_wait_block* b = m_block;
        b->make_nodes(size());  // may throw: before anything is registered
        b->start(h, size());
        for_each_future([b](std::size_t i, const auto& f) {
            if (b->triggered()) return;
            if (f.done()) {  // fast path (and no_state for a future without one)
                b->on_done(i, f.has_value());
                return;
            }
            if (!b->register_node(i, *state_of(f))) b->on_done(i, f.has_value());
        });
        return !b->open_gate();  // if we opened the last gate, do not suspend at all
    }

    std::size_t await_resume() const noexcept { return m_block->trigger(); }

  private:
    std::size_t size() const noexcept {
        if constexpr (requires { m_futures.size(); }) {
            return m_futures.size();
        } else {
            return std::tuple_size_v<Futures>;
        }
    }

    template <class Fn>
    void for_each_future(Fn&& fn) const {
        if constexpr (requires { m_futures.size(); }) {
            for (std::size_t i = 0; i < m_futures.size(); ++i)
                fn(i, m_futures[i]);
        } else {
            [&]<std::size_t... I>(std::index_sequence<I...>) {
                (fn(I, std::get<I>(m_futures)), ...);
            }(std::make_index_sequence<std::tuple_size_v<Futures>>{});
        }
    }

    const Futures& m_futures;
    multi_wait_block* m_block;
};

}  // namespace coexec::detail
