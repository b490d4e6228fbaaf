// tests/support/helpers.hpp — small tools shared by the tests.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "coexec/executor.hpp"

namespace coexec_test {

/// Counts live instances, to check that nothing leaks or is destroyed twice.
struct lifetime_counter {
    static inline std::atomic<int> alive{0};
    static inline std::atomic<int> constructed{0};
    int value = 0;
    lifetime_counter() : lifetime_counter(0) {}
    explicit lifetime_counter(int v) : value(v) {
        alive.fetch_add(1);
        constructed.fetch_add(1);
    }
    lifetime_counter(const lifetime_counter& o) : lifetime_counter(o.value) {}
    lifetime_counter(lifetime_counter&& o) noexcept : lifetime_counter(o.value) {}
    lifetime_counter& operator=(const lifetime_counter&) = default;
    ~lifetime_counter() { alive.fetch_sub(1); }
};

/// A latch a test thread opens to let blocked tasks go.
class gate {
  public:
    void open() {
        m_open.store(true);
        m_open.notify_all();
    }
    void wait() const {
        while (!m_open.load())
            m_open.wait(false);
    }

  private:
    std::atomic<bool> m_open{false};
};

/// Spins (sleeping 1 ms) until pred() or `timeout`; returns pred().
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

/// The job counters of executor_stats (submitted, completed, failed,
/// cancelled, queued, running), to compare executors field by field.
using job_counts = std::array<std::uint64_t, 6>;
inline job_counts job_counts_of(const coexec::executor_stats& s) {
    return {s.submitted, s.completed, s.failed, s.cancelled, s.queued, s.running};
}
/// What every executor reports once it has run a task that returns a value,
/// one that throws and one cancelled before it started.
inline constexpr job_counts after_value_throw_cancelled{3, 1, 1, 1, 0, 0};

}  // namespace coexec_test
