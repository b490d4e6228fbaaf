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
// full, pop while it is empty; try_/timed variants do not.
//
// @par Robustness
// A process killed inside push or pop cannot leave the queue locked (robust
// mutex) nor half-published (an item becomes visible only after it is copied).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
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
    /// Throws std::invalid_argument for a zero capacity, std::system_error if
    /// the shared memory cannot be made.
    explicit shared_queue(std::size_t capacity, std::size_t slot_bytes = 1024)
        : m_memory(checked_size(capacity, slot_bytes)) {
        header* h = head();
        h->capacity = capacity;
        h->slot_bytes = slot_bytes;
        detail::process_mutex_init(mutex());
        detail::process_cond_init(not_empty());
        detail::process_cond_init(not_full());
    }

    /// Blocks while full.
    void push(const T& item) {
        std::vector<std::byte> bytes = encode_item(item);
        lock_guard g(*this);
        while (head()->count == head()->capacity)
            detail::process_cond_wait(not_full(), mutex());
        put(bytes);
    }
    /// False (and nothing pushed) if full.
    bool try_push(const T& item) {
        std::vector<std::byte> bytes = encode_item(item);
        lock_guard g(*this);
        if (head()->count == head()->capacity) return false;
        put(bytes);
        return true;
    }
    /// Blocks while empty.
    T pop() {
        std::vector<std::byte> bytes;
        {
            lock_guard g(*this);
            while (head()->count == 0)
                detail::process_cond_wait(not_empty(), mutex());
            bytes = take();
        }
        return decode_item(bytes);
    }
    /// nullopt if still empty after `timeout`.
    template <class Rep, class Period>
    std::optional<T> pop_for(std::chrono::duration<Rep, Period> timeout) {
        auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::ceil<std::chrono::steady_clock::duration>(timeout);
        std::vector<std::byte> bytes;
        {
            lock_guard g(*this);
            while (head()->count == 0) {
                if (!detail::process_cond_wait_until(not_empty(), mutex(), deadline) &&
                    head()->count == 0) {
                    return std::nullopt;
                }
            }
            bytes = take();
        }
        return decode_item(bytes);
    }
    std::optional<T> try_pop() { return pop_for(std::chrono::nanoseconds(0)); }

    /// Items in the queue now (may change at once).
    std::size_t size() const {
        lock_guard g(const_cast<shared_queue&>(*this));
        return head()->count;
    }
    std::size_t capacity() const noexcept { return valid() ? head()->capacity : 0; }
    /// False for a default-constructed handle.
    bool valid() const noexcept { return m_memory.valid(); }

    template <class Ar>
    void serialize(Ar& ar) {
        ar(m_memory);
    }

  private:
    struct header {
        std::uint64_t capacity;
        std::uint64_t slot_bytes;
        std::uint64_t read;   // index of the oldest item
        std::uint64_t count;  // items published
    };
    struct layout_t {
        std::size_t mutex_at, not_empty_at, not_full_at, header_at, slots_at, slot_stride, total;
    };
    static layout_t layout(std::size_t capacity, std::size_t slot_bytes) {
        layout_t l{};
        l.mutex_at = 0;
        l.not_empty_at = detail::align_up(detail::process_mutex_bytes());
        l.not_full_at = l.not_empty_at + detail::align_up(detail::process_cond_bytes());
        l.header_at = l.not_full_at + detail::align_up(detail::process_cond_bytes());
        l.slots_at = l.header_at + detail::align_up(sizeof(header));
        l.slot_stride = detail::align_up(sizeof(std::uint32_t) + slot_bytes);
        l.total = l.slots_at + l.slot_stride * std::max<std::size_t>(capacity, 1);
        return l;
    }
    layout_t my_layout() const { return layout(head()->capacity, head()->slot_bytes); }

    // The header sits at a fixed offset that does not depend on capacity.
    header* head() const noexcept {
        return reinterpret_cast<header*>(m_memory.data() + layout(1, 1).header_at);
    }
    void* mutex() const noexcept { return m_memory.data(); }
    void* not_empty() const noexcept { return m_memory.data() + layout(1, 1).not_empty_at; }
    void* not_full() const noexcept { return m_memory.data() + layout(1, 1).not_full_at; }
    std::byte* slot(std::uint64_t i) const noexcept {
        layout_t l = my_layout();
        return m_memory.data() + l.slots_at + l.slot_stride * (i % head()->capacity);
    }

    static std::size_t checked_size(std::size_t capacity, std::size_t slot_bytes) {
        if (capacity == 0)
            throw std::invalid_argument("coexec::shared_queue: capacity must be at least 1");
        return layout(capacity, slot_bytes).total;
    }

    struct lock_guard {
        shared_queue& q;
        explicit lock_guard(shared_queue& queue) : q(queue) {
            if (!q.valid())
                throw std::logic_error(
                    "coexec::shared_queue: this handle has no queue (default-constructed)");
            detail::process_mutex_lock(q.mutex());
        }
        ~lock_guard() { detail::process_mutex_unlock(q.mutex()); }
    };

    std::vector<std::byte> encode_item(const T& item) const {
        if (!valid())
            throw std::logic_error(
                "coexec::shared_queue: this handle has no queue (default-constructed)");
        std::vector<std::byte> bytes;
        detail::byte_writer w(bytes);
        detail::encode(w, item);
        if (bytes.size() > head()->slot_bytes) {
            throw serialization_error(
                "coexec::shared_queue::push: the item needs " + std::to_string(bytes.size()) +
                " bytes, more than the queue's slot size (" + std::to_string(head()->slot_bytes) +
                "); make the queue with a larger slot_bytes");
        }
        return bytes;
    }
    static T decode_item(const std::vector<std::byte>& bytes) {
        detail::byte_reader r(std::span<const std::byte>(bytes.data(), bytes.size()));
        return detail::decode<T>(r);
    }

    // Called with the lock held. The slot is filled before `count` publishes it,
    // so a producer dying mid-copy leaves no half item behind.
    void put(const std::vector<std::byte>& bytes) {
        header* h = head();
        std::byte* s = slot(h->read + h->count);
        auto len = static_cast<std::uint32_t>(bytes.size());
        std::memcpy(s, &len, sizeof len);
        if (len != 0) std::memcpy(s + sizeof len, bytes.data(), len);
        ++h->count;
        detail::process_cond_notify_all(not_empty());
    }
    std::vector<std::byte> take() {
        header* h = head();
        std::byte* s = slot(h->read);
        std::uint32_t len = 0;
        std::memcpy(&len, s, sizeof len);
        std::vector<std::byte> bytes(s + sizeof len, s + sizeof len + len);
        h->read = (h->read + 1) % h->capacity;
        --h->count;
        detail::process_cond_notify_all(not_full());
        return bytes;
    }

    shared_buffer m_memory;
};

}  // namespace coexec
