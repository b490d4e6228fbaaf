// tests/support/process_gate.hpp — a gate that process_pool tasks wait at.
//
// Tests that need futures to stay pending while they attach callbacks, read
// counts or cancel must not rely on a sleep being long enough: a loaded
// sanitizer run can stall the test thread for longer than any such sleep,
// and the worker finishes first. A gate task holds its worker until the
// test opens the gate.
#pragma once

#include <atomic>
#include <chrono>
#include <new>
#include <thread>

#include "coexec/shared_buffer.hpp"

namespace coexec_test {

/// One flag in shared memory. Submit `wait_at_process_gate` with buffer() to
/// a process_pool; the task holds its worker until open() (or the gate is
/// destroyed, or a minute passes).
class process_gate {
  public:
    process_gate() : m_buffer(sizeof(std::atomic<int>)) {
        new (m_buffer.data()) std::atomic<int>(0);
    }
    process_gate(const process_gate&) = delete;
    process_gate& operator=(const process_gate&) = delete;
    ~process_gate() { open(); }

    const coexec::shared_buffer& buffer() const noexcept { return m_buffer; }
    void open() noexcept { flag().store(1); }

  private:
    std::atomic<int>& flag() const noexcept {
        return *std::launder(reinterpret_cast<std::atomic<int>*>(m_buffer.data()));
    }
    coexec::shared_buffer m_buffer;
};

/// The task that waits at a gate: true if it opened, false after a minute.
inline bool wait_at_process_gate(coexec::shared_buffer b) {
    auto& flag = *std::launder(reinterpret_cast<std::atomic<int>*>(b.data()));
    const auto until = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (flag.load() == 0) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

}  // namespace coexec_test
