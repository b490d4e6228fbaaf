// detail/completion_queue.hpp — a queue filled by completion callbacks,
// drained by one consumer that blocks or awaits.
#pragma once

#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

#include "coexec/detail/work_item.hpp"

namespace coexec::detail {

template <class T>
class completion_queue {
  public:
    /// Adds an item; wakes the consumer. Thread-safe.
    void push(T item) {
        resume_item* waiter = nullptr;
        {
            std::lock_guard lock(m_mutex);
            m_items.push_back(std::move(item));
            waiter = std::exchange(m_waiter, nullptr);
            m_cv.notify_one();
        }
        if (waiter != nullptr) waiter->resume_home();
    }

    /// Marks the queue expired (a deadline passed) and wakes an awaiting
    /// consumer: pop_or_expired() then yields nullopt once the queue is empty.
    /// Thread-safe; for the timer thread.
    void expire() {
        resume_item* waiter = nullptr;
        {
            std::lock_guard lock(m_mutex);
            m_expired = true;
            if (m_waiter_expirable) waiter = std::exchange(m_waiter, nullptr);
        }
        if (waiter != nullptr) waiter->resume_home();
    }

    /// Blocks until an item is there or `deadline` (if any) passes.
    std::optional<T> pop_until(const std::chrono::steady_clock::time_point* deadline) {
        std::unique_lock lock(m_mutex);
        auto ready = [this] { return !m_items.empty(); };
        if (deadline != nullptr) {
            if (!m_cv.wait_until(lock, *deadline, ready)) return std::nullopt;
        } else {
            m_cv.wait(lock, ready);
        }
        T item = std::move(m_items.front());
        m_items.pop_front();
        return item;
    }

    /// Awaitable pop: suspends (holding no thread) until an item is there.
    /// One awaiting consumer at a time.
    auto pop() noexcept { return awaiter<false>{this}; }

    /// As pop(), but yields nullopt instead of waiting once expire() was called
    /// and the queue is empty.
    auto pop_or_expired() noexcept { return awaiter<true>{this}; }

  private:
    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::deque<T> m_items;
    resume_item* m_waiter = nullptr;
    bool m_expired = false;
    bool m_waiter_expirable = false;  // pop() waiters are not woken by expire()

    template <bool Expirable>
    struct awaiter : resume_item {
        completion_queue* queue;
        explicit awaiter(completion_queue* q) noexcept : queue(q) {}
        bool await_ready() const noexcept { return false; }
        bool await_suspend(std::coroutine_handle<> h) {
            suspend(h);
            std::lock_guard lock(queue->m_mutex);
            if (!queue->m_items.empty() || (Expirable && queue->m_expired)) return false;
            queue->m_waiter = this;
            queue->m_waiter_expirable = Expirable;
            return true;
        }
        auto await_resume() {
            std::lock_guard lock(queue->m_mutex);
            if constexpr (Expirable) {
                if (queue->m_items.empty()) return std::optional<T>();  // expired
            }
            T item = std::move(queue->m_items.front());
            queue->m_items.pop_front();
            if constexpr (Expirable) {
                return std::optional<T>(std::move(item));
            } else {
                return item;
            }
        }
    };
};

}  // namespace coexec::detail
