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
// Waking: each direction has an eventfd. A consumer spins on the ring first,
// then announces it is going to sleep (a flag in shared memory), re-checks the
// ring, and only then sleeps; a producer writes the eventfd only when it sees
// that flag. The flag store / ring re-check on one side and the tail store /
// flag load on the other are separated by seq_cst fences (Dekker's pattern),
// so at least one side sees the other: no lost wake-up, and no syscall at
// all while both sides are awake.
//
// Thread safety: one producer and one consumer per direction. On the parent
// side the pool's mutex serializes producers and the supervisor thread is the
// only consumer.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
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

/// The four descriptors that make a channel, as handed to a worker (owned:
/// the parent closes its copy of the worker's end once the worker has it,
/// since the socket's hang-up is how the worker learns the parent is gone).
struct channel_fds {
    unique_fd memfd;
    unique_fd to_worker_event;  // the worker sleeps on it
    unique_fd to_parent_event;  // the supervisor sleeps on it
    unique_fd socket;           // this side's end of the socketpair
};

/// A received message. `bytes` points into the ring (or a spill mapping) and
/// stays valid until channel::release(). `fds` are owned by the message.
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

    /// Parent side: creates the memfd, eventfds and socketpair. The worker's
    /// descriptors are returned in `worker_end` (CLOEXEC).
    static channel create(std::size_t ring_capacity, channel_fds& worker_end);
    /// Worker side: adopts the four descriptors.
    static channel attach(channel_fds fds);

    channel() noexcept = default;
    channel(channel&& o) noexcept;
    channel& operator=(channel&& o) noexcept;
    ~channel();

    /// Publishes one message; `fds` are borrowed (the kernel duplicates them
    /// into the socket). Never blocks on the peer: a message that does not fit
    /// is spilled. Throws std::system_error if the OS refuses (EPIPE: peer gone).
    void send(msg_kind kind, std::uint64_t id, std::span<const std::byte> bytes,
              std::span<const int> fds = {});
    /// As send, with the payload given in two parts (header + body) to avoid a copy.
    void send2(msg_kind kind, std::uint64_t id, std::span<const std::byte> a,
               std::span<const std::byte> b, std::span<const int> fds = {});

    /// True if a message is waiting (cheap: two loads).
    bool readable() const noexcept;
    /// Takes the next message if there is one. Throws std::system_error or
    /// a protocol error if the peer sent garbage.
    bool try_receive(message& out);
    /// Consumes `m` (advances the ring, unmaps a spill, closes unclaimed fds).
    void release(message& m) noexcept;

    /// Sleep protocol, consumer side: announces sleep; false (and the
    /// announcement withdrawn) if a message arrived meanwhile.
    bool prepare_sleep() noexcept;
    /// Withdraws the announcement; with `drain`, also resets the wake eventfd
    /// (a read syscall: the supervisor drains only the ones epoll reported).
    void end_sleep(bool drain = true) noexcept;
    /// Resets the wake eventfd.
    void drain_wake() noexcept;

    /// The eventfd the peer signals when this side sleeps.
    int wake_fd() const noexcept {
        return m_side == side::parent ? m_to_parent.get() : m_to_worker.get();
    }
    int socket_fd() const noexcept { return m_socket.get(); }

    /// Written by the worker just before it runs a task: which task id it is
    /// running. Lets the parent tell, after a death, whether a task had started.
    void set_running_id(std::uint64_t id) noexcept;
    std::uint64_t running_id() const noexcept;

    explicit operator bool() const noexcept { return m_base != nullptr; }

  private:
    struct ring_control;
    struct header;

    ring_control& out_ring() const noexcept;
    ring_control& in_ring() const noexcept;
    std::byte* out_data() const noexcept;
    std::byte* in_data() const noexcept;
    void map(int memfd);
    void write_record(msg_kind kind, std::uint64_t id, std::uint32_t flags, std::uint32_t nfds,
                      std::span<const std::byte> a, std::span<const std::byte> b);
    bool send_via_arena(msg_kind kind, std::uint64_t id, std::span<const std::byte> a,
                        std::span<const std::byte> b, std::span<const int> fds);
    void send_spilled(msg_kind kind, std::uint64_t id, std::span<const std::byte> a,
                      std::span<const std::byte> b, std::span<const int> fds);
    void map_in_arena(int fd);
    void unmap_arenas() noexcept;
    void wake_peer() noexcept;

    side m_side = side::parent;
    void* m_base = nullptr;
    std::size_t m_map_len = 0;
    std::size_t m_capacity = 0;
    unique_fd m_memfd;
    unique_fd m_to_worker;
    unique_fd m_to_parent;
    unique_fd m_socket;
    // The arenas: ours to write (out) and the peer's, read-only (in).
    void* m_out_arena = nullptr;
    std::size_t m_out_arena_len = 0;
    void* m_in_arena = nullptr;
    std::size_t m_in_arena_len = 0;
};

}  // namespace coexec::detail::proc
