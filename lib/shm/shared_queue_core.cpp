// The byte level of shared_queue: a ring of slots in shared memory that any
// process holding the queue may overwrite (detail/process_sync.hpp).
//
// Every shared field is read once, with an atomic load, into a local that is
// checked and then used: never read twice (a second read may differ) and
// never used to address memory before it is reduced modulo our own capacity
// or checked against our own slot size.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "coexec/detail/process_sync.hpp"
#include "coexec/errors.hpp"

namespace coexec::detail {
namespace {

constexpr std::uint64_t queue_magic = 0x3151'6365'786f'6563ull;  // "coexecQ1"
constexpr std::size_t length_bytes = sizeof(std::uint32_t);
constexpr std::size_t max_slot_bytes = std::numeric_limits<std::uint32_t>::max() - 64;

template <class T>
T load(T& field) noexcept {
    return std::atomic_ref<T>(field).load(std::memory_order_acquire);
}
template <class T>
void store(T& field, T v) noexcept {
    std::atomic_ref<T>(field).store(v, std::memory_order_release);
}

[[noreturn]] void corrupt(const std::string& what) {
    throw serialization_error("coexec::shared_queue: " + what +
                              " (another process wrote over the queue's shared memory)");
}

}  // namespace

// Holds the queue's lock; relocks after a wait and unlocks on every way out.
class shm_queue::guard {
  public:
    explicit guard(std::uint32_t* word) noexcept : m_word(word) {}
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    ~guard() {
        if (m_held) process_unlock(m_word);
    }
    bool lock(shm_clock::time_point deadline) noexcept {
        m_held = process_lock(m_word, deadline) != lock_result::timed_out;
        return m_held;
    }
    void unlock() noexcept {
        process_unlock(m_word);
        m_held = false;
    }

  private:
    std::uint32_t* m_word;
    bool m_held = false;
};

std::size_t shm_queue::bytes_for(std::size_t capacity, std::size_t slot_bytes) {
    if (capacity == 0)
        throw std::invalid_argument("coexec::shared_queue: capacity must be at least 1");
    if (slot_bytes > max_slot_bytes)
        throw std::length_error("coexec::shared_queue: slot_bytes is too large");
    const std::size_t stride = align_up(length_bytes + slot_bytes);
    const std::size_t room = std::numeric_limits<std::size_t>::max() / 2 - sizeof(shm_queue_header);
    if (capacity > room / stride)
        throw std::length_error("coexec::shared_queue: capacity * slot_bytes is too large");
    return sizeof(shm_queue_header) + stride * capacity;
}

void shm_queue::format(std::byte* base, geometry g) noexcept {
    auto* h = reinterpret_cast<shm_queue_header*>(base);
    store(h->capacity, static_cast<std::uint64_t>(g.capacity));
    store(h->slot_bytes, static_cast<std::uint64_t>(g.slot_bytes));
    store(h->magic, queue_magic);
}

shm_queue::geometry shm_queue::adopt(const std::byte* base, std::size_t size) {
    auto* h = reinterpret_cast<shm_queue_header*>(const_cast<std::byte*>(base));
    if (size < sizeof(shm_queue_header)) corrupt("the received queue is smaller than its header");
    const std::uint64_t magic = load(h->magic);
    const std::uint64_t capacity = load(h->capacity);
    const std::uint64_t slot_bytes = load(h->slot_bytes);
    if (magic != queue_magic) corrupt("the received block is not a queue");
    std::size_t expected = 0;
    try {
        expected =
            bytes_for(static_cast<std::size_t>(capacity), static_cast<std::size_t>(slot_bytes));
    } catch (const std::logic_error&) {
        corrupt("the received queue's header holds an impossible capacity or slot size");
    }
    if (expected != size) {
        corrupt("the received queue's header (capacity " + std::to_string(capacity) +
                ", slot_bytes " + std::to_string(slot_bytes) + ") does not match its " +
                std::to_string(size) + " bytes");
    }
    return {static_cast<std::size_t>(capacity), static_cast<std::size_t>(slot_bytes)};
}

shm_queue_header* shm_queue::header() const noexcept {
    return reinterpret_cast<shm_queue_header*>(m_base);
}

std::size_t shm_queue::stride() const noexcept {
    return align_up(length_bytes + m_geometry.slot_bytes);
}

std::byte* shm_queue::slot(std::uint64_t index) const noexcept {
    const std::uint64_t i = index % m_geometry.capacity;  // capacity >= 1: ours, not shared
    return m_base + sizeof(shm_queue_header) + static_cast<std::size_t>(i) * stride();
}

std::size_t shm_queue::size() const noexcept {
    shm_queue_header* h = header();
    // head first: tail only grows, so tail - head is not negative unless a
    // writer made it so; either way it is clamped to what can exist.
    const std::uint64_t head = load(h->head);
    const std::uint64_t tail = load(h->tail);
    return static_cast<std::size_t>(std::min<std::uint64_t>(tail - head, m_geometry.capacity));
}

bool shm_queue::push(std::span<const std::byte> item, shm_clock::time_point deadline) {
    if (item.size() > m_geometry.slot_bytes) {
        throw serialization_error("coexec::shared_queue::push: the item needs " +
                                  std::to_string(item.size()) +
                                  " bytes, more than the queue's slot size (" +
                                  std::to_string(m_geometry.slot_bytes) + ")");
    }
    shm_queue_header* h = header();
    guard g(&h->lock);
    // try_push (deadline now) still waits for the lock, boundedly.
    if (!g.lock(std::max(deadline, shm_clock::now() + try_lock_patience))) return false;
    bool counted = false;  // as a sleeping producer
    for (;;) {
        const std::uint64_t head = load(h->head);
        const std::uint64_t tail = load(h->tail);
        const std::uint64_t used = tail - head;
        if (used > m_geometry.capacity) corrupt("its head and tail are inconsistent");
        if (counted) {
            const std::uint32_t n = load(h->full_waiters);
            if (n != 0) store(h->full_waiters, n - 1);
            counted = false;
        }
        if (used < m_geometry.capacity) {
            std::byte* s = slot(tail);
            store(*reinterpret_cast<std::uint32_t*>(s), static_cast<std::uint32_t>(item.size()));
            if (!item.empty()) std::memcpy(s + length_bytes, item.data(), item.size());
            store(h->tail, tail + 1);  // publishes the item
            std::atomic_ref<std::uint32_t>(h->not_empty).fetch_add(1, std::memory_order_release);
            const bool sleepers = load(h->empty_waiters) != 0;
            g.unlock();
            if (sleepers) shared_futex_wake_all(&h->not_empty);
            return true;
        }
        if (shm_clock::now() >= deadline) return false;
        const std::uint32_t seq = load(h->not_full);
        store(h->full_waiters, load(h->full_waiters) + 1);
        counted = true;
        g.unlock();
        shared_futex_wait(&h->not_full, seq, deadline);
        if (!g.lock(deadline)) return false;
    }
}

bool shm_queue::pop(std::vector<std::byte>& out, shm_clock::time_point deadline) {
    shm_queue_header* h = header();
    guard g(&h->lock);
    if (!g.lock(std::max(deadline, shm_clock::now() + try_lock_patience))) return false;
    bool counted = false;  // as a sleeping consumer
    for (;;) {
        const std::uint64_t head = load(h->head);
        const std::uint64_t tail = load(h->tail);
        const std::uint64_t used = tail - head;
        if (used > m_geometry.capacity) corrupt("its head and tail are inconsistent");
        if (counted) {
            const std::uint32_t n = load(h->empty_waiters);
            if (n != 0) store(h->empty_waiters, n - 1);
            counted = false;
        }
        if (used > 0) {
            const std::byte* s = slot(head);
            const std::uint32_t len =
                load(*reinterpret_cast<std::uint32_t*>(const_cast<std::byte*>(s)));
            const bool fits = len <= m_geometry.slot_bytes;
            if (fits) out.assign(s + length_bytes, s + length_bytes + len);
            store(h->head, head + 1);  // frees the slot (a corrupt item is dropped)
            std::atomic_ref<std::uint32_t>(h->not_full).fetch_add(1, std::memory_order_release);
            const bool sleepers = load(h->full_waiters) != 0;
            g.unlock();
            if (sleepers) shared_futex_wake_all(&h->not_full);
            if (!fits) {
                corrupt("an item's length (" + std::to_string(len) + ") exceeds the slot size (" +
                        std::to_string(m_geometry.slot_bytes) + ")");
            }
            return true;
        }
        if (shm_clock::now() >= deadline) return false;
        const std::uint32_t seq = load(h->not_empty);
        store(h->empty_waiters, load(h->empty_waiters) + 1);
        counted = true;
        g.unlock();
        shared_futex_wait(&h->not_empty, seq, deadline);
        if (!g.lock(deadline)) return false;
    }
}

}  // namespace coexec::detail
