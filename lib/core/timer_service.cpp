#include "coexec/detail/timer_service.hpp"

#include <condition_variable>
#include <cstdio>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "util/per_process.hpp"

namespace coexec::detail {
namespace {

using clock = std::chrono::steady_clock;

class timer_thread {
  public:
    timer_thread() : m_thread([this] { run(); }) { m_thread.detach(); }

    timer_handle add(clock::time_point deadline, std::function<void()> fn) {
        std::lock_guard lock(m_mutex);
        const timer_handle h{deadline, ++m_next_id};
        const bool earliest = m_timers.empty() || deadline < m_timers.begin()->first.first;
        m_timers.emplace(key(h), std::move(fn));
        if (earliest) m_cv.notify_one();
        return h;
    }

    bool cancel(const timer_handle& h) noexcept {
        std::function<void()> dropped;  // destroyed outside the lock
        std::lock_guard lock(m_mutex);
        auto it = m_timers.find(key(h));
        if (it == m_timers.end()) return false;
        dropped = std::move(it->second);
        m_timers.erase(it);
        return true;
    }

  private:
    using key_type = std::pair<clock::time_point, std::uint64_t>;
    static key_type key(const timer_handle& h) noexcept { return {h.deadline, h.id}; }

    [[noreturn]] void run() {
        std::unique_lock lock(m_mutex);
        for (;;) {
            if (m_timers.empty()) {
                m_cv.wait(lock);
                continue;
            }
            auto first = m_timers.begin();
            if (clock::now() < first->first.first) {
                m_cv.wait_until(lock, first->first.first);
                continue;
            }
            std::function<void()> fn = std::move(first->second);
            m_timers.erase(first);
            lock.unlock();
            try {
                fn();
            } catch (...) {
                // Callbacks are coexec's own and do not throw; never lose the thread.
                std::fputs("coexec: a timer callback threw; ignored\n", stderr);
            }
            fn = nullptr;
            lock.lock();
        }
    }

    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::map<key_type, std::function<void()>> m_timers;
    std::uint64_t m_next_id = 0;
    std::thread m_thread;
};

// One per process (util/per_process.hpp): detached, it may still sleep while
// the program exits; a forked child makes its own.
timer_thread& instance() {
    return per_process<timer_thread>();
}

}  // namespace

timer_handle schedule_timer(clock::time_point deadline, std::function<void()> fn) {
    return instance().add(deadline, std::move(fn));
}

bool cancel_timer(const timer_handle& handle) noexcept {
    if (handle.id == 0) return false;
    return instance().cancel(handle);
}

}  // namespace coexec::detail
