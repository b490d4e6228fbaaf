// coexec/shared_value.hpp — one value shared by the program and its process
// workers (Python's multiprocessing.Value).
//
//   coexec::shared_value<long> counter(0);
//   pool.submit(add_one, counter);                  // the worker sees the same memory
//   counter.fetch_add(1);                           // atomic, when T is lock-free
//   { std::lock_guard g(counter.mutex()); counter.value() += 1; }   // Value.get_lock()
//
// T must be trivially copyable. The value lives in shared memory and crosses
// to a worker by handle; copies refer to the same value.
//
// @par Thread safety
// load/store/fetch_* are atomic (std::atomic_ref) when T is lock-free, so
// they are safe from any thread of any process. value() is a plain
// reference: guard it with mutex() as with Python's get_lock().
//
// @par Untrusted peers (docs/threat_model.md)
// A task given the value can store any bytes in it. Every bit pattern is a
// value of an integer, floating-point or std::byte T, of an enum with a fixed
// underlying type (every scoped enum), and of arrays and structs of those,
// so for them the worst is a wrong value. bool is the exception the library
// handles: load() reads its byte and gives `byte != 0` (value() does not).
// Other T — a struct holding a bool, an enum without a fixed underlying type
// — can be given bytes that are no value of T: where workers are not
// trusted, build T from the kinds above (a std::uint8_t flag, not a bool).
// Pointers mean nothing in another process. A received value is checked
// against its memory (at least sizeof(T), sealed against shrinking), else
// decoding throws serialization_error.
#pragma once

#include <atomic>
#include <new>
#include <type_traits>

#include "coexec/detail/process_sync.hpp"
#include "coexec/process_mutex.hpp"
#include "coexec/shared_buffer.hpp"

namespace coexec {

template <class T>
class shared_value {
    static_assert(std::is_trivially_copyable_v<T>,
                  "coexec::shared_value<T> needs a trivially copyable T");

  public:
    /// A zero-initialised value.
    shared_value() : m_memory(sizeof(T) < 64 ? 64 : sizeof(T)) { ::new (m_memory.data()) T(); }
    explicit shared_value(const T& initial) : shared_value() { *ptr() = initial; }

    /// Plain access; guard with mutex() when other processes may write.
    T& value() const noexcept { return *ptr(); }
    /// The lock that goes with this value (Python's get_lock()).
    process_mutex& mutex() noexcept { return m_mutex; }

    /// Atomic when std::atomic_ref<T> is lock-free (it works across
    /// processes only then); otherwise taken under mutex().
    T load() {
        if constexpr (std::is_same_v<T, bool>) {
            // The byte a worker stored may be neither 0 nor 1: never read it as a bool.
            return std::atomic_ref<unsigned char>(*byte_ptr()).load() != 0;
        } else if constexpr (lock_free) {
            return std::atomic_ref<T>(*ptr()).load();
        } else {
            std::lock_guard g(m_mutex);
            return *ptr();
        }
    }
    void store(const T& v) {
        if constexpr (lock_free) {
            std::atomic_ref<T>(*ptr()).store(v);
        } else {
            std::lock_guard g(m_mutex);
            *ptr() = v;
        }
    }
    /// Adds `d` and returns the previous value (arithmetic T).
    T fetch_add(T d)
        requires std::is_arithmetic_v<T>
    {
        if constexpr (lock_free && std::is_integral_v<T>) {
            return std::atomic_ref<T>(*ptr()).fetch_add(d);
        } else {
            std::lock_guard g(m_mutex);
            T old = *ptr();
            *ptr() = static_cast<T>(old + d);
            return old;
        }
    }

    /// Sends the handle; a received one is checked (serialization_error).
    template <class Ar>
    void serialize(Ar& ar) {
        ar(m_memory, m_mutex);
        if constexpr (Ar::is_loading::value)
            detail::check_received_block(m_memory, sizeof(T), "shared_value");
    }

  private:
    static constexpr bool lock_free = std::atomic_ref<T>::is_always_lock_free;
    T* ptr() const noexcept { return std::launder(reinterpret_cast<T*>(m_memory.data())); }
    unsigned char* byte_ptr() const noexcept {
        return reinterpret_cast<unsigned char*>(m_memory.data());
    }

    shared_buffer m_memory;
    process_mutex m_mutex;
};

}  // namespace coexec
