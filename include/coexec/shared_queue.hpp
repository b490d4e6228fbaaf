// coexec/shared_queue.hpp — a bounded queue between processes (Python's
// multiprocessing.Queue).
//
//   coexec::shared_queue<std::string> q(/*capacity=*/64);
//   pool.submit(producer, q);                 // workers push...
//   std::string s = q.pop();                  // ...the program pops (or the other way)
//
// Multi-producer, multi-consumer, across processes: it lives in shared memory
// and crosses to a process worker by handle; copies refer to the same queue.
// Items are any coexec::serializable type whose encoding fits in `slot_bytes`
// (push throws serialization_error otherwise); shared_buffers cannot go
// through it (send those as task arguments). push blocks while the queue is
// full, pop while it is empty; the _for variants wait at most their timeout,
// the try_ variants do not wait for room or an item.
//
// @par Robustness
// A process killed anywhere inside push or pop, or while blocked in them,
// leaves the queue usable and whole: nothing stays locked (a dead holder's
// lock is taken over), an item becomes visible with one store after it is
// copied, and sleepers never depend on a wake-up a dead process owed them.
//
// @par Untrusted peers (docs/threat_model.md)
// A task given the queue can write anything over its memory. This process
// then sees garbage items, serialization_error (a corrupt header or item
// length; an item that does not decode), or waits that last until their
// timeout — never a crash or a write outside the queue: the capacity and slot
// size are kept privately (a received queue takes them once, checked against
// its memory's sealed size), every index is reduced modulo that capacity and
// every length checked against that slot size. try_push/try_pop wait for the
// queue's lock at most detail::try_lock_patience (100 ms).
//
// @par Thread safety
// Every member from any thread of any process holding a handle.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <vector>

#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/detail/codec/values.hpp"
#include "coexec/detail/process_sync.hpp"
#include "coexec/errors.hpp"
#include "coexec/serializable.hpp"
#include "coexec/shared_buffer.hpp"

namespace coexec {

template <serializable T>
class shared_queue {
  public:
    /// An empty handle (valid() is false), e.g. to receive one; using it throws.
    shared_queue() noexcept = default;

    /// Room for `capacity` items of at most `slot_bytes` encoded bytes each.
    /// Throws std::invalid_argument for a zero capacity, std::length_error
    /// for sizes that cannot exist, std::system_error if the shared memory
    /// cannot be made.
    explicit shared_queue(std::size_t capacity, std::size_t slot_bytes = 1024)
        : m_memory(detail::shm_queue::bytes_for(capacity, slot_bytes)) {
        const detail::shm_queue::geometry g{capacity, slot_bytes};
        detail::shm_queue::format(m_memory.data(), g);
        m_queue = detail::shm_queue(m_memory.data(), g);
    }

    /// Blocks while full.
    void push(const T& item) { (void)put(item, detail::shm_forever); }
    /// False (and nothing pushed) if still full after `timeout`.
    template <class Rep, class Period>
    bool push_for(const T& item, std::chrono::duration<Rep, Period> timeout) {
        return put(item, deadline_after(timeout));
    }
    /// False (and nothing pushed) if full.
    bool try_push(const T& item) { return put(item, detail::shm_clock::now()); }

    /// Blocks while empty.
    T pop() { return *take(detail::shm_forever); }
    /// nullopt if still empty after `timeout`.
    template <class Rep, class Period>
    std::optional<T> pop_for(std::chrono::duration<Rep, Period> timeout) {
        return take(deadline_after(timeout));
    }
    /// nullopt if empty.
    std::optional<T> try_pop() { return take(detail::shm_clock::now()); }

    /// Items in the queue now (may change at once).
    std::size_t size() const {
        check_valid();
        return m_queue.size();
    }
    std::size_t capacity() const noexcept { return valid() ? m_queue.shape().capacity : 0; }
    /// False for a default-constructed handle.
    bool valid() const noexcept { return m_memory.valid(); }

    /// Sends the handle. A received queue is checked against its memory
    /// (throws serialization_error if the header does not match).
    template <class Ar>
    void serialize(Ar& ar) {
        ar(m_memory);
        if constexpr (Ar::is_loading::value) {
            m_queue = {};
            if (!m_memory.valid()) return;
            detail::check_received_block(m_memory, sizeof(detail::shm_queue_header),
                                         "shared_queue");
            m_queue = detail::shm_queue(m_memory.data(),
                                        detail::shm_queue::adopt(m_memory.data(), m_memory.size()));
        }
    }

  private:
    void check_valid() const {
        if (!valid())
            throw std::logic_error(
                "coexec::shared_queue: this handle has no queue (default-constructed)");
    }

    template <class Rep, class Period>
    static detail::shm_clock::time_point deadline_after(std::chrono::duration<Rep, Period> d) {
        const auto now = detail::shm_clock::now();
        const auto step = std::chrono::ceil<detail::shm_clock::duration>(d);
        return step >= detail::shm_forever - now ? detail::shm_forever : now + step;
    }

    bool put(const T& item, detail::shm_clock::time_point deadline) {
        check_valid();
        std::vector<std::byte> bytes;
        detail::byte_writer w(bytes);
        detail::encode(w, item);
        if (bytes.size() > m_queue.shape().slot_bytes) {
            throw serialization_error("coexec::shared_queue::push: the item needs " +
                                      std::to_string(bytes.size()) +
                                      " bytes, more than the queue's slot size (" +
                                      std::to_string(m_queue.shape().slot_bytes) +
                                      "); make the queue with a larger slot_bytes");
        }
        return m_queue.push(bytes, deadline);
    }

    std::optional<T> take(detail::shm_clock::time_point deadline) {
        check_valid();
        std::vector<std::byte> bytes;
        // A blocking pop waits in bounded sleeps, so this loop is its only "forever".
        while (!m_queue.pop(bytes, deadline)) {
            if (deadline != detail::shm_forever) return std::nullopt;
        }
        // Decoded from our private copy: the shared slot may change meanwhile.
        detail::byte_reader r(std::span<const std::byte>(bytes.data(), bytes.size()));
        return detail::decode<T>(r);
    }

    shared_buffer m_memory;
    detail::shm_queue m_queue;  // our own copy of the geometry
};

}  // namespace coexec
