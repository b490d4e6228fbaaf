// coexec/promise.hpp — the writing end of a future, for bridging callback code.
//
// @par Thread safety
// set_value / set_exception may race with each other and with the future's
// readers; the first completion wins and later ones are ignored.
// A promise destroyed without a result completes its future with a
// coexec::error ("broken promise"), so no future waits forever.
// A moved-from promise has no state: its members throw coexec::no_state.
#pragma once

#include <exception>
#include <utility>

#include "coexec/future.hpp"

namespace coexec {

template <class T>
class promise {
  public:
    promise() : m_state(new detail::shared_state<T>()) {}
    promise(promise&& o) noexcept : m_state(std::exchange(o.m_state, nullptr)) {}
    promise& operator=(promise&& o) noexcept {
        promise(std::move(o)).swap(*this);
        return *this;
    }
    promise(const promise&) = delete;
    promise& operator=(const promise&) = delete;
    ~promise() {
        if (m_state == nullptr) return;
        if (!m_state->is_done()) {
            m_state->set_exception(std::make_exception_ptr(
                error("coexec::promise destroyed before it set a value (broken promise)")));
        }
        m_state->release();
    }
    void swap(promise& o) noexcept { std::swap(m_state, o.m_state); }

    /// A future sharing this promise's state; may be called more than once.
    future<T> get_future() const { return future<T>(&state("promise::get_future")); }

    /// Completes the future with a value. Ignored if already completed.
    template <class... A>
    void set_value(A&&... value) {
        state("promise::set_value").set_value(std::forward<A>(value)...);
    }
    /// Completes the future with an exception. Ignored if already completed.
    void set_exception(std::exception_ptr e) {
        state("promise::set_exception").set_exception(std::move(e));
    }

    /// Marks the work as started (future::running() becomes true); false if
    /// the future was cancelled meanwhile.
    bool set_running() { return state("promise::set_running").try_start(); }

  private:
    detail::shared_state<T>& state(const char* member) const {
        if (m_state == nullptr) [[unlikely]]
            detail::throw_no_state(member);
        return *m_state;
    }

    detail::shared_state<T>* m_state;
};

}  // namespace coexec
