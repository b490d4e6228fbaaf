// lib/process/channel.hpp — one parent ⇄ worker channel of a process_pool.
//
// Layout: a memfd holds a small header and two single-producer single-consumer
// byte rings, one per direction. Each message is one contiguous record (a
// record never wraps: a pad record fills the end of the ring), so the
// receiver decodes it in place. A message too large for the ring travels in a
// memfd of its own ("spilled"): up to arena_max_bytes, into the direction's
// arena, a memfd both sides keep mapped and reuse while the receiver has
// released the previous one (so a large payload costs one copy into pages
// that are already there, not a fresh allocation on each side); beyond that,
// or while the arena is busy, a one-off memfd. Descriptors (shared_buffers,
// spill and arena memfds) travel beside the ring over a SOCK_SEQPACKET
// socketpair (util/fd_passing.hpp), sent before the ring record that refers
// to them is published, so the receiver finds them already queued and never
// blocks for them. The socket also tells the worker when the parent is gone
// (hang-up).
//
// Waking: a second SOCK_SEQPACKET socketpair, non-blocking. A consumer spins
// on the ring first, then announces it is going to sleep (a flag in shared
// memory), re-checks the ring, and only then sleeps on its end of the wake
// socket; a producer sends one byte only when it sees that flag. The flag
// store / ring re-check on one side and the tail store / flag load on the
// other are separated by seq_cst fences (Dekker's pattern), so at least one
// side sees the other: no lost wake-up, and no syscall at all while both
// sides are awake. (A socket rather than an eventfd: each end is its own open
// file description, so a worker cannot make the parent's end blocking, and a
// send never raises SIGPIPE.)
//
// Trust: the worker runs untrusted code, which may write any byte of the
// shared memory at any time, truncate or close its descriptors and send
// anything on its sockets. So each side keeps private copies of what it owns
// (its consumer head, its producer tail, the capacity) and never reads them
// back from shared memory; it validates the peer's index (within capacity of
// its own, never moving backwards), copies a record's header before checking
// it, checks every length against what remains, and maps only memfds whose
// seals forbid shrinking (all memfds are created sealed: the channel's own,
// arenas, one-off spills, shared_buffers). The parent never blocks on the
// worker (every socket operation is MSG_DONTWAIT) and checks the type and
// seals of every descriptor it receives. Anything wrong throws
// protocol_violation and poisons the channel: from then on it receives
// nothing and sends nothing. The threat model is docs/threat_model.md.
//
// Thread safety: one producer and one consumer per direction. On the parent
// side the pool's mutex serializes producers, and consumers take turns: the
// supervisor thread, or a caller waiting in get() (process/waiter_help.cpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

#include "util/unique_fd.hpp"

namespace coexec::detail::proc {

/// Message kinds. Parent → worker: config, task, exit, trace_config. Worker →
/// parent: ready, result, init_failed, trace_span.
enum class msg_kind : std::uint16_t {
    pad = 0,  // filler at the end of the ring; never returned to callers
    config = 1,
    task = 2,
    exit = 3,
    trace_config = 4,  // coexec::trace: time tasks or not (lib/trace/process_link.hpp)
    ready = 10,
    result = 11,
    init_failed = 12,
    trace_span = 13,  // coexec::trace: a task's begin and end, before its result
};

/// Bits of a record's flags (exposed for the adversarial tests and the fuzzer).
namespace record_flag {
inline constexpr std::uint16_t spilled = 1;    // payload outside the ring
inline constexpr std::uint16_t arena = 2;      // ... in the direction's arena
inline constexpr std::uint16_t new_arena = 4;  // ... a new one: its memfd is the first fd
inline constexpr std::uint16_t all = spilled | arena | new_arena;
}  // namespace record_flag

// ---- the shared layout (public for the adversarial tests and the fuzzer) ----

/// One record per message, 8-byte aligned; the payload follows it (unless spilled).
struct record {
    std::uint32_t size;  // payload bytes (in the ring, or in the spill memfd)
    std::uint16_t kind;
    std::uint16_t flags;  // record_flag bits
    std::uint32_t nfds;   // descriptors sent over the socket for this message
    std::uint32_t reserved;
    std::uint64_t id;
};
static_assert(sizeof(record) == 24);

/// One direction's indices. head is written only by the consumer, tail only
/// by the producer; each on its own cache line so the two sides do not
/// false-share. Each side reads only the other's index (its own lives in a
/// private copy).
struct ring_control {
    alignas(64) std::atomic<std::uint64_t> head{0};
    alignas(64) std::atomic<std::uint64_t> tail{0};
    alignas(64) std::atomic<std::uint32_t> consumer_sleeping{0};
    // 1 from the producer's arena write until the consumer's release.
    std::atomic<std::uint32_t> arena_busy{0};
};

/// The first page of a channel's memfd; the rings follow at ring_data_offset
/// (parent → worker first, then worker → parent, `capacity` bytes each).
struct channel_header {
    std::uint64_t magic = 0;
    std::uint64_t capacity = 0;  // for the worker's attach; the parent keeps its own copy
    alignas(64) std::atomic<std::uint64_t> running_id{0};
    ring_control to_worker;
    ring_control to_parent;
};
inline constexpr std::size_t ring_data_offset = 4096;
static_assert(sizeof(channel_header) <= ring_data_offset);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "shared-memory rings need address-free (lock-free) atomics");

/// Most payload descriptors (shared_buffers) one message may carry, besides
/// the memfd of a spilled payload. A receiver holds them all at once, so
/// this bounds what one worker can make the parent hold; a sender with more
/// gets serialization_error.
inline constexpr std::size_t max_fds_per_message = 256;

/// The peer broke the channel's protocol: garbage indices or records, a
/// descriptor of the wrong type, size or seals, a socket it does not drain.
/// The channel is poisoned from then on.
class protocol_violation : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// The three descriptors that make a channel, as handed to a worker (owned:
/// the parent closes its copy of the worker's end once the worker has it,
/// since the socket's hang-up is how the worker learns the parent is gone).
struct channel_fds {
    unique_fd memfd;
    unique_fd wake;    // this side's end of the wake socketpair (non-blocking)
    unique_fd socket;  // this side's end of the descriptor socketpair
};

/// A received message. `bytes` points into the ring (or a spill mapping) and
/// stays valid until channel::release(). `fds` are owned by the message.
/// The bytes are shared memory the peer can still write: decode them once,
/// reading each byte once (see docs/threat_model.md).
struct message {
    msg_kind kind = msg_kind::pad;
    std::uint64_t id = 0;
    std::span<const std::byte> bytes;
    std::vector<int> fds;
    // internal
    std::uint64_t advance = 0;  // ring bytes to consume on release
    void* spill_map = nullptr;
    std::size_t spill_len = 0;
    bool in_arena = false;  // bytes are in the channel's arena (freed by release)
};

/// Largest message that travels through a channel's reusable arena; a channel
/// keeps the arena sized for the largest recent one until it is destroyed.
inline constexpr std::size_t arena_max_bytes = std::size_t{256} << 20;

class channel {
  public:
    enum class side { parent, worker };

    /// Parent side: creates the memfd (sealed at its size), the wake and the
    /// descriptor socketpairs. The worker's descriptors are returned in
    /// `worker_end` (CLOEXEC).
    static channel create(std::size_t ring_capacity, channel_fds& worker_end);
    /// Worker side: adopts the three descriptors.
    static channel attach(channel_fds fds);

    channel() noexcept = default;
    channel(channel&& o) noexcept;
    channel& operator=(channel&& o) noexcept;
    ~channel();

    /// Publishes one message; `fds` are borrowed (the kernel duplicates them
    /// into the socket), at most max_fds_per_message (else
    /// serialization_error). Never blocks on the peer: a message that does
    /// not fit is spilled. On the parent side, a peer that does not drain its
    /// ring or socket, or has closed it, or wrote a garbage head, throws
    /// protocol_violation; other OS failures (ours) throw std::system_error.
    void send(msg_kind kind, std::uint64_t id, std::span<const std::byte> bytes,
              std::span<const int> fds = {});
    /// As send, with the payload given in two parts (header + body) to avoid a copy.
    void send2(msg_kind kind, std::uint64_t id, std::span<const std::byte> a,
               std::span<const std::byte> b, std::span<const int> fds = {});

    /// True if a message may be waiting (cheap: one load). False once poisoned.
    bool readable() const noexcept;
    /// Takes the next message if there is one. Throws protocol_violation if
    /// the peer broke the protocol (`out` then holds what must be released),
    /// std::system_error if the OS refuses a mapping.
    bool try_receive(message& out);
    /// Consumes `m` (advances the ring, unmaps a spill, closes unclaimed fds).
    void release(message& m) noexcept;

    /// Refuses all further traffic (after a violation found above this layer).
    void poison() noexcept { m_poisoned.store(true, std::memory_order_relaxed); }
    bool poisoned() const noexcept { return m_poisoned.load(std::memory_order_relaxed); }

    /// Sleep protocol, consumer side: announces sleep; false (and the
    /// announcement withdrawn) if a message arrived meanwhile.
    bool prepare_sleep() noexcept;
    /// Withdraws the announcement; with `drain`, also drains the wake socket.
    void end_sleep(bool drain = true) noexcept;
    /// Drains the wake socket (non-blocking, bounded: a peer that floods it
    /// leaves it readable, and the caller's poll reports it again).
    void drain_wake() noexcept;

    /// What this side sleeps on (readable when the peer woke it).
    int wake_fd() const noexcept { return m_wake.get(); }
    int socket_fd() const noexcept { return m_socket.get(); }

    /// Written by the worker just before it runs a task: which task id it is
    /// running. Lets the parent tell, after a death, whether a task had
    /// started. Untrusted on the parent side: compare it with ids it knows.
    void set_running_id(std::uint64_t id) noexcept;
    std::uint64_t running_id() const noexcept;

    /// For adversarial tests and the fuzzer: publishes a record exactly as
    /// given (no check of kind, flags, size or count), `payload` in the ring
    /// after it, `fds` on the socket first. Throws like send.
    void publish_raw(std::uint16_t kind, std::uint16_t flags, std::uint32_t size,
                     std::uint32_t nfds, std::uint64_t id, std::span<const std::byte> payload,
                     std::span<const int> fds);

    /// This side's mapping of the shared memfd (header, then both rings),
    /// for the tests and the fuzzer that check where received bytes lie.
    std::span<const std::byte> mapping() const noexcept {
        return {static_cast<const std::byte*>(m_base), m_map_len};
    }
    std::size_t capacity() const noexcept { return m_capacity; }

    explicit operator bool() const noexcept { return m_base != nullptr; }

  private:
    ring_control& out_ring() const noexcept;
    ring_control& in_ring() const noexcept;
    std::byte* out_data() const noexcept;
    std::byte* in_data() const noexcept;
    void map(int memfd, std::size_t len);
    [[noreturn]] void violation(const char* what);
    void send_descriptors(std::span<const int> fds);
    std::uint64_t checked_peer_head();
    void write_record(std::uint16_t kind, std::uint64_t id, std::uint32_t flags, std::uint32_t nfds,
                      std::uint32_t size, std::span<const std::byte> a,
                      std::span<const std::byte> b);
    bool send_via_arena(msg_kind kind, std::uint64_t id, std::span<const std::byte> a,
                        std::span<const std::byte> b, std::span<const int> fds);
    void send_spilled(msg_kind kind, std::uint64_t id, std::span<const std::byte> a,
                      std::span<const std::byte> b, std::span<const int> fds);
    void receive_payload(const record& rec, message& out);
    void map_in_arena(int fd, std::size_t needed);
    void unmap_arenas() noexcept;
    void wake_peer() noexcept;

    side m_side = side::parent;
    void* m_base = nullptr;
    std::size_t m_map_len = 0;
    // Private copies: never read back from the shared header.
    std::size_t m_capacity = 0;
    std::uint64_t m_out_tail = 0;   // ours: the producer index of the out ring
    std::uint64_t m_peer_head = 0;  // the last valid consumer index the peer published
    std::uint64_t m_in_head = 0;    // ours: the consumer index of the in ring
    std::uint64_t m_peer_tail = 0;  // the last valid producer index the peer published
    // Set by either side's thread (a producer under the pool's lock, the
    // consumer without it), read by both: atomic.
    std::atomic<bool> m_poisoned{false};
    unique_fd m_memfd;
    unique_fd m_wake;
    unique_fd m_socket;
    // The arenas: ours to write (out) and the peer's, read-only (in).
    void* m_out_arena = nullptr;
    std::size_t m_out_arena_len = 0;
    void* m_in_arena = nullptr;
    std::size_t m_in_arena_len = 0;
};

}  // namespace coexec::detail::proc
