// coexec/process_mutex.hpp — a mutex shared between the program and its
// process workers (Python's multiprocessing.Lock).
//
//   coexec::process_mutex lock;
//   pool.submit(work, lock, ...);                 // the worker gets the same mutex
//   { std::lock_guard guard(lock); ... }          // Lockable: std::lock_guard, std::unique_lock
//
// It lives in shared memory (a shared_buffer) and crosses to a process worker
// by handle, like shared_buffer; copies refer to the same mutex. Robust: if a
// worker dies holding it, the next lock() takes it over instead of blocking
// forever (owner_died() then says so, as the data it protected may be
// half-updated).
//
// @par Thread safety
// lock/unlock from any thread of any process holding a handle. Copying a
// handle is as thread-safe as copying a shared_buffer.
#pragma once

#include <cstring>

#include "coexec/detail/process_sync.hpp"
#include "coexec/shared_buffer.hpp"

namespace coexec {

class process_mutex {
  public:
    /// Creates a new mutex in fresh shared memory. Throws std::system_error.
    process_mutex() : m_memory(detail::align_up(detail::process_mutex_bytes())) {
        detail::process_mutex_init(m_memory.data());
    }

    void lock() { m_owner_died = !detail::process_mutex_lock(m_memory.data()); }
    bool try_lock() { return detail::process_mutex_try_lock(m_memory.data()); }
    void unlock() { detail::process_mutex_unlock(m_memory.data()); }

    /// True if the last lock() through this handle took the mutex over from
    /// a process that died holding it.
    bool owner_died() const noexcept { return m_owner_died; }

    /// The raw process-shared mutex (for condition variables in shared memory).
    void* native_handle() const noexcept { return m_memory.data(); }

    template <class Ar>
    void serialize(Ar& ar) {
        ar(m_memory);
    }

  private:
    shared_buffer m_memory;
    bool m_owner_died = false;
};

}  // namespace coexec
