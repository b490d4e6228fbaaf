// detail/process_sync.hpp — waiting and locking across processes on shared
// memory that any of them may overwrite (lib/shm; no OS types here).
//
// The threat model (docs/threat_model.md, "Shared primitives"): a process
// that shares one of these objects may die at any instruction, or write any
// bytes over the shared memory at any time. The process reading them must
// then see errors (serialization_error), garbage values or stalls bounded by
// its timeouts — never a crash, a write outside the object, or an exception
// it cannot expect. Hence:
// - Waits are futexes on 32-bit sequence words (FUTEX_WAIT_BITSET, shared,
//   CLOCK_MONOTONIC), never process-shared condition variables: a condvar
//   keeps waiter bookkeeping in shared memory, which a killed waiter leaves
//   inconsistent (glibc 2.36 then blocks the next signaller forever).
// - The lock is a futex word holding the owner's thread id, not a pthread
//   robust mutex: glibc links a held robust mutex into the thread's robust
//   list through pointers stored in the mutex itself, and unlock writes
//   through them, so another process overwriting them turns our unlock into
//   a write anywhere in our memory. A dead owner is found by asking the
//   kernel whether its thread still exists (kill(tid, 0)), before sleeping
//   and after every bounded sleep.
// - Every cross-process sleep is bounded (recheck_period), so a wake-up lost
//   to a process killed between its store and its FUTEX_WAKE, or to a
//   hostile writer, delays a waiter but never strands it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace coexec {
class shared_buffer;
}

namespace coexec::detail {

using shm_clock = std::chrono::steady_clock;
inline constexpr shm_clock::time_point shm_forever = shm_clock::time_point::max();

/// Longest a cross-process sleep lasts before the sleeper looks again (for a
/// dead lock owner, or an item whose wake-up was lost).
inline constexpr std::chrono::milliseconds recheck_period{20};

// ---- futexes on shared words ----

/// Sleeps while `*word == expected`, until woken or `deadline` (at most
/// recheck_period). Returns at once if the value differs. Never throws.
void shared_futex_wait(std::uint32_t* word, std::uint32_t expected,
                       shm_clock::time_point deadline) noexcept;
/// Wakes every process sleeping on `word`.
void shared_futex_wake_all(std::uint32_t* word) noexcept;

// ---- the process lock: one 32-bit word in shared memory ----

enum class lock_result {
    acquired,
    owner_died,  ///< acquired from a thread that died holding it
    timed_out,
};

/// Locks `word` (4-byte aligned, shared, zero when first unlocked), waiting
/// until `deadline`. Never throws: whatever another process wrote there, the
/// worst outcome is a wait until the deadline.
lock_result process_lock(std::uint32_t* word,
                         shm_clock::time_point deadline = shm_forever) noexcept;
/// One attempt, no waiting (a dead owner is taken over).
lock_result process_try_lock(std::uint32_t* word) noexcept;
/// Unlocks. Never throws, whatever the word holds.
void process_unlock(std::uint32_t* word) noexcept;

// ---- received shared memory ----

/// Checks a shared block received from another process before it is used
/// through a layout: it exists, holds at least `min_bytes`, and is a memfd
/// sealed against shrinking (so its owner cannot make our accesses fault).
/// Throws serialization_error naming `what` otherwise.
void check_received_block(const shared_buffer& block, std::size_t min_bytes, const char* what);

// ---- the byte level of shared_queue ----

/// The shared header at offset 0 of a queue's block. Every field may hold
/// anything: the reader trusts only its own copy of capacity and slot size.
struct shm_queue_header {
    std::uint32_t lock;           ///< process_lock word
    std::uint32_t not_empty;      ///< sequence: bumped after every push
    std::uint32_t not_full;       ///< sequence: bumped after every pop
    std::uint32_t empty_waiters;  ///< consumers that may sleep on not_empty (a hint)
    std::uint32_t full_waiters;   ///< producers that may sleep on not_full (a hint)
    std::uint32_t reserved;
    std::uint64_t magic;
    std::uint64_t capacity;    ///< written once by the creator; read once by a receiver
    std::uint64_t slot_bytes;  ///< likewise
    std::uint64_t head;        ///< items taken since creation
    std::uint64_t tail;        ///< items published since creation; tail - head = items
};
static_assert(sizeof(shm_queue_header) == 64);

/// A ring of `capacity` slots of a 4-byte length and `slot_bytes` payload,
/// after the header. A push copies the item into slot tail % capacity and
/// then publishes it with one store (tail + 1); a pop copies slot
/// head % capacity out and frees it with one store (head + 1). So a process
/// killed anywhere leaves either the old or the new state, never half of one.
///
/// Thread safety: every member from any thread of any process (the lock).
class shm_queue {
  public:
    struct geometry {
        std::size_t capacity = 0;
        std::size_t slot_bytes = 0;
    };

    /// The block size for this geometry. Throws std::invalid_argument for a
    /// zero capacity, std::length_error if it does not fit in memory.
    static std::size_t bytes_for(std::size_t capacity, std::size_t slot_bytes);
    /// Formats a fresh zero-filled block of bytes_for(g) bytes.
    static void format(std::byte* base, geometry g) noexcept;
    /// Reads a received block's header once and checks it against the
    /// block's size. Throws serialization_error if they disagree.
    static geometry adopt(const std::byte* base, std::size_t size);

    shm_queue() noexcept = default;
    /// A view of a block of bytes_for(g) bytes; `g` is kept privately.
    shm_queue(std::byte* base, geometry g) noexcept : m_base(base), m_geometry(g) {}

    /// Copies `item` (at most slot_bytes) into the queue, waiting until
    /// `deadline` for room. False on timeout (full, or the lock held).
    /// Throws serialization_error if the shared state is found corrupt.
    bool push(std::span<const std::byte> item, shm_clock::time_point deadline);
    /// Copies the oldest item into `out`, waiting until `deadline` for one.
    /// False on timeout. Throws serialization_error if the shared state or
    /// the item's length is corrupt (a corrupt item is dropped first).
    bool pop(std::vector<std::byte>& out, shm_clock::time_point deadline);
    /// Items now, at most capacity (no lock: it may change at once).
    std::size_t size() const noexcept;
    geometry shape() const noexcept { return m_geometry; }

  private:
    class guard;
    shm_queue_header* header() const noexcept;
    std::byte* slot(std::uint64_t index) const noexcept;
    std::size_t stride() const noexcept;

    std::byte* m_base = nullptr;
    geometry m_geometry{};
};

/// How long try_push/try_pop wait for the queue's lock (not for room or an
/// item): long enough for any honest holder, bounded against a hostile one.
inline constexpr std::chrono::milliseconds try_lock_patience{100};

/// Rounds `n` up to a multiple of 64 (a cache line; keeps every part aligned).
constexpr std::size_t align_up(std::size_t n) noexcept {
    return (n + 63) & ~std::size_t{63};
}

}  // namespace coexec::detail
