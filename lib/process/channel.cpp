#include "process/channel.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "coexec/errors.hpp"
#include "util/eventfd.hpp"
#include "util/fd_passing.hpp"
#include "util/system_error.hpp"

namespace coexec::detail::proc {

namespace {

constexpr std::uint64_t channel_magic = 0x636f65786563'4348ULL;  // "coexecCH"
constexpr std::uint16_t flag_spilled = 1;                        // payload outside the ring
constexpr std::uint16_t flag_arena = 2;                          // ... in the direction's arena
constexpr std::uint16_t flag_new_arena = 4;  // ... a new one: its memfd is the first fd
constexpr std::size_t arena_granule = std::size_t{2} << 20;

// One record per message, 8-byte aligned; the payload follows it.
struct record {
    std::uint32_t size;  // payload bytes (in the ring, or in the spill memfd)
    std::uint16_t kind;
    std::uint16_t flags;
    std::uint32_t nfds;  // descriptors sent over the socket for this message
    std::uint32_t reserved;
    std::uint64_t id;
};
static_assert(sizeof(record) == 24);

// The descriptors of a message whose payload travels in `memfd`: it comes first.
std::vector<int> with_leading_fd(int memfd, std::span<const int> fds) {
    std::vector<int> all;
    all.reserve(fds.size() + 1);
    all.push_back(memfd);
    all.insert(all.end(), fds.begin(), fds.end());
    return all;
}

constexpr std::size_t align8(std::size_t n) noexcept {
    return (n + 7) & ~std::size_t{7};
}

}  // namespace

struct channel::ring_control {
    // head is written only by the consumer, tail only by the producer; each on
    // its own cache line so the two sides do not false-share.
    alignas(64) std::atomic<std::uint64_t> head{0};
    alignas(64) std::atomic<std::uint64_t> tail{0};
    alignas(64) std::atomic<std::uint32_t> consumer_sleeping{0};
    // 1 from the producer's arena write until the consumer's release.
    std::atomic<std::uint32_t> arena_busy{0};
};

struct channel::header {
    std::uint64_t magic = channel_magic;
    std::uint64_t capacity = 0;
    alignas(64) std::atomic<std::uint64_t> running_id{0};
    ring_control to_worker;
    ring_control to_parent;
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "shared-memory rings need address-free (lock-free) atomics");

namespace {
constexpr std::size_t data_offset = 4096;  // the rings start on their own page
}  // namespace

channel channel::create(std::size_t ring_capacity, channel_fds& worker_end) {
    ring_capacity = align8(std::max<std::size_t>(ring_capacity, 4096));
    channel ch;
    ch.m_side = side::parent;
    ch.m_memfd.reset(::memfd_create("coexec-channel", MFD_CLOEXEC));
    if (!ch.m_memfd) throw_errno("memfd_create");
    const std::size_t len = data_offset + 2 * ring_capacity;
    if (::ftruncate(ch.m_memfd.get(), static_cast<off_t>(len)) != 0) throw_errno("ftruncate");
    ch.map(ch.m_memfd.get());
    static_assert(sizeof(header) <= data_offset);
    auto* h = ::new (ch.m_base) header();
    h->capacity = ring_capacity;
    ch.m_capacity = ring_capacity;

    ch.m_to_worker = make_eventfd(EFD_NONBLOCK);
    ch.m_to_parent = make_eventfd(EFD_NONBLOCK);
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) throw_errno("socketpair");
    ch.m_socket.reset(sv[0]);
    unique_fd worker_sock(sv[1]);

    auto dup_fd = [](const unique_fd& fd) {
        int d = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0);
        if (d < 0) throw_errno("fcntl(F_DUPFD_CLOEXEC)");
        return unique_fd(d);
    };
    channel_fds w;
    w.memfd = dup_fd(ch.m_memfd);
    w.to_worker_event = dup_fd(ch.m_to_worker);
    w.to_parent_event = dup_fd(ch.m_to_parent);
    w.socket = std::move(worker_sock);
    worker_end = std::move(w);
    return ch;
}

channel channel::attach(channel_fds fds) {
    channel ch;
    ch.m_side = side::worker;
    ch.m_memfd = std::move(fds.memfd);
    ch.m_to_worker = std::move(fds.to_worker_event);
    ch.m_to_parent = std::move(fds.to_parent_event);
    ch.m_socket = std::move(fds.socket);
    ch.map(ch.m_memfd.get());
    auto* h = static_cast<header*>(ch.m_base);
    if (h->magic != channel_magic || data_offset + 2 * h->capacity != ch.m_map_len) {
        throw serialization_error("coexec: a worker channel has an unexpected layout");
    }
    ch.m_capacity = h->capacity;
    return ch;
}

void channel::map(int memfd) {
    struct stat st {};
    if (::fstat(memfd, &st) != 0) throw_errno("fstat");
    m_map_len = static_cast<std::size_t>(st.st_size);
    void* p = ::mmap(nullptr, m_map_len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (p == MAP_FAILED) throw_errno("mmap");
    m_base = p;
}

channel::channel(channel&& o) noexcept
    : m_side(o.m_side),
      m_base(std::exchange(o.m_base, nullptr)),
      m_map_len(std::exchange(o.m_map_len, 0)),
      m_capacity(std::exchange(o.m_capacity, 0)),
      m_memfd(std::move(o.m_memfd)),
      m_to_worker(std::move(o.m_to_worker)),
      m_to_parent(std::move(o.m_to_parent)),
      m_socket(std::move(o.m_socket)),
      m_out_arena(std::exchange(o.m_out_arena, nullptr)),
      m_out_arena_len(std::exchange(o.m_out_arena_len, 0)),
      m_in_arena(std::exchange(o.m_in_arena, nullptr)),
      m_in_arena_len(std::exchange(o.m_in_arena_len, 0)) {}

channel& channel::operator=(channel&& o) noexcept {
    if (this != &o) {
        this->~channel();
        ::new (this) channel(std::move(o));
    }
    return *this;
}

channel::~channel() {
    unmap_arenas();
    if (m_base != nullptr) ::munmap(m_base, m_map_len);
}

void channel::unmap_arenas() noexcept {
    if (m_out_arena != nullptr) ::munmap(m_out_arena, m_out_arena_len);
    if (m_in_arena != nullptr) ::munmap(m_in_arena, m_in_arena_len);
    m_out_arena = m_in_arena = nullptr;
    m_out_arena_len = m_in_arena_len = 0;
}

channel::ring_control& channel::out_ring() const noexcept {
    auto* h = static_cast<header*>(m_base);
    return m_side == side::parent ? h->to_worker : h->to_parent;
}
channel::ring_control& channel::in_ring() const noexcept {
    auto* h = static_cast<header*>(m_base);
    return m_side == side::parent ? h->to_parent : h->to_worker;
}
std::byte* channel::out_data() const noexcept {
    auto* d = static_cast<std::byte*>(m_base) + data_offset;
    return m_side == side::parent ? d : d + m_capacity;
}
std::byte* channel::in_data() const noexcept {
    auto* d = static_cast<std::byte*>(m_base) + data_offset;
    return m_side == side::parent ? d + m_capacity : d;
}

void channel::set_running_id(std::uint64_t id) noexcept {
    // Read by the parent only after the worker is dead (its exit orders the
    // store), so relaxed would do; release costs nothing on x86.
    static_cast<header*>(m_base)->running_id.store(id, std::memory_order_release);
}
std::uint64_t channel::running_id() const noexcept {
    return static_cast<header*>(m_base)->running_id.load(std::memory_order_acquire);
}

void channel::write_record(msg_kind kind, std::uint64_t id, std::uint32_t flags, std::uint32_t nfds,
                           std::span<const std::byte> a, std::span<const std::byte> b) {
    ring_control& r = out_ring();
    std::byte* data = out_data();
    const std::size_t payload = (flags & flag_spilled) ? 0 : a.size() + b.size();
    const std::size_t len = align8(sizeof(record) + payload);
    // tail is ours (relaxed); head is the consumer's, acquire so that we do not
    // overwrite bytes it is still reading.
    std::uint64_t tail = r.tail.load(std::memory_order_relaxed);
    const std::uint64_t head = r.head.load(std::memory_order_acquire);
    std::size_t pos = tail % m_capacity;
    std::size_t skip = (m_capacity - pos < len) ? m_capacity - pos : 0;
    if ((tail - head) + skip + len > m_capacity) {
        // Callers spill anything large and keep at most a few messages in
        // flight, so this means the peer stopped reading.
        throw_system_error(ENOBUFS, "process channel: ring full");
    }
    if (skip != 0) {
        if (skip >= sizeof(record)) {
            record pad{static_cast<std::uint32_t>(skip - sizeof(record)),
                       static_cast<std::uint16_t>(msg_kind::pad),
                       0,
                       0,
                       0,
                       0};
            std::memcpy(data + pos, &pad, sizeof pad);
        }  // else: too small for a record; the consumer skips it by the same rule
        tail += skip;
        pos = 0;
    }
    record rec{static_cast<std::uint32_t>(a.size() + b.size()),
               static_cast<std::uint16_t>(kind),
               static_cast<std::uint16_t>(flags),
               nfds,
               0,
               id};
    std::memcpy(data + pos, &rec, sizeof rec);
    if (payload != 0) {
        if (!a.empty()) std::memcpy(data + pos + sizeof rec, a.data(), a.size());
        if (!b.empty()) std::memcpy(data + pos + sizeof rec + a.size(), b.data(), b.size());
    }
    // release: the record's bytes are visible before the new tail.
    r.tail.store(tail + len, std::memory_order_release);
    wake_peer();
}

void channel::wake_peer() noexcept {
    // seq_cst fence between our tail store and the flag load; the consumer has
    // the mirror fence between its flag store and its tail load (Dekker).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (out_ring().consumer_sleeping.load(std::memory_order_relaxed) != 0) {
        eventfd_signal(m_side == side::parent ? m_to_worker.get() : m_to_parent.get());
    }
}

void channel::send(msg_kind kind, std::uint64_t id, std::span<const std::byte> bytes,
                   std::span<const int> fds) {
    send2(kind, id, bytes, {}, fds);
}

void channel::send2(msg_kind kind, std::uint64_t id, std::span<const std::byte> a,
                    std::span<const std::byte> b, std::span<const int> fds) {
    const std::size_t total = a.size() + b.size();
    if (total > UINT32_MAX - 64) {
        throw_system_error(EMSGSIZE, "process channel: message over 4 GiB");
    }
    if (align8(sizeof(record) + total) <= m_capacity / 4) {
        if (!fds.empty()) send_fds(m_socket.get(), fds);
        write_record(kind, id, 0, static_cast<std::uint32_t>(fds.size()), a, b);
        return;
    }
    if (total <= arena_max_bytes && send_via_arena(kind, id, a, b, fds)) return;
    send_spilled(kind, id, a, b, fds);
}

bool channel::send_via_arena(msg_kind kind, std::uint64_t id, std::span<const std::byte> a,
                             std::span<const std::byte> b, std::span<const int> fds) {
    ring_control& r = out_ring();
    // acquire: the consumer's reads of the previous message happened before
    // its release store of 0, so we may overwrite.
    if (r.arena_busy.load(std::memory_order_acquire) != 0) return false;
    const std::size_t total = a.size() + b.size();
    // A new arena when the old one is too small, or far too large for what
    // is being sent now (so one huge message does not pin memory forever).
    void* target = m_out_arena;
    std::size_t target_len = m_out_arena_len;
    unique_fd fresh;
    if (target_len < total || target_len > 4 * std::max(total, arena_granule)) {
        target_len = (total + arena_granule - 1) / arena_granule * arena_granule;
        fresh.reset(::memfd_create("coexec-arena", MFD_CLOEXEC));
        if (!fresh) throw_errno("memfd_create");
        if (::ftruncate(fresh.get(), static_cast<off_t>(target_len)) != 0) throw_errno("ftruncate");
        target = ::mmap(nullptr, target_len, PROT_READ | PROT_WRITE, MAP_SHARED, fresh.get(), 0);
        if (target == MAP_FAILED) throw_errno("mmap(arena)");
    }
    try {
        auto* dst = static_cast<std::byte*>(target);
        if (!a.empty()) std::memcpy(dst, a.data(), a.size());
        if (!b.empty()) std::memcpy(dst + a.size(), b.data(), b.size());
        std::vector<int> all;
        if (fresh) {
            all = with_leading_fd(fresh.get(), fds);
            fds = all;
        }
        if (!fds.empty()) send_fds(m_socket.get(), fds);
        // Published by write_record's release store of the ring's tail.
        r.arena_busy.store(1, std::memory_order_relaxed);
        write_record(kind, id, flag_spilled | flag_arena | (fresh ? flag_new_arena : 0),
                     static_cast<std::uint32_t>(fds.size()), a, b);
    } catch (...) {
        r.arena_busy.store(0, std::memory_order_relaxed);
        if (fresh) ::munmap(target, target_len);  // the peer never heard of it
        throw;
    }
    if (fresh) {
        if (m_out_arena != nullptr) ::munmap(m_out_arena, m_out_arena_len);
        m_out_arena = target;
        m_out_arena_len = target_len;
    }
    return true;
}

void channel::send_spilled(msg_kind kind, std::uint64_t id, std::span<const std::byte> a,
                           std::span<const std::byte> b, std::span<const int> fds) {
    // The payload goes into a memfd of its own, sent as the first descriptor.
    unique_fd spill(::memfd_create("coexec-message", MFD_CLOEXEC));
    if (!spill) throw_errno("memfd_create");
    for (auto part : {a, b}) {
        while (!part.empty()) {
            ssize_t w = ::write(spill.get(), part.data(), part.size());
            if (w < 0) {
                if (errno == EINTR) continue;
                throw_errno("write(spill memfd)");
            }
            part = part.subspan(static_cast<std::size_t>(w));
        }
    }
    const std::vector<int> all = with_leading_fd(spill.get(), fds);
    send_fds(m_socket.get(), all);
    write_record(kind, id, flag_spilled, static_cast<std::uint32_t>(all.size()), a, b);
}

void channel::map_in_arena(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw_errno("fstat(arena)");
    const auto len = static_cast<std::size_t>(st.st_size);
    void* p = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) throw_errno("mmap(arena)");
    if (m_in_arena != nullptr) ::munmap(m_in_arena, m_in_arena_len);
    m_in_arena = p;
    m_in_arena_len = len;
}

bool channel::readable() const noexcept {
    ring_control& r = in_ring();
    // head is only written by this (consuming) side, so relaxed is enough.
    return r.tail.load(std::memory_order_acquire) != r.head.load(std::memory_order_relaxed);
}

bool channel::try_receive(message& out) {
    ring_control& r = in_ring();
    std::byte* data = in_data();
    std::uint64_t head = r.head.load(std::memory_order_relaxed);
    for (;;) {
        // acquire: pairs with the producer's release store of tail.
        const std::uint64_t tail = r.tail.load(std::memory_order_acquire);
        if (head == tail) return false;
        const std::size_t pos = head % m_capacity;
        if (m_capacity - pos < sizeof(record)) {
            head += m_capacity - pos;
            r.head.store(head, std::memory_order_release);
            continue;
        }
        record rec;
        std::memcpy(&rec, data + pos, sizeof rec);
        if (rec.kind == static_cast<std::uint16_t>(msg_kind::pad)) {
            head += m_capacity - pos;
            r.head.store(head, std::memory_order_release);
            continue;
        }
        const bool spilled = (rec.flags & flag_spilled) != 0;
        const std::size_t len = align8(sizeof(record) + (spilled ? 0 : rec.size));
        if (len > m_capacity - pos) {
            throw serialization_error("coexec: corrupt record in a process channel");
        }
        out.kind = static_cast<msg_kind>(rec.kind);
        out.id = rec.id;
        out.advance = len;
        out.fds.clear();
        out.spill_map = nullptr;
        out.spill_len = 0;
        out.in_arena = false;
        out.bytes = {data + pos + sizeof rec, spilled ? 0 : rec.size};
        if (rec.nfds != 0) {
            // The sender queued these before publishing the record, so they
            // are already here: the parent never waits (MSG_DONTWAIT), a
            // missing packet is a protocol error.
            recv_fds(m_socket.get(), rec.nfds, out.fds, m_side == side::parent ? MSG_DONTWAIT : 0);
        }
        if (spilled && (rec.flags & flag_arena) != 0) {
            if ((rec.flags & flag_new_arena) != 0) {
                if (out.fds.empty())
                    throw serialization_error("coexec: new arena announced without its memfd");
                unique_fd arena(out.fds.front());
                out.fds.erase(out.fds.begin());
                map_in_arena(arena.get());
            }
            if (m_in_arena == nullptr || rec.size > m_in_arena_len)
                throw serialization_error("coexec: a message overruns the channel's arena");
            out.in_arena = true;
            out.bytes = {static_cast<const std::byte*>(m_in_arena), rec.size};
        } else if (spilled) {
            if (out.fds.empty())
                throw serialization_error("coexec: spilled message without its memfd");
            unique_fd spill(out.fds.front());
            out.fds.erase(out.fds.begin());
            void* p = ::mmap(nullptr, rec.size, PROT_READ, MAP_PRIVATE, spill.get(), 0);
            if (p == MAP_FAILED) throw_errno("mmap(spill memfd)");
            out.spill_map = p;
            out.spill_len = rec.size;
            out.bytes = {static_cast<const std::byte*>(p), rec.size};
        }
        return true;
    }
}

void channel::release(message& m) noexcept {
    ring_control& r = in_ring();
    if (m.advance != 0) {
        // release: we are done reading these bytes before the producer reuses them.
        r.head.store(r.head.load(std::memory_order_relaxed) + m.advance, std::memory_order_release);
        m.advance = 0;
    }
    if (m.spill_map != nullptr) ::munmap(m.spill_map, m.spill_len);
    m.spill_map = nullptr;
    if (m.in_arena) {
        // release: our reads of the arena happen before the producer reuses it.
        r.arena_busy.store(0, std::memory_order_release);
        m.in_arena = false;
    }
    for (int fd : m.fds)
        ::close(fd);
    m.fds.clear();
    m.bytes = {};
}

bool channel::prepare_sleep() noexcept {
    in_ring().consumer_sleeping.store(1, std::memory_order_relaxed);
    // Mirror of wake_peer's fence: our flag store is ordered before our tail load.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (readable()) {
        in_ring().consumer_sleeping.store(0, std::memory_order_relaxed);
        return false;
    }
    return true;
}

void channel::end_sleep(bool drain) noexcept {
    in_ring().consumer_sleeping.store(0, std::memory_order_relaxed);
    if (drain) drain_wake();
}

void channel::drain_wake() noexcept {
    eventfd_drain(wake_fd());  // non-blocking
}

}  // namespace coexec::detail::proc
