// coexec/process_mutex.hpp — a mutex shared between the program and its
// process workers (Python's multiprocessing.Lock).
//
//   coexec::process_mutex lock;
//   pool.submit(work, lock, ...);                 // the worker gets the same mutex
//   { std::lock_guard guard(lock); ... }          // Lockable: std::lock_guard, std::unique_lock
//
// It lives in shared memory (a shared_buffer) and crosses to a process worker
// by handle, like shared_buffer; copies refer to the same mutex. Robust: if
// the thread holding it dies (its process is killed), the next lock() takes
// it over instead of blocking forever (owner_died() then says so, as the data
// it protected may be half-updated). A waiter notices a death within
// detail::recheck_period (20 ms).
//
// @par Untrusted peers (docs/threat_model.md)
// The mutex is one futex word holding the owner's thread id; a process that
// writes over it can at worst make lock() wait for a live thread, or let two
// holders in at once — never make lock() or unlock() crash, throw, or write
// anywhere else. (A pthread robust mutex is not used because unlocking one
// writes through list pointers kept in the shared mutex itself.) Thread ids
// are those of the PID namespace the program and its workers share.
//
// @par Thread safety
// lock/unlock from any thread of any process holding a handle. Copying a
// handle is as thread-safe as copying a shared_buffer. As with std::mutex,
// unlock() must be called by the owning thread, and relocking a held mutex
// from its owner is undefined (it is taken over, as from a dead owner).
#pragma once

#include <cstdint>

#include "coexec/detail/process_sync.hpp"
#include "coexec/shared_buffer.hpp"

namespace coexec {

class process_mutex {
  public:
    /// Creates a new mutex in fresh shared memory. Throws std::system_error.
    process_mutex() : m_memory(detail::align_up(sizeof(std::uint32_t))) {}

    void lock() { m_owner_died = detail::process_lock(word()) == detail::lock_result::owner_died; }
    bool try_lock() {
        const detail::lock_result r = detail::process_try_lock(word());
        if (r == detail::lock_result::timed_out) return false;
        m_owner_died = r == detail::lock_result::owner_died;
        return true;
    }
    void unlock() noexcept { detail::process_unlock(word()); }

    /// True if the last lock() or try_lock() through this handle took the
    /// mutex over from a thread that died holding it.
    bool owner_died() const noexcept { return m_owner_died; }

    /// The shared 32-bit lock word (the owner's thread id, 0 when free).
    void* native_handle() const noexcept { return m_memory.data(); }

    /// Sends the handle; a received one is checked (serialization_error).
    template <class Ar>
    void serialize(Ar& ar) {
        ar(m_memory);
        if constexpr (Ar::is_loading::value)
            detail::check_received_block(m_memory, sizeof(std::uint32_t), "process_mutex");
    }

  private:
    std::uint32_t* word() const noexcept {
        return reinterpret_cast<std::uint32_t*>(m_memory.data());
    }

    shared_buffer m_memory;
    bool m_owner_died = false;
};

}  // namespace coexec
