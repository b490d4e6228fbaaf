// detail/multi_wait.hpp — suspend a coroutine until some of many states finish.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <vector>

#include "coexec/detail/shared_state.hpp"
#include "coexec/detail/work_item.hpp"

namespace coexec::detail {

/// Calls `fn()` once `state` is done (at once if it already is). Keeps a
/// reference to the state until then. Allocates one node.
template <class Fn>
void notify_when_done(shared_state_base* state, Fn fn) {
    struct node : continuation {
        Fn f;
        shared_state_base* s;
        node(Fn f_, shared_state_base* s_) : f(std::move(f_)), s(s_) {}
        static void call(continuation* c) noexcept {
            auto* n = static_cast<node*>(c);
            n->f();
            n->s->release();
            delete n;
        }
    };
    state->add_ref();
    auto* n = new node(std::move(fn), state);
    n->fn = &node::call;
    if (!state->add_continuation(n)) node::call(n);
}

enum class wait_mode { any, all, all_or_failure };

/// Awaitable: resumes when the condition of `mode` holds; await_resume()
/// gives the index of the state that triggered it (npos for `all` with no
/// failure). Callbacks that arrive later touch only a heap block.
class multi_wait {
  public:
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

    multi_wait(std::vector<shared_state_base*> states, wait_mode mode)
        : m_states(std::move(states)), m_block(new block()) {
        m_block->mode = mode;
    }
    multi_wait(const multi_wait&) = delete;
    multi_wait& operator=(const multi_wait&) = delete;
    ~multi_wait() { m_block->release(); }

    bool await_ready() const noexcept { return m_states.empty(); }

    bool await_suspend(std::coroutine_handle<> h) {
        block* b = m_block;
        b->item.suspend(h);
        b->home = current_resumer();
        b->remaining.store(m_states.size(), std::memory_order_relaxed);
        for (std::size_t i = 0; i < m_states.size(); ++i) {
            // Once the condition holds, later states cannot change the outcome.
            if (b->triggered.load(std::memory_order_acquire)) break;
            shared_state_base* s = m_states[i];
            if (s->is_done()) {  // fast path: no callback node, no reference
                b->on_done(i, s);
                continue;
            }
            b->refs.fetch_add(1, std::memory_order_relaxed);
            notify_when_done(s, [b, i, s] {
                b->on_done(i, s);
                b->release();
            });
        }
        // Registration itself holds one of the two "gates"; whoever opens the
        // last gate resumes the coroutine. If that is us, don't suspend at all.
        return !b->open_gate(/*from_registration=*/true);
    }

    std::size_t await_resume() const noexcept {
        return m_block->trigger.load(std::memory_order_acquire);
    }

  private:
    struct block {
        std::atomic<int> refs{1};  // the awaitable + one per pending callback
        wait_mode mode = wait_mode::all;
        std::atomic<std::size_t> remaining{0};
        std::atomic<bool> triggered{false};
        std::atomic<std::size_t> trigger{npos};
        std::atomic<int> gates{2};  // registration finished + condition met
        resume_item item;
        resumer* home = nullptr;

        void on_done(std::size_t index, shared_state_base* s) noexcept {
            bool last = remaining.fetch_sub(1, std::memory_order_acq_rel) == 1;
            bool fire = false;
            switch (mode) {
                case wait_mode::any:
                    fire = true;
                    break;
                case wait_mode::all:
                    fire = last;
                    break;
                case wait_mode::all_or_failure:
                    fire = last || s->load_status() != status::has_value;
                    break;
            }
            if (!fire || triggered.exchange(true, std::memory_order_acq_rel)) return;
            if (mode != wait_mode::all) trigger.store(index, std::memory_order_release);
            if (open_gate(false)) resume();
        }

        void release() noexcept {
            if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
        }

        /// True if this call opened the last gate.
        bool open_gate(bool /*from_registration*/ = false) noexcept {
            return gates.fetch_sub(1, std::memory_order_acq_rel) == 1;
        }

        void resume() noexcept {
            if (home != nullptr && home != current_resumer()) {
                home->post(&item);
            } else {
                item.resume();
            }
        }
    };

    std::vector<shared_state_base*> m_states;
    block* m_block;
};

}  // namespace coexec::detail
